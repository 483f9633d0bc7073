#!/usr/bin/env python3
"""N pending payments in the store: start-up time, expiry precision and API latency.
Uses only the standard library.

    python3 scripts/million.py [N]      (default N = 1,000,000; needs a release build)

Issue 12 runs it with N = 10,000,000; besides five timed expiries it reports the
sweeper's own expiry-lag quantiles from /metrics after a bench run whose mix expires
payments (`--mix expire=0.2`).
"""
import os
import subprocess
import sys
import time
import urllib.request

from local_server import POCKET, call, env, insert_pending, merchant_in_new_data, start, stop

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ADMIN = "adm_million_0123456789abcdef"
ENV = env(ADMIN)


data, db, m = merchant_in_new_data("pocket-million-", ENV, ADMIN, "Million")
now_ms = int(time.time() * 1000)
t0 = time.monotonic()
insert_pending(db, (m["id"], "Million"), N, "m", now_ms, lambda i: now_ms + 86_400_000 + i)
db.commit()
db.close()
print(f"inserted {N:,} pending payments in {time.monotonic() - t0:.1f} s")

p, url, startup = start(data, ENV)
print(f"start-up with {N:,} payments in the store: {startup * 1000:.0f} ms (spawn to listening)")

# A payment due in 1 s expires by itself within a second of its deadline.
lags = []
for _ in range(5):
    pay = call(url, "POST", "/v1/payments", m["secret_key"], {"currency": "CNY", "amount": 100, "expires_in": 1})
    done = call(url, "GET", f"/v1/payments/{pay['id']}?wait=5", m["secret_key"])
    assert done["status"] == "expired", done["status"]
    to_ms = lambda s: time.mktime(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(s[20:23])
    lags.append(to_ms(done["completed_at"]) - to_ms(done["expires_at"]))
print(f"expiry after the deadline with {N:,} pending: {', '.join(f'{l:.0f} ms' for l in lags)}")

out = subprocess.run([POCKET, "bench", "--url", url, "--admin-key", ADMIN, "--pid", str(p.pid), "--seconds", "15",
                      "--mix", "expire=0.2", "--json", "bench-results/million.json"],
                     env=ENV, capture_output=True, text=True)
print("\n".join(l for l in out.stdout.splitlines() if "payments (" in l or "all requests" in l or "peak" in l))
time.sleep(2)  # the bench's last expiries land
req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
with urllib.request.urlopen(req) as r:
    metrics = r.read().decode()
lag = {l.split('quantile="')[1].split('"')[0]: float(l.split()[-1]) * 1000
       for l in metrics.splitlines() if l.startswith("pocket_expiry_lag_seconds{quantile=")}
count = next((l.split()[-1] for l in metrics.splitlines() if l.startswith("pocket_expiry_lag_seconds_count")), "0")
print(f"sweeper expiry lag over {count} rounds: p50 {lag.get('0.5', 0):.1f} ms, p99 {lag.get('0.99', 0):.1f} ms, max {lag.get('1', 0):.1f} ms")
stop(p)
