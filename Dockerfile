# syntax=docker/dockerfile:1
# Every third-party file in the image is checked against a hash from a lock file, so a
# tampered or re-uploaded release on the index fails the build instead of shipping:
# requirements-build.lock for the build tools, requirements.lock for what runs.
FROM python:3.12-slim AS build
WORKDIR /src
COPY requirements-build.lock requirements.lock ./
# Wheels only: an sdist would run its own build with unhashed build dependencies.
# The runtime venv gets no pip of its own; the hashed pip here installs into it.
RUN pip install --no-cache-dir --require-hashes --only-binary :all: -r requirements-build.lock \
 && python -m venv --without-pip /opt/afterglow \
 && pip --python /opt/afterglow/bin/python install --no-cache-dir \
        --require-hashes --only-binary :all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY prompts ./prompts
COPY migrations ./migrations
# No build isolation: the wheel is built by the hashed setuptools installed above, not by
# whatever the index serves today; --no-deps because requirements.lock already installed them.
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
 && pip --python /opt/afterglow/bin/python install --no-cache-dir --no-deps /wheels/*.whl

FROM python:3.12-slim
# The key is never looked for in /data: a key kept beside the data it protects is copied,
# backed up and leaked together with it. It comes from AFTERGLOW_ENCRYPTION_KEYS or from a
# secret mounted at AFTERGLOW_KEY_FILE (docker-compose.yml mounts one there).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/afterglow/bin:$PATH \
    AFTERGLOW_KEY_FILE=/run/secrets/afterglow_keys \
    AFTERGLOW_DATABASE_URL=sqlite+aiosqlite:////data/afterglow.db
RUN groupadd --system --gid 10001 afterglow \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/afterglow \
        --shell /usr/sbin/nologin afterglow \
 && install -d -o afterglow -g afterglow -m 0700 /data
COPY --from=build /opt/afterglow /opt/afterglow
# `afterglow run` without a key creates a key file; in this image that would be a traceback
# (/run/secrets is not writable) or, with AFTERGLOW_KEY_FILE pointed at /data, a key inside
# the volume. This check refuses in one line instead, and points at a key left in /data.
COPY --chmod=0755 <<'EOF' /usr/local/bin/afterglow-entrypoint
#!/bin/sh
set -eu
fail() { echo "afterglow: $*" >&2; exit 1; }
if [ "${1:-}" = afterglow ] && [ "${2:-}" = run ] && [ -z "${AFTERGLOW_ENCRYPTION_KEYS:-}" ]; then
  key_file="${AFTERGLOW_KEY_FILE:-afterglow.key}"
  case "$key_file" in
    /data | /data/* | [!/]*)
      fail "AFTERGLOW_KEY_FILE=$key_file is inside the data volume /data; mount the key as a secret elsewhere (default /run/secrets/afterglow_keys) or set AFTERGLOW_ENCRYPTION_KEYS" ;;
  esac
  if [ ! -e "$key_file" ]; then
    if [ -e /data/afterglow.key ]; then
      fail "no key at $key_file, but /data/afterglow.key exists (left by an older image): move it out of the volume and mount it as the secret at $key_file, or put its keys in AFTERGLOW_ENCRYPTION_KEYS"
    fi
    fail "no encryption key: set AFTERGLOW_ENCRYPTION_KEYS (newest first) or mount a key file at $key_file (a Docker or compose secret)"
  fi
  [ -f "$key_file" ] || fail "$key_file is not a file (compose mounts a folder when the secret's file was missing on the host): create the key file on the host and recreate the container"
  [ -r "$key_file" ] || fail "cannot read $key_file as uid $(id -u): on the host give the file to uid $(id -u) with mode 0400"
  [ -s "$key_file" ] || fail "$key_file is empty: put the Fernet keys in it, one a line, newest first, or set AFTERGLOW_ENCRYPTION_KEYS"
fi
exec "$@"
EOF
USER afterglow
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# /healthz answers while the process runs; /readyz also checks the database and dispatcher.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AFTERGLOW_HTTP_PORT', '8080'), timeout=4)" || exit 1
ENTRYPOINT ["afterglow-entrypoint"]
CMD ["afterglow", "run"]
