//! The one implementation of [`Store`] over either engine: reads on the pool, writes
//! through the group-committing writer, every operation's SQL in `crate::ops`.

use super::Announcer;
use super::credentials::{Credentials, Grant, Remembered};
use super::readers::Readers;
use super::writer::Writer;
use crate::clock::Clock;
use crate::model::*;
use crate::ops;
use crate::sql::{Conn, Db};
use crate::{KeyDigest, NewPayment, ProductPatch, Store};
use pocket_core::payment::Payment;
use pocket_core::pricing::Product;
use pocket_core::{Currency, Error};
use std::sync::Arc;
use tokio::sync::broadcast;

/// A store on SQLite or PostgreSQL (see `crate::sqlite::open`, `crate::postgres::open`).
pub struct SqlStore {
    writer: Writer,
    readers: Readers,
    announcer: Arc<Announcer>,
    clock: Arc<dyn Clock>,
    /// Keys and sessions remembered (SQLite) so authentication costs no read.
    credentials: Arc<Credentials>,
    /// Stops the store's background thread (PostgreSQL: the `LISTEN` thread) with it.
    _stop: Option<super::StopOnDrop>,
    /// SQLite: the data file's ownership lock, released with the store.
    _owner: Option<std::fs::File>,
    /// Risk rules (compiled, refreshed when they change) and daily limits.
    risk: Arc<ops::risk::Risk>,
}

impl SqlStore {
    pub(crate) fn new(
        writer: Writer,
        readers: Readers,
        announcer: Arc<Announcer>,
        clock: Arc<dyn Clock>,
        credentials: Credentials,
        stop: Option<super::StopOnDrop>,
        owner: Option<std::fs::File>,
    ) -> SqlStore {
        SqlStore {
            writer,
            readers,
            announcer,
            clock,
            credentials: Arc::new(credentials),
            _stop: stop,
            _owner: owner,
            risk: Arc::new(ops::risk::Risk::new(Default::default())),
        }
    }

    /// Caps what one customer may spend per UTC day, per currency (ISO code → minor
    /// units; `[limits] customer_daily_spend`): over it, `402 limit_exceeded`.
    pub fn with_daily_limits(
        mut self,
        limits: std::collections::BTreeMap<String, i64>,
    ) -> SqlStore {
        self.risk = Arc::new(ops::risk::Risk::new(limits));
        self
    }

    /// Runs `f` on a read connection in the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: Fn(&Conn<'_>) -> Result<T, Error> + Send + 'static,
    {
        self.readers.run(f).await
    }

    /// A credential's holder: from memory when it is remembered, else read (and then
    /// remembered unless it was forgotten meanwhile, see `credentials.rs`).
    async fn remembered<G, F>(&self, digest: String, read: F) -> Result<Option<G::Holder>, Error>
    where
        G: Grant + Send + 'static,
        F: Fn(&Conn<'_>, &str, i64) -> Result<Option<G>, Error> + Send + 'static,
    {
        let now = self.now_ms();
        let generation = match self.credentials.look::<G>(&digest, now) {
            Remembered::Valid(holder) => return Ok(Some(holder)),
            Remembered::Over => return Ok(None),
            Remembered::Unknown(generation) => generation,
        };
        let looked_up = digest.clone();
        let grant = self.read(move |c| read(c, &looked_up, now)).await?;
        Ok(grant.map(|g| {
            self.credentials.remember(digest, g.clone(), generation);
            g.holder()
        }))
    }

    async fn write_idem<T, F>(&self, idem: Option<Idem>, f: F) -> Result<Written<T>, Error>
    where
        T: serde::Serialize + Send + 'static,
        F: FnMut(&Conn<'_>, i64) -> Result<T, Error> + Send + 'static,
    {
        let mut f = f;
        self.writer
            .run(move |conn, now| {
                ops::idempotency::wrap(conn, now, idem.as_ref(), |conn| f(conn, now).map(Ok))
            })
            .await?
    }
}

#[async_trait::async_trait]
impl Store for SqlStore {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn find_idempotent(
        &self,
        caller: String,
        key: String,
    ) -> Result<Option<(String, StoredResponse)>, Error> {
        let now = self.now_ms();
        self.read(move |c| ops::idempotency::find(c, &caller, &key, now))
            .await
    }

    async fn create_merchant(
        &self,
        name: String,
        key: KeyDigest,
        webhook_url: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<MerchantCreated>, Error> {
        self.write_idem(idem, move |c, now| {
            let merchant = ops::merchants::create(c, now, &name, &key.digest, &key.prefix)?;
            let webhook_endpoint = match &webhook_url {
                Some(url) => Some(ops::webhooks::create(c, now, &merchant.id, url, &None)?),
                None => None,
            };
            Ok(MerchantCreated {
                merchant,
                webhook_endpoint,
            })
        })
        .await
    }

    async fn list_merchants(&self, page: PageRequest) -> Result<Page<Merchant>, Error> {
        self.read(move |c| ops::merchants::list(c, &page)).await
    }

    async fn roll_merchant_key(
        &self,
        merchant_id: String,
        key: KeyDigest,
        old_expires_at: i64,
        by_key: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<Merchant>, Error> {
        let merchant = merchant_id.clone();
        // The old keys' expiry moved: they are read again from the commit on (forgotten
        // on the writer's thread, so also when nobody waits for this answer).
        let credentials = self.credentials.clone();
        let forgotten = merchant_id.clone();
        let written = self
            .writer
            .run_then(
                move |c, now| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        ops::merchants::roll_key(
                            c,
                            now,
                            &merchant_id,
                            &key.digest,
                            &key.prefix,
                            old_expires_at.max(now),
                            by_key.as_deref(),
                        )
                        .map(Ok)
                    })
                },
                move || credentials.forget_merchant(&forgotten),
            )
            .await??;
        if old_expires_at <= self.now_ms() {
            // The old keys stopped now: this node's long-polls holding them look now.
            self.announcer.revoked(&format!("merchant:{merchant}"));
        }
        Ok(written)
    }

    async fn create_restricted_key(
        &self,
        merchant_id: String,
        name: String,
        scopes: Vec<pocket_core::scope::Scope>,
        key: KeyDigest,
        made_by_staff: Option<String>,
    ) -> Result<RestrictedKey, Error> {
        self.writer
            .run(move |c, now| {
                let k = ops::staff::NewRestrictedKey {
                    merchant_id: &merchant_id,
                    name: &name,
                    scopes: &scopes,
                    key_digest: &key.digest,
                    prefix: &key.prefix,
                    made_by_staff: made_by_staff.as_deref(),
                };
                ops::staff::create_restricted_key(c, now, &k)
            })
            .await?
    }

    async fn list_restricted_keys(&self, merchant_id: String) -> Result<Vec<RestrictedKey>, Error> {
        let now = self.now_ms();
        self.read(move |c| ops::staff::list_restricted_keys(c, now, &merchant_id))
            .await
    }

    async fn revoke_restricted_key(&self, merchant_id: String, id: String) -> Result<(), Error> {
        let (credentials, merchant) = (self.credentials.clone(), merchant_id.clone());
        self.writer
            .run_then(
                move |c, now| ops::staff::revoke_restricted_key(c, now, &merchant_id, &id),
                move || credentials.forget_merchant(&merchant),
            )
            .await
    }

    async fn add_staff(
        &self,
        merchant_id: String,
        customer: String,
        role: pocket_core::scope::Role,
    ) -> Result<Staff, Error> {
        self.writer
            .run(move |c, now| ops::staff::add_staff(c, now, &merchant_id, &customer, role))
            .await?
    }

    async fn list_staff(&self, merchant_id: String) -> Result<Vec<Staff>, Error> {
        self.read(move |c| ops::staff::list_staff(c, &merchant_id))
            .await
    }

    async fn remove_staff(&self, merchant_id: String, id: String) -> Result<(), Error> {
        let (credentials, merchant) = (self.credentials.clone(), merchant_id.clone());
        self.writer
            .run_then(
                move |c, now| ops::staff::remove_staff(c, now, &merchant_id, &id),
                move || credentials.forget_merchant(&merchant),
            )
            .await
    }

    async fn memberships(&self, customer_id: String) -> Result<Vec<Membership>, Error> {
        self.read(move |c| ops::staff::memberships(c, &customer_id))
            .await
    }

    async fn create_staff_session(
        &self,
        staff_id: String,
        key_digest: String,
        expires_at: i64,
        pin: PinAttempt,
    ) -> Result<Membership, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::staff::create_staff_session(c, now, &staff_id, &key_digest, expires_at)
                })
            })
            .await?
    }

    async fn merchant_by_key(&self, key_digest: String) -> Result<Option<MerchantAuth>, Error> {
        self.remembered(key_digest, ops::merchants::by_key).await
    }

    async fn signup(
        &self,
        phone: String,
        name: String,
        pin_hash: String,
        session: (String, i64),
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::wallet::signup(c, now, &phone, &name, &pin_hash, &session.0, session.1)
        })
        .await
    }

    async fn pin_state_by_phone(&self, phone: String) -> Result<Option<PinState>, Error> {
        self.read(move |c| ops::wallet::pin_state(c, "phone", &phone))
            .await
    }

    async fn pin_state(&self, customer_id: String) -> Result<Option<PinState>, Error> {
        self.read(move |c| ops::wallet::pin_state(c, "id", &customer_id))
            .await
    }

    async fn record_answer(&self, idem: Idem, body: String) -> Result<(), Error> {
        self.writer
            .run(move |c, _| ops::idempotency::record_answer(c, &idem, &body))
            .await
    }

    async fn judge_pin_replay(
        &self,
        attempt: PinAttempt,
        idem: Idem,
    ) -> Result<ReplayJudged, Error> {
        self.writer
            .run(move |c, now| ops::pins::judge_replay(c, now, &attempt, &idem))
            .await
    }

    async fn reserve_pin(&self, attempt: PinAttempt) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::pins::reserve(c, now, &attempt))
            .await
    }

    async fn settle_wrong_pin(&self, attempt: PinAttempt) -> Result<Error, Error> {
        self.writer
            .run(move |c, now| {
                let verdict = ops::pins::settle(c, now, &attempt, false)?;
                // A wrong PIN never comes out accepted.
                Ok(verdict.error(now).unwrap_or_else(Error::internal))
            })
            .await
    }

    async fn abandon_pin(&self, attempt: PinAttempt) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::pins::abandon(c, now, &attempt))
            .await
    }

    async fn create_session(
        &self,
        customer_id: String,
        session: (String, i64),
        pin: PinAttempt,
        rehash: Option<crate::PinRehash>,
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        if let Some(r) = &rehash {
                            ops::wallet::rehash_pin(c, &customer_id, r)?;
                        }
                        ops::wallet::create_session(c, now, &customer_id, &session.0, session.1)
                            .map(Ok)
                    })
                })
            })
            .await?
    }

    async fn change_pin(
        &self,
        customer_id: String,
        keep_session: String,
        pin: PinAttempt,
        change: crate::PinRehash,
        idem: Option<Idem>,
    ) -> Result<Written<Customer>, Error> {
        let (credentials, who) = (self.credentials.clone(), customer_id.clone());
        let who_else = customer_id.clone();
        let written = self
            .writer
            .run_then(
                move |c, now| {
                    ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                        ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                            ops::wallet::change_pin(c, now, &customer_id, &keep_session, &change)
                        })
                    })
                },
                move || credentials.forget_customer(&who),
            )
            .await??;
        // This node's streams of the sessions that ended hear it now; other nodes'
        // through the database.
        self.announcer.revoked(&format!("customer:{who_else}"));
        Ok(written)
    }

    async fn issue_pin_reset(
        &self,
        customer_id: String,
        code_digest: String,
        expires_at: i64,
    ) -> Result<Customer, Error> {
        self.writer
            .run(move |c, now| {
                ops::wallet::issue_pin_reset(c, now, &customer_id, &code_digest, expires_at)
            })
            .await
    }

    async fn take_reset_guess(&self, phone: String) -> Result<Option<(String, String)>, Error> {
        self.writer
            .run(move |c, now| ops::wallet::take_reset_guess(c, now, &phone))
            .await
    }

    async fn redeem_pin_reset(
        &self,
        reset: crate::PinReset,
    ) -> Result<Result<Customer, Error>, Error> {
        let (credentials, who) = (self.credentials.clone(), reset.customer_id.clone());
        let redeemed = self
            .writer
            .run_then(
                move |c, now| {
                    let r = ops::wallet::Redeem {
                        customer_id: &reset.customer_id,
                        code_digest: &reset.code_digest,
                        pin_hash: &reset.pin_hash,
                        guards: &reset.guards,
                        session: &reset.session,
                    };
                    ops::wallet::redeem_pin_reset(c, now, &r)
                },
                move || credentials.forget_customer(&who),
            )
            .await?;
        if let Ok(c) = &redeemed {
            self.announcer.revoked(&format!("customer:{}", c.id));
        }
        Ok(redeemed)
    }

    async fn activity(
        &self,
        customer_id: String,
        kind: Option<pocket_core::activity::Kind>,
        page: PageRequest,
    ) -> Result<Page<pocket_core::activity::Activity>, Error> {
        self.read(move |c| ops::events::activity(c, &customer_id, kind, &page))
            .await
    }

    async fn wallet_months(
        &self,
        customer_id: String,
        months: Vec<(String, i64, i64)>,
    ) -> Result<Vec<crate::model::MonthFlow>, Error> {
        self.read(move |c| ops::ledger::wallet_months(c, &customer_id, &months))
            .await
    }

    async fn session(&self, token_digest: String) -> Result<Option<Customer>, Error> {
        self.remembered(token_digest, ops::wallet::session).await
    }

    async fn delete_session(&self, token_digest: String) -> Result<(), Error> {
        let credentials = self.credentials.clone();
        let digest = token_digest.clone();
        let customer = self
            .writer
            .run_then(
                move |c, now| ops::wallet::delete_session(c, now, &digest),
                move || credentials.forget_session(&token_digest),
            )
            .await?;
        // This node's streams hear it now; other nodes' through the database.
        if let Some(c) = customer {
            self.announcer.revoked(&format!("customer:{c}"));
        }
        Ok(())
    }

    async fn topup(
        &self,
        customer: String,
        amount: i64,
        currency: Currency,
        source: &'static str,
        idem: Option<Idem>,
    ) -> Result<Written<Topup>, Error> {
        let key = customer.clone();
        self.writer
            .run_keyed(&key, move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::wallet::topup(c, now, &customer, amount, currency, source).map(Ok)
                })
            })
            .await?
    }

    async fn balances(
        &self,
        kind: pocket_core::ledger::AccountKind,
        owner: String,
    ) -> Result<Vec<Balance>, Error> {
        self.read(move |c| ops::ledger::balances(c, kind, &owner))
            .await
    }

    async fn transactions(
        &self,
        kind: pocket_core::ledger::AccountKind,
        owner: String,
        page: PageRequest,
    ) -> Result<Page<Transaction>, Error> {
        self.read(move |c| ops::ledger::transactions(c, kind, &owner, &page))
            .await
    }

    async fn takings(&self, merchant: String, q: TakingsQuery) -> Result<Takings, Error> {
        self.read(move |c| ops::ledger::takings(c, &merchant, &q))
            .await
    }

    async fn figures(&self) -> Result<StoreFigures, Error> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT status, tier, COUNT(*) FROM payments GROUP BY status, tier")
                .db()?;
            let payments = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .db()?
                .collect::<crate::sql::Result<Vec<_>>>()
                .db()?;
            let delivery_backlog = c
                .query_row(
                    "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'",
                    [],
                    |r| r.get(0),
                )
                .db()?;
            Ok(StoreFigures {
                payments,
                delivery_backlog,
            })
        })
        .await
    }

    async fn ledger_report(&self, full: bool) -> Result<LedgerReport, Error> {
        if full {
            // One read transaction: every figure from the same snapshot of the book.
            self.read(|c| {
                c.execute_batch(c.begin_snapshot_sql()).db()?;
                let report = ops::ledger::report(c);
                // Also after a failure: the connection goes back to the pool clean.
                let _ = c.execute_batch(if report.is_ok() { "COMMIT" } else { "ROLLBACK" });
                report
            })
            .await
        } else {
            self.read(ops::ledger::report_from_totals).await
        }
    }

    async fn create_product(
        &self,
        merchant_id: String,
        product: Product,
        idem: Option<Idem>,
    ) -> Result<Written<Product>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::catalog::create(c, now, &merchant_id, &product)
        })
        .await
    }

    async fn update_product(
        &self,
        merchant_id: String,
        sku: String,
        patch: ProductPatch,
        idem: Option<Idem>,
    ) -> Result<Written<Product>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::catalog::update(c, now, &merchant_id, &sku, &patch)
        })
        .await
    }

    async fn list_products(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<Product>, Error> {
        self.read(move |c| ops::catalog::list(c, &merchant_id, &page))
            .await
    }

    async fn create_payment(
        &self,
        new: NewPayment,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        let risk = self.risk.clone();
        self.writer
            .run(move |conn, now| {
                ops::idempotency::wrap(conn, now, idem.as_ref(), |conn| {
                    let code = new.code.clone();
                    ops::codes::counting_refusals(conn, code.as_ref(), |conn| {
                        ops::payments::create(conn, now, new.clone(), &risk)
                    })
                })
            })
            .await?
    }

    async fn payment(&self, id: String) -> Result<Option<Payment>, Error> {
        self.read(move |c| ops::payments::get(c, &id)).await
    }

    async fn list_payments(
        &self,
        owner: crate::PaymentOwner,
        status: Option<pocket_core::payment::Status>,
        page: PageRequest,
    ) -> Result<Page<Payment>, Error> {
        self.read(move |c| ops::payments::list(c, &owner, status, &page))
            .await
    }

    async fn confirm(
        &self,
        payment_id: String,
        customer_id: String,
        proof: pocket_core::payment::Proof,
        device: Option<String>,
        pin: Option<PinAttempt>,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        let risk = self.risk.clone();
        let key = customer_id.clone();
        self.writer
            .run_keyed(&key, move |c, now| {
                ops::pins::with_correct_pin(c, now, pin.as_ref(), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        let confirm = ops::payments::Confirm {
                            payment_id: &payment_id,
                            customer_id: &customer_id,
                            proof,
                            device_id: device.as_deref(),
                        };
                        ops::payments::confirm(c, now, &confirm, &risk)
                    })
                })
            })
            .await?
    }

    async fn decline(
        &self,
        payment_id: String,
        customer_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        let key = customer_id.clone();
        self.writer
            .run_keyed(&key, move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::decline(c, now, &payment_id, &customer_id)
                })
            })
            .await?
    }

    async fn remind(
        &self,
        payment_id: String,
        merchant_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        self.writer
            .run(move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::remind(c, now, &payment_id, &merchant_id)
                })
            })
            .await?
    }

    async fn cancel(
        &self,
        payment_id: String,
        merchant_id: String,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        self.writer
            .run(move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::cancel(c, now, &payment_id, &merchant_id)
                })
            })
            .await?
    }

    async fn refund(
        &self,
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
        reason: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Written<Refund>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::payments::refund(c, now, &payment_id, &merchant_id, amount, reason.clone())
        })
        .await
    }

    async fn capture(
        &self,
        payment_id: String,
        merchant_id: String,
        amount: Option<i64>,
        idem: Option<Idem>,
    ) -> Result<Written<Payment>, Error> {
        self.writer
            .run(move |c, now| {
                ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                    ops::payments::capture(c, now, &payment_id, &merchant_id, amount)
                })
            })
            .await?
    }

    async fn add_rule(
        &self,
        name: String,
        when: String,
        action: pocket_core::risk::Action,
        idem: Option<Idem>,
    ) -> Result<Written<crate::model::RiskRule>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::risk::add(c, now, &name, &when, action)
        })
        .await
    }

    async fn rules(&self) -> Result<Vec<crate::model::RiskRule>, Error> {
        self.read(ops::risk::list).await
    }

    async fn remove_rule(&self, id: String) -> Result<(), Error> {
        self.writer.run(move |c, _| ops::risk::remove(c, &id)).await
    }

    async fn next_deadline(&self) -> Result<Option<i64>, Error> {
        self.read(ops::payments::next_deadline).await
    }

    async fn expire_due(&self, limit: usize) -> Result<usize, Error> {
        // The urgent lane: an expiry's lag must not grow with the API's queue.
        self.writer
            .run_first(move |c, now| ops::payments::expire_due(c, now, limit))
            .await
    }

    async fn forget_idempotency_before(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<usize, Error> {
        self.writer
            .run(move |c, _| ops::idempotency::forget_before(c, before_ms, limit))
            .await
    }

    async fn forget_idle_pin_guards(&self, idle_ms: i64, limit: usize) -> Result<usize, Error> {
        self.writer
            .run(move |c, now| ops::pins::forget_idle(c, now, idle_ms, limit))
            .await
    }

    async fn list_events(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<Event>, Error> {
        self.read(move |c| ops::events::list(c, &merchant_id, &page))
            .await
    }

    fn subscribe(&self) -> broadcast::Receiver<EventNote> {
        self.announcer.subscribe()
    }

    async fn customer_events(
        &self,
        customer_id: String,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, Error> {
        self.read(move |c| ops::events::for_customer_since(c, &customer_id, after_seq, limit))
            .await
    }

    async fn customer_event_seq(
        &self,
        customer_id: String,
        event_id: String,
    ) -> Result<Option<i64>, Error> {
        self.read(move |c| ops::events::customer_event_seq(c, &customer_id, &event_id))
            .await
    }

    async fn latest_event_seq(&self) -> Result<i64, Error> {
        self.read(ops::events::last_seq).await
    }

    async fn create_webhook_endpoint(
        &self,
        merchant_id: String,
        url: String,
        events: Option<Vec<String>>,
        idem: Option<Idem>,
    ) -> Result<Written<WebhookEndpoint>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::webhooks::create(c, now, &merchant_id, &url, &events)
        })
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>, Error> {
        self.read(move |c| ops::webhooks::list(c, &merchant_id, &page))
            .await
    }

    async fn delete_webhook_endpoint(
        &self,
        merchant_id: String,
        id: String,
    ) -> Result<WebhookEndpoint, Error> {
        self.writer
            .run(move |c, now| ops::webhooks::delete(c, now, &merchant_id, &id))
            .await
    }

    async fn claim_deliveries(
        &self,
        busy: Vec<String>,
        per_endpoint: usize,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<DeliveryJob>, Error> {
        self.writer
            .run(move |c, now| ops::webhooks::claim(c, now, &busy, per_endpoint, limit, lease_ms))
            .await
    }

    async fn record_attempt(&self, attempt: AttemptRecord) -> Result<(), Error> {
        self.writer
            .run(move |c, _| ops::webhooks::record_attempt(c, &attempt))
            .await
    }

    async fn delivery_attempts(
        &self,
        merchant_id: String,
        event_id: String,
    ) -> Result<Vec<DeliveryAttempt>, Error> {
        self.read(move |c| ops::webhooks::attempts(c, &merchant_id, &event_id))
            .await
    }

    async fn redeliver(&self, merchant_id: String, event_id: String) -> Result<usize, Error> {
        self.writer
            .run(move |c, now| ops::webhooks::redeliver(c, now, &merchant_id, &event_id))
            .await
    }

    async fn next_delivery_at(&self) -> Result<Option<i64>, Error> {
        self.read(ops::webhooks::next_due).await
    }

    async fn create_ticket(
        &self,
        customer_id: String,
        digest: String,
        session_digest: String,
        expires_at: i64,
    ) -> Result<(), Error> {
        self.writer
            .run(move |c, now| {
                ops::wallet::create_ticket(
                    c,
                    now,
                    &customer_id,
                    &digest,
                    &session_digest,
                    expires_at,
                )
            })
            .await
    }

    async fn redeem_ticket(&self, digest: String) -> Result<Option<(Customer, String)>, Error> {
        self.writer
            .run(move |c, now| ops::wallet::redeem_ticket(c, now, &digest))
            .await
    }

    async fn add_device(
        &self,
        customer_id: String,
        name: String,
        public_key: String,
        session_digest: String,
        pin: PinAttempt,
        idem: Option<Idem>,
    ) -> Result<Written<Device>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        let (customer, session) = (&customer_id, &session_digest);
                        ops::devices::add(c, now, customer, &name, &public_key, session).map(Ok)
                    })
                })
            })
            .await?
    }

    async fn settle_right_pin(&self, attempt: PinAttempt) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::pins::with_correct_pin(c, now, Some(&attempt), |_| Ok(Ok(()))))
            .await?
    }

    async fn card_bound(&self, customer_id: String, fingerprint: String) -> Result<bool, Error> {
        self.read(move |c| ops::cards::is_bound(c, &customer_id, &fingerprint))
            .await
    }

    async fn add_card(
        &self,
        customer_id: String,
        card: NewCard,
        pin: PinAttempt,
        idem: Option<Idem>,
    ) -> Result<Written<Card>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, Some(&pin), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        ops::cards::add(c, now, &customer_id, &card).map(Ok)
                    })
                })
            })
            .await?
    }

    async fn list_cards(&self, customer_id: String) -> Result<Vec<Card>, Error> {
        self.read(move |c| ops::cards::list(c, &customer_id)).await
    }

    async fn card_token(
        &self,
        customer_id: String,
        card_id: String,
    ) -> Result<Option<(Card, String)>, Error> {
        self.read(move |c| ops::cards::with_token(c, &customer_id, &card_id))
            .await
    }

    async fn begin_bank_operation(
        &self,
        new: NewBankOperation,
        pin: Option<PinAttempt>,
        idem: Option<Idem>,
    ) -> Result<Written<BankOperation>, Error> {
        self.writer
            .run(move |c, now| {
                ops::pins::with_correct_pin(c, now, pin.as_ref(), |c| {
                    ops::idempotency::wrap(c, now, idem.as_ref(), |c| {
                        ops::bank::begin(c, now, &new).map(Ok)
                    })
                })
            })
            .await?
    }

    async fn apply_bank_answer(
        &self,
        id: String,
        succeeded: bool,
        failure_code: Option<String>,
    ) -> Result<Option<BankOperation>, Error> {
        let outcome = if succeeded {
            pocket_core::ledger::pending::Outcome::Succeeded
        } else {
            pocket_core::ledger::pending::Outcome::Failed
        };
        self.writer
            .run(move |c, now| ops::bank::apply(c, now, &id, outcome, failure_code.as_deref()))
            .await
    }

    async fn reschedule_bank_operation(&self, id: String) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::bank::reschedule(c, now, &id))
            .await
    }

    async fn flag_bank_operation(&self, id: String, why: String) -> Result<(), Error> {
        self.writer
            .run(move |c, now| ops::bank::flag(c, now, &id, &why))
            .await
    }

    async fn claim_bank_operations(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<BankOperation>, Error> {
        self.writer
            .run(move |c, now| ops::bank::claim_due(c, now, limit, lease_ms))
            .await
    }

    async fn bank_operation(&self, id: String) -> Result<Option<BankOperation>, Error> {
        self.read(move |c| ops::bank::get(c, &id)).await
    }

    async fn bank_operations_between(
        &self,
        connector: String,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<BankOperation>, Error> {
        self.read(move |c| ops::bank::between(c, &connector, from_ms, to_ms))
            .await
    }

    async fn list_bank_operations(
        &self,
        owner: String,
        kind: &'static str,
        limit: usize,
    ) -> Result<Vec<BankOperation>, Error> {
        self.read(move |c| ops::bank::list(c, &owner, kind, limit))
            .await
    }

    async fn add_bank_account(
        &self,
        merchant_id: String,
        new: NewBankAccount,
        idem: Option<Idem>,
    ) -> Result<Written<BankAccount>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::bank_accounts::add(c, now, &merchant_id, &new)
        })
        .await
    }

    async fn bank_account(
        &self,
        id: String,
    ) -> Result<Option<(BankAccount, String, String)>, Error> {
        self.read(move |c| ops::bank_accounts::get(c, &id)).await
    }

    async fn list_bank_accounts(&self, merchant_id: String) -> Result<Vec<BankAccount>, Error> {
        self.read(move |c| ops::bank_accounts::list(c, &merchant_id))
            .await
    }

    async fn token_of_card(&self, card_id: String) -> Result<Option<String>, Error> {
        self.read(move |c| ops::bank::card_token(c, &card_id)).await
    }

    async fn remove_card(&self, customer_id: String, id: String) -> Result<Card, Error> {
        self.writer
            .run(move |c, now| ops::cards::remove(c, now, &customer_id, &id))
            .await
    }

    async fn list_devices(&self, customer_id: String) -> Result<Vec<Device>, Error> {
        self.read(move |c| ops::devices::list(c, &customer_id))
            .await
    }

    async fn device(&self, customer_id: String, id: String) -> Result<Option<Device>, Error> {
        self.read(move |c| ops::devices::get(c, &customer_id, &id))
            .await
    }

    async fn active_devices_since(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, Error> {
        self.read(move |c| ops::codes::active_devices_since(c, after_seq, limit))
            .await
    }

    async fn revoke_device(&self, customer_id: String, id: String) -> Result<Device, Error> {
        self.writer
            .run(move |c, now| ops::devices::revoke(c, now, &customer_id, &id))
            .await
    }
}
