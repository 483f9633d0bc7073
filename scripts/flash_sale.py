#!/usr/bin/env python3
"""A flash sale: N pending payments sharing one deadline, with the API under load.

Inserts N pending payments (default 100,000) that all expire at the same millisecond,
starts the server, drives it with `pocket bench` across the deadline, and reports how
long after the deadline the last one was expired and the API's latency meanwhile.
Uses only the standard library; needs a release build.

    python3 scripts/flash_sale.py [N]
"""
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

from local_server import POCKET, call, env, insert_pending, merchant_in_new_data, start, stop

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
ADMIN = "adm_flash_0123456789abcdef"
ENV = env(ADMIN)
LEAD_S = 12  # the deadline, this long after the server is up; the bench runs across it


# Inserted while the server is down; the deadline is set once it is up again.
data, db, m = merchant_in_new_data("pocket-flash-", ENV, ADMIN, "Flash")
now_ms = int(time.time() * 1000)
placeholder = now_ms + 3_600_000
insert_pending(db, (m["id"], "Flash"), N, "f", now_ms, lambda i: placeholder)
deadline_ms = int(time.time() * 1000) + (LEAD_S + 5) * 1000
db.execute("UPDATE payments SET expires_at = ? WHERE expires_at = ?", (deadline_ms, placeholder))
db.commit()
db.close()
print(f"{N:,} pending payments, all due at the same millisecond")

p, url, _ = start(data, ENV)
bench = subprocess.Popen([POCKET, "bench", "--url", url, "--admin-key", ADMIN, "--pid", str(p.pid), "--clients", "64",
                          "--seconds", str(LEAD_S + 15), "--json", os.path.join(data, "bench.json")],
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

# A probe: one payment created every 20 ms from a second before the deadline until the
# burst is over, timed — the API's latency during the burst itself.
probe = []
burst_over = threading.Event()


def probing():
    while time.time() * 1000 < deadline_ms - 1000:
        time.sleep(0.01)
    while not burst_over.is_set():
        t0 = time.monotonic()
        call(url, "POST", "/v1/payments", m["secret_key"], {"currency": "CNY", "amount": 100})
        probe.append((time.monotonic() - t0) * 1000)
        time.sleep(0.02)


prober = threading.Thread(target=probing)
prober.start()

# Watch the pending count from a read connection (WAL: readers never block the writer).
watch = sqlite3.connect(f"file:{os.path.join(data, 'pocket.db')}?mode=ro", uri=True)
last_seen = None
while True:
    left = watch.execute("SELECT COUNT(*) FROM payments WHERE status = 'pending' AND id LIKE 'pay_f%'").fetchone()[0]
    now = int(time.time() * 1000)
    if now >= deadline_ms and left == 0:
        last_seen = now
        break
    if now > deadline_ms + 60_000:
        break
    time.sleep(0.02)
burst_over.set()
prober.join()
out, _ = bench.communicate()
report = json.load(open(os.path.join(data, "bench.json")))
stop(p)
if last_seen is None:
    raise SystemExit(f"{left:,} still pending a minute after the deadline")
print(f"all {N:,} expired {last_seen - deadline_ms} ms after their shared deadline (polled every 20 ms)")
print("\n".join(l for l in out.splitlines() if "payments (" in l or "all requests" in l or "server  " in l))
probe.sort()
pick = lambda q: probe[min(len(probe) - 1, int(q * len(probe)))]
print(f"POST /v1/payments during the burst ({len(probe)} probes, with the bench running): "
      f"p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {probe[-1]:.1f} ms")
lat = report["latency"]
print(f"API during the run (bench across the deadline): p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, p99.9 {lat['p999_ms']} ms")
