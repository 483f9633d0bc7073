#!/usr/bin/env python3
"""The cost of risk rules: the default bench mix on a server without rules, then on one
with 10 rules loaded (none of them matches the bench's payments, so every payment is
screened by all 10 at creation and again at confirm and goes through). Alternating runs,
medians of ROUNDS. Uses only the standard library; needs a release build.

    python3 scripts/rules_bench.py [ROUNDS] [SECONDS]      (default 3 rounds of 20 s)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

from local_server import POCKET, call, env, start, stop

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
ADMIN = "adm_rules_0123456789abcdef"
ENV = env(ADMIN)

# Ten rules of the kinds an operator writes; the bench's customers are new and pay small
# amounts in CNY with no device key, so each is evaluated in full and none matches.
RULES = [
    ("huge from a new wallet", "payment.amount > 100000000 && customer.age_days < 7", "require_pin_and_device"),
    ("burst", "customer.payments_last_hour > 100000", "block"),
    ("daily spend", "customer.spent_today + payment.amount > 1000000000000", "require_pin"),
    ("no KWD", "payment.currency == 'KWD'", "block"),
    ("blocked merchant", "payment.merchant == 'mer_0000000000000000000000000'", "block"),
    ("large tier needs a device", "payment.tier == 'large' && !device.registered", "block"),
    ("big USD", "payment.currency == 'USD' && payment.amount > 50000000", "require_pin"),
    ("young and busy", "customer.age_days < 0 && customer.payments_last_hour > 5", "require_pin"),
    ("round amounts", "payment.amount > 1000000000 && payment.amount % 100000 == 0", "require_pin"),
    ("odd tier", "payment.tier != 'small' && payment.tier != 'medium' && payment.tier != 'large'", "block"),
]


def run(with_rules):
    data = tempfile.mkdtemp(prefix="pocket-rules-")
    p, url, _ = start(data, ENV)
    try:
        if with_rules:
            for name, when, action in RULES:
                call(url, "POST", "/v1/admin/rules", ADMIN, {"name": name, "when": when, "action": action})
        out_json = os.path.join(data, "bench.json")
        subprocess.run([POCKET, "bench", "--url", url, "--admin-key", ADMIN, "--pid", str(p.pid), "--clients", "64",
                        "--seconds", str(SECONDS), "--json", out_json], env=ENV, check=True, capture_output=True)
        with open(out_json) as f:
            report = json.load(f)
    finally:
        stop(p)
    assert report["ok"] and not report["unexpected_errors"], report["unexpected_errors"]
    return report["payments_per_s"]


results = {False: [], True: []}
for r in range(ROUNDS):
    for with_rules in (False, True):
        rate = run(with_rules)
        results[with_rules].append(rate)
        print(f"round {r + 1}: {'10 rules' if with_rules else 'no rules'}: {rate:,.0f} payments/s", flush=True)
without, with_ = statistics.median(results[False]), statistics.median(results[True])
print(f"median without rules {without:,.0f}/s, with 10 rules {with_:,.0f}/s: {100 * (with_ / without - 1):+.1f} %")
