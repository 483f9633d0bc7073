//! Driving bank operations to their end: ask the connector, apply its final answer
//! once, and while there is none, look again later — also after a restart, and on
//! whichever node holds the operation's lease (state in the database, not memory).

use crate::{ConnectorError, Destination, OpAnswer, OpKind, OpStatus, Operation, Registry};
use pocket_store::SqlStore;
use pocket_store::model::BankOperation;
use std::sync::Arc;
use std::time::Duration;

/// How long a node holds an operation it is asking about: longer than a connector
/// call may take (`http::TIMEOUT`), so two nodes never ask at once; after a crash the
/// operation waits this long for another look.
const LEASE_MS: i64 = 15_000;
/// Most operations looked at per round.
const BATCH: usize = 32;
/// Longest pause between two rounds.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Which way `op` moves money, as its bank must see it.
fn kind_of(op: &BankOperation) -> OpKind {
    match op.object {
        "topup" => OpKind::Charge,
        _ => OpKind::Payout,
    }
}

fn request(op: &BankOperation) -> Operation {
    Operation {
        operation_id: op.id.clone(),
        amount: op.amount,
        currency: op.currency.code().to_string(),
    }
}

/// What an answer says of `op`: its status, if the answer is about exactly `op` (its
/// id, kind, amount and currency); otherwise the answer is believed in nothing.
pub fn judge(
    op: &BankOperation,
    answer: Result<OpAnswer, ConnectorError>,
) -> Result<OpStatus, ConnectorError> {
    let answer = answer?;
    match answer.disagreement(kind_of(op), &request(op)) {
        None => Ok(answer.status),
        Some(why) => Err(ConnectorError::Disagrees { why }),
    }
}

/// What the bank said, as the store applies it.
async fn record(store: &SqlStore, op: &BankOperation, answer: Result<OpStatus, ConnectorError>) {
    let applied = match answer {
        Ok(OpStatus::Succeeded) => store.apply_bank_answer(op.id.clone(), true, None).await,
        Ok(OpStatus::Failed { decline_code }) | Err(ConnectorError::Declined { decline_code }) => {
            store
                .apply_bank_answer(op.id.clone(), false, Some(decline_code))
                .await
        }
        Err(ConnectorError::Disagrees { why } | ConnectorError::Invalid { why }) => {
            // Signed, but not an answer about this operation: never applied; the
            // operation stays unknown and the operator sees why.
            tracing::error!(operation = %op.id, connector = %op.connector, %why, "a bank answer was refused");
            store
                .flag_bank_operation(op.id.clone(), why)
                .await
                .map(|_| None)
        }
        Ok(OpStatus::Pending) | Err(_) => {
            // No final answer (yet): ask again later. Unknown is never failed.
            store
                .reschedule_bank_operation(op.id.clone())
                .await
                .map(|_| None)
        }
    };
    if let Err(e) = applied {
        tracing::warn!(code = e.code, operation = %op.id, "could not record a bank answer");
    }
}

/// Sends an operation to its connector (again, with the same id, if need be) and
/// records what comes back.
pub async fn send(store: &SqlStore, connectors: &Registry, op: &BankOperation) {
    let Some(connector) = connectors.pick(Some(&op.connector)) else {
        tracing::warn!(operation = %op.id, connector = %op.connector, "no such connector configured");
        record(
            store,
            op,
            Err(ConnectorError::Unavailable {
                why: "not configured".into(),
            }),
        )
        .await;
        return;
    };
    let token = match &op.card {
        Some(card) => store.token_of_card(card.clone()).await.ok().flatten(),
        None => None,
    };
    let account = match &op.bank_account {
        Some(id) => store.bank_account(id.clone()).await.ok().flatten(),
        None => None,
    };
    let answer = match (op.object, token, account) {
        ("topup", Some(token), _) => connector.charge(&request(op), &token).await,
        ("withdrawal", Some(token), _) => {
            connector
                .payout(&request(op), &Destination::Card { token })
                .await
        }
        ("payout", _, Some((account, account_number, holder_name))) => {
            let to = Destination::BankAccount {
                account_number,
                bank_code: account.bank_code,
                holder_name,
            };
            connector.payout(&request(op), &to).await
        }
        _ => Err(ConnectorError::Unavailable {
            why: "the operation's destination is unknown".into(),
        }),
    };
    record(store, op, judge(op, answer)).await;
}

/// Asks where an operation stands; one the bank never received is sent again.
pub async fn look(store: &SqlStore, connectors: &Registry, op: &BankOperation) {
    let Some(connector) = connectors.pick(Some(&op.connector)) else {
        record(
            store,
            op,
            Err(ConnectorError::Unavailable {
                why: "not configured".into(),
            }),
        )
        .await;
        return;
    };
    match connector.status(&op.id).await {
        Err(ConnectorError::UnknownOperation) => send(store, connectors, op).await,
        answer => record(store, op, judge(op, answer)).await,
    }
}

/// Runs until `shutdown` turns true: every round, leases the operations due for a
/// look and asks their banks, with backoff between looks (`ops::bank::reschedule`).
pub async fn run(
    store: Arc<SqlStore>,
    connectors: Arc<Registry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let mut full = false;
        match store.claim_bank_operations(BATCH, LEASE_MS).await {
            Ok(due) => {
                full = due.len() == BATCH;
                let looks = due.into_iter().map(|op| {
                    let (store, connectors) = (store.clone(), connectors.clone());
                    tokio::spawn(async move { look(store.as_ref(), &connectors, &op).await })
                });
                for look in looks.collect::<Vec<_>>() {
                    let _ = look.await;
                }
            }
            Err(e) => tracing::warn!(code = e.code, "could not claim bank operations"),
        }
        if full {
            // More are due: no pause.
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
