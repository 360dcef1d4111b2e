# syntax=docker/dockerfile:1
# The production image: `docker build -t cadence .`; run one role per container (deploy/cadence):
# web (default), worker-welcome, worker-bulk, worker-events, beat, flower, migrate. compose.yaml wires them
# together.
# Runs as a non-root user on a read-only root filesystem (only /tmp needs to be writable, a tmpfs).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Hash-checked: the lock made by `make lock` (pip-tools); psycopg[binary] needs no compiler.
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.txt
WORKDIR /app
COPY . .
# Static files with hashed names and compressed copies, built once: the running image writes nothing.
# The key only lets the settings load; it signs nothing.
RUN DEBUG=false SECRET_KEY=collectstatic-only-not-a-secret STATIC_ROOT=/app/staticfiles \
    /opt/venv/bin/python manage.py collectstatic --no-input -v 0

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="cadence" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.description="Email preference and communication-cadence service"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEBUG=false \
    STATIC_ROOT=/app/staticfiles \
    LOG_JSON=true \
    PORT=8000
RUN groupadd --system --gid 10001 cadence \
 && useradd --system --uid 10001 --gid cadence --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin cadence
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness of the web role: /healthz answers whenever the process does (deploy/healthcheck.py sends a Host
# that ALLOWED_HOSTS accepts). compose.yaml gives the workers a ping of their own node and turns it off for
# beat, flower and migrate. Readiness is /readyz?role=web|worker|beat|all (docs/operations.md).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["/app/deploy/cadence", "healthcheck"]
ENTRYPOINT ["/app/deploy/cadence"]
CMD ["web"]
