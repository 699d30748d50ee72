#!/bin/sh
# Entry point of the gateway image: render Envoy's configuration from AIORCH_GATEWAY_* variables, then
# replace this shell with Envoy (so SIGTERM reaches Envoy). Extra arguments go to Envoy.
set -eu
config="${AIORCH_ENVOY_CONFIG:-/etc/envoy/envoy.yaml}"
python -m gateway.render --out "$config"
exec envoy -c "$config" --disable-hot-restart --log-level "${AIORCH_ENVOY_LOG_LEVEL:-info}" "$@"
