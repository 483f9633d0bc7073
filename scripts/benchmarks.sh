#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: builds release, then runs pocket bench (clients sweep,
# 3 default-mix runs, PIN tier, a 5-minute soak) and pgbench in the same sitting.
# Results go to bench-results/ as JSON; scripts/chart.py draws the chart.
# Needs: a local PostgreSQL for the pgbench comparison (PGHOST/PGUSER/PGDATABASE).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results
mkdir -p "$out"
cargo build --release -q
pocket=target/release/pocket
seconds=${SECONDS_PER_RUN:-20}

echo "== clients sweep (${seconds} s each)"
for c in 1 4 16 64 256; do
  $pocket bench --spawn --clients "$c" --seconds "$seconds" --json "$out/clients-$c.json" | grep -E "payments \(|all requests"
done

echo "== default mix, 64 clients, 3 runs"
for i in 1 2 3; do
  $pocket bench --spawn --clients 64 --seconds "$seconds" --json "$out/default-$i.json" | grep -E "payments \(|all requests|peak"
done

echo "== mixed workload"
$pocket bench --spawn --clients 64 --seconds "$seconds" \
  --mix refund=0.05,decline=0.02,expire=0.01,insufficient=0.02,retry=0.05 --json "$out/mixed.json" | grep -E "payments \(|all requests|errors"

echo "== pin tier only"
$pocket bench --spawn --clients 64 --seconds "$seconds" --mix pin=1.0 --json "$out/pin.json" | grep -E "payments \(|all requests"

echo "== pgbench tpcb-like, same sitting"
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres} PGDATABASE=${PGDATABASE:-test}
pgbench -i -s 10 -q >/dev/null 2>&1
for i in 1 2 3; do
  pgbench -c 8 -j 2 -T "$seconds" 2>/dev/null | grep -E "^tps" | tee "$out/pgbench-$i.txt"
done

if [ "${SOAK:-1}" = 1 ]; then
  echo "== 5-minute soak, memory"
  $pocket bench --spawn --clients 64 --seconds 300 --json "$out/soak.json" | grep -E "payments \(|peak"
fi
