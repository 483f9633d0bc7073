// Starts the real pocket binary on a free port with a temporary data directory, and
// drives Debian's Chromium with playwright-core in a phone-sized viewport.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import jsQR from "jsqr";
import { PNG } from "pngjs";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
export const ADMIN = "adm_e2e_key_0123456789abcdef";
export const SCREENSHOTS = join(here, "..", "screenshots");
// Each test file runs in a process of its own: its screenshots are named after it, and
// the directory is emptied by whoever starts the run (crates/pocket/tests/browser.rs).
mkdirSync(SCREENSHOTS, { recursive: true });
const FILE = basename(process.argv[1] || "test", ".test.mjs");

export async function startServer({ sandbox = true } = {}) {
  const bin = process.env.POCKET_BIN || join(here, "..", "..", "target", "debug", "pocket");
  const data = mkdtempSync(join(tmpdir(), "pocket-e2e-"));
  const args = ["serve", "--listen", "127.0.0.1:0", "--data", data];
  if (sandbox) args.push("--sandbox");
  const child = spawn(bin, args, {
    env: { ...process.env, POCKET_ADMIN_KEY: ADMIN, POCKET_PIN_HASH_MEMORY_KIB: "1024", POCKET_PIN_HASH_ITERATIONS: "1", POCKET_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("pocket did not start")), 30000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/Pocket listening on (\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => reject(new Error(`pocket exited with ${code}`)));
  });
  return { url, stop: () => child.kill("SIGTERM") };
}

export async function call(url, method, path, credential, body) {
  const headers = { "content-type": "application/json" };
  if (credential) headers.authorization = `Bearer ${credential}`;
  const r = await fetch(url + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const json = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/** A merchant with products; returns its secret key. */
export async function merchant(url, name, products) {
  const m = await call(url, "POST", "/v1/admin/merchants", ADMIN, { name });
  for (const [sku, pname, unit_amount] of products) {
    await call(url, "POST", "/v1/products", m.secret_key, { sku, name: pname, unit_amount, currency: "CNY" });
  }
  return m.secret_key;
}

/** A customer with `balance` CNY-minor; returns {id, phone, pin}. */
export async function customer(url, phone, balance) {
  const pin = "246810";
  const c = await call(url, "POST", "/v1/wallet/signup", null, { phone, name: "Li Lei", pin });
  if (balance) await call(url, "POST", "/v1/admin/topups", ADMIN, { customer: c.customer.id, amount: balance, currency: "CNY" });
  return { id: c.customer.id, phone, pin };
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A phone-sized page. */
export async function phone(b, lang = "en-US") {
  return page(b, { width: 390, height: 844 }, lang);
}

/** A desktop-sized page. */
export async function desktop(b, lang = "en-US") {
  return page(b, { width: 1280, height: 800 }, lang);
}

/** A phone-sized page whose system asks for dark colours. */
export async function darkPhone(b, lang = "en-US") {
  return page(b, { width: 390, height: 844 }, lang, "dark");
}

async function page(b, viewport, lang, colorScheme = "light") {
  const context = await b.newContext({ viewport, locale: lang, deviceScaleFactor: 1, colorScheme });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

let shot = 0;
export async function screenshot(page, name) {
  shot += 1;
  await page.screenshot({ path: join(SCREENSHOTS, `${FILE}-${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
}

export async function walletSignIn(page, url, c, { path = "/" } = {}) {
  await page.goto(url + path);
  await page.locator("#phone").fill(c.phone);
  await page.locator("#pin").fill(c.pin);
  await page.locator("#auth-submit").click();
  await page.locator("#requests").waitFor();
  await page.locator("#live[data-i18n=live]").waitFor();
}

/** Opens one of the wallet's tabs (home, pay, cards, history, me). */
export async function walletTab(page, name) {
  await page.locator(`nav.tabs [data-tab="${name}"]`).click();
  await page.locator(`#view-${name}`).waitFor();
}

/** The payment sheet a request opens, for payment `id`. */
export async function sheetFor(page, id) {
  const sheet = page.locator("#sheet");
  await sheet.locator(`#sheet-body [data-payment="${id}"]`).waitFor({ timeout: 5000 });
  return sheet;
}

/** Waits for the receipt of `id` and closes it. */
export async function closeReceipt(page, id) {
  await page.locator(`#receipt-body [data-payment="${id}"]`).waitFor({ timeout: 5000 });
  await page.locator("#receipt-done").click();
  await page.locator("#sheet").waitFor({ state: "hidden" });
}

/** Runs axe-core on the page as it is now; returns the violations (none expected). */
export async function axeViolations(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

/** Visible words in Latin letters that are not data (names, ids, codes): in Chinese
 *  mode there should be none. */
export async function englishWords(page, allowed = []) {
  return page.evaluate((allowed) => {
    const ok = new Set(["Pocket", "English", "sk", "cus", "CSV", "HTTP", "CNY", "USD", "JPY", "KWD", "VISA", "MASTERCARD", ...allowed]);
    const words = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const host = n.parentElement;
      if (!host || host.closest("code, script, style, [data-user-text], .hidden, [hidden]")) continue;
      if (!host.checkVisibility()) continue;
      // Ids (pay_…, cus_…) are data, not words.
      const text = n.textContent.replace(/\b[a-z]{2,4}_[0-9A-Za-z]+/g, "");
      for (const w of text.match(/[A-Za-z]{2,}/g) || []) {
        if (!ok.has(w)) words.push(w);
      }
    }
    return words;
  }, allowed);
}

export async function consoleSignIn(page, url, sk) {
  await page.goto(url + "/merchant");
  await page.locator("#sk").fill(sk);
  await page.locator("#auth-form button[type=submit]").click();
  await page.locator("#products tr").first().waitFor({ state: "attached" });
  await page.locator("nav.tabs").waitFor();
}

/** Opens one of the console's sections (overview, sale, payments, catalog, payouts, developers). */
export async function consoleTab(page, name) {
  await page.locator(`nav.tabs [data-tab="${name}"]`).click();
  await page.locator(`#view-${name}`).waitFor();
}

/** Builds a cart of one line in the console and creates the payment; returns its id. */
export async function sellOne(page, sku, { phone: to, code, quantity = 1, expiresIn, hold = false } = {}) {
  await consoleTab(page, "sale");
  const before = await page.evaluate(() => document.querySelector("#current-card [data-payment]")?.dataset.payment || null);
  await page.locator("#line-0-sku").selectOption(sku);
  await page.locator("#line-0-qty").fill(String(quantity));
  await page.locator("#cart-phone").fill(to || "");
  await page.locator("#cart-code").fill(code || "");
  await page.locator("#cart-expires").fill(expiresIn ? String(expiresIn) : "");
  await page.locator("#cart-hold").setChecked(hold);
  await page.locator("#create-payment").click();
  const card = before
    ? page.locator(`#current-card [data-payment]:not([data-payment="${before}"])`)
    : page.locator("#current-card [data-payment]");
  await card.waitFor();
  return card.getAttribute("data-payment");
}

/** Types a PIN on the wallet's PIN pad and presses OK. */
export async function enterPin(page, pin) {
  const dialog = page.locator("#pin-dialog");
  await dialog.waitFor({ state: "visible" });
  for (const d of pin) await dialog.getByRole("button", { name: d, exact: true }).click();
  await dialog.locator("#pin-ok").click();
}

/** Opens the wallet's Pay tab and shows its payment code (with `pin`: the first time on
 *  this phone, which registers it); returns the code read back from the rendered QR. */
export async function showPayCode(page, pin) {
  await walletTab(page, "pay");
  await page.locator("#paycode-show").click();
  if (pin) await enterPin(page, pin);
  const qr = page.locator("#paycode-qr");
  await qr.waitFor({ state: "visible" });
  await page.waitForFunction(() => document.getElementById("paycode-qr").naturalWidth > 0);
  return decodeQr(qr);
}

/** Decodes the QR code shown by `locator` (an <img> of the server's SVG). */
export async function decodeQr(locator) {
  const png = PNG.sync.read(await locator.screenshot());
  const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  if (!code) throw new Error("no QR code found");
  return code.data;
}

/** Reads EMV tag-length-value fields. */
export function emvFields(payload) {
  const out = {};
  for (let i = 0; i < payload.length;) {
    const id = payload.slice(i, i + 2);
    const len = Number(payload.slice(i + 2, i + 4));
    out[id] = payload.slice(i + 4, i + 4 + len);
    i += 4 + len;
  }
  return out;
}

/** CRC-16/CCITT-FALSE, written here to check the server's. */
export function crc16(text) {
  let crc = 0xffff;
  for (const byte of Buffer.from(text, "utf8")) {
    crc ^= byte << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc.toString(16).toUpperCase().padStart(4, "0");
}

/** What does not fit the page's width: the page or a box scrolling sideways, an element
 *  reaching past the screen's edge, a button or badge wrapped, a cell broken into a few
 *  characters a line. Returns a description of each (none expected). */
export async function overflows(page) {
  return page.evaluate(() => {
    const out = [];
    const width = document.documentElement.clientWidth;
    const name = (e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""}${e.className && typeof e.className === "string" ? `.${e.className.trim().split(/\s+/).join(".")}` : ""} "${e.textContent.trim().slice(0, 30)}"`;
    const shown = (e) => e.checkVisibility() && !e.closest(".sr-only, thead, dialog:not([open])");
    if (document.documentElement.scrollWidth > width + 1) out.push(`the page is ${document.documentElement.scrollWidth} px wide`);
    const lines = (e) => {
      const range = document.createRange();
      range.selectNodeContents(e);
      // Boxes on one line overlap vertically (an ellipsis sits a pixel lower); a new line
      // starts below the one before.
      const rects = [...range.getClientRects()].filter((r) => r.width > 0).sort((a, b) => a.top - b.top);
      let count = 0, bottom = -Infinity;
      for (const r of rects) {
        if (r.top >= bottom - 1) { count++; bottom = r.bottom; } else bottom = Math.max(bottom, r.bottom);
      }
      return count;
    };
    for (const e of document.querySelectorAll("body *")) {
      if (!shown(e)) continue;
      const r = e.getBoundingClientRect();
      if (r.width <= 1) continue;
      if (r.right > width + 1 || r.left < -1) out.push(`${name(e)} spans ${Math.round(r.left)}..${Math.round(r.right)} px`);
      if (/auto|scroll/.test(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth + 1) out.push(`${name(e)} scrolls sideways`);
      if (e.matches("button, .status") && e.textContent.trim() && lines(e) > 1) out.push(`${name(e)} wraps onto ${lines(e)} lines`);
      if (e.matches("td, dd") && e.textContent.trim()) {
        const n = lines(e);
        if (n > 2 && e.textContent.trim().length / n < 8) out.push(`${name(e)} breaks into ${n} lines`);
      }
    }
    return out;
  });
}

/** A browser whose camera films `png` (a still picture, as a Y4M video Chromium loops):
 *  what a phone held over a printed QR code sees. */
export async function browserFilming(png) {
  const image = PNG.sync.read(png);
  const w = image.width - (image.width % 2), h = image.height - (image.height % 2);
  const y = Buffer.alloc(w * h);
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      const i = (row * image.width + col) * 4;
      y[row * w + col] = Math.round(0.299 * image.data[i] + 0.587 * image.data[i + 1] + 0.114 * image.data[i + 2]);
    }
  }
  const chroma = Buffer.alloc((w / 2) * (h / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from("FRAME\n"), y, chroma]);
  const file = join(mkdtempSync(join(tmpdir(), "pocket-camera-")), "qr.y4m");
  const { writeFileSync } = await import("node:fs");
  writeFileSync(file, Buffer.concat([Buffer.from(`YUV4MPEG2 W${w} H${h} F10:1 Ip A1:1 C420jpeg\n`), frame, frame]));
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${file}`],
  });
}
