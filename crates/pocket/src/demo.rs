//! Demo data: a merchant with a small catalog and two customers with money, so the
//! README's tour can start at once. Seeding twice is harmless.

use crate::config::Config;
use pocket_core::Currency;
use pocket_core::pricing::Product;
use pocket_http::Settings;
use pocket_http::pins::hash_pin_now;
use pocket_http::secrets::{digest, issue_secret, key_digest};
use pocket_store::SqlStore;
use pocket_store::model::{PageRequest, Written};
use std::sync::Arc;

pub const CUSTOMERS: [(&str, &str, &str); 2] = [
    ("+8613800000001", "Li Lei", "123456"),
    ("+8613800000002", "Han Meimei", "654321"),
];
const CATALOG: [(&str, &str, i64); 4] = [
    ("green-tea", "Green tea", 1299),
    ("oolong", "Oolong tea", 1899),
    ("mooncake", "Mooncake", 2500),
    ("tea-set", "Porcelain tea set", 68_800),
];
const MERCHANT_NAME: &str = "Tea House";
/// What each demo customer starts with: 1,000.00 CNY.
const START_BALANCE_MINOR: i64 = 100_000;

fn fresh<T>(w: Written<T>) -> Result<T, String> {
    match w {
        Written::Fresh(v) => Ok(v),
        Written::Replayed(_) => Err("unexpected replay while seeding".into()),
    }
}

pub async fn seed(store: &Arc<SqlStore>, settings: &Settings) -> Result<(), String> {
    let e = |e: pocket_core::Error| format!("seeding demo data failed: {}", e.message);
    if store
        .pin_state_by_phone(CUSTOMERS[0].0.into())
        .await
        .map_err(e)?
        .is_some()
    {
        println!(
            "Demo data is already present (customers {} and {}).",
            CUSTOMERS[0].0, CUSTOMERS[1].0
        );
        return reissue_merchant_key(store, settings).await;
    }
    let cny = Currency::parse("CNY", "currency").map_err(e)?;
    seed_merchant(store, settings, cny).await?;
    for (phone, name, pin) in CUSTOMERS {
        seed_customer(store, settings, cny, (phone, name, pin)).await?;
    }
    Ok(())
}

/// The demo merchant with its catalog; prints its secret key.
async fn seed_merchant(
    store: &Arc<SqlStore>,
    settings: &Settings,
    cny: Currency,
) -> Result<(), String> {
    let e = |e: pocket_core::Error| format!("seeding demo data failed: {}", e.message);
    let key = issue_secret(&settings.server_key, "sk", None);
    let merchant = fresh(
        store
            .create_merchant(
                MERCHANT_NAME.into(),
                key_digest(&settings.server_key, &key),
                None,
                None,
            )
            .await
            .map_err(e)?,
    )?
    .merchant;
    for (sku, name, price) in CATALOG {
        let p = Product {
            object: "product",
            sku: sku.into(),
            name: name.into(),
            unit_amount: price,
            currency: cny,
            active: true,
        };
        store
            .create_product(merchant.id.clone(), p, None)
            .await
            .map_err(e)?;
    }
    println!(
        "Demo merchant \"{MERCHANT_NAME}\" {}: secret key {key}",
        merchant.id
    );
    println!("  catalog (CNY): green-tea 12.99, oolong 18.99, mooncake 25.00, tea-set 688.00");
    Ok(())
}

/// One demo customer, signed up with its PIN and topped up; prints how to sign in.
async fn seed_customer(
    store: &Arc<SqlStore>,
    settings: &Settings,
    cny: Currency,
    (phone, name, pin): (&str, &str, &str),
) -> Result<(), String> {
    let e = |e: pocket_core::Error| format!("seeding demo data failed: {}", e.message);
    let pin_hash = hash_pin_now(settings.pin_hashing, &settings.server_key, pin).map_err(e)?;
    // A session the demo never hands out: sign in with phone and PIN instead.
    let session = (
        digest(
            &settings.server_key,
            &issue_secret(&settings.server_key, "pst", None),
        ),
        0,
    );
    let c = fresh(
        store
            .signup(phone.into(), name.into(), pin_hash, session, None)
            .await
            .map_err(e)?,
    )?;
    store
        .topup(c.id.clone(), START_BALANCE_MINOR, cny, "operator", None)
        .await
        .map_err(e)?;
    println!(
        "Demo customer {name} {}: phone {phone}, PIN {pin}, balance 1000.00 CNY",
        c.id
    );
    Ok(())
}

/// The demo merchant's key is stored as a digest only, so a restart cannot show the one
/// printed before: it issues a fresh one (the previous stops working) and prints that.
async fn reissue_merchant_key(store: &Arc<SqlStore>, settings: &Settings) -> Result<(), String> {
    let e =
        |e: pocket_core::Error| format!("reissuing the demo merchant's key failed: {}", e.message);
    // The demo merchant: the oldest of its name whose catalog is the demo's (another
    // "Tea House", such as the README tour's, is never touched). Merchants list newest
    // first, so every page is looked at and the last match wins.
    let mut found = None;
    let mut page = PageRequest {
        limit: 100,
        starting_after: None,
    };
    loop {
        let merchants = store.list_merchants(page.clone()).await.map_err(e)?;
        for m in merchants.data.iter().filter(|m| m.name == MERCHANT_NAME) {
            if has_demo_catalog(store, &m.id).await.map_err(e)? {
                found = Some(m.id.clone());
            }
        }
        match (merchants.has_more, merchants.data.last()) {
            (true, Some(last)) => page.starting_after = Some(last.id.clone()),
            _ => break,
        }
    }
    let Some(id) = found else {
        println!("The demo merchant \"{MERCHANT_NAME}\" is gone; no key to print.");
        return Ok(());
    };
    let key = issue_secret(&settings.server_key, "sk", None);
    store
        .roll_merchant_key(
            id.clone(),
            key_digest(&settings.server_key, &key),
            store.now_ms(),
            None,
            None,
        )
        .await
        .map_err(e)?;
    println!(
        "Demo merchant \"{MERCHANT_NAME}\" {id}: secret key {key} (issued at this start; the previous one no longer works)"
    );
    Ok(())
}

/// Does the merchant sell every one of the demo's products?
async fn has_demo_catalog(
    store: &Arc<SqlStore>,
    merchant_id: &str,
) -> Result<bool, pocket_core::Error> {
    let products = store
        .list_products(
            merchant_id.to_string(),
            PageRequest {
                limit: 100,
                starting_after: None,
            },
        )
        .await?;
    Ok(CATALOG
        .iter()
        .all(|(sku, _, _)| products.data.iter().any(|p| p.sku == *sku)))
}

/// `pocket demo-data`: seeds the data directory without serving.
pub async fn seed_standalone(config: Config) -> Result<(), String> {
    let crate::open::Opened {
        store,
        settings,
        new_admin_key,
    } = crate::open::open(&config)?;
    if let Some(key) = new_admin_key {
        println!(
            "Admin key (shown once; also saved in {}): {key}",
            config.server.data.join("admin.key").display()
        );
    }
    seed(&store, &settings).await
}
