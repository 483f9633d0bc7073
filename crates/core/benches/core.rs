//! The pure money rules, timed: `cargo bench -p pocket-core`.

use criterion::{Criterion, criterion_group, criterion_main};
use pocket_core::Currency;
use pocket_core::ledger::{AccountKind, post};
use pocket_core::payment::{CaptureMethod, Payment, Status, decide_confirm, decide_refund};
use pocket_core::policy::Authentication;
use pocket_core::policy::PolicyBook;
use pocket_core::pricing::{CartLine, Product, price_cart};
use pocket_core::risk::{Action, CustomerFacts, Facts, Rule, decide};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

fn cny() -> Currency {
    Currency::parse("CNY", "currency").expect("CNY")
}

fn catalog() -> HashMap<String, Product> {
    (0..50)
        .map(|i| {
            let sku = format!("sku-{i}");
            let p = Product {
                object: "product",
                sku: sku.clone(),
                name: format!("Product {i}"),
                unit_amount: 100 + i,
                currency: cny(),
                active: true,
            };
            (sku, p)
        })
        .collect()
}

fn payment() -> Payment {
    let policy = PolicyBook::default()
        .decide(2598, cny(), "amount")
        .expect("policy");
    Payment {
        id: "pay_AAAAAAAAAAAAAAAAAAAAAAAA".into(),
        object: "payment",
        merchant: "mer_AAAAAAAAAAAAAAAAAAAAAAAA".into(),
        merchant_name: "Tea House".into(),
        customer: Some("cus_AAAAAAAAAAAAAAAAAAAAAAAA".into()),
        customer_name: None,
        customer_phone: None,
        status: Status::Pending,
        amount: 2598,
        currency: cny(),
        items: vec![],
        description: None,
        metadata: BTreeMap::new(),
        policy,
        created_at: 0,
        expires_at: 300_000,
        completed_at: None,
        amount_refunded: 0,
        failure_code: None,
        qr_payload: String::new(),
        capture: CaptureMethod::Automatic,
        capture_before: None,
        amount_captured: 0,
        capture_within_seconds: None,
    }
}

fn benches(c: &mut Criterion) {
    let cat = catalog();
    let cart: Vec<CartLine> = (0..10)
        .map(|i| CartLine {
            sku: format!("sku-{}", i * 3),
            quantity: 1 + i,
        })
        .collect();
    c.bench_function("pricing: 10-line cart", |b| {
        b.iter(|| price_cart(black_box(&cart), cny(), |s| cat.get(s)).expect("priced"))
    });
    let book = PolicyBook::default();
    c.bench_function("policy: decide a tier", |b| {
        b.iter(|| {
            book.decide(black_box(250_000), cny(), "amount")
                .expect("tier")
        })
    });
    c.bench_function("ledger: post a transfer", |b| {
        b.iter(|| {
            post(
                (AccountKind::Wallet, black_box(10_000)),
                (AccountKind::Merchant, black_box(5)),
                black_box(2598),
            )
            .expect("posted")
        })
    });
    let mut p = payment();
    c.bench_function("payment: decide a confirm", |b| {
        b.iter(|| {
            decide_confirm(
                black_box(&p),
                "cus_AAAAAAAAAAAAAAAAAAAAAAAA",
                black_box(1_000),
            )
            .expect("decided")
        })
    });
    p.status = Status::Succeeded;
    c.bench_function("payment: decide a refund", |b| {
        b.iter(|| decide_refund(black_box(&p), Some(100)).expect("refund"))
    });
    // The bench mix's ten rules (scripts/rules_bench.py), none matching.
    let rules: Vec<Rule> = [
        "payment.amount > 100000000 && customer.age_days < 7",
        "customer.payments_last_hour > 100000",
        "customer.spent_today + payment.amount > 1000000000000",
        "payment.currency == 'KWD'",
        "payment.merchant == 'mer_0000000000000000000000000'",
        "payment.tier == 'large' && !device.registered",
        "payment.currency == 'USD' && payment.amount > 50000000",
        "customer.age_days < 0 && customer.payments_last_hour > 5",
        "payment.amount > 1000000000 && payment.amount % 100000 == 0",
        "payment.tier != 'small' && payment.tier != 'medium' && payment.tier != 'large'",
    ]
    .iter()
    .map(|w| Rule::compile("rule_1", "r", w, Action::Block).expect("compiles"))
    .collect();
    let facts = Facts {
        amount: 2598,
        currency: "CNY",
        merchant: "mer_AAAAAAAAAAAAAAAAAAAAAAAA",
        tier: "small",
        customer: CustomerFacts::default(),
    };
    c.bench_function("risk: 10 rules decide", |b| {
        b.iter(|| decide(black_box(&rules), black_box(&facts), Authentication::None))
    });
    let place = pocket_core::emv::QrPlace {
        country: "CN".into(),
        city: "Shanghai".into(),
    };
    c.bench_function("emv: QR payload", |b| {
        b.iter(|| {
            pocket_core::emv::payload(
                "http://127.0.0.1:8080/pay/pay_AAAAAAAAAAAAAAAAAAAAAAAA",
                black_box(2598),
                cny(),
                "Tea House",
                &place,
            )
        })
    });
    // What the code directory pays per active device and step (three steps at each
    // rebuild): a device's secret and one code.
    c.bench_function("code: device secret + one code", |b| {
        b.iter(|| {
            let secret = pocket_core::code::device_secret(
                &[7u8; 32],
                black_box("dev_AAAAAAAAAAAAAAAAAAAAAAAA"),
            );
            pocket_core::code::code_at(&secret, black_box(60_000_000))
        })
    });
}

criterion_group!(core, benches);
criterion_main!(core);
