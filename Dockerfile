# Py-Service: one consumer replica per container.
#
#   docker build -t py-service .
#   docker run --rm -e WEBSOCKET_URL=wss://hub.example.com/websocket -e TOKEN=... py-service
#
# Base image: the official Python 3.13 image, Debian "slim" variant. Why 3.13: the same code
# costs less CPU per request there than on 3.11 (3.12+ start request tasks eagerly; 3.13's
# interpreter is cheaper still): python -m bench.run measures it, and docs/performance.md
# gives the figures. CI runs the whole suite on 3.11, 3.12 and 3.13. Why slim and not
# alpine: every runtime dependency (psycopg2-binary, aiohttp, pydantic-core, SQLAlchemy, ...)
# publishes manylinux wheels, which need glibc. Alpine uses
# musl, where pip would fall back to musllinux wheels at best and to building from source at
# worst (a C compiler, libpq and Rust for pydantic-core in the image), for a few MB of
# saving. On slim the install is wheels only and needs no apt packages at all.
#
# Pinned to the patch release, 3.13.12 on Debian 13 "trixie", as the official image's tag
# list names it (docker-library/docs, python/README.md). No digest: none could be read from
# a source this file can cite. To pin one, run
#   docker buildx imagetools inspect python:3.13.12-slim-trixie
# and append @sha256:... to the tag below. .ci/image-check runs the steps below on the same
# Python minor version without Docker.
FROM python:3.13.12-slim-trixie

# PYTHONUNBUFFERED: log lines reach `docker logs` at once. PYTHONDONTWRITEBYTECODE: the
# code directory is read-only for the service user, so no __pycache__ is attempted; the
# service's own bytecode is compiled once, at build (below).
# PYTHONSAFEPATH and PYTHONPATH: Python puts neither the working directory (`python -m`,
# `python -c`) nor the script's directory first on sys.path; the code directory, which the
# service user cannot write, is the only entry ahead of the standard library and the
# installed packages. A module the service user drops in its data directory (an orjson.py,
# say) is never imported in place of the real one.
# HEALTH_PORT: serve /healthz, /readyz and /metrics on 8080 (see HEALTHCHECK below).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONSAFEPATH=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HEALTH_PORT=8080

WORKDIR /app

# Dependencies in their own layer: it is rebuilt only when requirements.txt changes.
# --only-binary: the slim image has no compiler, so a dependency without a wheel must fail
# here, loudly, rather than half-build.
COPY requirements.txt ./
RUN python -m pip install --no-cache-dir --only-binary=:all: -r requirements.txt

# The service user (fixed numeric ids, so Kubernetes' runAsNonRoot can verify it). /app,
# the code, stays owned by root and read-only for it. /data, the service's working
# directory, is the one place it writes: the embedded SQLite database of a deployment
# without PostgreSQL (py_service_<ENVIRONMENT>.sqlite3, and its migration lock file).
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app \
    && install --directory --owner=app --group=app --mode=0700 /data

# The code last, so an edit does not reinstall the dependencies. tests/ is not shipped.
COPY entrypoint.py alembic.ini ./
COPY alembic/ ./alembic/
COPY core/ ./core/
COPY events/ ./events/
COPY schemas/ ./schemas/
COPY actions/ ./actions/
# The service's own modules compiled at build: the code directory is read-only at run time,
# so without it every replica would compile them from source at each start (pip compiled
# site-packages already). checked-hash: a .pyc is used only while its source's hash matches,
# so sources mounted over these (a volume of actions) are never shadowed by stale bytecode,
# whatever the mtimes.
RUN python -m compileall -q --invalidation-mode checked-hash alembic core events schemas actions

USER 10001:10001
WORKDIR /data

EXPOSE 8080

# SIGTERM starts the graceful drain (SHUTDOWN_GRACE_SECONDS, default 25 s); give the
# container a longer stop timeout than that (compose: stop_grace_period 30s).
STOPSIGNAL SIGTERM

# Liveness from /healthz, with the standard library only (slim has no curl). It follows
# HEALTH_PORT if that is overridden; urlopen raises on a 503, which fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTH_PORT', '8080'), timeout=4).close()"]

CMD ["python", "/app/entrypoint.py"]
