#!/usr/bin/env bash
# A flamegraph of the server under the default bench mix: starts a release server with
# the rate limits off, records it with perf for 8 s in the middle of a 20-s `pocket
# bench` run, and draws docs/flamegraph.svg (frame names without generic parameters;
# frames under 0.6 % left out). Prints where the samples went per thread.
# Needs: perf (Debian's linux-perf) and inferno (`cargo install inferno`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pocket
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export POCKET_ADMIN_KEY=adm_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export POCKET_LOG=warn POCKET_RATE_PER_IP=0 POCKET_RATE_PER_CREDENTIAL=0 \
  POCKET_PIN_PER_IP_PER_MINUTE=0 POCKET_PIN_PER_PHONE_PER_MINUTE=0
port=${PORT:-7311}
target/release/pocket serve --listen "127.0.0.1:$port" --data "$work/data" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do grep -q "listening" "$work/server.log" && break; sleep 0.1; done
(sleep 5; perf record -F 499 -g --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" -- sleep 8 >/dev/null 2>&1) &
target/release/pocket bench --url "http://127.0.0.1:$port" --pid "$server" --clients 64 --seconds 20 |
  grep -E "payments \(|all requests|server  "
wait %2 2>/dev/null || true
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded.txt"
python3 - "$work/folded.txt" "$work/short.txt" <<'EOF'
import collections, re, sys
threads, total = collections.Counter(), 0
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        stack, n = line.rsplit(" ", 1)
        frames = []
        for f in stack.split(";"):
            while True:
                g = re.sub(r"<[^<>]*>", "", f)
                if g == f:
                    break
                f = g
            frames.append(f[:120])
        out.write(";".join(frames) + " " + n)
        threads[frames[0]] += int(n)
        total += int(n)
for t, n in threads.most_common(5):
    print(f"{100 * n / total:5.1f} % of samples on {t}")
EOF
inferno-flamegraph --minwidth 0.6 \
  --title "pocket serve: default mix, 64 clients (perf record -F 499 -g --call-graph dwarf, 8 s)" \
  "$work/short.txt" >docs/flamegraph.svg
echo "wrote docs/flamegraph.svg"
