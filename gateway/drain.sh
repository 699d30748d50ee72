#!/bin/sh
# Drain the gateway before its pod stops: the Kubernetes preStop hook of the gateway container.
#   gateway-drain --admin-port=9901 --unready-seconds=10 --drain-seconds=20
#
# Envoy closes its listeners at once on SIGTERM, cutting every call in flight. This runs first, through the
# loopback admin interface (it has no authentication, so it is reachable only from inside the pod):
# 1. /healthcheck/fail: /ready answers 503, so the readiness probe and load balancers take the pod out, and
#    Envoy asks every client to reconnect elsewhere (connection: close on HTTP/1.1, GOAWAY on HTTP/2).
# 2. After the unready seconds (for endpoints and load balancers to catch up; new connections are still
#    served meanwhile), /drain_listeners?graceful: the listeners close after Envoy's --drain-time-s.
# 3. Wait until the listeners are closed and no client connection is left, or the drain seconds have
#    passed; then the kubelet sends SIGTERM, and whatever is still open (a quiet watch stream) is cut; its
#    client reconnects to another pod.
# POSIX sh and curl only: the gateway image carries no Python. Prints the client connections still open
# when it ends ("left 0": a clean drain).
set -eu

admin_port=9901
unready_seconds=
drain_seconds=
for argument in "$@"; do
  case "$argument" in
    --admin-port=*) admin_port=${argument#*=} ;;
    --unready-seconds=*) unready_seconds=${argument#*=} ;;
    --drain-seconds=*) drain_seconds=${argument#*=} ;;
    *) echo "gateway-drain: unknown argument $argument" >&2; exit 2 ;;
  esac
done
if [ -z "$unready_seconds" ] || [ -z "$drain_seconds" ]; then
  echo "usage: gateway-drain [--admin-port=N] --unready-seconds=S --drain-seconds=S" >&2
  exit 2
fi
admin="http://127.0.0.1:$admin_port"

# Client connections open on the public listeners' connection managers (gateway/envoy.yaml.tmpl and
# render.py's redirect listener).
active_connections() {
  curl -fsS --max-time 5 "$admin/stats?filter=downstream_cx_active" \
    | sed -n -E 's/^http\.(gateway|http_redirect)\.downstream_cx_active: ([0-9]+)$/\2/p' \
    | awk '{ total += $1 } END { print total + 0 }'
}

# Envoy counts the listeners it closed; all close together once the graceful drain time has passed.
listeners_stopped() {
  stopped=$(curl -fsS --max-time 5 "$admin/stats?filter=listener_stopped" \
    | sed -n -E 's/^listener_manager\.listener_stopped: ([0-9]+)$/\1/p')
  [ "${stopped:-0}" -gt 0 ]
}

curl -fsS --max-time 5 -X POST "$admin/healthcheck/fail" >/dev/null
sleep "$unready_seconds"
curl -fsS --max-time 5 -X POST "$admin/drain_listeners?graceful" >/dev/null
# Whole seconds: the deadline is compared with date +%s.
deadline=$(( $(date +%s) + ${drain_seconds%.*} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if [ "$(active_connections)" -eq 0 ] && listeners_stopped; then
    echo "left 0"
    exit 0
  fi
  sleep 0.5
done
echo "left $(active_connections)"
