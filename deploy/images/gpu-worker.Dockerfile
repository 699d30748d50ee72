# syntax=docker/dockerfile:1.7
# The GPU worker image: `aiorch worker --types stt` etc. on a CUDA 12 + cuDNN 9 runtime (what the
# CTranslate2 wheels behind faster-whisper load). Same code and entry point as the aiorch image.
# Build from the repository root:
#   docker build -f deploy/images/gpu-worker.Dockerfile -t ghcr.io/aiorch/aiorch-gpu-worker:0.1.0 .

ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---- build: the same base (same Python at the same path), plus compilers ----------------------------
FROM ${CUDA_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
RUN mkdir -p services gateway && touch services/__init__.py gateway/__init__.py \
 && pip install '.[s3]' && pip uninstall -y aiorch
RUN pip install grpcio-tools==1.85.1 mypy-protobuf==5.1.0
COPY protos ./protos
COPY tools ./tools
RUN python tools/gen_protos.py --out /opt/aiorch/gen --descriptor /opt/aiorch/descriptor.pb \
 && pip uninstall -y grpcio-tools mypy-protobuf
# The code itself is installed in place (editable) from /opt/aiorch/app, so the files a wheel would
# leave out (Alembic's script.py.mako, gateway/envoy.yaml.tmpl) are there too; the final stage copies
# /opt/aiorch to the same path. Byte-compiled here because the root filesystem is read-only in pods.
COPY pyproject.toml README.md /opt/aiorch/app/
COPY services /opt/aiorch/app/services
COPY gateway /opt/aiorch/app/gateway
RUN pip install --no-deps -e /opt/aiorch/app \
 && echo /opt/aiorch/gen > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/aiorch-gen.pth" \
 && python -m compileall -q /opt/aiorch/app /opt/aiorch/gen \
 && aiorch --help >/dev/null

# ---- final: CUDA runtime, Python without headers or compilers, non-root -----------------------------
FROM ${CUDA_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 apertium apertium-eng-spa \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 aiorch \
 && useradd --system --uid 10001 --gid aiorch --home-dir /home/aiorch --create-home aiorch \
 && mkdir -p /var/lib/aiorch/blobs /etc/aiorch/keys \
 && chown aiorch:aiorch /var/lib/aiorch/blobs
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/aiorch /opt/aiorch
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    HOME=/home/aiorch \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /home/aiorch
EXPOSE 9464
ENTRYPOINT ["aiorch"]
CMD ["worker"]
