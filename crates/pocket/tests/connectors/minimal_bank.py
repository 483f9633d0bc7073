"""A bank connector in a few lines of Python, written from docs/CONNECTORS.md alone:
it binds any card, takes every charge and payout at once, and answers status and
statement queries. Usage: python3 minimal_bank.py PORT SECRET"""
import hashlib, hmac, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRET = int(sys.argv[1]), sys.argv[2]
OPERATIONS = {}  # operation_id -> the operation, as the bank keeps it


def sign(method, path, body, t=None):
    t = int(time.time()) if t is None else t
    msg = f"{t}.{method} {path}\n".encode() + body
    return f"t={t},v1=" + hmac.new(SECRET.encode(), msg, hashlib.sha256).hexdigest()


def verify(header, method, path, body):
    if not header:
        return False
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > 300:
        return False
    return hmac.compare_digest(sign(method, path, body, t).split("v1=", 1)[1], parts.get("v1", ""))


class Bank(BaseHTTPRequestHandler):
    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Pocket-Connector-Signature", sign(self.command, self.path, body))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not verify(self.headers.get("Pocket-Connector-Signature"), self.command, self.path, body):
            return self.answer(401, {"error": "bad_signature"})
        req = json.loads(body) if body else {}
        if self.path == "/v1/cards":
            n = req["number"]
            return self.answer(200, {"status": "succeeded", "token": "py_" + n[-4:], "brand": "visa", "last4": n[-4:]})
        if self.path in ("/v1/charges", "/v1/payouts"):
            op = OPERATIONS.setdefault(req["operation_id"], {
                "operation_id": req["operation_id"], "amount": req["amount"], "currency": req["currency"],
                "kind": "charge" if self.path == "/v1/charges" else "payout",
                "status": "succeeded", "decline_code": None, "day": time.strftime("%Y-%m-%d", time.gmtime())})
            return self.answer(200, {"operation_id": op["operation_id"], "status": op["status"], "decline_code": None})
        if self.path.startswith("/v1/operations/"):
            op = OPERATIONS.get(self.path.rsplit("/", 1)[1])
            return self.answer(200, op) if op else self.answer(404, {"error": "unknown_operation"})
        if self.path.startswith("/v1/statements/"):
            day = self.path.rsplit("/", 1)[1]
            return self.answer(200, {"date": day, "lines": [o for o in OPERATIONS.values() if o["day"] == day]})
        self.answer(404, {"error": "unknown_operation"})

    do_GET = do_POST = handle_any

    def log_message(self, *args):
        pass


print(f"minimal bank on {PORT}", flush=True)
ThreadingHTTPServer(("127.0.0.1", PORT), Bank).serve_forever()
