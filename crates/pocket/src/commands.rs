//! The subcommands: each one's flags as a value and what it does (`run`), dispatched
//! from `main.rs`.

use crate::{CommonArgs, config, demo, keys, load_config, runtime, sandbox_bank, serve};
use clap::Subcommand;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

/// How long the end of `serve` waits for background tasks once it has stopped serving.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Subcommand)]
pub enum Command {
    /// Run the payment server.
    Serve(ServeArgs),
    /// Seed a demo merchant with a catalog and two customers with money, and print
    /// their credentials.
    DemoData(DemoDataArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Check a data directory (also while a server runs): database integrity, ledger
    /// conservation and running totals, one transfer per success, no negative
    /// balance, every payment's state consistent. Exits non-zero on any fault.
    Verify(VerifyArgs),
    /// Reconcile a connector's operations of one day against its statement, through
    /// the running server (`GET /v1/admin/reconciliation`). Exits non-zero on any
    /// difference.
    Reconcile(ReconcileArgs),
    /// Run the sandbox bank as a process of its own, speaking the Pocket Connector
    /// Protocol (docs/CONNECTORS.md), for an `http` connector.
    SandboxBank(SandboxBankArgs),
    /// Write a consistent copy of the database to FILE while the server runs. The
    /// keys in the data directory (server.key, admin.key) are not in it: keep them too.
    Backup(BackupArgs),
    /// Copy a SQLite data directory into an empty PostgreSQL database and verify the
    /// copy (every row of every table, the ledger, every payment's state). Stop the
    /// server first; afterwards start every node with the directory's server key.
    MigrateData(MigrateDataArgs),
    /// Drive a server with concurrent clients and report throughput, latency, errors,
    /// memory and a ledger check.
    Bench(BenchArgs),
}

/// The flags of `pocket serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address and port to listen on [default: 127.0.0.1:8080]
    #[arg(long)]
    pub listen: Option<String>,
    /// Let wallets top themselves up (no bank yet); responses say `Pocket-Mode: sandbox`.
    #[arg(long)]
    pub sandbox: bool,
    /// Seed the demo merchant and customers first, if not yet present.
    #[arg(long)]
    pub demo: bool,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The flags of `pocket demo-data`.
#[derive(clap::Args)]
pub struct DemoDataArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The flags of `pocket verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The flags of `pocket reconcile`.
#[derive(clap::Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long)]
    pub connector: String,
    /// The day, YYYY-MM-DD (UTC).
    #[arg(long)]
    pub date: String,
    /// The server's base URL [default: http://<server.listen>].
    #[arg(long)]
    pub url: Option<String>,
    /// Print CSV instead of JSON.
    #[arg(long)]
    pub csv: bool,
}

/// The flags of `pocket sandbox-bank`.
#[derive(clap::Args)]
pub struct SandboxBankArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:9099")]
    pub listen: String,
    /// The secret shared with Pocket (`[[connectors]] secret`).
    #[arg(long, env = "POCKET_SANDBOX_BANK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Where to post notifications: `<Pocket>/v1/connectors/<name>/notifications`.
    #[arg(long)]
    pub notify: Option<String>,
    /// How long the asynchronous card (4000000000003220) takes, in seconds.
    #[arg(long, default_value_t = 5)]
    pub async_delay: u64,
    /// Share of requests answered with 500 before anything is done (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Loses, repeats and delays notifications, each with this probability (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub notification_chaos: f64,
    /// The currencies it moves (others are declined `currency_unsupported`).
    #[arg(long, value_delimiter = ',', default_value = "CNY,USD,EUR,JPY")]
    pub currencies: Vec<String>,
    /// Keep its operations in this file (JSON lines), so that after a restart a
    /// re-sent operation is answered, not done twice. Without it, memory only.
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
}

/// The flags of `pocket backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where to write the copy (must not exist).
    #[arg(long)]
    pub to: PathBuf,
}

/// The flags of `pocket migrate-data`.
#[derive(clap::Args)]
pub struct MigrateDataArgs {
    /// The data directory to copy from.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The empty PostgreSQL database to copy into.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// The flags of `pocket bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// A running server's base URL; without it (or with --spawn) a server is
    /// started on a temporary data directory. Several (comma-separated or
    /// repeated): nodes of one database, the clients spread over them.
    #[arg(long, conflicts_with = "spawn", value_delimiter = ',')]
    pub url: Vec<String>,
    /// Start a server for the run (the default when --url is not given).
    #[arg(long)]
    pub spawn: bool,
    /// With --spawn: the spawned servers keep their data in this (empty)
    /// PostgreSQL database instead of a temporary embedded one.
    #[arg(long, value_name = "URL", conflicts_with = "url")]
    pub database: Option<String>,
    /// With --spawn --database: how many nodes to start on it.
    #[arg(long, default_value_t = 1, requires = "database")]
    pub nodes: usize,
    /// With --spawn --database: the nodes reach the database through a local
    /// proxy adding this much round-trip delay (1: a database on its own host).
    #[arg(long, value_name = "MS", requires = "database")]
    pub db_delay_ms: Option<f64>,
    /// The operator's key of the --url server.
    #[arg(long, env = "POCKET_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// The --url server's pid, to report its memory.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Concurrent clients, each with a keep-alive connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Stop after this many iterations instead.
    #[arg(long)]
    pub count: Option<u64>,
    /// Shares of other kinds of iteration, e.g. refund=0.05,decline=0.02,expire=0.01,insufficient=0.02,retry=0.05,pin=0.01
    #[arg(long, default_value = "")]
    pub mix: String,
    /// Merchants the clients are spread over.
    #[arg(long, default_value_t = 8)]
    pub merchants: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl ServeArgs {
    pub fn run(self) -> Result<(), String> {
        let ServeArgs {
            common,
            listen,
            sandbox,
            demo,
            tls_cert,
            tls_key,
        } = self;

        let mut c = load_config(&common)?;
        if let Some(l) = listen {
            c.server.listen = l;
        }
        if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
            c.server.tls = Some(config::TlsConfig { cert, key });
        }
        c.server.sandbox |= sandbox;
        c.validate().map_err(|e| e.to_string())?;
        serve::init_logging(&c.log);
        let rt = runtime()?;
        let served =
            std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(serve::serve(c, demo))));
        match served {
            Ok(result) => {
                // A blocking task still running after the shutdown does not hold the exit.
                rt.shutdown_timeout(EXIT_WAIT);
                result
            }
            // The hook printed the panic. Unwinding further would drop the runtime, which
            // waits for its tasks, and they for the store the unwinding holds: a server
            // that neither serves nor exits. Exit now; what was acknowledged is stored.
            Err(_) => std::process::exit(101),
        }
    }
}

impl DemoDataArgs {
    pub fn run(self) -> Result<(), String> {
        let DemoDataArgs { common } = self;

        let c = load_config(&common)?;
        c.validate().map_err(|e| e.to_string())?;
        runtime()?.block_on(demo::seed_standalone(c))
    }
}

impl VerifyArgs {
    pub fn run(self) -> Result<(), String> {
        let VerifyArgs { common } = self;

        let c = load_config(&common)?;
        let (place, v) = match &c.storage.url {
            Some(url) => (
                "the PostgreSQL database".to_string(),
                pocket_store::postgres::verify(url)?,
            ),
            None => {
                let db = pocket_store::sqlite::SqliteOptions::in_dir(&c.server.data).path;
                let v = pocket_store::sqlite::offline::verify(&db)?;
                (db.display().to_string(), v)
            }
        };
        println!(
            "{place}: {} payments, {} refunds, {} accounts, {} transfers",
            v.payments, v.refunds, v.accounts, v.transfers
        );
        if v.faults.is_empty() {
            println!("verified: no fault found");
            Ok(())
        } else {
            for f in &v.faults {
                println!("FAULT: {f}");
            }
            Err(format!("{} fault(s) found", v.faults.len()))
        }
    }
}

/// How long `pocket reconcile` waits for the server's answer, and the most of it read.
const RECONCILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
const RECONCILE_MAX_BYTES: usize = 64 << 20;

impl ReconcileArgs {
    pub fn run(self) -> Result<(), String> {
        let c = load_config(&self.common)?;
        let base = self
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}", c.server.listen));
        let admin = admin_key(&c)?;
        let format = if self.csv { "csv" } else { "json" };
        let query = [
            ("connector", self.connector.as_str()),
            ("date", self.date.as_str()),
            ("format", format),
        ];
        let body = runtime()?.block_on(fetch_reconciliation(&base, &query, &admin))?;
        print!("{body}");
        if books_clean(&body, self.csv) {
            Ok(())
        } else {
            Err("the books differ".into())
        }
    }
}

/// The operator's key: `POCKET_ADMIN_KEY`, else the data directory's `admin.key`.
fn admin_key(c: &config::Config) -> Result<String, String> {
    if let Ok(k) = std::env::var("POCKET_ADMIN_KEY") {
        return Ok(k);
    }
    let file = c.server.data.join("admin.key");
    std::fs::read_to_string(&file)
        .map(|k| k.trim().to_string())
        .map_err(|e| format!("no admin key (POCKET_ADMIN_KEY or {}): {e}", file.display()))
}

/// The server's reconciliation of one connector's day, its answer bounded in time and
/// size (no proxy from the environment: the operator's key goes to the server only).
async fn fetch_reconciliation(
    base: &str,
    query: &[(&str, &str)],
    admin: &str,
) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(RECONCILE_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{}/v1/admin/reconciliation", base.trim_end_matches('/'));
    let mut r = client
        .get(url)
        .query(query)
        .bearer_auth(admin)
        .send()
        .await
        .map_err(|e| format!("cannot reach {base}: {e}"))?;
    let status = r.status();
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > RECONCILE_MAX_BYTES {
            return Err(format!("the answer is over {RECONCILE_MAX_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        return Err(format!("the server answered {status}: {body}"));
    }
    Ok(body)
}

/// Whether a reconciliation found nothing: a CSV of its header only, or JSON with
/// every list of differences empty.
fn books_clean(body: &str, csv: bool) -> bool {
    if csv {
        return body.lines().count() <= 1;
    }
    serde_json::from_str::<serde_json::Value>(body)
        .map(|v| {
            [
                "missing_at_connector",
                "missing_in_pocket",
                "amount_mismatches",
                "status_mismatches",
            ]
            .iter()
            .all(|k| v[k].as_array().is_some_and(|a| a.is_empty()))
        })
        .unwrap_or(false)
}

impl SandboxBankArgs {
    pub fn run(self) -> Result<(), String> {
        let SandboxBankArgs {
            listen,
            secret,
            notify,
            async_delay,
            fail_rate,
            notification_chaos,
            currencies,
            state,
        } = self;

        if !(0.0..=1.0).contains(&fail_rate) || !(0.0..=1.0).contains(&notification_chaos) {
            return Err("--fail-rate and --notification-chaos must be 0 to 1".into());
        }
        if secret.len() < 16 {
            return Err("--secret must be at least 16 characters".into());
        }
        if let Some(c) = currencies
            .iter()
            .find(|c| pocket_core::Currency::parse(c, "currencies").is_err())
        {
            return Err(format!("--currencies: '{c}' is not an ISO 4217 currency"));
        }
        runtime()?.block_on(sandbox_bank::run(sandbox_bank::Options {
            listen,
            secret,
            notify,
            async_delay_seconds: async_delay,
            fail_rate,
            notification_chaos,
            currencies,
            state,
        }))
    }
}

impl BackupArgs {
    pub fn run(self) -> Result<(), String> {
        let BackupArgs { common, to } = self;

        let c = load_config(&common)?;
        if c.storage.url.is_some() {
            return Err("on PostgreSQL, back up with the database's own tools \
            (pg_basebackup and WAL archiving, or pg_dump); see docs/DEPLOY.md"
                .into());
        }
        let db = pocket_store::sqlite::SqliteOptions::in_dir(&c.server.data).path;
        let bytes = pocket_store::sqlite::offline::backup(&db, &to)?;
        println!(
            "backed up {} to {} ({bytes} bytes, integrity checked)",
            db.display(),
            to.display()
        );
        println!(
            "keep {} with it: without the server key, keys, sessions and PINs cannot be checked",
            c.server.data.join("server.key").display()
        );
        Ok(())
    }
}

impl MigrateDataArgs {
    pub fn run(self) -> Result<(), String> {
        let MigrateDataArgs { from, to } = self;

        let db = pocket_store::sqlite::SqliteOptions::in_dir(&from).path;
        if !from.join("server.key").exists() {
            return Err(format!(
                "no server key at {}",
                from.join("server.key").display()
            ));
        }
        // The directory's keys (the admin key from POCKET_ADMIN_KEY if set, as
        // `serve` takes it): the copy records them; other keys are refused.
        let server_key = keys::server_key_file(&from)?;
        let admin_key = keys::admin_key_existing(&from)?;
        let admin_digest: [u8; 32] =
            <sha2::Sha256 as sha2::Digest>::digest(admin_key.as_bytes()).into();
        let copied = pocket_store::postgres::copy::from_sqlite(
            &db,
            &to,
            keys::checks(&server_key, &admin_digest),
        )?;
        for (table, rows) in &copied.tables {
            println!("copied {rows:>8} rows of {table}");
        }
        let v = &copied.verification;
        println!(
            "verified: every row of every table equal; {} payments, {} refunds, {} accounts, {} transfers",
            v.payments, v.refunds, v.accounts, v.transfers
        );
        if !v.faults.is_empty() {
            for f in &v.faults {
                println!("FAULT: {f}");
            }
            return Err(format!("{} fault(s) found in the copy", v.faults.len()));
        }
        println!(
            "done. Start every node with --database and POCKET_SERVER_KEY set to the \
         content of {} (and the same admin key): the stored digests are keyed with it.",
            from.join("server.key").display()
        );
        Ok(())
    }
}

impl BenchArgs {
    pub fn run(self) -> Result<(), String> {
        let BenchArgs {
            url,
            spawn: _,
            database,
            nodes,
            db_delay_ms,
            admin_key,
            pid,
            clients,
            seconds,
            count,
            mix,
            merchants,
            json,
        } = self;

        if !(1..=4096).contains(&clients) {
            return Err("--clients must be 1 to 4096".into());
        }
        if !(1..=16).contains(&nodes) {
            return Err("--nodes must be 1 to 16".into());
        }
        if db_delay_ms.is_some_and(|ms| !(0.0..=100.0).contains(&ms)) {
            return Err("--db-delay-ms must be 0 to 100".into());
        }
        let opts = pocket_bench::Options {
            urls: url,
            database,
            nodes,
            db_delay: db_delay_ms.map(|ms| std::time::Duration::from_micros((ms * 1000.0) as u64)),
            admin_key,
            pid,
            clients,
            duration: std::time::Duration::from_secs(seconds),
            count,
            mix: pocket_bench::mix::Mix::parse(&mix)?,
            merchants,
            exe: std::env::current_exe()
                .map_err(|e| format!("cannot find the pocket executable: {e}"))?,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        let report = runtime()?.block_on(pocket_bench::run(opts))?;
        report.print();
        if let Some(path) = json {
            let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        if report.ok {
            Ok(())
        } else {
            Err("the benchmark saw unexpected answers or a ledger problem".into())
        }
    }
}
