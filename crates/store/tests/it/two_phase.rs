//! Two-phase bank operations at the store, with truly parallel requests: 20
//! withdrawals against a balance that covers 10 reserve exactly 10; answers applied
//! twice, late or contradicting move money once.

use pocket_core::Currency;
use pocket_core::ledger::AccountKind;
use pocket_store::SqlStore;
use pocket_store::clock::ManualClock;
use pocket_store::model::{NewBankOperation, Written};
use pocket_store::testing::TestStore;
use std::sync::Arc;

fn cny() -> Currency {
    Currency::parse("CNY", "currency").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_withdrawals_against_ten_reserve_ten_and_answers_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_764_000_000_000));
    let db = TestStore::open(dir.path(), clock, None);
    let store: Arc<SqlStore> = db.store.clone();
    let customer = match store
        .signup(
            "+8613800000001".into(),
            "C".into(),
            "hash".into(),
            ("s".into(), i64::MAX),
            None,
        )
        .await
        .unwrap()
    {
        Written::Fresh(c) => c.id,
        Written::Replayed(_) => unreachable!(),
    };
    store
        .topup(customer.clone(), 100_000, cny(), "operator", None)
        .await
        .unwrap();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (store, customer) = (store.clone(), customer.clone());
            tokio::spawn(async move {
                let new = NewBankOperation {
                    id: format!("wd_test{i:02}"),
                    kind: "withdrawal",
                    connector: "sandbox".into(),
                    owner_kind: AccountKind::Wallet,
                    owner: customer,
                    card: None,
                    bank_account: None,
                    amount: 10_000,
                    currency: cny(),
                    answer_within_ms: 10_000,
                };
                store.begin_bank_operation(new, None, None).await
            })
        })
        .collect();
    let mut begun = Vec::new();
    let mut refused = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(Written::Fresh(op)) => begun.push(op.id),
            Ok(Written::Replayed(_)) => unreachable!(),
            Err(e) => {
                assert_eq!(e.code, "insufficient_funds");
                refused += 1;
            }
        }
    }
    assert_eq!((begun.len(), refused), (10, 10));
    let balances = store
        .balances(AccountKind::Wallet, customer.clone())
        .await
        .unwrap();
    assert_eq!((balances[0].available, balances[0].reserved), (0, 100_000));
    // Half succeed, half fail; every answer comes three times, in parallel, and a
    // contradicting one after.
    let answers: Vec<_> = begun
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            let succeeded = i % 2 == 0;
            (0..3).map(move |_| (id.clone(), succeeded))
        })
        .map(|(id, succeeded)| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .apply_bank_answer(id, succeeded, (!succeeded).then(|| "account_closed".into()))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for a in answers {
        a.await.unwrap();
    }
    for (i, id) in begun.iter().enumerate() {
        let late = store
            .apply_bank_answer(id.clone(), i % 2 == 1, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(late.status, if i % 2 == 0 { "succeeded" } else { "failed" });
    }
    let balances = store.balances(AccountKind::Wallet, customer).await.unwrap();
    assert_eq!((balances[0].available, balances[0].reserved), (50_000, 0));
    let report = store.ledger_report(true).await.unwrap();
    assert!(report.balanced, "{report:?}");
    assert_eq!(
        report.transfers,
        1 + 5,
        "one top-up and five posted withdrawals"
    );
    drop(store);
    let v = db.verify().unwrap();
    assert!(v.faults.is_empty(), "{:?}", v.faults);
}
