# syntax=docker/dockerfile:1
# flokoa-controller image: a virtualenv built from wheels in a builder stage, copied into a
# clean slim Python image that runs as a non-root numeric UID. No compilers anywhere: every
# dependency must come as a wheel (--only-binary), and the final stage installs nothing.
#
#   docker build -t flokoa-controller:latest .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: resolve and install dependencies into /opt/venv ------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so source edits reuse this layer.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
 && pip install --only-binary=:all: --requirement /tmp/requirements.txt

# Then the package itself (pure Python), without touching the dependencies.
COPY README.md ./
COPY flokoa_controller ./flokoa_controller
RUN pip install --no-deps . \
 && python -m compileall -q /opt/venv/lib \
 && flokoa-controller --help >/dev/null

# --- final: the runtime only -----------------------------------------------------------------
FROM ${PYTHON_IMAGE}

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
