# syntax=docker/dockerfile:1.7
# The aiorch image: every gRPC service (`aiorch serve auth|projects|jobs`), the CPU workers
# (`aiorch worker --types tts`), and the admin commands (`aiorch migrate`, `aiorch create-user`, ...).
# Build from the repository root:  docker build -f deploy/images/aiorch.Dockerfile -t ghcr.io/aiorch/aiorch:0.1.0 .
# (deploy/images/aiorch.Dockerfile.dockerignore keeps .venv, .state, gen and build out of the context.)

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: compilers, the wheels, the generated gRPC stubs and descriptor set -------------------
FROM ${PYTHON_IMAGE} AS build
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
 && pip install '.[s3]' && pip uninstall -y aiorch
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

# ---- final: runtime libraries only, non-root ---------------------------------------------------------
FROM ${PYTHON_IMAGE}
# Apertium and its English-Spanish pair: dubbing's translation (Debian packages, as in the Makefile).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apertium apertium-eng-spa \
 && rm -rf /var/lib/apt/lists/* \
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
    HOME=/home/aiorch
USER 10001:10001
WORKDIR /home/aiorch
EXPOSE 50051 50052 50053 9464
ENTRYPOINT ["aiorch"]
CMD ["--help"]
