# syntax=docker/dockerfile:1
# One image for the operator and its workers (generator, verifier server, dataset builder):
# the entrypoint is `gymops`, the subcommand picks the role. Build:
#   docker build -t ghcr.io/gymops/gym-operator:0.1.0 .
# The embedded model (extra "local") is for laptops and is not part of this image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install the package and its pinned dependencies into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/gymops \
    && /opt/gymops/bin/python -m pip install --quiet --upgrade "pip>=25"
WORKDIR /src
# Dependencies first (a layer that editing the code does not invalidate), then the package,
# whose own dependencies from pyproject.toml are resolved under the same constraints.
COPY constraints.txt requirements.txt ./
RUN /opt/gymops/bin/python -m pip install --quiet -c constraints.txt -r requirements.txt
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/gymops/bin/python -m pip install --quiet -c constraints.txt . \
    && /opt/gymops/bin/python -m pip check \
    && /opt/gymops/bin/python -m compileall -q /opt/gymops

# ---- runtime: the virtualenv only, run as a numeric non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="gym-operator" \
      org.opencontainers.image.description="Kubernetes operator for RL rollout generation, verification and training datasets" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/gymops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/gymops /opt/gymops
# 65532: the conventional "nonroot" UID; Kubernetes can verify runAsNonRoot only for a numeric
# USER. The chart and the worker pods the operator creates run with the same UID and a
# read-only root filesystem; /tmp is an emptyDir there.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["gymops"]
CMD ["--help"]
