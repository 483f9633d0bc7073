#!/usr/bin/env python3
"""N pending payments in the store: start-up time, expiry precision and API latency.
Uses only the standard library.

    python3 scripts/million.py [N]      (default N = 1,000,000; needs a release build)

Issue 12 runs it with N = 10,000,000; besides five timed expiries it reports the
sweeper's own expiry-lag quantiles from /metrics after a bench run whose mix expires
payments (`--mix expire=0.2`).
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
POCKET = os.path.join(os.path.dirname(__file__), "..", "target", "release", "pocket")
ADMIN = "adm_million_0123456789abcdef"
ENV = dict(os.environ, POCKET_ADMIN_KEY=ADMIN, POCKET_LOG="warn", POCKET_RATE_PER_IP="0", POCKET_RATE_PER_CREDENTIAL="0",
           POCKET_PIN_PER_IP_PER_MINUTE="0", POCKET_PIN_PER_PHONE_PER_MINUTE="0")


def start(data):
    t0 = time.monotonic()
    p = subprocess.Popen([POCKET, "serve", "--listen", "127.0.0.1:0", "--data", data], env=ENV, stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("Pocket listening on "):
            return p, line.split()[-1], time.monotonic() - t0
    raise SystemExit("server did not start")


def call(url, method, path, key, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def stop(p):
    p.terminate()
    p.wait()


data = tempfile.mkdtemp(prefix="pocket-million-")
p, url, _ = start(data)
m = call(url, "POST", "/v1/admin/merchants", ADMIN, {"name": "Million"})
stop(p)

db = sqlite3.connect(os.path.join(data, "pocket.db"))
now_ms = int(time.time() * 1000)
t0 = time.monotonic()
rows = ((f"pay_m{i:023d}", m["id"], "Million", "pending", 1000, "CNY", "[]", "{}", "small", 300, "none", now_ms, now_ms + 86_400_000 + i, "")
        for i in range(N))
db.executemany("""INSERT INTO payments (id, merchant_id, merchant_name, status, amount, currency, items, metadata,
                  tier, window_seconds, authentication, created_at, expires_at, qr_payload)
                  VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)""", rows)
db.commit()
db.close()
print(f"inserted {N:,} pending payments in {time.monotonic() - t0:.1f} s")

p, url, startup = start(data)
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
