//! Stores for tests, on the engine `POCKET_TEST_ENGINE` names: `postgres` (a database
//! of its own on `POCKET_TEST_PG_URL`, default the local server, dropped afterwards),
//! else SQLite in the given directory. The test suites run once per engine. Built only
//! for tests (the `testing` feature): the shipped library has none of it.

use crate::clock::Clock;
use crate::postgres::{PostgresOptions, config};
use crate::sqlite::SqliteOptions;
use crate::{SqlStore, ops::verify::Verification};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Whether this run's tests use PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("POCKET_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

/// The PostgreSQL server tests use.
pub fn pg_base_url() -> String {
    std::env::var("POCKET_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// A store for one test. (Fields drop in order: the store before its database.)
pub struct TestStore {
    pub store: Arc<SqlStore>,
    pub database: Option<ScratchDatabase>,
    sqlite_path: PathBuf,
}

impl TestStore {
    /// Opens a store in `dir` (SQLite) or in a new database (PostgreSQL).
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, queue_depth: Option<usize>) -> TestStore {
        let sqlite = SqliteOptions::in_dir(dir);
        if on_postgres() {
            let database = ScratchDatabase::create(&pg_base_url()).expect("a test database");
            let mut options = PostgresOptions::new(&database.url);
            if let Some(depth) = queue_depth {
                options.queue_depth = depth;
            }
            let store = crate::postgres::open(&options, clock).expect("open the store");
            return TestStore {
                store: Arc::new(store),
                database: Some(database),
                sqlite_path: sqlite.path,
            };
        }
        let mut options = sqlite.clone();
        if let Some(depth) = queue_depth {
            options.queue_depth = depth;
        }
        TestStore {
            store: Arc::new(crate::sqlite::open(&options, clock).expect("open the store")),
            database: None,
            sqlite_path: sqlite.path,
        }
    }

    /// A second store on the same database (another node on PostgreSQL; on SQLite,
    /// refused while this one is open).
    pub fn open_second(&self, clock: Arc<dyn Clock>) -> Result<SqlStore, String> {
        match &self.database {
            Some(db) => crate::postgres::open(&PostgresOptions::new(&db.url), clock),
            None => crate::sqlite::open(
                &SqliteOptions {
                    path: self.sqlite_path.clone(),
                    ..SqliteOptions::in_dir(Path::new("."))
                },
                clock,
            ),
        }
    }

    /// Verifies everything stored (`pocket verify`).
    pub fn verify(&self) -> Result<Verification, String> {
        match &self.database {
            Some(db) => crate::postgres::verify(&db.url),
            None => crate::sqlite::offline::verify(&self.sqlite_path),
        }
    }
}

/// A fixed start for tests' manual clocks (2026-11-27).
pub const T0: i64 = 1_795_600_800_000;

/// The value of a write that must have run now (not a replay).
pub fn fresh<T>(w: crate::model::Written<T>) -> T {
    match w {
        crate::model::Written::Fresh(v) => v,
        crate::model::Written::Replayed(_) => panic!("replay"),
    }
}

/// A new open CNY payment of `amount` minor units for `merchant_id`: automatic capture,
/// the contract's tiers, a local payment-page address. A test sets what it cares about
/// on top (`NewPayment { customer, ..new_payment(m, 100) }`).
pub fn new_payment(merchant_id: &str, amount: i64) -> crate::NewPayment {
    crate::NewPayment {
        merchant_id: merchant_id.to_string(),
        currency: pocket_core::Currency::parse("CNY", "currency").expect("CNY"),
        items: None,
        amount: Some(amount),
        customer: None,
        code: None,
        description: None,
        metadata: Default::default(),
        expires_in_seconds: None,
        capture: pocket_core::payment::CaptureMethod::Automatic,
        capture_within_seconds: None,
        policy: Arc::new(pocket_core::policy::PolicyBook::default()),
        qr: Arc::new(crate::QrContext {
            base_url: "http://127.0.0.1:8080".into(),
            place: pocket_core::emv::QrPlace {
                country: "CN".into(),
                city: "Shanghai".into(),
            },
        }),
    }
}

/// A database created for one run (a test, a benchmark) and dropped afterwards, with
/// every connection still open to it.
pub struct ScratchDatabase {
    pub name: String,
    pub url: String,
    base_url: String,
}

impl ScratchDatabase {
    /// Creates `pocket_scratch_<random>` on the server `base_url` points at
    /// (`postgres://user@host:port`, no database).
    pub fn create(base_url: &str) -> Result<ScratchDatabase, String> {
        let name = format!(
            "pocket_scratch_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        admin(base_url, &format!("CREATE DATABASE {name}"))?;
        Ok(ScratchDatabase {
            url: format!("{}/{name}", base_url.trim_end_matches('/')),
            name,
            base_url: base_url.to_owned(),
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = admin(&self.base_url, &sql) {
            tracing::warn!(error = %e, database = %self.name, "cannot drop a scratch database");
        }
    }
}

/// Runs one statement on the server's `postgres` database (on a plain thread).
fn admin(base_url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (
        format!("{}/postgres", base_url.trim_end_matches('/')),
        sql.to_owned(),
    );
    std::thread::spawn(move || {
        let mut client = config(&url)?
            .connect(postgres::NoTls)
            .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        client
            .batch_execute(&sql)
            .map_err(|e| format!("{sql}: {e}"))
    })
    .join()
    .map_err(|_| "a database statement panicked".to_string())?
}
