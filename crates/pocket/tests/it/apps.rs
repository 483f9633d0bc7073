//! What the web apps need from the server beyond the payment API: the operator's
//! lists, the wallet's public settings and link preview, the PIN's tries left, and
//! the small things a browser asks for (favicon, trailing slashes).

use crate::common::{ADMIN_KEY, Server};
use serde_json::json;

#[tokio::test]
async fn the_operator_lists_merchants_and_finds_customers() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(s.merchant(&format!("Shop {n}")).await.0);
    }
    let page = s.get("/v1/admin/merchants?limit=2", ADMIN_KEY).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let names: Vec<&str> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Shop 2", "Shop 1"], "newest first");
    assert_eq!(page.body["has_more"], true);
    assert!(
        !page.text.contains("sk_"),
        "keys are never listed: {}",
        page.text
    );
    let rest = s
        .get(
            &format!("/v1/admin/merchants?limit=2&starting_after={}", ids[1]),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(rest.body["data"][0]["id"], ids[0].as_str());
    assert_eq!(rest.body["has_more"], false);
    s.get(
        "/v1/admin/merchants?starting_after=mer_000000000000000000000000",
        ADMIN_KEY,
    )
    .await
    .assert_error(404, "resource_missing");
    s.get("/v1/admin/merchants?starting_after=nope", ADMIN_KEY)
        .await
        .assert_error(400, "parameter_invalid");
    let (_, sk) = s.merchant("Nosy").await;
    assert_eq!(s.get("/v1/admin/merchants", &sk).await.status, 401);

    let (cus, _) = s.customer("+8613800000077", 12_345).await;
    let found = s
        .get("/v1/admin/customers?phone=%2B8613800000077", ADMIN_KEY)
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["data"][0]["id"], cus.as_str());
    assert_eq!(found.body["data"][0]["balances"][0]["available"], 12_345);
    assert!(
        !found.text.contains("pin"),
        "no PIN material: {}",
        found.text
    );
    let none = s
        .get("/v1/admin/customers?phone=%2B8613800000078", ADMIN_KEY)
        .await;
    assert_eq!(none.body["data"], json!([]));
    s.get("/v1/admin/customers?phone=12", ADMIN_KEY)
        .await
        .assert_error(400, "parameter_invalid");
    s.get("/v1/admin/customers", ADMIN_KEY)
        .await
        .assert_error(400, "parameter_invalid");
}

#[tokio::test]
async fn the_wallet_learns_its_settings_and_previews_open_payments_only() {
    let s = Server::start_with(&[]).await;
    let settings = s.get("/v1/wallet/settings", "").await;
    assert_eq!(settings.status, 200, "{}", settings.text);
    assert_eq!(settings.body["calling_code"], "+86");
    assert_eq!(settings.body["sandbox_topups"], false);
    let sandbox = Server::start().await;
    let settings = sandbox.get("/v1/wallet/settings", "").await;
    assert_eq!(settings.body["sandbox_topups"], true);

    let s = sandbox;
    let (_, sk) = s.merchant("Tea House").await;
    s.product(&sk, "tea", 1299, "CNY").await;
    let (_, token) = s.customer("+8613800000088", 10_000).await;
    let open = s
        .payment(
            &sk,
            json!({"currency": "CNY", "items": [{"sku": "tea", "quantity": 2}]}),
        )
        .await;
    let id = open["id"].as_str().unwrap();
    let preview = s.get(&format!("/v1/pay/{id}"), "").await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(preview.body["merchant_name"], "Tea House");
    assert_eq!(preview.body["amount"], 2598);
    assert_eq!(preview.body["items"][0]["name"], "tea");
    assert!(preview.body.get("customer").is_none());
    // Addressed to someone, or paid (so now someone's): not previewed.
    let addressed = s
        .payment(
            &sk,
            json!({"currency": "CNY", "amount": 100, "customer": "+8613800000088"}),
        )
        .await;
    s.get(
        &format!("/v1/pay/{}", addressed["id"].as_str().unwrap()),
        "",
    )
    .await
    .assert_error(404, "resource_missing");
    assert_eq!(s.confirm(&token, id, json!({})).await.status, 200);
    s.get(&format!("/v1/pay/{id}"), "")
        .await
        .assert_error(404, "resource_missing");
    s.get("/v1/pay/nope", "")
        .await
        .assert_error(400, "parameter_invalid");
}

#[tokio::test]
async fn a_wrong_pin_says_how_many_tries_are_left() {
    let s = Server::start().await;
    s.customer("+8613800000099", 0).await;
    let r = s
        .post(
            "/v1/wallet/sessions",
            "",
            json!({"phone": "+8613800000099", "pin": "000000"}),
        )
        .await;
    r.assert_error(401, "incorrect_pin");
    assert_eq!(r.body["error"]["tries_left"], 4);
}

#[tokio::test]
async fn browsers_find_the_icon_and_trailing_slashes() {
    let s = Server::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let icon = client
        .get(format!("{}/favicon.ico", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    for (path, to) in [("/merchant/", "/merchant"), ("/admin/", "/admin")] {
        let r = client.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 308, "{path}");
        assert_eq!(r.headers()["location"], to);
    }
    for path in [
        "/admin",
        "/sw.js",
        "/assets/wallet.webmanifest",
        "/assets/admin.js",
    ] {
        let r = client.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_merchant_rolls_its_own_key() {
    let s = Server::start().await;
    let (_, sk) = s.merchant("Roller").await;
    let (_, other) = s.merchant("Bystander").await;
    let roll = |idem: &'static str, auth: String| {
        let s = &s;
        async move { s.roll_own_key(&auth, json!({}), Some(idem)).await }
    };
    let first = roll("roll-1", sk.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let new_key = first.body["secret_key"].as_str().unwrap().to_string();
    // The old key stopped at once, so even a retry of the roll with it is refused
    // (a lost answer is recovered by the operator's roll, or by rolling with an overlap).
    assert_eq!(roll("roll-1", sk.clone()).await.status, 401);
    // With an overlap the current key keeps working, and a retry answers the same key.
    let overlap = |idem: &'static str| {
        let (s, auth) = (&s, new_key.clone());
        async move {
            s.roll_own_key(&auth, json!({"expire_current_in": 60}), Some(idem))
                .await
        }
    };
    let (a, b) = (overlap("roll-2").await, overlap("roll-2").await);
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        a.body["secret_key"], b.body["secret_key"],
        "a retry answers the same key"
    );
    let newest = a.body["secret_key"].as_str().unwrap().to_string();
    assert_eq!(s.get("/v1/balance", &newest).await.status, 200);
    assert_eq!(s.get("/v1/balance", &new_key).await.status, 200);
    assert_eq!(
        s.get("/v1/balance", &sk).await.status,
        401,
        "the old key stops at once"
    );
    assert_eq!(
        s.get("/v1/balance", &other).await.status,
        200,
        "another merchant's key is untouched"
    );
    s.post("/v1/keys", &newest, json!({"expire_current_in": 90000}))
        .await
        .assert_error(400, "parameter_invalid");
    assert_eq!(s.post("/v1/keys", ADMIN_KEY, json!({})).await.status, 401);
}

/// A leaked key cannot take the merchant over: a key being retired may not roll, and
/// a merchant's roll never retires keys newer than the one rolling.
#[tokio::test]
async fn a_key_being_retired_cannot_roll_and_only_the_newest_can() {
    let s = Server::start().await;
    let (id, leaked) = s.merchant("Careful").await;
    // The operator retires the leaked key with an hour's overlap.
    let owner = s.roll_key(&id, 3600).await;
    // The leaked key still works for the overlap, but cannot roll.
    assert_eq!(s.get("/v1/balance", &leaked).await.status, 200);
    s.post("/v1/keys", &leaked, json!({}))
        .await
        .assert_error(409, "key_expiring");
    assert_eq!(s.get("/v1/balance", &owner).await.status, 200);
    // Only the newest key can roll: the operator issues one more, the owner's key is now
    // being retired too, and the newest rolls itself.
    let newer = s.roll_key(&id, 3600).await;
    s.post("/v1/keys", &owner, json!({}))
        .await
        .assert_error(409, "key_expiring");
    let r = s.post("/v1/keys", &newer, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let newest = r.body["secret_key"].as_str().unwrap().to_string();
    assert_eq!(
        s.get("/v1/balance", &newer).await.status,
        401,
        "the rolling key stops"
    );
    assert_eq!(s.get("/v1/balance", &newest).await.status, 200);
    // Idempotency is the calling key's own: the same Idempotency-Key from another key
    // rolls anew and never hands out the first answer's secret.
    let (_, a) = s.merchant("Twin keys").await;
    let overlap = json!({"expire_current_in": 60});
    let first = s.roll_own_key(&a, overlap.clone(), Some("same")).await;
    let b = first.body["secret_key"].as_str().unwrap().to_string();
    let second = s.roll_own_key(&b, overlap, Some("same")).await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_ne!(second.body["secret_key"], first.body["secret_key"]);
}

/// Ten rolls of one key at once: exactly one takes effect; the rest find the key
/// already being retired.
#[tokio::test]
async fn parallel_rolls_of_one_key_take_effect_once() {
    let s = std::sync::Arc::new(Server::start().await);
    let (id, sk) = s.merchant("Racer").await;
    let answers = crate::common::all(10, |i| {
        let (s, sk) = (s.clone(), sk.clone());
        async move {
            s.roll_own_key(
                &sk,
                json!({"expire_current_in": 60}),
                Some(&format!("race-{i}")),
            )
            .await
        }
    })
    .await;
    let made: Vec<&crate::common::Reply> = answers.iter().filter(|r| r.status == 201).collect();
    assert_eq!(
        made.len(),
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in answers.iter().filter(|r| r.status != 201) {
        r.assert_error(409, "key_expiring");
    }
    let new_key = made[0].body["secret_key"].as_str().unwrap();
    assert_eq!(s.get("/v1/balance", new_key).await.status, 200);
    let listed = s.get("/v1/admin/merchants", ADMIN_KEY).await;
    assert!(listed.text.contains(&id));
}
