// Strings in English and Simplified Chinese; the language defaults from the browser
// and can be switched. Elements with data-i18n="key" get their text set. Every key
// exists in both languages (the browser tests check it), and every error `code` the
// server sends has a sentence here; the server's own message is only the fallback.
export const STRINGS = {
  en: {
    lang_switch: "中文", wallet_title: "Pocket wallet", merchant_title: "Pocket for merchants", admin_title: "Pocket operator console",
    sign_in: "Sign in", sign_up: "Create wallet", sign_out: "Sign out", phone: "Phone number",
    phone_hint: "Your mobile number, e.g. 138 0000 0001 or +8613800000001",
    name: "Your name", pin: "PIN (6 digits)", have_wallet: "Already have a wallet?", no_wallet: "New to Pocket?",
    balances: "Balances", no_balance: "No money yet", requests: "Payment requests", no_requests: "Nothing to pay right now",
    history: "History", no_history: "No movements yet", confirm: "Pay", decline: "Decline", expires_in: "Expires in {t}",
    expired: "Expired", status_authorized: "Held", status_pending: "Pending", status_succeeded: "Paid", status_declined: "Declined",
    status_expired: "Expired", status_canceled: "Canceled", status_refunded: "Refunded", status_partially_refunded: "Partially refunded",
    enter_pin: "Enter your PIN", pin_for: "Enter your PIN to pay {amount} to {merchant}",
    tries_left: "{n} more wrong PINs lock your wallet.", tries_left_one: "1 more wrong PIN locks your wallet.",
    cards: "Bank cards", card_number: "Card number", card_expiry: "Expiry (MM/YYYY)", card_cvc: "CVC",
    bind_card: "Add card", card: "Card", card_topup: "Top up", card_withdraw: "Withdraw", remove: "Remove",
    bank_operations: "Top-ups and withdrawals", no_cards: "No card yet", no_operations: "None yet",
    op_status_processing: "Processing", op_status_succeeded: "Done", op_status_failed: "Failed", op_status_paid: "Paid out",
    payouts: "Payouts", account_holder: "Account holder", account_number: "Account number", bank_code: "Bank code",
    add_account: "Add bank account", bank_account: "Bank account", pay_out: "Pay out", no_payouts: "No payouts yet",
    card_added: "Card added", op_topup: "Top-up", op_withdrawal: "Withdrawal", expiry_format: "Enter the expiry as month/year, e.g. 12/2030.",
    card_number_format: "This card number is not valid: check its digits.", cvc_format: "The security code is the 3 or 4 digits on the card.",
    bind_card_first: "Add a card above to add money or withdraw it.",
    pin_for_card: "Your PIN to add this card", pin_for_topup: "Your PIN to take money from this card",
    pin_for_withdrawal: "Your PIN to send money to this card",
    ok: "OK", cancel: "Cancel", delete_digit: "Delete last digit", topup: "Add money (sandbox)", amount_major: "Amount",
    currency: "Currency", add: "Add", topup_done: "Money added", pay_link: "Pay a link or QR code", paste_hint: "Paste a payment link or code",
    open: "Open", scan: "Scan with camera", stop_scan: "Stop camera", no_camera: "This browser cannot scan; paste the link instead.",
    pay_this: "Pay this payment", paid: "Payment done", held: "Amount held: the merchant charges it later",
    held_until: "Held until {time}; charged when the merchant captures it", held_amount: "{amount} held", device_needed: "This payment also needs this device's key; it is created and registered now.",
    secret_key: "Secret key (sk_…)", balance: "Balance", catalog: "Catalog", sku: "SKU", unit_price: "Unit price",
    product_name: "Product name",
    active: "Active", inactive: "Inactive", save: "Save", deactivate: "Deactivate", activate: "Activate", edit: "Edit",
    add_product: "Add product", cart: "New sale", quantity: "Quantity", product: "Product", add_line: "Add line",
    customer_phone: "Customer phone (empty: show a QR code)",
    payment_code_field: "Or charge the customer's payment code (scan or type the 18 digits)", expires_in_s: "Expires in (seconds, optional)", hold_capture_later: "Hold the money; capture later",
    capture_amount: "Amount to capture (empty: all)", capture_payment: "Capture", capture_before: "Capture before {time}", captured: "Captured {amount}",
    create_payment: "Create payment", total: "Total", payment: "Payment", refund: "Refund", refund_amount: "Refund amount (empty: all that is left)",
    payments: "Payments", events: "Events", next: "Next", previous: "Previous", link: "Payment link", qr_alt: "QR code of the payment",
    refunded: "Refunded {amount}", items: "Items", type: "Type", when: "When", status: "Status",
    live: "● Live", reconnecting: "Reconnecting…", offline: "Offline", online: "Online", tier: "Tier", language: "Language", cancel_payment: "Cancel payment", release_hold: "Release hold",
    no_sales_period: "No sales in this period yet", loading: "Loading…",
    customer: "Customer", filter_customer: "Customer (phone)", amount: "Amount", id: "ID", open_qr: "Open payment (QR code)",
    overview: "Overview", developers: "Developers", takings: "Takings", today: "Today", this_week: "Last 7 days",
    per_hour_today: "Today, per hour", per_day: "Last 7 days, per day", outcomes_by_tier: "Outcomes by tier (last 7 days)",
    all: "All", from_date: "From", to_date: "To", apply: "Apply", search_id: "Find a payment by its id", export_csv: "Export CSV",
    timeline: "Timeline", keys: "Secret key", roll_key_hint: "Rolling issues a new key; the one in use keeps working for one more hour, then stops.",
    roll_key_confirm: "Roll {name}'s key? Every current key of this merchant stops working at once.",
    webhooks: "Webhook endpoints", endpoint_url: "Endpoint URL (https)", add_endpoint: "Add endpoint",
    endpoint_secret: "Signing secret (shown only now): {secret}", no_deliveries: "Not delivered yet", no_response: "No response",
    redeliver: "Send again", redelivery_queued: "Queued to send again", no_events: "No events yet", no_endpoints: "No endpoint yet: events are kept here.",
    no_payments: "No payments match", overview_partial: "Figures from the latest {n} payments only.",
    page_payment_id: "A payment id looks like pay_ followed by 24 letters and digits.",
    tier_small: "Small", tier_medium: "Medium", tier_large: "Large",
    tab_home: "Home", tab_pay: "Pay", tab_cards: "Cards", tab_history: "History", tab_me: "Me",
    paycode_title: "Pay at a till", paycode_hint: "Show this code to the cashier. It changes every 30 seconds and works without a network.",
    paycode_show: "Show payment code", paycode_hide: "Hide code", paycode_qr_alt: "Your payment code as a QR code",
    paycode_bar_alt: "Your payment code as a barcode", paycode_left: "Changes in {s} s",
    paycode_pin: "Enter your PIN to turn on payment codes on this phone", paycode_on: "Payment codes are on for this phone.",
    later: "Later", receipt: "Receipt", done: "Done", merchant: "Merchant", payment_id: "Payment ID", paid_at: "Paid at",
    sign_in_to_pay: "Sign in to pay this.",
    // Transaction kinds in the wallet's history.
    kind_topup: "Top-up", kind_payment: "Payment", kind_refund: "Refund", kind_withdrawal: "Withdrawal", kind_payout: "Payout",
    kind_hold: "Held", kind_capture: "Captured", kind_release: "Released", kind_declined: "Declined", kind_expired: "Expired", kind_canceled: "Canceled",
    reminder_from: "{merchant} sent this request again", history_kind: "Show", month_flow: "In {in} · Out {out}", refund_arrived: "Refund of {amount} from {merchant} arrived",
    // Event types.
    event_payment_created: "Payment created", event_payment_authorized: "Payment held", event_payment_succeeded: "Payment succeeded", event_payment_declined: "Payment declined",
    event_payment_expired: "Payment expired", event_payment_canceled: "Payment canceled", event_payment_reminded: "Request sent again",
    remind: "Send the request again", reminded: "Sent to the customer's wallet again.", err_too_many_reminders: "This request was already sent again 3 times.", event_refund_succeeded: "Refund made",
    event_topup_succeeded: "Top-up done", event_topup_failed: "Top-up failed", event_withdrawal_succeeded: "Withdrawal done",
    event_withdrawal_failed: "Withdrawal failed", event_payout_paid: "Payout paid", event_payout_failed: "Payout failed",
    // The operator console.
    admin_key: "Admin key", merchants: "Merchants", new_merchant: "New merchant", merchant_name: "Merchant name",
    create_merchant: "Create merchant", roll_key: "Roll key", new_key_shown_once: "New secret key for {name} (shown only now): {key}",
    issue_pin_reset: "Issue a PIN reset code", pin_reset_code: "One-time code, valid until {time}:",
    customers: "Customers", find_customer: "Find customer", find: "Find", no_customer: "No wallet has this phone number.",
    admin_topup: "Top up a wallet", topup_customer: "Customer (phone or cus_ id)", ledger: "Ledger audit", run_full_audit: "Run a full audit",
    balanced: "Balanced", not_balanced: "NOT balanced", debits: "Debits", credits: "Credits", accounts: "Accounts", transfers: "Transfers",
    system: "System, live", payments_per_second: "Payments per second", expiry_lag: "Expiry lag (p99)", webhook_backlog: "Webhook backlog",
    reconciliation: "Reconciliation", risk_rules: "Risk rules", rule_name: "Name", rule_when: "When (CEL)", rule_action: "Action",
    rules_help: "A rule is a CEL expression (Common Expression Language) that gives true or false. It applies at once to new payments and to every confirm. Fields:",
    action_require_pin: "Require the PIN", action_require_pin_and_device: "Require the PIN and the device key", action_block: "Block",
    add_rule: "Add rule", remove_rule: "Remove", no_rules: "No rules: the amount tiers alone decide.",
    rule_when_hint: "Amounts are in minor units: 100000 is CN¥1,000.00.",
    err_rule_invalid: "The expression is not valid", err_too_many_rules: "There are too many rules; remove one first.",
    err_payment_blocked: "A risk rule blocks this payment.", err_limit_exceeded: "This would pass the wallet's daily spending limit.",
    err_payment_code_invalid: "This payment code is not valid now; ask the customer to show the current one.",
    connector: "Connector", date_utc: "Date (UTC)", reconcile: "Reconcile",
    difference: "Difference", operation: "Operation", in_pocket: "In Pocket", at_bank: "At the bank",
    reconcile_clean: "{matched} operations match; no differences.", reconcile_differences: "{matched} operations match; {n} differ.",
    diff_missing_at_connector: "Unknown to the bank", diff_missing_in_pocket: "Unknown to Pocket",
    diff_amount_mismatch: "Amounts differ", diff_status_mismatch: "Outcomes differ",
    diff_refused_answer: "Bank answer refused",
    no_merchants: "No merchants yet", created: "Created", refresh: "Refresh", unit_ms: "ms", actions: "Actions",
    // Errors made in the page.
    page_amount: "Enter an amount such as 12.50.", page_unit_price: "Enter the unit price as an amount such as 12.99.",
    page_link: "That is not a Pocket payment link or code.", page_phone: "Enter a mobile number such as 138 0000 0001.",
    page_pin: "The PIN is 6 digits.", page_network: "Pocket cannot be reached. Check your connection and try again.",
    // Errors from the server, by code (and code__param where the field matters).
    err_fallback: "Something went wrong ({code}). Please try again.",
    err_parameter_invalid: "Please check this field: {field}.",
    err_parameter_invalid__customer: "Enter the customer's mobile number, e.g. 138 0000 0001.",
    err_parameter_invalid__phone: "Enter a mobile number such as 138 0000 0001.",
    err_parameter_invalid__pin: "The PIN is 6 digits.",
    err_parameter_invalid__name: "Enter a name.",
    err_parameter_invalid__expires_in: "The time to pay must be a whole number of seconds within the payment's window.",
    err_parameter_invalid__quantity: "Each quantity must be a whole number from 1 to 10,000.",
    err_parameter_invalid__url: "The address must start with https:// or http://, carry no user name, and reach a public host: Pocket does not call private or local networks.",
    err_resource_missing__customer: "No wallet has this phone number.",
    err_resource_missing__phone: "No wallet has this phone number.",
    err_parameter_missing: "Please fill in: {field}.",
    err_unknown_field: "The request had a field Pocket does not know ({field}).",
    err_invalid_json: "The request could not be read.", err_invalid_body: "The request could not be read.",
    err_currency_unsupported: "This currency is not supported.", err_currency_mismatch: "Every item must be in the payment's currency.",
    err_amount_too_large: "This amount is too large.", err_amount_mismatch: "The amount differs from the cart's total.",
    err_unknown_sku: "A product in the cart is not in the catalog.", err_sku_inactive: "A product in the cart is not on sale.",
    err_sku_taken: "A product with this SKU already exists.", err_phone_taken: "A wallet with this phone number already exists. Sign in instead.",
    err_invalid_api_key: "This key is not valid (or was rolled).", err_invalid_token: "Your session has ended. Please sign in again.",
    forgot_pin: "Forgot your PIN?", reset_pin: "Set a new PIN", reset_hint: "Ask the operator for a one-time code; it works once, within 15 minutes.",
    reset_code: "One-time code", new_pin: "New PIN", old_pin: "Current PIN", change_pin: "Change PIN", pin_changed_done: "PIN changed. Other phones were signed out.",
    devices: "Devices", devices_hint: "Phones that can show your payment code and sign large payments.", no_devices: "No devices yet: showing the payment code adds this phone.",
    this_device: "this phone", remove_device: "Remove", device_removed: "removed", device_added: "added {time}", lang_switch_long: "中文 · Language", back: "Back",
    err_reset_code_invalid: "This code is wrong, used or expired. Ask the operator for a new one.", err_pin_changed: "The PIN was changed meanwhile; sign in with the new one.",
    err_parameter_invalid__new_pin: "The new PIN must be 6 digits and not the current one.", err_parameter_invalid__old_pin: "Enter your current 6-digit PIN.",
    err_parameter_invalid__code: "Enter the 10 digits of the code.",
    staff_sign_in: "Staff: sign in with your wallet", staff_merchant: "Shop (mer_…)", sign_in_staff: "Sign in as staff",
    staff: "Staff", staff_hint: "People who sign in with their own wallet: a cashier sells and sees the takings; a manager also refunds and keeps the catalog; a developer manages webhooks; an owner does everything.",
    role: "Role", role_cashier: "Cashier", role_manager: "Manager", role_developer: "Developer", role_owner: "Owner", add_staff: "Add", no_staff: "No staff yet",
    restricted_keys: "Restricted keys", restricted_keys_hint: "Keys for a till or a service that may do only what you tick.", scopes: "May",
    scope_read: "read everything", scope_payments_write: "take payments", scope_refunds_write: "refund", scope_catalog_write: "change the catalog",
    scope_payouts_write: "pay out", scope_webhooks_write: "manage webhooks", create_key: "Create key", revoke: "Revoke", no_restricted_keys: "No restricted keys",
    key_shown_once: "Copy it now; it is not shown again:",
    err_scope_missing: "Your role may not do this.", err_staff_exists: "This person is already on the staff.", err_resource_missing__staff: "This wallet is on no shop's staff.",
    quick_actions: "Quick actions", scan_short: "Scan", pay_code_short: "Pay", recent_bills: "Recent bills", all_bills: "All bills",
    scan_nothing: "No payment code was seen. Hold the QR code in front of the camera, or paste its link.",
    err_notification_mismatch: "The bank's notice does not match the operation.", err_rules_too_large: "The rules are too long in all; shorten or remove one.",
    err_statement_invalid: "The bank's statement could not be read.", err_too_many_keys: "There are too many restricted keys; revoke one first.",
    err_too_many_staff: "There are too many staff; remove someone first.",
    err_incorrect_pin: "The PIN is not correct.", err_pin_required: "This payment needs your PIN.",
    err_pin_locked: "Too many wrong PINs: your wallet is locked for a while. Try again later.",
    err_device_signature_required: "This payment also needs this device's key.", err_invalid_signature: "This device's signature was not accepted.",
    err_insufficient_funds: "Not enough money in your wallet for this payment.", err_balance_limit: "This would take the balance over its limit.",
    err_sandbox_only: "Adding money without a card works only on a sandbox server.",
    err_resource_missing: "Not found: it may not exist, or it is not yours.",
    err_payment_expired: "This payment has expired.", err_payment_not_pending: "This payment is no longer waiting to be paid.",
    err_payment_open: "An open payment (QR code) cannot be declined; just don't pay it.",
    err_payment_not_succeeded: "Only a paid payment can be refunded.", err_refund_exceeds_payment: "A refund cannot exceed what is left of the payment.",
    err_payment_not_authorized: "Only a held payment can be captured.", err_capture_expired: "The hold ran out before it was captured; the money went back to the customer.",
    err_capture_exceeds_authorization: "A capture cannot exceed the held amount.",
    err_key_expiring: "This key is being retired; use the newest key to roll.",
    err_idempotency_key_reused: "This request was already sent with different details.", err_session_ended: "That session has ended. Please sign in again.",
    err_body_too_large: "The request is too large.", err_body_timeout: "The request took too long to arrive.",
    err_rate_limited: "Too many attempts. Wait a moment and try again.",
    err_server_busy: "Pocket is busy. Try again in a moment.", err_storage_unavailable: "Pocket cannot save right now. Nothing was done; try again in a moment.",
    err_outcome_unknown: "Pocket could not confirm whether this went through. Check before trying again.",
    err_connector_unavailable: "The bank cannot be reached. Try again later.", err_card_declined: "The bank declined this card.",
    err_card_already_bound: "This card is already in your wallet.", err_card_number_invalid: "This card number is not valid.",
    err_card_expired: "This card has expired.", err_too_many_cards: "This wallet has as many cards as it may hold.",
    err_too_many_bank_accounts: "This merchant has as many bank accounts as it may hold.",
    err_method_not_allowed: "This action is not possible here.", err_internal: "Something went wrong on Pocket's side. Please try again.",
    // Field names used in "Please check this field".
    field_amount: "amount", field_currency: "currency", field_customer: "customer", field_phone: "phone number",
    field_items: "items", field_sku: "SKU", field_unit_amount: "unit price", field_name: "name", field_pin: "PIN",
    field_number: "card number", field_exp_month: "expiry month", field_exp_year: "expiry year", field_cvc: "CVC",
    field_account_number: "account number", field_bank_code: "bank code", field_holder_name: "account holder",
    field_expires_in: "time to pay", field_description: "description",
  },
  zh: {
    lang_switch: "English", wallet_title: "Pocket 钱包", merchant_title: "Pocket 商户后台", admin_title: "Pocket 运营后台",
    sign_in: "登录", sign_up: "创建钱包", sign_out: "退出", phone: "手机号",
    phone_hint: "您的手机号，如 138 0000 0001 或 +8613800000001",
    name: "您的姓名", pin: "支付密码（6 位数字）", have_wallet: "已有钱包？", no_wallet: "第一次使用？",
    balances: "余额", no_balance: "暂无余额", requests: "待支付", no_requests: "暂无待支付的请求",
    history: "账单", no_history: "暂无收支记录", confirm: "支付", decline: "拒绝", expires_in: "剩余 {t}",
    expired: "已过期", status_authorized: "已冻结", status_pending: "待支付", status_succeeded: "已支付", status_declined: "已拒绝",
    status_expired: "已过期", status_canceled: "已取消", status_refunded: "已退款", status_partially_refunded: "部分退款",
    enter_pin: "请输入支付密码", pin_for: "输入支付密码，向 {merchant} 支付 {amount}",
    tries_left: "再输错 {n} 次，钱包将被锁定。", tries_left_one: "再输错 1 次，钱包将被锁定。",
    cards: "银行卡", card_number: "卡号", card_expiry: "有效期（月/年）", card_cvc: "安全码",
    bind_card: "添加银行卡", card: "银行卡", card_topup: "充值", card_withdraw: "提现", remove: "删除",
    bank_operations: "充值与提现", no_cards: "还没有银行卡", no_operations: "暂无记录",
    op_status_processing: "处理中", op_status_succeeded: "已完成", op_status_failed: "失败", op_status_paid: "已到账",
    payouts: "提现", account_holder: "开户名", account_number: "银行账号", bank_code: "银行代码",
    add_account: "添加银行账户", bank_account: "银行账户", pay_out: "提现", no_payouts: "暂无提现",
    card_added: "银行卡已添加", op_topup: "充值", op_withdrawal: "提现", expiry_format: "请按 月/年 填写有效期，如 12/2030。",
    card_number_format: "卡号无效，请核对数字。", cvc_format: "安全码是卡上的 3 或 4 位数字。",
    bind_card_first: "请先在上方添加银行卡，才能充值或提现。",
    pin_for_card: "输入密码以添加此卡", pin_for_topup: "输入密码以从此卡充值",
    pin_for_withdrawal: "输入密码以提现到此卡",
    ok: "确定", cancel: "取消", delete_digit: "删除最后一位", topup: "充值（沙盒）", amount_major: "金额",
    currency: "币种", add: "充值", topup_done: "充值成功", pay_link: "支付链接或二维码", paste_hint: "粘贴支付链接或二维码内容",
    open: "打开", scan: "扫码", stop_scan: "关闭摄像头", no_camera: "此浏览器无法扫码，请粘贴链接。",
    pay_this: "支付此订单", paid: "支付成功", held: "款项已冻结，商户稍后扣款",
    held_until: "冻结至 {time}，商户扣款后完成支付", held_amount: "冻结 {amount}", device_needed: "此笔支付还需要本设备的密钥，现在创建并注册。",
    secret_key: "密钥（sk_…）", balance: "余额", catalog: "商品", sku: "编号", unit_price: "单价",
    product_name: "商品名称",
    active: "在售", inactive: "已下架", save: "保存", deactivate: "下架", activate: "上架", edit: "编辑",
    add_product: "添加商品", cart: "新建收款", quantity: "数量", product: "商品", add_line: "添加一行",
    customer_phone: "顾客手机号（留空则显示二维码）",
    payment_code_field: "或扫描顾客的付款码（也可输入 18 位数字）", expires_in_s: "有效期（秒，可选）", hold_capture_later: "预授权：先冻结，稍后扣款",
    capture_amount: "扣款金额（留空则全部）", capture_payment: "确认扣款", capture_before: "请在 {time} 前扣款", captured: "已扣款 {amount}",
    create_payment: "创建收款", total: "合计", payment: "收款", refund: "退款", refund_amount: "退款金额（留空则全部退还）",
    payments: "收款记录", events: "事件", next: "下一页", previous: "上一页", link: "支付链接", qr_alt: "支付二维码",
    refunded: "已退款 {amount}", items: "商品", type: "类型", when: "时间", status: "状态",
    live: "● 实时", reconnecting: "重新连接中…", offline: "离线", online: "已联网", tier: "档位", language: "语言", cancel_payment: "取消收款", release_hold: "释放冻结",
    no_sales_period: "这段时间还没有收款", loading: "加载中…",
    customer: "顾客", filter_customer: "顾客（手机号）", amount: "金额", id: "编号", open_qr: "公开收款（二维码）",
    overview: "概览", developers: "开发者", takings: "收入", today: "今天", this_week: "最近 7 天",
    per_hour_today: "今天（按小时）", per_day: "最近 7 天（按天）", outcomes_by_tier: "各档位结果（最近 7 天）",
    all: "全部", from_date: "开始日期", to_date: "结束日期", apply: "筛选", search_id: "按编号查找收款", export_csv: "导出 CSV",
    timeline: "时间线", keys: "密钥", roll_key_hint: "更换后会发放新密钥；正在使用的密钥还可使用一小时，之后失效。",
    roll_key_confirm: "确定更换 {name} 的密钥？该商户现有的所有密钥将立即失效。",
    webhooks: "通知地址", endpoint_url: "通知网址", add_endpoint: "添加地址",
    endpoint_secret: "签名密钥（仅显示这一次）：{secret}", no_deliveries: "尚未发送", no_response: "无响应",
    redeliver: "重新发送", redelivery_queued: "已排队重新发送", no_events: "暂无事件", no_endpoints: "尚未设置通知地址，事件保存在这里。",
    no_payments: "没有符合条件的收款", overview_partial: "仅统计最近 {n} 笔收款。",
    page_payment_id: "收款编号形如 pay_ 加 24 位字母和数字。",
    tier_small: "小额", tier_medium: "中额", tier_large: "大额",
    tab_home: "首页", tab_pay: "付款", tab_cards: "银行卡", tab_history: "账单", tab_me: "我的",
    paycode_title: "向商家付款", paycode_hint: "请向收银员出示付款码。付款码每 30 秒更新一次，无网络时也可使用。",
    paycode_show: "显示付款码", paycode_hide: "隐藏付款码", paycode_qr_alt: "付款码二维码",
    paycode_bar_alt: "付款码条形码", paycode_left: "{s} 秒后更新",
    paycode_pin: "输入支付密码，在本机开通付款码", paycode_on: "本机已开通付款码。",
    later: "稍后", receipt: "支付凭证", done: "完成", merchant: "商户", payment_id: "支付编号", paid_at: "支付时间",
    sign_in_to_pay: "登录后即可支付。",
    kind_topup: "充值", kind_payment: "付款", kind_refund: "退款", kind_withdrawal: "提现", kind_payout: "结算",
    kind_hold: "已冻结", kind_capture: "已扣款", kind_release: "已解冻", kind_declined: "已拒绝", kind_expired: "已过期", kind_canceled: "已取消",
    reminder_from: "{merchant} 再次发送了收款请求", history_kind: "显示", month_flow: "收入 {in} · 支出 {out}", refund_arrived: "已收到 {merchant} 的退款 {amount}",
    event_payment_created: "收款已创建", event_payment_authorized: "款项已冻结", event_payment_succeeded: "收款成功", event_payment_declined: "顾客已拒绝",
    event_payment_expired: "收款已过期", event_payment_canceled: "收款已取消", event_payment_reminded: "已再次发送收款请求",
    remind: "再次发送收款请求", reminded: "已再次发送到顾客的钱包。", err_too_many_reminders: "此收款请求已再次发送过 3 次。", event_refund_succeeded: "已退款",
    event_topup_succeeded: "充值成功", event_topup_failed: "充值失败", event_withdrawal_succeeded: "提现成功",
    event_withdrawal_failed: "提现失败", event_payout_paid: "结算已到账", event_payout_failed: "结算失败",
    admin_key: "管理密钥", merchants: "商户", new_merchant: "新建商户", merchant_name: "商户名称",
    create_merchant: "创建商户", roll_key: "更换密钥", new_key_shown_once: "{name} 的新密钥（仅显示这一次）：{key}",
    issue_pin_reset: "生成重置支付密码验证码", pin_reset_code: "一次性验证码，有效期至 {time}：",
    customers: "顾客", find_customer: "查找顾客", find: "查找", no_customer: "没有使用此手机号的钱包。",
    admin_topup: "为钱包充值", topup_customer: "顾客（手机号或 cus_ 编号）", ledger: "账本核对", run_full_audit: "完整核对",
    balanced: "平衡", not_balanced: "不平衡", debits: "借方", credits: "贷方", accounts: "账户数", transfers: "转账数",
    system: "系统实时状态", payments_per_second: "每秒支付数", expiry_lag: "过期延迟（p99）", webhook_backlog: "待发送通知",
    reconciliation: "对账", risk_rules: "风控规则", rule_name: "名称", rule_when: "条件表达式", rule_action: "动作",
    rules_help: "规则是一条通用表达式语言的条件，结果为真或假，立即作用于新收款和每一次确认支付。可用字段：",
    action_require_pin: "要求支付密码", action_require_pin_and_device: "要求支付密码和设备密钥", action_block: "拦截",
    add_rule: "添加规则", remove_rule: "删除", no_rules: "暂无规则：仅按金额档位决定。",
    rule_when_hint: "金额以最小货币单位计：100000 即 ¥1,000.00。",
    err_rule_invalid: "表达式无效", err_too_many_rules: "规则过多，请先删除一条。",
    err_payment_blocked: "此笔支付被风控规则拦截。", err_limit_exceeded: "超出钱包的每日消费限额。",
    err_payment_code_invalid: "付款码无效，请顾客刷新后重新出示。",
    connector: "银行通道", date_utc: "日期（协调世界时）", reconcile: "对账",
    difference: "差异", operation: "业务", in_pocket: "Pocket 记录", at_bank: "银行记录",
    reconcile_clean: "{matched} 笔一致，无差异。", reconcile_differences: "{matched} 笔一致，{n} 笔有差异。",
    diff_missing_at_connector: "银行无此记录", diff_missing_in_pocket: "Pocket 无此记录",
    diff_amount_mismatch: "金额不一致", diff_status_mismatch: "结果不一致",
    diff_refused_answer: "银行应答被拒",
    no_merchants: "暂无商户", created: "创建时间", refresh: "刷新", unit_ms: "毫秒", actions: "操作",
    page_amount: "请输入金额，如 12.50。", page_unit_price: "请输入单价，如 12.99。",
    page_link: "这不是 Pocket 的支付链接或付款码。", page_phone: "请输入手机号，如 138 0000 0001。",
    page_pin: "支付密码为 6 位数字。", page_network: "无法连接 Pocket，请检查网络后重试。",
    err_fallback: "操作未完成（{code}），请重试。",
    err_parameter_invalid: "请检查：{field}。",
    err_parameter_invalid__customer: "请输入顾客的手机号，如 138 0000 0001。",
    err_parameter_invalid__phone: "请输入手机号，如 138 0000 0001。",
    err_parameter_invalid__pin: "支付密码为 6 位数字。",
    err_parameter_invalid__name: "请输入名称。",
    err_parameter_invalid__expires_in: "有效期须为整数秒，且不超过此金额档位的时限。",
    err_parameter_invalid__quantity: "数量须为 1 到 10,000 的整数。",
    err_parameter_invalid__url: "地址须以 https:// 或 http:// 开头、不含用户名，并指向公网主机：Pocket 不会调用内网或本机地址。",
    err_resource_missing__customer: "没有使用此手机号的钱包。",
    err_resource_missing__phone: "没有使用此手机号的钱包。",
    err_parameter_missing: "请填写：{field}。",
    err_unknown_field: "请求中有 Pocket 不认识的字段（{field}）。",
    err_invalid_json: "无法读取请求。", err_invalid_body: "无法读取请求。",
    err_currency_unsupported: "不支持此币种。", err_currency_mismatch: "所有商品须与收款使用同一币种。",
    err_amount_too_large: "金额过大。", err_amount_mismatch: "金额与购物车合计不符。",
    err_unknown_sku: "购物车中有商品不在商品目录里。", err_sku_inactive: "购物车中有商品已下架。",
    err_sku_taken: "已有相同编号的商品。", err_phone_taken: "此手机号已有钱包，请直接登录。",
    err_invalid_api_key: "密钥无效（或已更换）。", err_invalid_token: "登录已失效，请重新登录。",
    forgot_pin: "忘记支付密码？", reset_pin: "设置新支付密码", reset_hint: "请向运营人员索取一次性验证码；15 分钟内有效，只能使用一次。",
    reset_code: "一次性验证码", new_pin: "新支付密码", old_pin: "当前支付密码", change_pin: "修改支付密码", pin_changed_done: "支付密码已修改，其他手机已退出登录。",
    devices: "设备", devices_hint: "可以出示付款码、为大额支付签名的手机。", no_devices: "暂无设备：出示付款码时会添加本机。",
    this_device: "本机", remove_device: "移除", device_removed: "已移除", device_added: "添加于 {time}", lang_switch_long: "English · 语言", back: "返回",
    err_reset_code_invalid: "验证码错误、已使用或已过期，请向运营人员索取新的验证码。", err_pin_changed: "支付密码已被修改，请用新密码登录。",
    err_parameter_invalid__new_pin: "新支付密码须为 6 位数字，且不能与当前密码相同。", err_parameter_invalid__old_pin: "请输入当前的 6 位支付密码。",
    err_parameter_invalid__code: "请输入 10 位验证码。",
    staff_sign_in: "店员：用钱包登录", staff_merchant: "店铺（mer_…）", sign_in_staff: "以店员身份登录",
    staff: "店员", staff_hint: "用自己的钱包登录的人：收银员可收款、查看收入；店长还可退款、管理商品；开发者管理通知地址；店主可做一切。",
    role: "角色", role_cashier: "收银员", role_manager: "店长", role_developer: "开发者", role_owner: "店主", add_staff: "添加", no_staff: "暂无店员",
    restricted_keys: "受限密钥", restricted_keys_hint: "给收银机或服务使用的密钥，只能做你勾选的事。", scopes: "可以",
    scope_read: "查看全部", scope_payments_write: "收款", scope_refunds_write: "退款", scope_catalog_write: "修改商品",
    scope_payouts_write: "提现", scope_webhooks_write: "管理通知地址", create_key: "创建密钥", revoke: "吊销", no_restricted_keys: "暂无受限密钥",
    key_shown_once: "请立即复制，之后不再显示：",
    err_scope_missing: "你的角色不能执行此操作。", err_staff_exists: "此人已是店员。", err_resource_missing__staff: "此钱包不是任何店铺的店员。",
    quick_actions: "快捷操作", scan_short: "扫一扫", pay_code_short: "付款码", recent_bills: "最近账单", all_bills: "全部账单",
    scan_nothing: "没有识别到付款二维码。请将二维码对准摄像头，或粘贴链接。",
    err_notification_mismatch: "银行通知与该笔操作不符。", err_rules_too_large: "规则总长度过长，请缩短或删除一条。",
    err_statement_invalid: "无法读取银行对账单。", err_too_many_keys: "受限密钥过多，请先吊销一个。",
    err_too_many_staff: "店员过多，请先移除一人。",
    err_incorrect_pin: "支付密码不正确。", err_pin_required: "此笔支付需要输入支付密码。",
    err_pin_locked: "密码错误次数过多，钱包已暂时锁定，请稍后再试。",
    err_device_signature_required: "此笔支付还需要本设备的密钥。", err_invalid_signature: "本设备的签名未通过验证。",
    err_insufficient_funds: "钱包余额不足。", err_balance_limit: "余额将超过上限。",
    err_sandbox_only: "不绑卡充值仅在沙盒服务器上可用。",
    err_resource_missing: "未找到：可能不存在，或不属于您。",
    err_payment_expired: "此笔收款已过期。", err_payment_not_pending: "此笔收款已不再等待支付。",
    err_payment_open: "公开收款（二维码）无法拒绝，不支付即可。",
    err_payment_not_succeeded: "只有已支付的收款可以退款。", err_refund_exceeds_payment: "退款金额不能超过剩余可退金额。",
    err_payment_not_authorized: "只有已冻结的收款可以扣款。", err_capture_expired: "冻结已到期，款项已退回顾客。",
    err_capture_exceeds_authorization: "扣款金额不能超过冻结金额。",
    err_key_expiring: "此密钥即将失效，请用最新的密钥更换。",
    err_idempotency_key_reused: "此请求已用不同内容提交过。", err_session_ended: "此次登录已结束，请重新登录。",
    err_body_too_large: "请求内容过大。", err_body_timeout: "请求发送超时。",
    err_rate_limited: "尝试次数过多，请稍候再试。",
    err_server_busy: "Pocket 正忙，请稍后再试。", err_storage_unavailable: "Pocket 暂时无法保存，本次未做任何更改，请稍后再试。",
    err_outcome_unknown: "Pocket 无法确认此操作是否完成，请先查看再重试。",
    err_connector_unavailable: "暂时无法连接银行，请稍后再试。", err_card_declined: "银行拒绝了此卡。",
    err_card_already_bound: "此卡已在您的钱包中。", err_card_number_invalid: "卡号无效。",
    err_card_expired: "此卡已过期。", err_too_many_cards: "钱包绑定的银行卡已达上限。",
    err_too_many_bank_accounts: "此商户的银行账户已达上限。",
    err_method_not_allowed: "此处无法进行该操作。", err_internal: "Pocket 出现问题，请重试。",
    field_amount: "金额", field_currency: "币种", field_customer: "顾客", field_phone: "手机号",
    field_items: "商品", field_sku: "编号", field_unit_amount: "单价", field_name: "名称", field_pin: "支付密码",
    field_number: "卡号", field_exp_month: "有效期月份", field_exp_year: "有效期年份", field_cvc: "安全码",
    field_account_number: "银行账号", field_bank_code: "银行代码", field_holder_name: "开户名",
    field_expires_in: "有效期", field_description: "描述",
  },
};

export let lang = sessionStorage.getItem("pocket.lang") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

export function locale() { return lang === "zh" ? "zh-CN" : "en-US"; }

export function has(key) { return key in STRINGS[lang] || key in STRINGS.en; }

export function t(key, vars = {}) {
  const s = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ""));
}

/** Keys present in one language and not the other (the tests want none). */
export function missingKeys() {
  const en = Object.keys(STRINGS.en), zh = Object.keys(STRINGS.zh);
  return { zh: en.filter((k) => !(k in STRINGS.zh)), en: zh.filter((k) => !(k in STRINGS.en)) };
}

/** A person's sentence for an error: a server error by its `code` (and `param`), an
 *  error made in the page by its key. The server's message is the last fallback. */
export function errorText(err) {
  if (!err) return "";
  if (err.pageKey) return t(err.pageKey);
  if (err.code) {
    const param = err.param ? err.param.replace(/\[\d+\]/g, "").split(".").pop() : null;
    let text;
    if (param && has(`err_${err.code}__${param}`)) text = t(`err_${err.code}__${param}`);
    else if (has(`err_${err.code}`)) {
      const field = param ? (has(`field_${param}`) ? t(`field_${param}`) : param) : "";
      text = t(`err_${err.code}`, { field });
    } else {
      text = lang === "en" && err.message ? err.message : t("err_fallback", { code: err.code });
    }
    // An operator writing a rule needs the parser's own words (CEL is written in English).
    if (err.code === "rule_invalid" && err.message) text += `: ${err.message}`;
    if (err.code === "incorrect_pin" && Number.isInteger(err.triesLeft) && err.triesLeft > 0) {
      text += (lang === "zh" ? "" : " ") + (err.triesLeft === 1 ? t("tries_left_one") : t("tries_left", { n: err.triesLeft }));
    }
    return text;
  }
  if (err instanceof TypeError) return t("page_network");
  return err.message || String(err);
}

/** Errors on screen, so a language switch says them again in the new language. */
const shownErrors = new Map();

/** Shows `err` (or nothing) in `target` as a sentence in the page's language; the
 *  server's own message stays in the title for whoever needs it. */
export function renderError(target, err) {
  if (err) shownErrors.set(target, err); else shownErrors.delete(target);
  target.textContent = err ? errorText(err) : "";
  if (err && err.code && err.message) target.title = err.message;
  else target.removeAttribute("title");
}

/** Sets the text of every [data-i18n] element (and labels of [data-i18n-label]). */
export function translate(root = document) {
  for (const [target, err] of shownErrors) {
    if (target.isConnected) target.textContent = errorText(err); else shownErrors.delete(target);
  }
  document.documentElement.lang = locale();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-alt]")) el.alt = t(el.dataset.i18nAlt);
  const title = root.querySelector("[data-i18n-title]");
  if (title) document.title = t(title.dataset.i18nTitle);
}

export function switchLanguage() {
  lang = lang === "zh" ? "en" : "zh";
  sessionStorage.setItem("pocket.lang", lang);
  translate();
}
