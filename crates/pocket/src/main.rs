//! `pocket`: the one binary. `pocket serve` runs the server on its embedded
//! database; `pocket demo-data` seeds a merchant, a catalog and two customers;
//! `pocket openapi` prints the API document.
//!
//! Architecture invariant: a thin shell — one value and one `run` per subcommand
//! (`commands`); what a command does lives in the library crates.

mod commands;
mod config;
mod connections;
mod demo;
mod keys;
mod open;
mod sandbox_bank;
mod serve;

/// jemalloc for Rust's allocations and, unprefixed, for SQLite's and every other C
/// allocation in the process: glibc's malloc/free were a fifth of the writer thread's
/// samples. Measured (90-s default-mix runs, BENCHMARKS.md): glibc 4,749 payments/s,
/// 132 µs/request, 48 MiB; mimalloc 6,972/s, 89 µs, but 122 MiB and still growing
/// (its statistics: ~11 MiB live, 188 MiB committed); jemalloc 6,327/s, 99 µs, 43 MiB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::Parser;
use commands::Command;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pocket",
    version,
    about = "Pocket: mobile payments with time-boxed payment requests and a double-entry ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Flags shared by the commands that open the data directory.
#[derive(clap::Args, Clone, Default)]
pub struct CommonArgs {
    /// Directory of the embedded database [default: ./pocket-data]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Configuration file [default: ./pocket.toml if present]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Keep the data in PostgreSQL (`postgres://…`; also `POCKET_DATABASE_URL`,
    /// `storage.url`) instead of the embedded database in --data
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

fn load_config(common: &CommonArgs) -> Result<config::Config, String> {
    let env = |k: &str| std::env::var(k).ok();
    let mut c = config::Config::load(common.config.as_deref(), &env).map_err(|e| e.to_string())?;
    if let Some(d) = &common.data {
        c.server.data = d.clone();
    }
    if let Some(url) = &common.database {
        c.storage.url = Some(url.clone());
    }
    c.check_storage().map_err(|e| e.to_string())?;
    Ok(c)
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => args.run(),
        Command::DemoData(args) => args.run(),
        Command::Verify(args) => args.run(),
        Command::Reconcile(args) => args.run(),
        Command::SandboxBank(args) => args.run(),
        Command::Backup(args) => args.run(),
        Command::MigrateData(args) => args.run(),
        Command::Bench(args) => args.run(),
        Command::Openapi => {
            println!("{}", pocket_http::openapi_json());
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn main() -> ExitCode {
    // A write past a file-size limit fails (and is answered 503) instead of killing
    // the process.
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pocket: {message}");
            ExitCode::FAILURE
        }
    }
}
