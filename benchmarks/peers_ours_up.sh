#!/usr/bin/env bash
# OURS_UP hook for ../shared/bench/peers.sh: brings skylan up between the two
# benchmark namespaces exactly as a user would — a controller (on host A's
# underlay address), `skylan agent join` on both hosts, static overlay
# addresses — and returns once OV_A reaches OV_B through the overlay.
#
#   OURS_UP="$PWD/benchmarks/peers_ours_up.sh" OURS_LAYER=L2 \
#   OURS_CRYPTO=AES-256-GCM sudo -E ../shared/bench/peers.sh ours
#
# SKYLAN_AGENT_WORKERS=N in the environment runs both agents with N worker lanes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SKYLAN_PYTHON:-$ROOT/.venv/bin/python}
D=$PB_CASE_DIR/skylan
mkdir -p "$D"
nsa() { ip netns exec "$PB_NS_A" "$@"; }
nsb() { ip netns exec "$PB_NS_B" "$@"; }

export SKYLAN_ADMIN_TOKEN="skyadm_peers-bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
nsa "$PY" -m skylan controller serve --data-dir "$D/ctl" --listen "$PB_UL_A:8443" \
    >"$D/controller.log" 2>&1 &
echo $! >>"$PB_PIDFILE"
URL="https://$PB_UL_A:8443"
for _ in $(seq 100); do
    nsa "$PY" -c "import httpx; httpx.get('$URL/api/v1/health', verify=False)" 2>/dev/null && break
    sleep 0.2
done
export SKYLAN_URL=$URL SKYLAN_TOKEN=$SKYLAN_ADMIN_TOKEN SKYLAN_CONFIG=$D/cli.json
SKYLAN_FINGERPRINT=$("$PY" -m skylan controller fingerprint --data-dir "$D/ctl")
export SKYLAN_FINGERPRINT
sky() { nsa "$PY" -m skylan "$@"; }

CIDR=$("$PY" -c "import ipaddress; print(ipaddress.ip_interface('$PB_OV_A/$PB_OV_PLEN').network)")
sky net create bench --cidr "$CIDR" >/dev/null
TOKEN=$(sky token create --uses 2 --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['token'])")

for side in a b; do
    ns=$PB_NS_A; [[ $side == b ]] && ns=$PB_NS_B
    ip netns exec "$ns" "$PY" -m skylan agent join "$URL" "$TOKEN" --no-run \
        --state-dir "$D/$side" --hostname "bench-$side" >"$D/join-$side.log" 2>&1
    ip netns exec "$ns" "$PY" -m skylan agent run --state-dir "$D/$side" \
        >"$D/agent-$side.log" 2>&1 &
    echo $! >>"$PB_PIDFILE"
done
sky port attach bench bench-a --ip "$PB_OV_A" >/dev/null
sky port attach bench bench-b --ip "$PB_OV_B" >/dev/null

for _ in $(seq 150); do
    nsa ping -c 1 -W 1 "$PB_OV_B" >/dev/null 2>&1 && exit 0
    sleep 0.2
done
echo "skylan overlay did not come up; see $D" >&2
exit 1
