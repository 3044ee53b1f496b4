# syntax=docker/dockerfile:1
# One image for every modeltap process: `modeltap sidecar`, `modeltap monitor`, `modeltap baseline`.
#   docker build -t modeltap:0.1.0 .
#   docker build -t modeltap-demo:0.1.0 --build-arg EXTRAS=analyzer,demo .   # + the demo model
# Dependencies are installed from the repository's lock (constraints.txt) into a virtualenv in a
# builder stage; the final stage gets only that virtualenv, no pip cache and no build tools.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG EXTRAS=analyzer
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A C compiler for mypyc, in this stage only: the request path (sidecar/compiled.py) is compiled.
# Not pinned: Debian replaces point releases on its mirrors (a pin breaks the build weeks later),
# the base image fixes the release, and mypy's pin fixes the generated C.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/modeltap
WORKDIR /src
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY sidecar/ sidecar/
COPY analyzer/ analyzer/
COPY modeltap/ modeltap/
# Dependencies first (mypyc type-checks against them), then modeltap itself compiled, then the
# build-only tools out of the virtualenv. The check (-P: not the sources in /src) fails the build
# unless every module of sidecar/compiled.py loads compiled.
RUN /opt/modeltap/bin/pip install -c constraints.txt setuptools mypy ".[${EXTRAS}]" \
    && MODELTAP_COMPILE=1 /opt/modeltap/bin/pip install -c constraints.txt \
         --no-build-isolation --no-deps --force-reinstall . \
    && /opt/modeltap/bin/pip uninstall -y mypy mypy_extensions librt ast_serialize pathspec \
    && /opt/modeltap/bin/python -P -c "from sidecar.compiled import MODULES, compiled_modules; assert compiled_modules() == list(MODULES)" \
    && /opt/modeltap/bin/python -m compileall -q /opt/modeltap \
    && /opt/modeltap/bin/pip uninstall -y pip

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="modeltap" \
      org.opencontainers.image.description="Model monitoring for Kubernetes: a capturing sidecar proxy and a drift analyzer" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/modeltap/modeltap"
ENV PATH=/opt/modeltap/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/modeltap /opt/modeltap
# The spool and the local capture store are volumes in Kubernetes; these directories make the
# defaults work under `docker run` too. uid/gid 10001 owns nothing else in the image.
RUN groupadd --system --gid 10001 modeltap \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin modeltap \
    && mkdir -p /var/lib/modeltap/spool /var/lib/modeltap/captures \
    && chown -R 10001:10001 /var/lib/modeltap
USER 10001:10001
WORKDIR /var/lib/modeltap
# 8080 sidecar proxy, 9090 sidecar admin (/metrics /healthz /readyz), 9091 analyzer /metrics.
EXPOSE 8080 9090 9091
ENTRYPOINT ["modeltap"]
CMD ["sidecar"]
