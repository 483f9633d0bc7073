#!/usr/bin/env python3
"""How much memory a bank's oversized answers cost Pocket: a connector that binds cards
and takes charges as `pending` (signed, protocol v2), then answers every status query
with MEBIBYTES MiB of body, streamed. Pocket's resident memory is sampled while it
polls. Before issue 21 the answers were read whole (three polls of 700 MiB: 32 MiB →
1,810 MiB); now a cap of 64 KiB stops each read.

    python3 scripts/oversized_answers.py [MEBIBYTES] [SECONDS]   (default 700 MiB, 20 s)

Needs a built `pocket` (POCKET_BIN, default target/release/pocket).
"""
import hashlib, hmac, json, os, re, socket, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 700
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
SECRET = b"oversized-answers-secret"
POCKET = os.environ.get("POCKET_BIN", "target/release/pocket")
ADMIN = "adm_oversized_0123456789abcdef"
polls = 0


def mac(message):
    return hmac.new(SECRET, message, hashlib.sha256).hexdigest()


class Bank(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global polls
        polls += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(MIB):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # Pocket stopped reading: what it should do.

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        parts = dict(p.split("=", 1) for p in self.headers["Pocket-Connector-Signature"].split(","))
        req = json.loads(body)
        if self.path == "/v1/cards":
            answer = {"operation_id": req["operation_id"], "status": "succeeded", "token": "tok_big"}
        else:
            answer = {"operation_id": req["operation_id"], "kind": "charge", "amount": req["amount"],
                      "currency": req["currency"], "status": "pending", "decline_code": None}
        out = json.dumps(answer).encode()
        t = int(time.time())
        digest = hashlib.sha256(body).hexdigest()
        signature = mac(f"v2.{t}.{parts['n']}.200.POST {self.path}.{digest}\n".encode() + out)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Pocket-Connector-Signature", f"t={t},v2={signature}")
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, token, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers=headers)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) // 1024


def main():
    bank_port, port = free_port(), free_port()
    threading.Thread(target=ThreadingHTTPServer(("127.0.0.1", bank_port), Bank).serve_forever, daemon=True).start()
    data = tempfile.mkdtemp(prefix="pocket-oversized-")
    config = os.path.join(data, "pocket.toml")
    with open(config, "w") as f:
        f.write(f'[[connectors]]\nname = "big"\nkind = "http"\ncurrencies = ["CNY"]\n'
                f'url = "http://127.0.0.1:{bank_port}"\nsecret = "{SECRET.decode()}"\n')
    env = dict(os.environ, POCKET_ADMIN_KEY=ADMIN)
    server = subprocess.Popen([POCKET, "serve", "--listen", f"127.0.0.1:{port}", "--data", data + "/d",
                               "--config", config], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        s = call(base, "POST", "/v1/wallet/signup", "", {"phone": "+8613800009901", "name": "Big", "pin": "123456"})
        token = s["token"]
        card = call(base, "POST", "/v1/wallet/cards", token, {"number": "4242424242424242", "exp_month": 12,
                                                              "exp_year": 2031, "cvc": "123", "pin": "123456"})
        start = rss_mib(server.pid)
        for _ in range(3):
            call(base, "POST", "/v1/wallet/topups", token, {"amount": 10_000, "currency": "CNY",
                                                            "card": card["id"], "pin": "123456"})
        peak = start
        until = time.time() + SECONDS
        while time.time() < until:
            peak = max(peak, rss_mib(server.pid))
            time.sleep(0.05)
        print(f"{polls} status answers of {MIB} MiB each; Pocket's RSS: {start} MiB before, peak {peak} MiB")
    finally:
        server.terminate()
        server.wait()


main()
