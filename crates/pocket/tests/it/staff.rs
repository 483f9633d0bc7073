//! Staff roles and restricted keys, endpoint by endpoint: every merchant operation in
//! the OpenAPI document is called with each role's console session and with restricted
//! keys, and is refused with `403 scope_missing` exactly where the role's scopes do not
//! reach (`pocket_core::scope`), before anything is read or written.

use crate::common::{ADMIN_KEY, Server};
use pocket_core::scope::{self, Role, Scope};
use reqwest::Method;
use serde_json::{Value, json};

/// A console session of `role` at the merchant of `sk`, for a new wallet at `phone`.
async fn staff_session(s: &Server, sk: &str, phone: &str, role: &str) -> String {
    s.customer(phone, 0).await;
    let r = s
        .post("/v1/staff", sk, json!({"phone": phone, "role": role}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], role);
    let r = s
        .post(
            "/v1/staff/sessions",
            "",
            json!({"phone": phone, "pin": "123456"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], role);
    r.body["token"].as_str().unwrap().to_string()
}

async fn restricted_key(s: &Server, sk: &str, scopes: &[&str]) -> String {
    let r = s
        .post(
            "/v1/restricted_keys",
            sk,
            json!({"name": "till", "scopes": scopes}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("rk_"));
    secret
}

/// Every operation a merchant's credential calls, from the served OpenAPI document.
async fn merchant_operations(s: &Server) -> Vec<(String, String)> {
    let doc = s.get("/openapi.json", "").await.body;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let merchant = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("secret_key").is_some()));
            if merchant {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

fn filled(path: &str) -> String {
    path.replace("{id}", "xx_0000000000000000000000000")
        .replace("{sku}", "no-such-sku")
}

#[tokio::test]
async fn every_merchant_endpoint_refuses_exactly_what_a_role_or_key_may_not_do() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Staffed Shop").await;
    let mut callers: Vec<(String, Vec<Scope>, String)> = Vec::new();
    for (i, role) in [Role::Cashier, Role::Manager, Role::Developer, Role::Owner]
        .into_iter()
        .enumerate()
    {
        let token = staff_session(&s, &sk, &format!("+861380000150{i}"), role.as_str()).await;
        callers.push((role.as_str().into(), role.scopes().to_vec(), token));
    }
    for scopes in [
        &["read"][..],
        &["refunds:write"],
        &["payments:write", "webhooks:write"],
    ] {
        let key = restricted_key(&s, &sk, scopes).await;
        let parsed = scopes.iter().map(|n| Scope::parse(n).unwrap()).collect();
        callers.push((format!("rk {scopes:?}"), parsed, key));
    }
    let ops = merchant_operations(&s).await;
    assert!(ops.len() >= 30, "{ops:?}");
    let (mut refused, mut let_through) = (0, 0);
    for (who, scopes, token) in &callers {
        // The owner's roll of the secret key goes last: it retires `sk`, not sessions.
        let mut order = ops.clone();
        order.sort_by_key(|(m, p)| (m == "POST" && p == "/v1/keys", m.clone(), p.clone()));
        for (method, path) in &order {
            let allowed = scope::allows(Some(scopes), method, path).is_ok();
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
            let r = s.call(m, &filled(path), Some(token), body, None).await;
            let was_refused = r.status == 403 && r.code() == "scope_missing";
            assert_eq!(
                !was_refused, allowed,
                "{who} {method} {path}: {} {}",
                r.status, r.text
            );
            assert_ne!(r.status, 401, "{who} {method} {path}: {}", r.text);
            if was_refused {
                refused += 1
            } else {
                let_through += 1
            }
        }
    }
    println!(
        "roles and keys over {} merchant operations: {refused} refused, {let_through} let through",
        ops.len()
    );
}

#[tokio::test]
async fn a_cashier_sells_but_cannot_refund_and_a_manager_can() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Till Shop").await;
    let (cus, token) = s.customer("+8613800001510", 100_000).await;
    let cashier = staff_session(&s, &sk, "+8613800001511", "cashier").await;
    let manager = staff_session(&s, &sk, "+8613800001512", "manager").await;
    let p = s
        .payment(
            &cashier,
            json!({"currency": "CNY", "amount": 1_000, "customer": cus}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(s.confirm(&token, id, json!({})).await.status, 200);
    let r = s
        .post(&format!("/v1/payments/{id}/refunds"), &cashier, json!({}))
        .await;
    r.assert_error(403, "scope_missing");
    assert!(r.text.contains("refunds:write"), "{}", r.text);
    let after = s.get(&format!("/v1/payments/{id}"), &cashier).await;
    assert_eq!(after.body["amount_refunded"], 0, "nothing changed");
    s.post("/v1/payouts", &cashier, json!({}))
        .await
        .assert_error(403, "scope_missing");
    s.get("/v1/staff", &cashier)
        .await
        .assert_error(403, "scope_missing");
    let r = s
        .get("/v1/balance/takings?from=2026-01-01T00:00:00Z", &cashier)
        .await;
    assert_eq!(r.status, 200, "the cashier sees the takings: {}", r.text);
    let r = s
        .post(&format!("/v1/payments/{id}/refunds"), &manager, json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let me = s.get("/v1/account", &cashier).await;
    assert_eq!(
        (me.body["credential"].as_str(), me.body["role"].as_str()),
        (Some("staff_session"), Some("cashier"))
    );
}

#[tokio::test]
async fn staff_and_keys_end_when_removed_and_outlive_a_roll() {
    let s = Server::start().await;
    let (mer, sk) = s.merchant("Changing Shop").await;
    let cashier = staff_session(&s, &sk, "+8613800001520", "cashier").await;
    let key = restricted_key(&s, &sk, &["read"]).await;
    // A roll retires secret keys only.
    let rolled = s.roll_own_key(&sk, json!({}), None).await;
    assert_eq!(rolled.status, 201, "{}", rolled.text);
    let sk2 = rolled.body["secret_key"].as_str().unwrap().to_string();
    assert_eq!(s.get("/v1/balance", &sk).await.status, 401);
    assert_eq!(s.get("/v1/balance", &cashier).await.status, 200);
    assert_eq!(s.get("/v1/balance", &key).await.status, 200);
    // Listed, then revoked: it stops at once.
    let keys = s.get("/v1/restricted_keys", &sk2).await;
    let kid = keys.body["data"][0]["id"].as_str().unwrap().to_string();
    assert!(
        keys.body["data"][0].get("secret").is_none(),
        "no secret in a list"
    );
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/restricted_keys/{kid}"),
            Some(&sk2),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get("/v1/balance", &key).await.status, 401);
    // Removed from the staff: the session ends at once.
    let staff = s.get("/v1/staff", &sk2).await;
    let sid = staff.body["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(staff.body["data"][0]["phone"], "+86 138****1520");
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/staff/{sid}"),
            Some(&sk2),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get("/v1/balance", &cashier).await.status, 401);
    let again = s
        .post(
            "/v1/staff/sessions",
            "",
            json!({"phone": "+8613800001520", "pin": "123456"}),
        )
        .await;
    again.assert_error(404, "resource_missing");

    // Bad input, each the contract's error.
    for (body, param) in [
        (json!({"name": "x", "scopes": ["keys:write"]}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["read", "read"]}), "scopes"),
        (json!({"name": "", "scopes": ["read"]}), "name"),
    ] {
        let r = s.post("/v1/restricted_keys", &sk2, body).await;
        r.assert_error(400, "parameter_invalid");
        assert_eq!(r.param(), Some(param));
    }
    s.post(
        "/v1/staff",
        &sk2,
        json!({"phone": "+8613800001520", "role": "boss"}),
    )
    .await
    .assert_error(400, "parameter_invalid");
    let r = s
        .post(
            "/v1/staff",
            &sk2,
            json!({"phone": "+8613800001599", "role": "cashier"}),
        )
        .await;
    assert_eq!(r.status, 404, "no wallet: {}", r.text);
    s.post(
        "/v1/staff",
        &sk2,
        json!({"phone": "+8613800001520", "role": "cashier"}),
    )
    .await;
    let r = s
        .post(
            "/v1/staff",
            &sk2,
            json!({"phone": "138 0000 1520", "role": "manager"}),
        )
        .await;
    r.assert_error(409, "staff_exists");
    let wrong = s
        .post(
            "/v1/staff/sessions",
            "",
            json!({"phone": "+8613800001520", "pin": "000000"}),
        )
        .await;
    wrong.assert_error(401, "incorrect_pin");
    // On the staff of two shops: say which.
    let (other, other_sk) = s.merchant("Second Shop").await;
    s.post(
        "/v1/staff",
        &other_sk,
        json!({"phone": "+8613800001520", "role": "developer"}),
    )
    .await;
    let r = s
        .post(
            "/v1/staff/sessions",
            "",
            json!({"phone": "+8613800001520", "pin": "123456"}),
        )
        .await;
    r.assert_error(400, "parameter_missing");
    let r = s
        .post(
            "/v1/staff/sessions",
            "",
            json!({"phone": "+8613800001520", "pin": "123456", "merchant": other}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["role"].as_str()),
        (201, Some("developer"))
    );
    let r = s
        .post(
            "/v1/staff/sessions",
            "",
            json!({"phone": "+8613800001520", "pin": "123456", "merchant": mer}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["role"].as_str()),
        (201, Some("cashier"))
    );
    // The operator's key is no merchant credential.
    assert_eq!(s.get("/v1/balance", ADMIN_KEY).await.status, 401);
    let _: Value = r.body;
}

#[tokio::test]
async fn what_a_staff_member_made_ends_with_them_and_a_leak_is_ended_by_the_operator() {
    let s = Server::start().await;
    let (mer, sk) = s.merchant("Leaky Shop").await;
    let owner = staff_session(&s, &sk, "+8613800001530", "owner").await;
    // An owner on the staff may make keys, but never roll the secret key.
    let made = restricted_key(&s, &owner, &["payouts:write", "read"]).await;
    s.post("/v1/keys", &owner, json!({}))
        .await
        .assert_error(403, "scope_missing");
    let staff = s.get("/v1/staff", &sk).await;
    let sid = staff.body["data"][0]["id"].as_str().unwrap().to_string();
    assert!(
        staff.body["data"][0].get("name").is_none(),
        "no name of the person"
    );
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/staff/{sid}"),
            Some(&sk),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        s.get("/v1/balance", &made).await.status,
        401,
        "their key left with them"
    );

    // A PIN changed ends the person's console sessions.
    let cashier = staff_session(&s, &sk, "+8613800001531", "cashier").await;
    let wallet = s
        .post(
            "/v1/wallet/sessions",
            "",
            json!({"phone": "+8613800001531", "pin": "123456"}),
        )
        .await;
    let wallet = wallet.body["token"].as_str().unwrap().to_string();
    let r = s
        .post(
            "/v1/wallet/pin",
            &wallet,
            json!({"old_pin": "123456", "new_pin": "654321"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get("/v1/balance", &cashier).await.status, 401);

    // The operator's roll, for a leak, ends every credential of the merchant.
    let key = restricted_key(&s, &sk, &["read"]).await;
    let manager = staff_session(&s, &sk, "+8613800001532", "manager").await;
    let r = s
        .post(
            &format!("/v1/admin/merchants/{mer}/keys"),
            ADMIN_KEY,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (what, credential) in [
        ("secret key", &sk),
        ("restricted key", &key),
        ("staff session", &manager),
    ] {
        assert_eq!(s.get("/v1/balance", credential).await.status, 401, "{what}");
    }
}

#[tokio::test]
async fn payments_are_looked_up_by_phone_a_bounded_number_of_times() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Curious Shop").await;
    let (cus, _) = s.customer("+8613800001540", 0).await;
    let mut limited = None;
    for i in 0..40 {
        let r = s
            .get(
                &format!("/v1/payments?customer=1380000{:04}", 1000 + i),
                &sk,
            )
            .await;
        if r.status == 429 {
            limited = Some(i);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(limited, Some(20), "a burst of 20, then 429");
    let r = s.get(&format!("/v1/payments?customer={cus}"), &sk).await;
    assert_eq!(r.status, 200, "by id: not limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_keys_made_at_once_leave_exactly_the_cap_of_fifty() {
    let s = std::sync::Arc::new(Server::start().await);
    let (_, sk) = s.merchant("Capped Shop").await;
    let answers = crate::common::all(60, {
        let (s, sk) = (s.clone(), sk.clone());
        move |i| {
            let (s, sk) = (s.clone(), sk.clone());
            async move {
                s.post(
                    "/v1/restricted_keys",
                    &sk,
                    json!({"name": format!("k{i}"), "scopes": ["read"]}),
                )
                .await
            }
        }
    })
    .await;
    let made = answers.iter().filter(|r| r.status == 201).count();
    assert!(
        answers
            .iter()
            .filter(|r| r.status != 201)
            .all(|r| r.code() == "too_many_keys")
    );
    println!(
        "60 restricted keys at once: {made} made, {} refused",
        60 - made
    );
    assert_eq!(made, 50);
    let listed = s.get("/v1/restricted_keys", &sk).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 50);
}
