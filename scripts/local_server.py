"""What the scripts that drive a local release build share: the environment (limits
off, so the load generator measures the server and not its budgets), starting and
stopping `pocket serve`, calling the API, and inserting pending payments straight into
a stopped server's SQLite file. Standard library only."""
import json
import os
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

POCKET = os.path.join(os.path.dirname(__file__), "..", "target", "release", "pocket")


def env(admin_key):
    return dict(os.environ, POCKET_ADMIN_KEY=admin_key, POCKET_LOG="warn", POCKET_RATE_PER_IP="0",
                POCKET_RATE_PER_CREDENTIAL="0", POCKET_PIN_PER_IP_PER_MINUTE="0", POCKET_PIN_PER_PHONE_PER_MINUTE="0")


def start(data, environment):
    """Starts a server on a free port; returns (process, url, seconds to listening)."""
    t0 = time.monotonic()
    p = subprocess.Popen([POCKET, "serve", "--listen", "127.0.0.1:0", "--data", data], env=environment,
                         stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("Pocket listening on "):
            return p, line.split()[-1], time.monotonic() - t0
    raise SystemExit("server did not start")


def stop(p):
    p.terminate()
    p.wait()


def merchant_in_new_data(prefix, environment, admin_key, name):
    """A new data directory holding one merchant, with the server stopped again (so that
    rows can be inserted straight into its file); returns (data directory, database
    connection, merchant)."""
    data = tempfile.mkdtemp(prefix=prefix)
    p, url, _ = start(data, environment)
    merchant = call(url, "POST", "/v1/admin/merchants", admin_key, {"name": name})
    stop(p)
    return data, sqlite3.connect(os.path.join(data, "pocket.db")), merchant


def call(url, method, path, key, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def insert_pending(db, merchant, n, tag, created_ms, expires_ms):
    """n pending 10.00 CNY payments of `merchant` (id, name); payment i expires at
    expires_ms(i). Ids are pay_<tag><i>, so a script can tell its rows apart."""
    merchant_id, name = merchant
    rows = ((f"pay_{tag}{i:023d}", merchant_id, name, "pending", 1000, "CNY", "[]", "{}", "small", 300, "none",
             created_ms, expires_ms(i), "") for i in range(n))
    db.executemany("""INSERT INTO payments (id, merchant_id, merchant_name, status, amount, currency, items, metadata,
                      tier, window_seconds, authentication, created_at, expires_at, qr_payload)
                      VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)""", rows)
