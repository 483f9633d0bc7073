#!/usr/bin/env bash
# The PostgreSQL rows of BENCHMARKS.md, in one sitting and interleaved round by round:
# pgbench (TPC-B-like, -c 8 -j 2), pocket bench on the SQLite default, on PostgreSQL
# with one node and with three nodes on one database, each directly and through a
# proxy adding 1 ms of round trip (a database on its own host). Each Pocket run on
# PostgreSQL gets a fresh database. Results go to bench-results/postgres/ as JSON.
# ROUNDS (3) and SECONDS_PER_RUN (20) set the sitting's length.
# Needs: PostgreSQL on $POCKET_BENCH_PG (default postgres://postgres@127.0.0.1:5432),
# psql and pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results/postgres
mkdir -p "$out"
cargo build --release -q
pocket=target/release/pocket
seconds=${SECONDS_PER_RUN:-20}
clients=${CLIENTS:-64}
base=${POCKET_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
fresh() {
  psql -X -q -d "$base/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
}
fresh pocket_pgbench
pgbench -i -s 10 -q "$base/pocket_pgbench" >/dev/null 2>&1
for round in $(seq 1 "${ROUNDS:-3}"); do
  echo "== round $round (${seconds} s each)"
  echo -n "pgbench -c 8 -j 2:        "
  pgbench -c 8 -j 2 -T "$seconds" "$base/pocket_pgbench" 2>/dev/null | grep -E "^tps" | tee "$out/pgbench-$round.txt"
  echo "sqlite, 1 node:"
  $pocket bench --spawn --clients "$clients" --seconds "$seconds" --json "$out/sqlite-$round.json" | grep -E "payments \(|all requests"
  for delay in 0 1; do
    for nodes in 1 3; do
      fresh pocket_bench
      echo "postgres, $nodes node(s), ${delay} ms added per round trip:"
      delayed=()
      writers=4
      # A database on its own host: configured as docs/DEPLOY.md says.
      [ "$delay" = 0 ] || { delayed=(--db-delay-ms "$delay"); writers=16; }
      POCKET_WRITE_CONNECTIONS=$writers $pocket bench --spawn --database "$base/pocket_bench" --nodes "$nodes" --clients "$clients" \
        "${delayed[@]}" --seconds "$seconds" --json "$out/postgres-$nodes-delay$delay-$round.json" \
        | grep -E "payments \(|all requests|ledger|round trips"
    done
  done
done
psql -X -q -d "$base/postgres" -c "DROP DATABASE IF EXISTS pocket_bench WITH (FORCE)" -c "DROP DATABASE IF EXISTS pocket_pgbench WITH (FORCE)"
