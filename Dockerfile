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
# Until the HTTP health endpoint lands, healthy means: the process is up and the database
# answers at the current schema revision.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD afterglow db current >/dev/null || exit 1
CMD ["afterglow", "run"]
