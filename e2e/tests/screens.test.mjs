// The consoles on a phone (issue 23, item 4): at 390 × 844, in both languages, no screen
// of the merchant console or the operator console is wider than the phone, and tables
// read as lists of cards instead of columns squeezed one character wide.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, call, merchant, customer, browser, phone, screenshot, consoleSignIn, consoleTab, sellOne, overflows, ADMIN,
} from "./helpers.mjs";

let server, b, url;

before(async () => {
  server = await startServer();
  url = server.url;
  b = await browser();
});
after(async () => {
  await b?.close();
  server?.stop();
});

async function zh(page) {
  await page.locator("#lang").click();
  await page.locator("html[lang=zh-CN]").waitFor({ state: "attached" });
}

async function fits(page, what) {
  assert.deepEqual(await overflows(page), [], `${what} at 390 px`);
}

test("wrong today: every console screen fits a phone, its tables as cards", async () => {
  const sk = await merchant(url, "Narrow Tea House of the Long Name", [["tea", "Green tea", 1299], ["tea-set", "Tea set with a long name", 68800]]);
  const c = await customer(url, "+8613900001132", 1_000_000);
  const paid = await call(url, "POST", "/v1/payments", sk, { currency: "CNY", items: [{ sku: "tea", quantity: 2 }], customer: c.id });
  await call(url, "POST", "/v1/webhook_endpoints", sk, { url: "https://shop.example.com/pocket/webhooks/a-rather-long-path" });
  await call(url, "POST", "/v1/bank_accounts", sk, { holder_name: "Narrow Tea House", account_number: "6222020200112233445", bank_code: "ICBC", currency: "CNY" });
  await call(url, "POST", "/v1/admin/rules", ADMIN, { name: "block very large payments at night", when: "payment.amount > 4000000 && payment.tier == 'large'", action: "block" });
  for (const language of ["en", "zh"]) {
    const shop = await phone(b);
    await shop.goto(url + "/merchant");
    if (language === "zh") await zh(shop);
    await fits(shop, `console sign-in (${language})`);
    await consoleSignIn(shop, url, sk);
    await sellOne(shop, "tea-set", { phone: c.phone, hold: true });
    await fits(shop, `console new sale (${language})`);
    for (const tab of ["overview", "payments", "catalog", "payouts", "developers"]) {
      await consoleTab(shop, tab);
      if (tab === "overview") await shop.locator("#tiers tr").first().waitFor();
      if (tab === "payments") {
        await shop.locator(`#payments [data-payment="${paid.id}"]`).waitFor();
        await fits(shop, `console payments (${language})`);
        await shop.locator(`#payments [data-payment="${paid.id}"] button`).click();
        await shop.locator("#timeline li").first().waitFor();
        tab === "payments" && (await screenshot(shop, `console-payments-phone-${language}`));
      }
      if (tab === "catalog") await shop.locator("#products tr").first().waitFor();
      if (tab === "developers") await shop.locator("#events li").first().waitFor();
      await fits(shop, `console ${tab} (${language})`);
    }
    const admin = await phone(b);
    await admin.goto(url + "/admin");
    if (language === "zh") await zh(admin);
    await fits(admin, `operator sign-in (${language})`);
    await admin.fill("#admin-key", ADMIN);
    await admin.locator("#auth-form button[type=submit]").click();
    for (const tab of ["system", "merchants", "customers", "ledger", "reconciliation", "rules"]) {
      await admin.locator(`[data-tab="${tab}"]`).click();
      if (tab === "merchants") await admin.locator("#merchants tr").first().waitFor();
      if (tab === "customers") {
        await admin.fill("#customer-phone", c.phone);
        await admin.locator("#customer-form button[type=submit]").click();
        await admin.locator(`#customer-found [data-customer="${c.id}"]`).waitFor();
      }
      if (tab === "ledger") await admin.locator("#ledger tr").first().waitFor();
      if (tab === "reconciliation") {
        await admin.locator("#reconcile-form button[type=submit]").click();
        await admin.locator("#reconcile-summary[data-clean]").waitFor();
      }
      if (tab === "rules") await admin.locator("#rules tr").first().waitFor();
      await fits(admin, `operator ${tab} (${language})`);
    }
    for (const p of [shop, admin]) await p.context().close();
  }
});
