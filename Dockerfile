# syntax=docker/dockerfile:1
# Three images, one target each, all running the `modeltap` command as uid 10001:
#   docker build --target sidecar  -t ghcr.io/modeltap/modeltap-sidecar:0.1.0 .   # modeltap sidecar
#   docker build --target analyzer -t ghcr.io/modeltap/modeltap-analyzer:0.1.0 .  # monitor, baseline, Dask
#   docker build --target demo     -t ghcr.io/modeltap/modeltap-demo:0.1.0 .      # demo-model
# The sidecar image holds only the third-party packages `modeltap sidecar` imports (the package's
# core dependencies: no numpy, pyarrow, scipy or dask; the other commands say which image they
# need); the analyzer image adds the analyzer extra (Dask included, so the Dask scheduler and
# workers run it too); the demo image the demo extra (scikit-learn).
# modeltap itself is built once, as a wheel with the request path compiled by mypyc
# (sidecar/compiled.py), in a builder stage that has the C compiler; each image's virtualenv gets
# its dependencies from the repository's lock (constraints.txt) and then that wheel, in a stage of
# its own, and the final stages get only that virtualenv: no pip, no compiler, no build tools.
# CI builds these targets with podman on a base bootstrapped from Debian packages
# (ci/build-images.sh passes it as PYTHON_IMAGE); the default is the official base, pinned by
# digest. The digest is the one public Dockerfiles pin for this tag; it was not pulled here (no
# registry is reachable from CI): check it with `docker buildx imagetools inspect` when bumping.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# Everything that depends only on pyproject.toml and the lock, so a change to the sources rebuilds
# none of it: the compiler, each image's requirement list, the build virtualenv.
FROM ${PYTHON_IMAGE} AS build-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A C compiler for mypyc, in the build stages only.
# Not pinned: Debian replaces point releases on its mirrors (a pin breaks the build weeks later),
# the base image fixes the release, and mypy's pin fixes the generated C.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt ./
# requirements-<image>.txt: the core dependencies (all the sidecar needs) plus the image's extra.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; [open(f'requirements-{n}.txt', 'w').write(chr(10).join(p['dependencies'] + p['optional-dependencies'].get(n, []))) for n in ('sidecar', 'analyzer', 'demo')]"
# mypyc type-checks the compiled modules against the core dependencies.
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install -c constraints.txt setuptools mypy -r requirements-sidecar.txt

# modeltap itself, as a wheel with the request path compiled, into /wheels.
FROM build-base AS builder
COPY setup.py README.md ./
COPY sidecar/ sidecar/
COPY analyzer/ analyzer/
COPY modeltap/ modeltap/
RUN MODELTAP_COMPILE=1 /opt/build/bin/pip wheel -c constraints.txt \
      --no-build-isolation --no-deps --wheel-dir /wheels .

# One virtualenv per image: its requirements from the lock (cached apart from the sources), then
# the compiled wheel. `pip check` fails the build if the requirements missed one of the wheel's;
# the other check (-P: not the sources in /src) unless every module of sidecar/compiled.py loads
# compiled; setuptools (a build tool, imported by nothing at run
# time) and then pip go last, so the final stages cannot install anything.
# The sidecar's extension modules lose their debug information (uvloop's alone is 12 of its
# 14 MB); nothing in its dependencies is an auditwheel-patched library that strip could break.
FROM build-base AS sidecar-venv
RUN python -m venv /opt/modeltap \
    && /opt/modeltap/bin/pip install -c constraints.txt -r requirements-sidecar.txt \
    && /opt/modeltap/bin/python -m compileall -q /opt/modeltap
COPY --from=builder /wheels /wheels
RUN /opt/modeltap/bin/pip install --no-deps /wheels/modeltap-*.whl \
    && /opt/modeltap/bin/pip check \
    && find /opt/modeltap -name '*.so' ! -path '*.libs/*' -exec strip --strip-debug {} + \
    && /opt/modeltap/bin/python -P -c "from sidecar.compiled import MODULES, compiled_modules; assert compiled_modules() == list(MODULES)" \
    && /opt/modeltap/bin/python -P -c "from modeltap.core import jsonesc; assert jsonesc.compiled, 'no C escaper'" \
    && /opt/modeltap/bin/python -m compileall -q /opt/modeltap/bin "$(/opt/modeltap/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && /opt/modeltap/bin/pip uninstall -y setuptools \
    && /opt/modeltap/bin/pip uninstall -y pip

FROM build-base AS analyzer-venv
RUN python -m venv /opt/modeltap \
    && /opt/modeltap/bin/pip install -c constraints.txt -r requirements-analyzer.txt \
    && /opt/modeltap/bin/python -m compileall -q /opt/modeltap
COPY --from=builder /wheels /wheels
RUN /opt/modeltap/bin/pip install --no-deps /wheels/modeltap-*.whl \
    && /opt/modeltap/bin/pip check \
    && /opt/modeltap/bin/python -P -c "from sidecar.compiled import MODULES, compiled_modules; assert compiled_modules() == list(MODULES)" \
    && /opt/modeltap/bin/python -P -c "from analyzer import jsonrows; assert jsonrows.compiled, 'no C JSON row reader'" \
    && /opt/modeltap/bin/python -P -c "from analyzer import numparse; assert numparse.compiled, 'no C text-to-number pass'" \
    && /opt/modeltap/bin/python -m compileall -q /opt/modeltap/bin "$(/opt/modeltap/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && /opt/modeltap/bin/pip uninstall -y setuptools \
    && /opt/modeltap/bin/pip uninstall -y pip

FROM build-base AS demo-venv
RUN python -m venv /opt/modeltap \
    && /opt/modeltap/bin/pip install -c constraints.txt -r requirements-demo.txt \
    && /opt/modeltap/bin/python -m compileall -q /opt/modeltap
COPY --from=builder /wheels /wheels
RUN /opt/modeltap/bin/pip install --no-deps /wheels/modeltap-*.whl \
    && /opt/modeltap/bin/pip check \
    && /opt/modeltap/bin/python -m compileall -q /opt/modeltap/bin "$(/opt/modeltap/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && /opt/modeltap/bin/pip uninstall -y setuptools \
    && /opt/modeltap/bin/pip uninstall -y pip

# What every image shares: the user, the writable directories, the labels. The source revision
# comes last in each image (after its virtualenv), so a new commit that leaves the virtualenv as
# it was rebuilds only that layer. MODELTAP_BUILD_REVISION is the revision label of
# modeltap_{sidecar,analyzer}_build_info.
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.description="Model monitoring for Kubernetes: a capturing sidecar proxy and a drift analyzer" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/modeltap/modeltap"
ENV PATH=/opt/modeltap/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
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

FROM runtime AS analyzer
COPY --from=analyzer-venv /opt/modeltap /opt/modeltap
# Arrow's jemalloc pool hands freed memory back to the system; with the default pool a run's
# peak RSS stayed ~50 MiB higher (bench/RESULTS.md, monitoring memory). Override to change it.
ENV ARROW_DEFAULT_MEMORY_POOL=jemalloc
# Two glibc malloc arenas, not eight per core: the worker threads that parse objects otherwise
# each keep an arena's freed memory, and a long-running monitor's RSS after each run grew
# 434 -> 655 MiB over 12 runs instead of 338 -> 463 (bench/RESULTS.md, steady state).
ENV MALLOC_ARENA_MAX=2
CMD ["monitor", "--config", "/etc/modeltap/monitor.toml"]
ARG REVISION=unknown
LABEL org.opencontainers.image.title="modeltap-analyzer" \
      org.opencontainers.image.revision="${REVISION}"
ENV MODELTAP_BUILD_REVISION=${REVISION}

FROM runtime AS demo
COPY --from=demo-venv /opt/modeltap /opt/modeltap
CMD ["demo-model"]
ARG REVISION=unknown
LABEL org.opencontainers.image.title="modeltap-demo" \
      org.opencontainers.image.revision="${REVISION}"
ENV MODELTAP_BUILD_REVISION=${REVISION}

# Last, so a build without --target gives the sidecar.
FROM runtime AS sidecar
COPY --from=sidecar-venv /opt/modeltap /opt/modeltap
CMD ["sidecar"]
ARG REVISION=unknown
LABEL org.opencontainers.image.title="modeltap-sidecar" \
      org.opencontainers.image.revision="${REVISION}"
ENV MODELTAP_BUILD_REVISION=${REVISION}
