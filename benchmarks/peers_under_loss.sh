#!/usr/bin/env bash
# Runs ../shared/bench/peers.sh with LOSS_PCT % (default 0.5) of the underlay's
# datagrams lost each way, for every case alike (skylan included through
# OURS_UP). The kernel has no sch_netem here, so the loss is nftables'
# `numgen random` on both ends of the benchmark's veth (netdev ingress hooks), and
# segmentation offloads are turned off on both ends so that GSO packets are cut
# into datagrams before they cross: a lossy internet path loses single datagrams,
# not whole 64 KB GSO packets. GRO must be off on the receiving end too (it would
# merge the datagrams again before the ingress hook sees them), which costs skylan
# (it relies on UDP GRO on a real NIC) more than the peers (which do not): the
# comparison is conservative. skylan's own benchmarks/throughput.py --loss drops in
# a middle hop instead (the lab's bridge), with GRO on at the hosts.
#
#   LOSS_PCT=0.5 OURS_UP=$PWD/benchmarks/peers_ours_up.sh OURS_LAYER=L2 \
#       OURS_CRYPTO=AES-256-GCM sudo -E benchmarks/peers_under_loss.sh [case ...]
#
# Results go to artifacts/peers-loss-<pct>.md / .jsonl unless OUT_MD / OUT_JSONL
# say otherwise. The watcher that installs the loss in each case's fresh
# namespaces is killed on exit.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_SH:-$ROOT/../shared/bench/peers.sh}
LOSS_PCT=${LOSS_PCT:-0.5}
PREFIX=${PB_PREFIX:-pb}
NS_A=$PREFIX-a NS_B=$PREFIX-b DEV_A=$PREFIX-va DEV_B=$PREFIX-vb
PER_100K=$(awk -v p="$LOSS_PCT" 'BEGIN { printf "%d", p * 1000 + 0.5 }')
OFFLOADS=(tso off tx-udp-segmentation off tx-udp_tnl-segmentation off
          tx-udp_tnl-csum-segmentation off gro off)

# lose_on NS DEV: drop datagrams arriving on DEV. Ingress hooks only: an egress
# hook runs before the kernel segments a GSO packet (and GRO before an ingress
# hook), so either would drop 64 KB at once.
lose_on() {
    ip netns exec "$1" nft -f - <<NFT
table netdev bench_loss {
    chain in {
        type filter hook ingress device "$2" priority 0
        numgen random mod 100000 < $PER_100K counter drop
    }
}
NFT
}

impair_each_case() {
    while sleep 0.05; do
        ip -n "$NS_B" link show "$DEV_B" >/dev/null 2>&1 || continue
        ip netns exec "$NS_A" nft list table netdev bench_loss >/dev/null 2>&1 && continue
        ip netns exec "$NS_A" ethtool -K "$DEV_A" "${OFFLOADS[@]}" 2>/dev/null
        ip netns exec "$NS_B" ethtool -K "$DEV_B" "${OFFLOADS[@]}" 2>/dev/null
        lose_on "$NS_B" "$DEV_B" && lose_on "$NS_A" "$DEV_A" || continue
        echo "[loss] $LOSS_PCT % each way between $DEV_A and $DEV_B" >&2
    done
}

mkdir -p "$ROOT/artifacts"
impair_each_case &
WATCHER=$!
trap 'kill "$WATCHER" 2>/dev/null; wait "$WATCHER" 2>/dev/null' EXIT
OUT_MD=${OUT_MD:-$ROOT/artifacts/peers-loss-$LOSS_PCT.md} \
OUT_JSONL=${OUT_JSONL:-$ROOT/artifacts/peers-loss-$LOSS_PCT.jsonl} \
    "$PEERS" "$@"
