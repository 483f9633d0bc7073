//! Merchants' catalogs: products by sku.

use super::{Db, cursor_seq, stored_currency};
use crate::ProductPatch;
use crate::model::{Page, PageRequest};
use crate::sql::{Conn, Optional, Row, params};
use pocket_core::Error;
use pocket_core::pricing::Product;
use std::collections::HashMap;

const COLS: &str = "sku, name, unit_amount, currency, active";

fn product(r: &Row<'_>) -> crate::sql::Result<(String, String, i64, String, bool)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_product(row: (String, String, i64, String, bool)) -> Result<Product, Error> {
    let (sku, name, unit_amount, code, active) = row;
    Ok(Product {
        object: "product",
        sku,
        name,
        unit_amount,
        currency: stored_currency(&code)?,
        active,
    })
}

pub(crate) fn get(conn: &Conn, merchant_id: &str, sku: &str) -> Result<Option<Product>, Error> {
    let sql = format!("SELECT {COLS} FROM products WHERE merchant_id = ?1 AND sku = ?2");
    conn.prepare_cached(&sql)
        .db()?
        .query_row(params![merchant_id, sku], product)
        .optional()
        .db()?
        .map(to_product)
        .transpose()
}

/// The products of `skus` (at most a cart's worth) that exist, by sku, in one
/// statement: on PostgreSQL each statement is a round trip.
pub(crate) fn get_many(
    conn: &Conn,
    merchant_id: &str,
    skus: &[&str],
) -> Result<HashMap<String, Product>, Error> {
    let mut wanted = skus.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() || wanted.len() > pocket_core::pricing::MAX_CART_LINES {
        // Refused by pricing, which names the limit.
        return Ok(HashMap::new());
    }
    let placeholders: Vec<String> = (0..wanted.len()).map(|i| format!("?{}", i + 2)).collect();
    let sql = format!(
        "SELECT {COLS} FROM products WHERE merchant_id = ?1 AND sku IN ({})",
        placeholders.join(", ")
    );
    let mut args = vec![crate::sql::Value::Text(merchant_id)];
    args.extend(wanted.iter().map(|sku| crate::sql::Value::Text(sku)));
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows: Vec<_> = stmt
        .query_map(crate::sql::params_from_iter(args), product)
        .db()?
        .collect::<crate::sql::Result<_>>()
        .db()?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let p = to_product(row)?;
        out.insert(p.sku.clone(), p);
    }
    Ok(out)
}

pub(crate) fn create(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    p: &Product,
) -> Result<Product, Error> {
    if get(conn, merchant_id, &p.sku)?.is_some() {
        return Err(Error::conflict(
            "sku_taken",
            format!("A product with sku '{}' already exists.", p.sku),
        )
        .with_param("sku"));
    }
    // The (merchant, sku) key decides between two creates on two nodes at once.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO products (merchant_id, sku, name, unit_amount, currency, active, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT DO NOTHING",
        )
        .db()?
        .execute(params![merchant_id, p.sku, p.name, p.unit_amount, p.currency.code(), p.active, now])
        .db()?;
    if inserted == 0 {
        return Err(Error::conflict(
            "sku_taken",
            format!("A product with sku '{}' already exists.", p.sku),
        )
        .with_param("sku"));
    }
    Ok(p.clone())
}

pub(crate) fn update(
    conn: &Conn,
    now: i64,
    merchant_id: &str,
    sku: &str,
    patch: &ProductPatch,
) -> Result<Product, Error> {
    let Some(mut p) = get(conn, merchant_id, sku)? else {
        return Err(Error::not_found("product", sku));
    };
    if let Some(name) = &patch.name {
        p.name = name.clone();
    }
    if let Some(unit_amount) = patch.unit_amount {
        p.unit_amount = unit_amount;
    }
    if let Some(active) = patch.active {
        p.active = active;
    }
    conn.prepare_cached(
        "UPDATE products SET name = ?3, unit_amount = ?4, active = ?5, updated_at = ?6
         WHERE merchant_id = ?1 AND sku = ?2",
    )
    .db()?
    .execute(params![
        merchant_id,
        sku,
        p.name,
        p.unit_amount,
        p.active,
        now
    ])
    .db()?;
    Ok(p)
}

pub(crate) fn list(
    conn: &Conn,
    merchant_id: &str,
    page: &PageRequest,
) -> Result<Page<Product>, Error> {
    let before = cursor_seq(
        conn,
        "SELECT seq FROM products WHERE sku = ?1 AND merchant_id = ?2",
        page.starting_after.as_deref(),
        merchant_id,
    )?;
    let sql = format!(
        "SELECT {COLS} FROM products WHERE merchant_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(
            params![merchant_id, before, (page.limit + 1) as i64],
            product,
        )
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        out.push(to_product(row.db()?)?);
    }
    Ok(Page::new(out, page.limit))
}
