// The browser tests of issue 4: both sides of a payment in a real Chromium, against the
// real server. Each step writes a screenshot into e2e/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, call, merchant, customer, browser, phone, screenshot, walletSignIn, consoleSignIn,
  sellOne, enterPin, decodeQr, showPayCode, emvFields, crc16, walletTab, sheetFor, closeReceipt, consoleTab, desktop, ADMIN,
} from "./helpers.mjs";

let server, b, url;
const PRODUCTS = [["tea", "Green tea", 1299], ["tea-set", "Tea set", 68800], ["jade", "Jade teapot", 1_000_000]];

before(async () => {
  server = await startServer();
  url = server.url;
  b = await browser();
});
after(async () => {
  await b?.close();
  server?.stop();
});

const balanceText = (page, currency) => page.locator(`[data-balance="${currency}"]`).first().textContent();

test("merchant builds a cart, the open wallet shows it live, PIN confirm, both sides succeed", async () => {
  const sk = await merchant(url, "Tea House", PRODUCTS);
  const c = await customer(url, "+8613900000001", 200_000);
  const wallet = await phone(b);
  const shop = await phone(b);
  await walletSignIn(wallet, url, c);
  await consoleSignIn(shop, url, sk);
  assert.equal(await balanceText(wallet, "CNY"), "CN¥2,000.00");
  await screenshot(wallet, "wallet-signed-in");
  const id = await sellOne(shop, "tea-set", { phone: c.phone });
  assert.match(await shop.locator("#current-card .amount").textContent(), /688\.00/, "the total is the server's");
  await screenshot(shop, "console-cart-created");
  // Live, no reload: the request opens the payment sheet by itself.
  const sheet = await sheetFor(wallet, id);
  const text = await sheet.textContent();
  assert.match(text, /Tea House/);
  assert.match(text, /Tea set × 1/);
  assert.match(text, /688\.00/);
  assert.match(await sheet.locator(".countdown").textContent(), /Expires in [0-9]:[0-9]{2}/);
  await screenshot(wallet, "wallet-request-arrived");
  await sheet.locator("#sheet-confirm").click();
  await enterPin(wallet, c.pin);
  await screenshot(wallet, "wallet-receipt");
  await closeReceipt(wallet, id);
  await walletTab(wallet, "history");
  await wallet.locator(`#history [data-payment="${id}"] [data-status="succeeded"]`).waitFor();
  await screenshot(wallet, "wallet-paid");
  await shop.locator(`#current-card [data-status="succeeded"]`).waitFor({ timeout: 5000 });
  await screenshot(shop, "console-succeeded");
  assert.equal(await balanceText(wallet, "CNY"), "CN¥1,312.00");
  await shop.reload();
  await shop.locator("#balance [data-balance=CNY]").waitFor();
  assert.equal(await balanceText(shop, "CNY"), "CN¥688.00");
  // Both languages.
  await wallet.getByRole("button", { name: "中文" }).click();
  await wallet.getByRole("heading", { name: "账单" }).waitFor();
  assert.equal(await wallet.locator("html").getAttribute("lang"), "zh-CN");
  assert.equal(await balanceText(wallet, "CNY"), "¥1,312.00");
  await screenshot(wallet, "wallet-chinese");
});

test("a payment left alone turns expired on screen at its deadline", async () => {
  const sk = await merchant(url, "Noodle Bar", PRODUCTS);
  const c = await customer(url, "+8613900000002", 10_000);
  const wallet = await phone(b);
  const shop = await phone(b);
  await walletSignIn(wallet, url, c);
  await consoleSignIn(shop, url, sk);
  const id = await sellOne(shop, "tea", { phone: c.phone, expiresIn: 3 });
  const sheet = await sheetFor(wallet, id);
  await sheet.locator("#sheet-confirm:not([disabled])").waitFor();
  await screenshot(wallet, "wallet-before-deadline");
  // At the deadline the countdown turns into "Expired" and paying is no longer offered.
  await sheet.locator(".countdown", { hasText: "Expired" }).waitFor({ timeout: 5000 });
  assert.equal(await sheet.locator("#sheet-confirm").isDisabled(), true, "confirming is no longer offered");
  await screenshot(wallet, "wallet-expired");
  await sheet.locator("#sheet-later").click();
  assert.equal(await wallet.locator(`#requests [data-payment="${id}"] [data-action]`).count(), 0);
  await shop.locator(`#current-card [data-status="expired"]`).waitFor({ timeout: 5000 });
  await screenshot(shop, "console-expired");
});

test("an open payment shown as a QR code is paid by a second customer from the decoded link", async () => {
  const sk = await merchant(url, "Dumplings", PRODUCTS);
  const first = await customer(url, "+8613900000003", 10_000);
  const second = await customer(url, "+8613900000004", 10_000);
  const shop = await phone(b);
  await consoleSignIn(shop, url, sk);
  const id = await sellOne(shop, "tea", { quantity: 2 });
  const qr = shop.locator("#qr");
  await qr.waitFor({ state: "visible" });
  await shop.waitForFunction(() => document.getElementById("qr").complete && document.getElementById("qr").naturalWidth > 0);
  await screenshot(shop, "console-qr");
  const payload = await decodeQr(qr);
  const f = emvFields(payload);
  assert.equal(f["00"], "01");
  assert.equal(f["01"], "12");
  assert.equal(f["53"], "156");
  assert.equal(f["54"], "25.98");
  assert.equal(payload.slice(-4), crc16(payload.slice(0, -4)), "CRC-16/CCITT-FALSE over the payload including 6304");
  const link = emvFields(f["26"])["01"];
  assert.equal(link, `${url}/pay/${id}`);
  // The second customer opens the link and pays; the first never sees it as theirs.
  const wallet = await phone(b);
  await walletSignIn(wallet, url, second);
  await wallet.goto(link);
  const sheet = await sheetFor(wallet, id);
  await screenshot(wallet, "wallet-open-payment");
  await sheet.locator("#sheet-confirm").click();
  await closeReceipt(wallet, id);
  await walletTab(wallet, "history");
  await wallet.locator(`#history [data-payment="${id}"] [data-status="succeeded"]`).waitFor();
  await screenshot(wallet, "wallet-paid-by-qr");
  await shop.locator(`#current-card [data-status="succeeded"]`).waitFor({ timeout: 5000 });
  const p = await call(url, "GET", `/v1/payments/${id}`, sk);
  assert.equal(p.customer, (await call(url, "POST", "/v1/wallet/sessions", null, { phone: second.phone, pin: second.pin })).customer.id);
  assert.notEqual(p.customer, first.id);
});

test("a wrong PIN shows a clear error and the payment stays payable", async () => {
  const sk = await merchant(url, "Bakery", PRODUCTS);
  const c = await customer(url, "+8613900000005", 200_000);
  const wallet = await phone(b);
  const shop = await phone(b);
  await walletSignIn(wallet, url, c);
  await consoleSignIn(shop, url, sk);
  const id = await sellOne(shop, "tea-set", { phone: c.phone });
  const sheet = await sheetFor(wallet, id);
  await sheet.locator("#sheet-confirm").click();
  await enterPin(wallet, "000000");
  // The PIN pad stays open and says how many tries are left before the lock.
  const pad = wallet.locator("#pin-dialog");
  await pad.locator(".error", { hasText: "The PIN is not correct. 4 more wrong PINs lock your wallet." }).waitFor();
  assert.equal(await pad.isVisible(), true, "the pad stays open");
  await screenshot(wallet, "wallet-wrong-pin");
  assert.equal((await call(url, "GET", `/v1/payments/${id}`, sk)).status, "pending");
  await enterPin(wallet, c.pin);
  await closeReceipt(wallet, id);
  await walletTab(wallet, "history");
  await wallet.locator(`#history [data-payment="${id}"] [data-status="succeeded"]`).waitFor();
  await screenshot(wallet, "wallet-right-pin");
});

test("a large payment is confirmed with the PIN and a WebCrypto device key", async () => {
  const sk = await merchant(url, "Jade Shop", PRODUCTS);
  const c = await customer(url, "+8613900000006", 2_000_000);
  const wallet = await phone(b);
  const shop = await phone(b);
  await walletSignIn(wallet, url, c);
  await consoleSignIn(shop, url, sk);
  const id = await sellOne(shop, "jade", { phone: c.phone });
  const payment = await call(url, "GET", `/v1/payments/${id}`, sk);
  assert.equal(payment.policy.authentication, "pin_and_device");
  const sheet = await sheetFor(wallet, id);
  await sheet.locator("#sheet-confirm").click();
  await enterPin(wallet, c.pin);
  await closeReceipt(wallet, id);
  await walletTab(wallet, "history");
  await wallet.locator(`#history [data-payment="${id}"] [data-status="succeeded"]`).waitFor({ timeout: 5000 });
  await screenshot(wallet, "wallet-large-paid-with-device-key");
  const token = (await call(url, "POST", "/v1/wallet/sessions", null, { phone: c.phone, pin: c.pin })).token;
  const devices = await call(url, "GET", "/v1/wallet/devices", token);
  assert.equal(devices.data.length, 1, "the key pair was made and registered on first use");
  assert.equal(await balanceText(wallet, "CNY"), "CN¥10,000.00");
});

test("pages carry a strict Content-Security-Policy and no inline code", async () => {
  const r = await fetch(url + "/");
  const csp = r.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  assert.equal(r.headers.get("referrer-policy"), "no-referrer");
  const html = await r.text();
  assert.doesNotMatch(html, /<script>|<script type="module">|style=/, "no inline script or style");
  const page = await phone(b);
  const violations = [];
  page.on("console", (m) => { if (/Content Security Policy/.test(m.text())) violations.push(m.text()); });
  await page.goto(url + "/merchant");
  await page.goto(url + "/");
  assert.deepEqual(violations, []);
});

test("a wallet binds a sandbox card, tops up and withdraws with its PIN", async () => {
  const wallet = await phone(b);
  const c = await customer(url, "+8613800009901");
  await walletSignIn(wallet, url, c);
  await walletTab(wallet, "cards");
  await wallet.fill("#card-number", "4242 4242 4242 4242");
  await wallet.fill("#card-exp", "12/2030");
  await wallet.fill("#card-cvc", "123");
  await wallet.getByRole("button", { name: "Add card" }).click();
  await enterPin(wallet, c.pin);
  await wallet.locator("#cards li[data-card]", { hasText: "4242" }).waitFor();
  assert.equal(await wallet.inputValue("#card-number"), "", "the number leaves the page");
  await wallet.fill("#move-amount", "100");
  await wallet.getByRole("button", { name: "Top up" }).click();
  await enterPin(wallet, c.pin);
  await wallet.locator('#operations li[data-status="succeeded"]').first().waitFor();
  await wallet.locator('[data-balance="CNY"]', { hasText: "100.00" }).waitFor();
  await wallet.fill("#move-amount", "30");
  await wallet.getByRole("button", { name: "Withdraw" }).click();
  await enterPin(wallet, c.pin);
  await wallet.locator('[data-balance="CNY"]', { hasText: "70.00" }).waitFor();
  // The withdrawal's amount is reserved at once; the bank's answer comes after.
  await wallet.locator('#operations li[data-status="succeeded"]').nth(1).waitFor();
  assert.equal(await wallet.locator('#operations li[data-status="succeeded"]').count(), 2);
  await screenshot(wallet, "wallet-cards");
});

test("the console registers a bank account and pays itself out", async () => {
  const sk = await merchant(url, "Payout Shop", PRODUCTS);
  const c = await customer(url, "+8613800009902", 500_000);
  const p = await call(url, "POST", "/v1/payments", sk, { currency: "CNY", amount: 20_000, customer: c.id });
  const session = await call(url, "POST", "/v1/wallet/sessions", null, { phone: c.phone, pin: c.pin });
  await call(url, "POST", `/v1/wallet/payments/${p.id}/confirm`, session.token, {});
  const shop = await phone(b);
  await consoleSignIn(shop, url, sk);
  await consoleTab(shop, "payouts");
  await shop.fill("#account-holder", "Payout Shop");
  await shop.fill("#account-number", "6222 0200 0000 1234");
  await shop.fill("#account-bank", "ICBC");
  await shop.getByRole("button", { name: "Add bank account" }).click();
  await shop.locator("#payout-account option", { hasText: "1234" }).waitFor({ state: "attached" });
  await shop.fill("#payout-amount", "150");
  await shop.getByRole("button", { name: "Pay out" }).click();
  await shop.locator('#payouts li[data-status="paid"]').waitFor();
  await consoleTab(shop, "overview");
  await shop.locator('[data-balance="CNY"]', { hasText: "50.00" }).waitFor();
  await screenshot(shop, "console-payout");
});

test("a held payment: the wallet holds the money, the console captures part, the rest returns", async () => {
  const sk = await merchant(url, "Hotel", PRODUCTS);
  const c = await customer(url, "+8613900000031", 200_000);
  const wallet = await phone(b);
  const shop = await phone(b);
  await walletSignIn(wallet, url, c);
  await consoleSignIn(shop, url, sk);
  const id = await sellOne(shop, "tea", { phone: c.phone, hold: true });
  const sheet = await sheetFor(wallet, id);
  await sheet.locator("#sheet-confirm").click();
  await closeReceipt(wallet, id);
  // Held, not paid: it leaves the balance's available part and shows as held.
  await wallet.locator("#hero-held:not(.hidden)").waitFor();
  assert.match(await wallet.locator("#hero-held").textContent(), /12\.99 held/);
  assert.equal(await balanceText(wallet, "CNY"), "CN¥1,987.01");
  await screenshot(wallet, "wallet-held");
  // The console sees the hold and captures 10.00 of 12.99.
  await shop.locator(`#current-card [data-status="authorized"]`).waitFor({ timeout: 5000 });
  await shop.locator("#capture-form:not(.hidden)").waitFor();
  assert.match(await shop.locator("#capture-before").textContent(), /Capture before/);
  await screenshot(shop, "console-hold");
  await shop.locator("#capture-amount").fill("10");
  await shop.locator("#capture-payment").click();
  await shop.locator(`#current-card [data-status="succeeded"]`).waitFor({ timeout: 5000 });
  assert.match(await shop.locator("#current-card").textContent(), /Captured CN¥10\.00/);
  assert.ok(await shop.locator("#capture-form").evaluate((f) => f.classList.contains("hidden")));
  await screenshot(shop, "console-captured");
  // The wallet hears it: 10.00 paid, 2.99 back, nothing held.
  await wallet.locator("#hero-held.hidden").waitFor({ state: "attached", timeout: 5000 });
  assert.equal(await balanceText(wallet, "CNY"), "CN¥1,990.00");
  const p = await call(url, "GET", `/v1/payments/${id}`, sk);
  assert.equal(p.amount_captured, 1000);
});

test("a risk rule written in the operator console raises a pending payment's proof: the wallet asks for the PIN", async () => {
  const sk = await merchant(url, "Rule Shop", PRODUCTS);
  const c = await customer(url, "+8613900000041", 200_000);
  const wallet = await phone(b);
  await walletSignIn(wallet, url, c);
  const p = await call(url, "POST", "/v1/payments", sk, { currency: "CNY", items: [{ sku: "tea", quantity: 1 }], customer: c.id });
  assert.equal(p.policy.authentication, "none");
  const sheet = await sheetFor(wallet, p.id);
  // Meanwhile the operator adds a rule; a broken expression first shows the parser's words.
  const admin = await desktop(b);
  await admin.goto(url + "/admin");
  await admin.fill("#admin-key", ADMIN);
  await admin.locator("#auth-form button[type=submit]").click();
  await admin.locator('[data-tab="rules"]').click();
  await admin.locator("#view-rules").waitFor();
  await admin.fill("#rule-name", "PIN for tea");
  await admin.fill("#rule-when", "payment.amount >");
  await admin.selectOption("#rule-action", "require_pin");
  await admin.locator("#rule-form button[type=submit]").click();
  await admin.locator("#rule-error:not(:empty)").waitFor();
  assert.match(await admin.locator("#rule-error").textContent(), /not valid.*parse/);
  await admin.fill("#rule-when", "payment.amount > 1000 && payment.currency == 'CNY'");
  await admin.locator("#rule-form button[type=submit]").click();
  await admin.locator("#rules [data-rule]").waitFor();
  assert.match(await admin.locator("#rules").textContent(), /PIN for tea.*Require the PIN/);
  await screenshot(admin, "admin-rule-added");
  // The tap is not enough any more: the wallet reads the raised policy and asks for the PIN.
  await sheet.locator("#sheet-confirm").click();
  await enterPin(wallet, c.pin);
  await closeReceipt(wallet, p.id);
  const paid = await call(url, "GET", `/v1/payments/${p.id}`, sk);
  assert.equal(paid.status, "succeeded");
  assert.equal(paid.policy.rule, "PIN for tea");
  // Removed, it no longer applies.
  await admin.locator("#rules [data-rule] button").click();
  await admin.locator("#rules [data-rule]").waitFor({ state: "detached" });
  const rules = await call(url, "GET", "/v1/admin/rules", ADMIN);
  assert.deepEqual(rules.data, []);
});

test("the wallet's payment code, read back from its QR, is charged once at the console's till", async () => {
  const sk = await merchant(url, "Corner Shop", PRODUCTS);
  const c = await customer(url, "+8613900000021", 10_000);
  const wallet = await phone(b);
  const shop = await phone(b);
  await walletSignIn(wallet, url, c);
  await consoleSignIn(shop, url, sk);
  // The wallet makes codes exactly as the server checks them (the core's fixed vector).
  const vector = await wallet.evaluate(async () => {
    const m = await import("/assets/paycode.js");
    const key = await crypto.subtle.importKey("raw", new Uint8Array(32).fill(7), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return m.codeAt(key, 60_000_000);
  });
  assert.equal(vector, "284955836916290020");
  // Turning codes on registers this phone as a device (the PIN), once.
  const code = await showPayCode(wallet, c.pin);
  assert.match(code, /^28\d{16}$/);
  assert.equal((await wallet.locator("#paycode-digits").textContent()).replace(/\s/g, ""), code);
  assert.ok(await wallet.evaluate(() => document.getElementById("paycode-bar").width > 100), "the barcode is drawn");
  assert.match(await wallet.locator("#paycode-left").textContent(), /Changes in [0-9]+ s/);
  await screenshot(wallet, "wallet-payment-code");
  // The cashier scans it into the console: the small tier is paid at once.
  const id = await sellOne(shop, "tea", { code });
  await shop.locator(`#current-card [data-status="succeeded"]`).waitFor({ timeout: 5000 });
  await screenshot(shop, "console-code-charged");
  // The wallet's code gives way to the receipt, live.
  await wallet.locator(`#receipt-body [data-payment="${id}"]`).waitFor({ timeout: 5000 });
  await screenshot(wallet, "wallet-code-receipt");
  await closeReceipt(wallet, id);
  assert.equal(await balanceText(wallet, "CNY"), "CN¥87.01");
  // The same code a second time is refused, in words a cashier understands.
  await shop.locator("#cart-code").fill(code);
  await shop.locator("#create-payment").click();
  await shop.locator("#cart-error", { hasText: "This payment code is not valid now" }).waitFor();
  await screenshot(shop, "console-code-used");
  assert.equal(await balanceText(wallet, "CNY"), "CN¥87.01");
  // Showing the code again needs no PIN: the device is kept on the phone.
  await walletTab(wallet, "home");
  await walletTab(wallet, "pay");
  await wallet.locator("#paycode-show").click();
  await wallet.locator("#paycode-qr").waitFor({ state: "visible" });
  assert.equal(await wallet.locator("#pin-dialog").isVisible(), false);
});

test("a phone whose clock is ten minutes fast still shows a code the till accepts", async () => {
  const sk = await merchant(url, "Clock Shop", PRODUCTS);
  const c = await customer(url, "+8613900000022", 10_000);
  const wallet = await phone(b);
  await wallet.addInitScript(() => {
    const real = Date.now;
    Date.now = () => real() + 10 * 60_000;
  });
  await walletSignIn(wallet, url, c);
  const code = await showPayCode(wallet, c.pin);
  const paid = await call(url, "POST", "/v1/payments", sk, { currency: "CNY", amount: 500, payment_code: code });
  assert.equal(paid.status, "succeeded");
});
