//! `pocket serve`: open the store, start the sweeper, serve HTTP, shut down gently.

use crate::config::{Config, LogConfig};
use crate::connections::{self, Capped, Deadlines};
use crate::demo;
use crate::open::{Opened, open};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use pocket_http::{AppState, Settings};
use pocket_store::clock::{Clock, SystemClock};
use pocket_webhooks::{Dispatcher, DispatcherConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The configured connectors; with none configured, `--demo` and `--sandbox` get the
/// built-in sandbox bank.
fn connectors(config: &Config, demo: bool) -> pocket_connectors::Registry {
    let mut list = config.connectors.clone();
    if list.is_empty() && (config.server.sandbox || demo) {
        list.push(crate::config::default_sandbox_connector());
    }
    let mut registry = pocket_connectors::Registry::default();
    for c in list {
        match (c.kind.as_str(), c.url.as_deref(), c.secret.as_deref()) {
            ("http", Some(url), Some(secret)) => {
                if c.plain_http_off_loopback() {
                    tracing::warn!(connector = %c.name, %url, "insecure = true: this connector is reached over plain HTTP off loopback; anyone on the link reads card numbers and tokens");
                    eprintln!(
                        "WARNING: connector '{}' is reached over plain HTTP ({url}), allowed by `insecure = true`: for test set-ups only.",
                        c.name
                    );
                }
                match pocket_connectors::http::HttpConnector::new(&c.name, url, secret) {
                    Ok(connector) => {
                        registry.add(Arc::new(connector), c.currencies);
                        registry.set_secret(&c.name, secret);
                    }
                    Err(e) => tracing::error!(connector = %c.name, "{e}"),
                }
            }
            _ => {
                let clock: pocket_connectors::sandbox::Clock = Arc::new(|| SystemClock.now_ms());
                let delay_ms = c.async_delay_seconds.unwrap_or(5) as i64 * 1000;
                let bank =
                    pocket_connectors::sandbox::SandboxBank::new(&c.name, delay_ms, 0.0, clock);
                registry.add(Arc::new(bank), c.currencies);
            }
        }
    }
    registry
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Forgets rate-limit and PIN-budget state of idle clients once a minute.
async fn forget_idle_clients(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {
                state.limits.forget_idle();
                state.pins.forget_idle();
            }
            _ = stop.changed() => return,
        }
    }
}

/// Connections waiting to be accepted.
const LISTEN_BACKLOG: i32 = 1024;

/// A socket bound to the first of `addrs` that can be had, not yet listening.
fn claim_port(addrs: &[SocketAddr]) -> std::io::Result<socket2::Socket> {
    let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address");
    for addr in addrs {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(*addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        // As std's listener does: a restart may bind while old connections linger.
        socket.set_reuse_address(true)?;
        match socket.bind(&(*addr).into()) {
            Ok(()) => return Ok(socket),
            Err(e) => last = e,
        }
    }
    Err(last)
}

pub async fn serve(config: Config, seed_demo: bool) -> Result<(), String> {
    // One TLS crypto provider for the server and the webhook client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cannot_listen = |e: std::io::Error| {
        format!(
            "cannot listen on {}: {e} (is another server running? try --listen 127.0.0.1:0)",
            config.server.listen
        )
    };
    // The port is claimed first: a start that cannot have it leaves nothing behind (no
    // data directory, no keys, no database). It starts listening only once the store is
    // open, so nobody connects to a server that cannot answer yet.
    let addrs = config.listen_addrs().map_err(|e| e.to_string())?;
    let socket = claim_port(&addrs).map_err(cannot_listen)?;
    let Opened {
        store,
        mut settings,
        new_admin_key,
    } = open(&config)?;
    if seed_demo {
        demo::seed(&store, &settings).await?;
    }
    socket.listen(LISTEN_BACKLOG).map_err(cannot_listen)?;
    let listener: std::net::TcpListener = socket.into();
    listener.set_nonblocking(true).map_err(cannot_listen)?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let tls = load_tls(&config).await?;
    settings.qr = Arc::new(qr_context(&config, tls.is_some(), local));
    let settings = Arc::new(settings);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listening = format!("{scheme}://{local}");
    announce(&config, &listening, &settings, new_admin_key.as_deref());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut state = AppState::new(store.clone(), settings);
    state.connectors = Arc::new(connectors(&config, seed_demo));
    let background = start_background(&config, &state, stop_rx)?;
    let app = pocket_http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = serve_http(&config, listener, tls, app).await;
    served.map_err(|e| format!("server error: {e}"))?;
    let _ = stop_tx.send(true);
    for task in background {
        let _ = task.await;
    }
    // Dropping the last handle to the store lets the writer finish its queue and stop.
    drop(store);
    println!("Pocket stopped.");
    Ok(())
}

/// The certificate and key `server.tls` names, loaded.
async fn load_tls(config: &Config) -> Result<Option<RustlsConfig>, String> {
    let Some(t) = &config.server.tls else {
        return Ok(None);
    };
    RustlsConfig::from_pem_file(&t.cert, &t.key)
        .await
        .map(Some)
        .map_err(|e| {
            format!(
                "invalid configuration: `server.tls`: cannot load {} / {}: {e}",
                t.cert.display(),
                t.key.display()
            )
        })
}

/// Where payment pages live and where the merchant is, for the QR codes.
fn qr_context(config: &Config, tls: bool, local: SocketAddr) -> pocket_store::QrContext {
    let scheme = if tls { "https" } else { "http" };
    let base_url = match &config.server.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("{scheme}://{local}"),
    };
    pocket_store::QrContext {
        base_url,
        place: pocket_core::emv::QrPlace {
            country: config.qr.country.clone(),
            city: config.qr.city.clone(),
        },
    }
}

/// What a starting server prints: where it listens (the line tests and scripts wait
/// for), its data, and an admin key made just now (shown this once).
fn announce(config: &Config, listening: &str, settings: &Settings, new_admin_key: Option<&str>) {
    println!("Pocket listening on {listening}");
    println!("Data directory: {}", config.server.data.display());
    if let Some(key) = new_admin_key {
        println!(
            "Admin key (shown once; also saved in {}): {key}",
            config.server.data.join("admin.key").display()
        );
    }
    if settings.sandbox {
        println!("Sandbox mode: wallets may top themselves up.");
    }
}

/// The tasks beside the HTTP server: the sweeper (deadlines), the webhook dispatcher,
/// the bank-operation poller and the idle-client forgetter; each ends on `stop`.
fn start_background(
    config: &Config,
    state: &AppState,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let store = &state.store;
    let w = &config.webhooks;
    let dispatcher = Dispatcher::new(
        store.clone(),
        state.settings.server_key,
        DispatcherConfig {
            timeout_ms: w.timeout_seconds * 1000,
            max_in_flight: w.max_in_flight,
            max_in_flight_per_endpoint: w.max_in_flight_per_endpoint,
            retry_schedule_seconds: w.retry_schedule_seconds.clone(),
            allow_private: w.allow_private,
            ..DispatcherConfig::default()
        },
    )?;
    Ok(vec![
        tokio::spawn(pocket_store::sweeper::run(store.clone(), stop.clone())),
        tokio::spawn(dispatcher.run(stop.clone())),
        tokio::spawn(pocket_connectors::operations::run(
            store.clone(),
            state.connectors.clone(),
            stop.clone(),
        )),
        tokio::spawn(forget_idle_clients(state.clone(), stop)),
    ])
}

/// Serves `app` on `listener` (over TLS when configured) under the connection cap and
/// deadlines, until SIGINT/SIGTERM: then it stops accepting and lets in-flight requests
/// finish (up to the grace).
async fn serve_http(
    config: &Config,
    listener: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
) -> std::io::Result<()> {
    let handle = Handle::new();
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let on_signal = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        on_signal.graceful_shutdown(Some(grace));
    });
    let descriptors = connections::raise_descriptor_limit();
    let cap = connections::max_connections(config.limits.max_connections, descriptors);
    let per_ip = config
        .limits
        .max_connections_per_ip
        .unwrap_or_else(|| connections::default_per_ip(cap));
    tracing::info!(
        descriptors,
        max_connections = cap,
        per_ip,
        "connection limits"
    );
    let header_timeout = Duration::from_secs(config.limits.header_read_timeout_seconds);
    let idle_timeout = Duration::from_secs(config.limits.idle_timeout_seconds);
    let http = |builder: &mut hyper_util::server::conn::auto::Builder<_>| {
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout);
        // No HTTP/2 keep-alive pings: they would keep an idle connection busy past its
        // idle deadline (`connections::Deadlines`), which closes idle and dead peers.
        builder.http2().timer(hyper_util::rt::TokioTimer::new());
    };
    match tls {
        Some(tls) => {
            let mut server = axum_server::from_tcp_rustls(listener, tls)
                .map(|tls| {
                    let tls = tls.acceptor(Capped::new(cap, per_ip, false));
                    Deadlines::new(tls, header_timeout, idle_timeout)
                })
                .handle(handle);
            http(server.http_builder());
            server.serve(app).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(Deadlines::new(
                    Capped::new(cap, per_ip, true),
                    header_timeout,
                    idle_timeout,
                ))
                .handle(handle);
            http(server.http_builder());
            server.serve(app).await
        }
    }
}
