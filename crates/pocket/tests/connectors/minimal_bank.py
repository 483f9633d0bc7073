"""A bank connector in a few lines of Python, written from docs/CONNECTORS.md (protocol
v2) alone: it binds any card, takes every charge and payout at once, and answers status
and statement queries. Usage: python3 minimal_bank.py PORT SECRET"""
import hashlib, hmac, json, re, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRET = int(sys.argv[1]), sys.argv[2].encode()
OPERATIONS = {}  # operation_id -> the operation, as the bank keeps it


def mac(message: bytes) -> str:
    return hmac.new(SECRET, message, hashlib.sha256).hexdigest()


def verify_request(header, method, path, body):
    """The request's nonce if its signature is right and fresh, else None."""
    parts = dict(p.strip().split("=", 1) for p in (header or "").split(",") if "=" in p)
    try:
        t, nonce = int(parts["t"]), parts["n"]
    except (KeyError, ValueError):
        return None
    if abs(time.time() - t) > 300 or not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", nonce):
        return None
    expected = mac(f"v2.{t}.{nonce}.{method} {path}\n".encode() + body)
    return nonce if hmac.compare_digest(expected, parts.get("v2", "")) else None


def sign_response(nonce, status, method, path, request_body, body):
    t = int(time.time())
    digest = hashlib.sha256(request_body).hexdigest()
    return f"t={t},v2=" + mac(f"v2.{t}.{nonce}.{status}.{method} {path}.{digest}\n".encode() + body)


class Bank(BaseHTTPRequestHandler):
    def answer(self, status, obj, nonce=None, request_body=b""):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if nonce:
            self.send_header("Pocket-Connector-Signature",
                             sign_response(nonce, status, self.command, self.path, request_body, body))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 65536))
        nonce = verify_request(self.headers.get("Pocket-Connector-Signature"), self.command, self.path, body)
        if nonce is None:
            return self.answer(401, {"error": "bad_signature"})
        reply = lambda status, obj: self.answer(status, obj, nonce, body)
        req = json.loads(body) if body else {}
        if self.path == "/v1/cards":
            return reply(200, {"operation_id": req["operation_id"], "status": "succeeded",
                               "token": "py_" + req["number"][-4:]})
        if self.path in ("/v1/charges", "/v1/payouts"):
            if not (isinstance(req.get("amount"), int) and req["amount"] > 0):
                return reply(400, {"error": "bad_amount"})
            op = OPERATIONS.setdefault(req["operation_id"], {
                "operation_id": req["operation_id"], "amount": req["amount"], "currency": req["currency"],
                "kind": "charge" if self.path == "/v1/charges" else "payout",
                "status": "succeeded", "decline_code": None, "day": time.strftime("%Y-%m-%d", time.gmtime())})
            return reply(200, {k: v for k, v in op.items() if k != "day"})
        if self.path.startswith("/v1/operations/"):
            op = OPERATIONS.get(self.path.rsplit("/", 1)[1])
            if not op:
                return reply(404, {"error": "unknown_operation"})
            return reply(200, {k: v for k, v in op.items() if k != "day"})
        if self.path.startswith("/v1/statements/"):
            day = self.path.rsplit("/", 1)[1]
            lines = [{k: v for k, v in o.items() if k != "day"} for o in OPERATIONS.values() if o["day"] == day]
            return reply(200, {"date": day, "lines": lines})
        reply(404, {"error": "unknown_operation"})

    do_GET = do_POST = handle_any

    def log_message(self, *args):
        pass


print(f"minimal bank on {PORT}", flush=True)
ThreadingHTTPServer(("127.0.0.1", PORT), Bank).serve_forever()
