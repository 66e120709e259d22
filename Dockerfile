# syntax=docker/dockerfile:1
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY prompts ./prompts
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    AFTERGLOW_KEY_FILE=/data/afterglow.key \
    AFTERGLOW_DATABASE_URL=sqlite+aiosqlite:////data/afterglow.db
RUN useradd --system --uid 10001 --home-dir /data --create-home afterglow
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER afterglow
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# /healthz answers while the process runs; /readyz also checks the database and dispatcher.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AFTERGLOW_HTTP_PORT', '8080'), timeout=4)" || exit 1
CMD ["afterglow", "run"]
