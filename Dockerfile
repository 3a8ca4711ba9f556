# syntax=docker/dockerfile:1
#
# Tollgate's image (docs/deployment.md): the permission-scoped binary built by
# `deno task compile`, with the Python executor and the Python policies beside it, on
# distroless Python (Debian 12, Python 3.11), running as a non-root user.
#
#   docker build -t tollgate:0.1.0 .
#
# The binary may use only the paths it was compiled for. The ARGs below are passed both to
# `deno task compile` and to the image's environment, so changing one keeps them in step:
#   docker build --build-arg RUNTIME_DIR=/run/tollgate --build-arg ADMIN_PORT=9102 -t tollgate .

# Deno is pinned (see docs/architecture.md: 2.9.4-2.9.6 crash when an http2 peer goes away).
ARG DENO_VERSION=2.9.3
# Directory of the ext_proc socket (shared with Envoy) and the Python executor's socket.
ARG RUNTIME_DIR=/var/run/tollgate
# The admin endpoint (/healthz /readyz /metrics): reachable from outside the container so
# that the kubelet's probes and Prometheus can reach it.
ARG ADMIN_HOST=0.0.0.0
ARG ADMIN_PORT=9002

# ── 1. The binary ──────────────────────────────────────────────────────────────────────
# Deno comes from its npm package, as everywhere in this repository.
FROM node:22-bookworm-slim AS build
ARG DENO_VERSION
ARG RUNTIME_DIR
ARG ADMIN_HOST
ARG ADMIN_PORT
RUN npm install --global --no-fund --no-audit "deno@${DENO_VERSION}" \
 && deno --version
WORKDIR /src
# Dependencies first: this layer is reused while deno.json and deno.lock are unchanged.
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY . .
# `deno task compile` regenerates src/gen/ from build.yaml (fetching remote policy sources),
# then writes dist/tollgate, dist/tollgate.yaml and dist/python-home/.
RUN deno task compile \
      --runtime-dir "${RUNTIME_DIR}" \
      --config-dir /etc/tollgate \
      --admin "${ADMIN_HOST}:${ADMIN_PORT}" \
      --python /usr/bin/python3 \
      --python-home /opt/tollgate \
 && mkdir -p /out/run

# ── 2. The executor's Python packages ──────────────────────────────────────────────────
# The same Python minor version as the final image (Debian 12's 3.11), so compiled
# extensions (protobuf) match its ABI.
FROM python:3.11-slim-bookworm AS python
COPY --from=build /src/dist/python-home/python/requirements.txt /requirements/executor.txt
COPY --from=build /src/dist/python-home/src/gen/python/requirements.txt /requirements/policies.txt
RUN python -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
      --target /opt/site-packages \
      -r /requirements/executor.txt \
      -r /requirements/policies.txt
COPY --from=build /src/dist/python-home /opt/tollgate
# The executor runs with PYTHONDONTWRITEBYTECODE, so byte-code is compiled here, once.
RUN python -m compileall -q --invalidation-mode checked-hash /opt/tollgate

# ── 3. The image ───────────────────────────────────────────────────────────────────────
FROM gcr.io/distroless/python3-debian12:nonroot
ARG RUNTIME_DIR
ARG ADMIN_PORT
LABEL org.opencontainers.image.title="tollgate" \
      org.opencontainers.image.description="Policy engine for the Envoy proxy (ext_proc)" \
      org.opencontainers.image.licenses="Apache-2.0"
# Debian's Python puts /usr/local/lib/python3.11/dist-packages on sys.path by itself; the
# engine sets the executor's PYTHONPATH (python/ and src/gen/python/ under python.home) and
# does not pass an inherited one on.
COPY --from=python /opt/site-packages /usr/local/lib/python3.11/dist-packages
COPY --from=python /opt/tollgate /opt/tollgate
COPY --from=build /src/dist/tollgate /usr/local/bin/tollgate
# A default config for this layout (the embedded default's sample routes); mount yours over
# /etc/tollgate (e.g. a Kubernetes ConfigMap). Its directory is watched for hot reload.
COPY --from=build /src/dist/tollgate.yaml /etc/tollgate/tollgate.yaml
# The sockets' directory, writable by the non-root user (in Kubernetes an emptyDir shared
# with Envoy is mounted over it).
COPY --from=build --chown=65532:65532 /out/run ${RUNTIME_DIR}
ENV TOLLGATE_PYTHON_HOME=/opt/tollgate \
    TOLLGATE_PYTHON=/usr/bin/python3 \
    TOLLGATE_SOCKET=${RUNTIME_DIR}/extproc.sock \
    TOLLGATE_PYTHON_SOCKET=${RUNTIME_DIR}/python.sock \
    TOLLGATE_HEALTHCHECK_URL=http://127.0.0.1:${ADMIN_PORT}/healthz
USER 65532:65532
EXPOSE ${ADMIN_PORT}
# Distroless has no shell or curl: the image's Python asks the admin endpoint.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/bin/python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['TOLLGATE_HEALTHCHECK_URL'], timeout=2)"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve", "--config", "/etc/tollgate/tollgate.yaml"]
