# syntax=docker/dockerfile:1
# flokoa-controller image: a virtualenv built from wheels in a builder stage, copied into a
# clean Python base image that runs as a non-root numeric UID. No compilers anywhere: every
# dependency must come as a wheel (--only-binary), and the final stage installs nothing.
#
#   make image                                   # podman, else docker; IMAGE=... to name it
#   podman build -t flokoa-controller:latest .
#
# Build arguments and secrets:
#   BASE_IMAGE  the base of both stages: any Debian-like image with python3 (>= 3.11) and its
#               venv module, e.g. one made locally with debootstrap (tests/packaging does).
#   --secret id=pip-ca,src=FILE   optional CA bundle pip trusts for its downloads (a network
#               with a TLS-intercepting proxy); mounted only while pip runs, never in a layer.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- builder: resolve and install dependencies into /opt/venv ------------------------------
FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python3 -m venv /opt/venv

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so source edits reuse this layer.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
 && pip install --only-binary=:all: --requirement /tmp/requirements.txt

# Then the package itself (pure Python), without touching the dependencies. pip and
# setuptools (which nothing imports at run time) leave the venv afterwards: the runtime
# installs nothing.
COPY README.md ./
COPY flokoa_controller ./flokoa_controller
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && pip install --no-deps . \
 && pip uninstall --yes --quiet setuptools \
 && pip uninstall --yes --quiet pip \
 && python -m compileall -q /opt/venv/lib \
 && flokoa-controller --help >/dev/null

# --- final: the runtime only -----------------------------------------------------------------
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="flokoa-controller" \
      org.opencontainers.image.description="Kubernetes operator for agent.flokoa.ai ModelProvider and Model resources" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=builder /opt/venv /opt/venv

# 65532 is the conventional "nonroot" UID/GID; numeric so runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /tmp

EXPOSE 8080 8081
ENTRYPOINT ["flokoa-controller"]
CMD ["run"]
