// Strings in English and Simplified Chinese; the language defaults from the browser
// and can be switched. Elements with data-i18n="key" get their text set.
const STRINGS = {
  en: {
    lang_switch: "中文", wallet_title: "Pocket wallet", merchant_title: "Pocket for merchants",
    sign_in: "Sign in", sign_up: "Create wallet", sign_out: "Sign out", phone: "Phone (E.164, e.g. +8613800000001)",
    name: "Name", pin: "PIN (6 digits)", have_wallet: "Already have a wallet?", no_wallet: "New to Pocket?",
    balances: "Balances", no_balance: "No money yet", requests: "Payment requests", no_requests: "Nothing to pay right now",
    history: "History", no_history: "No payments yet", confirm: "Pay", decline: "Decline", expires_in: "Expires in {t}",
    expired: "Expired", status_pending: "Pending", status_succeeded: "Paid", status_declined: "Declined",
    status_expired: "Expired", status_canceled: "Canceled", enter_pin: "Enter your PIN", pin_for: "Enter your PIN to pay {amount} to {merchant}",
    cards: "Bank cards", card_number: "Card number", card_expiry: "Expiry (MM/YYYY)", card_cvc: "CVC",
    bind_card: "Add card", card: "Card", card_topup: "Top up", card_withdraw: "Withdraw", remove: "Remove",
    bank_operations: "Top-ups and withdrawals", no_cards: "No card yet", no_operations: "None yet",
    op_status_processing: "Processing", op_status_succeeded: "Done", op_status_failed: "Failed", op_status_paid: "Paid out",
    payouts: "Payouts", account_holder: "Account holder", account_number: "Account number", bank_code: "Bank code",
    add_account: "Add bank account", bank_account: "Bank account", pay_out: "Pay out", no_payouts: "No payouts yet",
    card_added: "Card added", op_topup: "Top-up", op_withdrawal: "Withdrawal", expiry_format: "Expiry must be MM/YYYY",
    pin_for_card: "Your PIN to add this card", pin_for_topup: "Your PIN to take money from this card",
    pin_for_withdrawal: "Your PIN to send money to this card",
    ok: "OK", cancel: "Cancel", delete_digit: "Delete last digit", topup: "Add money (sandbox)", amount_major: "Amount",
    currency: "Currency", add: "Add", topup_done: "Money added", pay_link: "Pay a link or QR code", paste_hint: "Paste a payment link or code",
    open: "Open", scan: "Scan with camera", stop_scan: "Stop camera", no_camera: "This browser cannot scan; paste the link instead.",
    pay_this: "Pay this payment", paid: "Payment done", device_needed: "This payment also needs this device's key; it is created and registered now.",
    secret_key: "Secret key (sk_…)", balance: "Balance", catalog: "Catalog", sku: "SKU", unit_price: "Unit price",
    active: "Active", inactive: "Inactive", save: "Save", deactivate: "Deactivate", activate: "Activate", edit: "Edit",
    add_product: "Add product", cart: "New payment", quantity: "Quantity", product: "Product", add_line: "Add line",
    customer_phone: "Customer phone (empty: show a QR code)", expires_in_s: "Expires in (seconds, optional)",
    create_payment: "Create payment", total: "Total", payment: "Payment", refund: "Refund", refund_amount: "Refund amount (empty: all that is left)",
    payments: "Payments", events: "Events", next: "Next", previous: "Previous", link: "Payment link", qr_alt: "QR code of the payment",
    refunded: "Refunded {amount}", remove: "Remove", items: "Items", type: "Type", when: "When", status: "Status",
    live: "Live", reconnecting: "Reconnecting…", tier: "Tier", language: "Language",
  },
  zh: {
    lang_switch: "English", wallet_title: "Pocket 钱包", merchant_title: "Pocket 商户后台",
    sign_in: "登录", sign_up: "创建钱包", sign_out: "退出", phone: "手机号（E.164，如 +8613800000001）",
    name: "姓名", pin: "支付密码（6 位数字）", have_wallet: "已有钱包？", no_wallet: "第一次使用？",
    balances: "余额", no_balance: "暂无余额", requests: "待支付", no_requests: "暂无待支付的请求",
    history: "账单", no_history: "暂无支付记录", confirm: "支付", decline: "拒绝", expires_in: "剩余 {t}",
    expired: "已过期", status_pending: "待支付", status_succeeded: "已支付", status_declined: "已拒绝",
    status_expired: "已过期", status_canceled: "已取消", enter_pin: "请输入支付密码", pin_for: "输入支付密码，向 {merchant} 支付 {amount}",
    cards: "银行卡", card_number: "卡号", card_expiry: "有效期（月/年）", card_cvc: "安全码",
    bind_card: "添加银行卡", card: "银行卡", card_topup: "充值", card_withdraw: "提现", remove: "解绑",
    bank_operations: "充值与提现", no_cards: "还没有银行卡", no_operations: "暂无记录",
    op_status_processing: "处理中", op_status_succeeded: "已完成", op_status_failed: "失败", op_status_paid: "已到账",
    payouts: "提现到银行账户", account_holder: "开户名", account_number: "银行账号", bank_code: "银行代码",
    add_account: "添加银行账户", bank_account: "银行账户", pay_out: "提现", no_payouts: "暂无提现",
    card_added: "银行卡已添加", op_topup: "充值", op_withdrawal: "提现", expiry_format: "有效期格式为 月/年（MM/YYYY）",
    pin_for_card: "输入密码以添加此卡", pin_for_topup: "输入密码以从此卡充值",
    pin_for_withdrawal: "输入密码以提现到此卡",
    ok: "确定", cancel: "取消", delete_digit: "删除最后一位", topup: "充值（沙盒）", amount_major: "金额",
    currency: "币种", add: "充值", topup_done: "充值成功", pay_link: "支付链接或二维码", paste_hint: "粘贴支付链接或二维码内容",
    open: "打开", scan: "扫码", stop_scan: "关闭摄像头", no_camera: "此浏览器无法扫码，请粘贴链接。",
    pay_this: "支付此订单", paid: "支付成功", device_needed: "此笔支付还需要本设备的密钥，现在创建并注册。",
    secret_key: "密钥（sk_…）", balance: "余额", catalog: "商品", sku: "编号", unit_price: "单价",
    active: "在售", inactive: "已下架", save: "保存", deactivate: "下架", activate: "上架", edit: "编辑",
    add_product: "添加商品", cart: "新建收款", quantity: "数量", product: "商品", add_line: "添加一行",
    customer_phone: "顾客手机号（留空则显示二维码）", expires_in_s: "有效期（秒，可选）",
    create_payment: "创建收款", total: "合计", payment: "收款", refund: "退款", refund_amount: "退款金额（留空则全部退还）",
    payments: "收款记录", events: "事件", next: "下一页", previous: "上一页", link: "支付链接", qr_alt: "支付二维码",
    refunded: "已退款 {amount}", remove: "删除", items: "商品", type: "类型", when: "时间", status: "状态",
    live: "实时", reconnecting: "重新连接中…", tier: "档位", language: "语言",
  },
};

export let lang = sessionStorage.getItem("pocket.lang") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

export function locale() { return lang === "zh" ? "zh-CN" : "en-US"; }

export function t(key, vars = {}) {
  const s = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ""));
}

/** Sets the text of every [data-i18n] element (and labels of [data-i18n-label]). */
export function translate(root = document) {
  document.documentElement.lang = locale();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function switchLanguage() {
  lang = lang === "zh" ? "en" : "zh";
  sessionStorage.setItem("pocket.lang", lang);
  translate();
}
