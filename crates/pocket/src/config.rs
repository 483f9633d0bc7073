//! Configuration: `pocket.toml`, then `POCKET_*` environment variables, then flags.
//!
//! Every key is documented in `pocket.example.toml`. Loading never panics: a bad file,
//! variable or value stops the start with a message naming the key and the reason.

use pocket_core::policy::{PolicyBook, TierTable};
use pocket_http::settings;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub security: SecurityConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub webhooks: WebhooksConfig,
    pub limits: LimitsConfig,
    pub qr: QrConfig,
    pub metrics: MetricsConfig,
    /// Banks, reached through connectors (`[[connectors]]`).
    pub connectors: Vec<ConnectorConfig>,
    /// `default` and per-currency tier tables.
    pub tiers: BTreeMap<String, TierTable>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub data: PathBuf,
    pub public_url: Option<String>,
    pub sandbox: bool,
    pub shutdown_grace_seconds: u64,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2) with this certificate chain and key (PEM).
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One `[[connectors]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    pub name: String,
    /// `sandbox` (the built-in sandbox bank) or `http` (the Pocket Connector Protocol).
    pub kind: String,
    pub currencies: Vec<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    /// `sandbox` only: how long its asynchronous card (…3220) takes to succeed.
    pub async_delay_seconds: Option<u64>,
    /// `http` only: allow plain `http://` to a connector that is not on loopback (a
    /// test set-up; anyone on the link can read card numbers). Warned at start.
    #[serde(default)]
    pub insecure: bool,
}

impl ConnectorConfig {
    /// Its name, kind, URL, secret and currencies, each within its rule.
    fn check(&self) -> Result<(), ConfigError> {
        if !pocket_connectors::name_ok(&self.name) {
            return Err(bad(
                "connectors.name",
                "must be 1 to 40 letters, digits, '-' or '_'",
            ));
        }
        match self.kind.as_str() {
            "sandbox" => {}
            "http" => self.check_http()?,
            _ => return Err(bad("connectors.kind", "must be \"sandbox\" or \"http\"")),
        }
        for code in &self.currencies {
            if pocket_core::Currency::parse(code, "currencies").is_err() {
                return Err(bad(
                    "connectors.currencies",
                    format!("'{code}' is not an ISO 4217 currency"),
                ));
            }
        }
        Ok(())
    }

    fn check_http(&self) -> Result<(), ConfigError> {
        let url_ok = self
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"));
        if !url_ok {
            return Err(bad(
                "connectors.url",
                "an http connector needs an http(s):// url",
            ));
        }
        if self.plain_http_off_loopback() && !self.insecure {
            return Err(bad(
                "connectors.url",
                format!(
                    "connector '{}' is not on loopback: it needs an https:// url (or `insecure = true` for a test set-up)",
                    self.name
                ),
            ));
        }
        if self.secret.as_deref().is_none_or(|s| s.len() < 16) {
            return Err(bad(
                "connectors.secret",
                "an http connector needs a secret of at least 16 characters",
            ));
        }
        Ok(())
    }

    /// Whether its URL is plain HTTP to a host other than loopback.
    pub fn plain_http_off_loopback(&self) -> bool {
        let Some(url) = self
            .url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
        else {
            return false;
        };
        let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        url.scheme() == "http" && !loopback
    }
}

/// The sandbox connector `--demo` and `--sandbox` configure when none is.
pub fn default_sandbox_connector() -> ConnectorConfig {
    ConnectorConfig {
        name: "sandbox".into(),
        kind: "sandbox".into(),
        currencies: ["CNY", "USD", "EUR", "JPY"].map(String::from).to_vec(),
        url: None,
        secret: None,
        async_delay_seconds: None,
        insecure: false,
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `GET /metrics` without the admin key (for a scraper on a private network).
    pub public: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QrConfig {
    /// ISO 3166-1 alpha-2 country of the merchants (EMV tag 58).
    pub country: String,
    /// City (EMV tag 60, at most 15 characters).
    pub city: String,
}

impl Default for QrConfig {
    fn default() -> Self {
        QrConfig {
            country: "CN".into(),
            city: "Shanghai".into(),
        }
    }
}

/// Longest public URL: payment links must fit in the QR's template 26.
pub const MAX_PUBLIC_URL_LEN: usize = pocket_core::emv::MAX_URL_LEN - "/pay/pay_".len() - 24;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per second (and burst) from one client IP; 0 turns the limit off.
    pub per_ip_per_second: u32,
    pub per_ip_burst: u32,
    /// Requests per second (and burst) with one credential; 0 turns the limit off.
    pub per_credential_per_second: u32,
    pub per_credential_burst: u32,
    /// Wallet event streams open at once.
    pub max_event_streams: usize,
    /// Connections open at once (beyond: `503` and closed); by default 10,000 or what
    /// the file-descriptor limit leaves room for.
    pub max_connections: Option<usize>,
    /// A connection that sends no complete request head within this many seconds
    /// (also between requests) is closed; a body that stalls this long gets `408`.
    pub header_read_timeout_seconds: u64,
    pub body_read_timeout_seconds: u64,
    /// Connections from one client address at once; by default a quarter of the cap.
    pub max_connections_per_ip: Option<usize>,
    /// A connection over which nothing passes either way for this long is closed.
    pub idle_timeout_seconds: u64,
    /// Load balancers (addresses or CIDR blocks) whose `X-Forwarded-For` names the
    /// client, so per-IP limits and PIN budgets count clients, not the balancer.
    pub trusted_proxies: Vec<String>,
    /// What one customer may spend per UTC day, per currency, in minor units
    /// (`{ CNY = 500000 }` is 5,000.00 CNY); over it, `402 limit_exceeded`. None by default.
    pub customer_daily_spend: std::collections::BTreeMap<String, i64>,
    /// Wrong payment codes one merchant may send per minute (0: no bound).
    pub code_failures_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_ip_per_second: 1_000,
            per_ip_burst: 2_000,
            per_credential_per_second: 500,
            per_credential_burst: 1_000,
            max_event_streams: 10_000,
            max_connections: None,
            header_read_timeout_seconds: crate::connections::HEADER_READ_TIMEOUT.as_secs(),
            body_read_timeout_seconds: pocket_http::extract::BODY_READ_TIMEOUT.as_secs(),
            max_connections_per_ip: None,
            idle_timeout_seconds: crate::connections::IDLE_TIMEOUT.as_secs(),
            trusted_proxies: Vec::new(),
            customer_daily_spend: Default::default(),
            code_failures_per_minute: pocket_http::settings::DEFAULT_CODE_FAILURES_PER_MINUTE,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub pin_hash_memory_kib: u32,
    pub pin_hash_iterations: u32,
    pub pin_max_failures: i64,
    pub pin_lock_seconds: i64,
    /// PIN hashes waiting or running at once; more get `503`.
    pub pin_queue_depth: usize,
    /// PIN verifications per minute (and burst) from one client IP; 0 turns it off.
    pub pin_per_ip_per_minute: u32,
    pub pin_per_ip_burst: u32,
    /// PIN verifications per minute (and burst) for one wallet; 0 turns it off.
    pub pin_per_phone_per_minute: u32,
    pub pin_per_phone_burst: u32,
    pub session_ttl_days: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `postgres://…`: keep the data in PostgreSQL (several nodes may share it);
    /// unset: the embedded SQLite database in `server.data`.
    pub url: Option<String>,
    pub queue_depth: usize,
    pub read_connections: usize,
    /// PostgreSQL: writer sessions of this node, whose batches commit side by side.
    pub write_connections: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow targets on loopback and private networks (tests, internal deployments).
    pub allow_private: bool,
    /// An attempt without a 2xx within this many seconds failed.
    pub timeout_seconds: u64,
    pub max_in_flight: usize,
    pub max_in_flight_per_endpoint: usize,
    /// Delays after each failed attempt; delivery gives up 3 days after the event.
    pub retry_schedule_seconds: Vec<i64>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_private: false,
            timeout_seconds: 10,
            max_in_flight: 32,
            max_in_flight_per_endpoint: 2,
            retry_schedule_seconds: pocket_core::retry::DEFAULT_SCHEDULE_SECONDS.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `pocket=debug,info`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data: PathBuf::from("./pocket-data"),
            public_url: None,
            sandbox: false,
            shutdown_grace_seconds: 10,
            tls: None,
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            pin_hash_memory_kib: settings::PinHashing::default().memory_kib,
            pin_hash_iterations: settings::PinHashing::default().iterations,
            pin_max_failures: 5,
            pin_lock_seconds: 15 * 60,
            pin_queue_depth: settings::DEFAULT_PIN_QUEUE_DEPTH,
            pin_per_ip_per_minute: settings::DEFAULT_PIN_BUDGET_PER_IP.per_minute,
            pin_per_ip_burst: settings::DEFAULT_PIN_BUDGET_PER_IP.burst,
            pin_per_phone_per_minute: settings::DEFAULT_PIN_BUDGET_PER_PHONE.per_minute,
            pin_per_phone_burst: settings::DEFAULT_PIN_BUDGET_PER_PHONE.burst,
            session_ttl_days: 30,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            queue_depth: pocket_store::sqlite::DEFAULT_QUEUE_DEPTH,
            read_connections: 8,
            write_connections: pocket_store::postgres::DEFAULT_WRITE_CONNECTIONS,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

/// A configuration problem, naming where it came from.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("invalid configuration: `{key}`: {why}"))
}

impl Config {
    /// Reads `path` (when given, it must exist; otherwise `./pocket.toml` is used if
    /// present), then applies environment variables from `env`.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(p) => Self::from_file(p)?,
            None if Path::new("pocket.toml").exists() => Self::from_file(Path::new("pocket.toml"))?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| ConfigError(format!("invalid config file {}: {e}", path.display())))
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &str, v: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim()
                .parse()
                .map_err(|e| bad(var, format!("cannot read {v:?}: {e}")))
        }
        if let Some(v) = env("POCKET_LISTEN") {
            self.server.listen = v;
        }
        if let Some(v) = env("POCKET_DATA") {
            self.server.data = PathBuf::from(v);
        }
        if let Some(v) = env("POCKET_PUBLIC_URL") {
            self.server.public_url = Some(v);
        }
        if let Some(v) = env("POCKET_SANDBOX") {
            self.server.sandbox = parse("POCKET_SANDBOX", v)?;
        }
        if let Some(v) = env("POCKET_PIN_HASH_MEMORY_KIB") {
            self.security.pin_hash_memory_kib = parse("POCKET_PIN_HASH_MEMORY_KIB", v)?;
        }
        if let Some(v) = env("POCKET_PIN_HASH_ITERATIONS") {
            self.security.pin_hash_iterations = parse("POCKET_PIN_HASH_ITERATIONS", v)?;
        }
        if let Some(v) = env("POCKET_PIN_PER_IP_PER_MINUTE") {
            self.security.pin_per_ip_per_minute = parse("POCKET_PIN_PER_IP_PER_MINUTE", v)?;
        }
        if let Some(v) = env("POCKET_PIN_PER_PHONE_PER_MINUTE") {
            self.security.pin_per_phone_per_minute = parse("POCKET_PIN_PER_PHONE_PER_MINUTE", v)?;
        }
        if let Some(v) = env("POCKET_DATABASE_URL").filter(|v| !v.trim().is_empty()) {
            self.storage.url = Some(v.trim().to_string());
        }
        if let Some(v) = env("POCKET_QUEUE_DEPTH") {
            self.storage.queue_depth = parse("POCKET_QUEUE_DEPTH", v)?;
        }
        if let Some(v) = env("POCKET_WRITE_CONNECTIONS") {
            self.storage.write_connections = parse("POCKET_WRITE_CONNECTIONS", v)?;
        }
        if let Some(v) = env("POCKET_WEBHOOKS_ALLOW_PRIVATE") {
            self.webhooks.allow_private = parse("POCKET_WEBHOOKS_ALLOW_PRIVATE", v)?;
        }
        if let Some(v) = env("POCKET_RATE_PER_IP") {
            self.limits.per_ip_per_second = parse("POCKET_RATE_PER_IP", v)?;
        }
        if let Some(v) = env("POCKET_TRUSTED_PROXIES") {
            self.limits.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(v) = env("POCKET_RATE_PER_CREDENTIAL") {
            self.limits.per_credential_per_second = parse("POCKET_RATE_PER_CREDENTIAL", v)?;
        }
        if let Some(v) = env("POCKET_CODE_FAILURES_PER_MINUTE") {
            self.limits.code_failures_per_minute = parse("POCKET_CODE_FAILURES_PER_MINUTE", v)?;
        }
        if let Some(v) = env("POCKET_LOG_FORMAT") {
            self.log.format = v;
        }
        if let Some(v) = env("POCKET_LOG") {
            self.log.level = v;
        }
        Ok(())
    }

    /// `limits.trusted_proxies` as networks (a bare address is a network of one).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.limits
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        bad(
                            "limits.trusted_proxies",
                            format!("{p:?} is neither an address nor a CIDR block"),
                        )
                    })
            })
            .collect()
    }

    /// `storage.url` must name PostgreSQL (the only other engine).
    pub fn check_storage(&self) -> Result<(), ConfigError> {
        match &self.storage.url {
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                Err(bad(
                    "storage.url",
                    "must be a postgres:// URL (leave it unset for the embedded database)",
                ))
            }
            _ => Ok(()),
        }
    }

    /// The addresses `server.listen` names: an address (`127.0.0.1:8080`, `[::1]:8080`)
    /// or a host name and port (`localhost:8080`, resolved here).
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        let listen = &self.server.listen;
        if let Ok(addr) = listen.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        let not_address = |why: String| {
            bad(
                "server.listen",
                format!(
                    "{listen:?} is not an address such as 127.0.0.1:8080 or localhost:8080 ({why})"
                ),
            )
        };
        let (host, port) = listen
            .rsplit_once(':')
            .ok_or_else(|| not_address("no port".into()))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(not_address("expected HOST:PORT".into()));
        }
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = listen
            .to_socket_addrs()
            .map_err(|e| not_address(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(not_address("the name has no address".into()));
        }
        Ok(addrs)
    }

    /// The tier tables as a policy book.
    pub fn policy(&self) -> PolicyBook {
        let mut book = PolicyBook::default();
        for (name, table) in &self.tiers {
            if name == "default" {
                book.default = table.clone();
            } else {
                book.per_currency.insert(name.clone(), table.clone());
            }
        }
        book
    }

    /// Checks every value; the error names the key.
    /// Checks every value against its bounds; the first out of bounds is named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addrs()?;
        self.trusted_proxies()?;
        self.check_server()?;
        self.check_security()?;
        self.check_storage_bounds()?;
        self.check_limits()?;
        let mut names = std::collections::BTreeSet::new();
        for c in &self.connectors {
            if !names.insert(c.name.clone()) {
                return Err(bad(
                    "connectors.name",
                    format!("'{}' is configured twice", c.name),
                ));
            }
            c.check()?;
        }
        self.check_webhooks()?;
        self.policy()
            .validate()
            .map_err(|e| ConfigError(format!("invalid configuration: `{e}`")))
    }

    fn check_server(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(
                    "server.public_url",
                    "must start with http:// or https://",
                ));
            }
            if url.trim_end_matches('/').len() > MAX_PUBLIC_URL_LEN {
                return Err(bad(
                    "server.public_url",
                    format!(
                        "must be at most {MAX_PUBLIC_URL_LEN} characters (it goes into QR codes)"
                    ),
                ));
            }
        }
        if self.qr.country.len() != 2 || !self.qr.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad(
                "qr.country",
                "must be an ISO 3166-1 alpha-2 code such as \"CN\"",
            ));
        }
        if self.qr.city.is_empty() || self.qr.city.len() > 15 || !self.qr.city.is_ascii() {
            return Err(bad("qr.city", "must be 1 to 15 ASCII characters"));
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(bad("log.format", "must be \"pretty\" or \"json\""));
        }
        if let Some(t) = &self.server.tls {
            for (key, path) in [("server.tls.cert", &t.cert), ("server.tls.key", &t.key)] {
                if !path.is_file() {
                    return Err(bad(
                        key,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        range(
            "server.shutdown_grace_seconds",
            self.server.shutdown_grace_seconds,
            0..=300,
        )
    }

    fn check_security(&self) -> Result<(), ConfigError> {
        let s = &self.security;
        range(
            "security.pin_hash_memory_kib",
            s.pin_hash_memory_kib,
            1024..=1024 * 1024,
        )?;
        range(
            "security.pin_hash_iterations",
            s.pin_hash_iterations,
            1..=10,
        )?;
        range("security.pin_max_failures", s.pin_max_failures, 1..=100)?;
        range("security.pin_lock_seconds", s.pin_lock_seconds, 1..=86_400)?;
        range("security.pin_queue_depth", s.pin_queue_depth, 1..=100_000)?;
        for (key, per_minute, burst) in [
            (
                "security.pin_per_ip_burst",
                s.pin_per_ip_per_minute,
                s.pin_per_ip_burst,
            ),
            (
                "security.pin_per_phone_burst",
                s.pin_per_phone_per_minute,
                s.pin_per_phone_burst,
            ),
        ] {
            if per_minute > 0 && burst == 0 {
                return Err(bad(
                    key,
                    "must be at least 1 when its per-minute budget is on",
                ));
            }
        }
        range("security.session_ttl_days", s.session_ttl_days, 1..=365)
    }

    fn check_storage_bounds(&self) -> Result<(), ConfigError> {
        let s = &self.storage;
        range("storage.queue_depth", s.queue_depth, 1..=1_000_000)?;
        range("storage.read_connections", s.read_connections, 1..=64)?;
        range("storage.write_connections", s.write_connections, 1..=32)
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        range(
            "limits.header_read_timeout_seconds",
            l.header_read_timeout_seconds,
            1..=600,
        )?;
        range(
            "limits.body_read_timeout_seconds",
            l.body_read_timeout_seconds,
            1..=600,
        )?;
        range(
            "limits.idle_timeout_seconds",
            l.idle_timeout_seconds,
            1..=600,
        )?;
        if let Some(n) = l.max_connections {
            range("limits.max_connections", n, 1..=1_000_000)?;
        }
        if let Some(n) = l.max_connections_per_ip {
            range("limits.max_connections_per_ip", n, 1..=1_000_000)?;
        }
        for (code, limit) in &l.customer_daily_spend {
            let key = format!("limits.customer_daily_spend.{code}");
            if pocket_core::Currency::parse(code, "currency").is_err() {
                return Err(bad(&key, format!("'{code}' is not an ISO 4217 currency")));
            }
            if pocket_core::money::check_amount(*limit, "limit").is_err() {
                return Err(bad(&key, "must be a positive amount in minor units"));
            }
        }
        range(
            "limits.max_event_streams",
            l.max_event_streams,
            1..=1_000_000,
        )
    }

    fn check_webhooks(&self) -> Result<(), ConfigError> {
        let w = &self.webhooks;
        range("webhooks.timeout_seconds", w.timeout_seconds, 1..=60)?;
        range("webhooks.max_in_flight", w.max_in_flight, 1..=1024)?;
        if !(1..=w.max_in_flight).contains(&w.max_in_flight_per_endpoint) {
            return Err(bad(
                "webhooks.max_in_flight_per_endpoint",
                "must be 1 to webhooks.max_in_flight",
            ));
        }
        let schedule = &w.retry_schedule_seconds;
        if schedule.is_empty()
            || schedule.len() > 20
            || schedule.iter().any(|s| !(1..=86_400).contains(s))
        {
            return Err(bad(
                "webhooks.retry_schedule_seconds",
                "must list 1 to 20 delays of 1 to 86400 seconds",
            ));
        }
        Ok(())
    }
}

/// `key`'s value must lie in `bounds`; the message says which bounds.
fn range<T>(key: &str, value: T, bounds: std::ops::RangeInclusive<T>) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if bounds.contains(&value) {
        Ok(())
    } else {
        Err(bad(
            key,
            format!("must be {} to {}", bounds.start(), bounds.end()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn example_file_is_the_defaults_and_valid() {
        let example: Config = toml::from_str(include_str!("../../../pocket.example.toml")).unwrap();
        example.validate().unwrap();
        let mut defaults = Config::default();
        defaults
            .tiers
            .insert("default".into(), TierTable::contract_default());
        assert_eq!(example, defaults);
    }

    #[test]
    fn errors_name_the_key() {
        let c: Result<Config, _> = toml::from_str("[server]\nlisten_on = 1");
        assert!(c.unwrap_err().to_string().contains("listen_on"));
        let mut c = Config::default();
        c.server.listen = "nowhere".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("server.listen")
        );
        c.server.listen = "localhost:0".into();
        assert!(
            c.listen_addrs()
                .unwrap()
                .iter()
                .all(|a| a.ip().is_loopback())
        );
        c.server.listen = "localhost".into();
        assert!(c.validate().is_err(), "a host without a port");
        let mut c = Config::default();
        c.log.format = "xml".into();
        assert!(c.validate().unwrap_err().to_string().contains("log.format"));
        let c: Config = toml::from_str(
            "[[tiers.default]]\nname = \"all\"\nup_to_major = 0\nwindow_seconds = 10\nauthentication = \"none\"",
        )
        .unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("tiers.default")
        );
    }

    #[test]
    fn a_connector_off_loopback_needs_https_or_an_explicit_insecure() {
        let with = |url: &str, insecure: bool| {
            let text = format!(
                "[[connectors]]\nname = \"acme\"\nkind = \"http\"\ncurrencies = [\"CNY\"]\nurl = \"{url}\"\nsecret = \"0123456789abcdef\"\ninsecure = {insecure}\n"
            );
            toml::from_str::<Config>(&text).unwrap().validate()
        };
        for url in [
            "http://10.0.0.7:9443",
            "http://bank.internal",
            "http://127.0.0.1.evil.example",
        ] {
            let e = with(url, false).unwrap_err().to_string();
            assert!(
                e.contains("connectors.url") && e.contains("https"),
                "{url}: {e}"
            );
            assert!(with(url, true).is_ok(), "{url} with insecure");
        }
        for url in [
            "https://bank.internal:9443",
            "http://127.0.0.1:9099",
            "http://127.8.0.1:9099",
            "http://localhost:9099",
            "http://[::1]:9099",
        ] {
            assert!(with(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn env_overrides_file() {
        let env = |k: &str| match k {
            "POCKET_LISTEN" => Some("127.0.0.1:9999".to_string()),
            "POCKET_SANDBOX" => Some("true".to_string()),
            _ => None,
        };
        let c = Config::load(None, &env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9999");
        assert!(c.server.sandbox);
        let env = |k: &str| (k == "POCKET_SANDBOX").then(|| "maybe".to_string());
        assert!(
            Config::load(None, &env)
                .unwrap_err()
                .to_string()
                .contains("POCKET_SANDBOX")
        );
        assert!(Config::load(Some(Path::new("/nonexistent.toml")), &no_env).is_err());
    }
}
