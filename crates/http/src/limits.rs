//! Request rate limits, per client IP and per credential (token bucket, `governor`).
//! Over the limit: `429 rate_limited` with `Retry-After`. Buckets idle for a while are
//! forgotten by [`RateLimits::forget_idle`], so memory stays bounded.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use pocket_core::{Error, ErrorKind};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

/// Look-ups of payments by phone a merchant may make per hour (each node), and at once.
pub const PHONE_SEARCHES_PER_HOUR: NonZeroU32 = NonZeroU32::new(60).unwrap();
pub const PHONE_SEARCH_BURST: NonZeroU32 = NonZeroU32::new(20).unwrap();

/// Requests per second and burst; `per_second = 0` turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_credential: Option<DefaultKeyedRateLimiter<[u8; 16]>>,
    /// Payments looked up by a customer's phone, per merchant: the masked phone hides 4
    /// digits, so unbounded look-ups would tell a whole number in 10^4 tries.
    phone_searches: DefaultKeyedRateLimiter<String>,
    /// Made once: creating a clock calibrates it, which is far too slow per request.
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(rate: Rate) -> Option<DefaultKeyedRateLimiter<K>> {
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst.max(rate.per_second)).unwrap_or(per_second);
    Some(RateLimiter::keyed(
        Quota::per_second(per_second).allow_burst(burst),
    ))
}

impl RateLimits {
    pub fn new(per_ip: Rate, per_credential: Rate) -> RateLimits {
        RateLimits {
            per_ip: limiter(per_ip),
            per_credential: limiter(per_credential),
            phone_searches: RateLimiter::keyed(
                Quota::per_hour(PHONE_SEARCHES_PER_HOUR).allow_burst(PHONE_SEARCH_BURST),
            ),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one look-up of payments by a customer's phone for `merchant` (every
    /// credential of the merchant together); `429` over the limit.
    pub fn phone_search(&self, merchant: &str) -> Result<(), Error> {
        self.phone_searches
            .check_key(&merchant.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now()).as_secs() + 1;
                Error::new(
                    ErrorKind::RateLimited,
                    "rate_limited",
                    "Too many look-ups by phone number; try again later, or look up by customer id.",
                )
                .with_retry_after(wait)
            })
    }

    /// Drops the state of clients that have been idle (call periodically).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_credential {
            l.retain_recent();
        }
        self.phone_searches.retain_recent();
    }

    /// `Err(seconds to wait)` when over a limit.
    fn check(&self, ip: Option<IpAddr>, credential: Option<&[u8]>) -> Result<(), u64> {
        let wait = |not_until: governor::NotUntil<_>| {
            not_until.wait_time_from(self.clock.now()).as_secs() + 1
        };
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            l.check_key(&ip).map_err(wait)?;
        }
        if let (Some(l), Some(c)) = (&self.per_credential, credential) {
            // Keyed by a digest: the bucket map never holds a credential.
            let d = Sha256::digest(c);
            let mut key = [0u8; 16];
            key.copy_from_slice(&d[..16]);
            l.check_key(&key).map_err(wait)?;
        }
        Ok(())
    }
}

/// The client's IP address: the peer's, or behind a trusted proxy the one it forwarded
/// (`None` when the server was not started with connection info).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

/// The client's address as a trusted proxy forwarded it (set by [`forwarded`]).
#[derive(Clone, Copy, Debug)]
struct Forwarded(IpAddr);

impl ClientIp {
    fn of(extensions: &axum::http::Extensions) -> ClientIp {
        if let Some(Forwarded(ip)) = extensions.get::<Forwarded>() {
            return ClientIp(Some(*ip));
        }
        // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d.
        ClientIp(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical()),
        )
    }
}

/// Behind a trusted proxy (`limits.trusted_proxies`), takes the client's address from
/// `X-Forwarded-For`; from anyone else the header is ignored, so nobody can choose
/// the address their limits are counted under.
pub async fn forwarded(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let proxies = &state.settings.trusted_proxies;
    if !proxies.is_empty() {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical());
        if peer.is_some_and(|p| proxies.iter().any(|n| n.contains(&p)))
            && let Some(ip) = client_behind(request.headers(), proxies)
        {
            request.extensions_mut().insert(Forwarded(ip));
        }
    }
    next.run(request).await
}

/// The client behind trusted proxies: `X-Forwarded-For` read from the right (each proxy
/// appends the address it saw), skipping trusted proxies; the first other address is
/// the client's. What lies further left was written by the client and proves nothing.
/// Entries are read as bytes, one by one, so what the client wrote on the left
/// (however malformed) is never looked at once an address the proxies vouch for is
/// found. An entry may carry a port (`a.b.c.d:port`, `[v6]:port`). An unreadable
/// entry reached before that gives `None` (the peer's address is used).
fn client_behind(headers: &axum::http::HeaderMap, proxies: &[ipnet::IpNet]) -> Option<IpAddr> {
    let mut hops: Vec<&[u8]> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        hops.extend(value.as_bytes().split(|b| *b == b','));
    }
    let mut leftmost = None;
    for hop in hops.iter().rev().take(MAX_FORWARDED_HOPS) {
        let ip = hop_address(hop)?;
        if !proxies.iter().any(|n| n.contains(&ip)) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

/// One `X-Forwarded-For` entry as an address (its port, if any, dropped).
fn hop_address(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim();
    let ip = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

/// Most `X-Forwarded-For` entries looked at (a limit on everything).
const MAX_FORWARDED_HOPS: usize = 16;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(&parts.extensions))
    }
}

/// The middleware.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = ClientIp::of(request.extensions()).0;
    let credential = request
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    if let Err(retry_after) = state.limits.check(ip, credential.as_deref()) {
        let mut r = ApiError(Error::new(
            ErrorKind::RateLimited,
            "rate_limited",
            "Too many requests; slow down and retry after the time in Retry-After.",
        ))
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    next.run(request).await
}

#[cfg(test)]
mod forwarded_tests {
    use super::client_behind;
    use axum::http::HeaderMap;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let proxies = vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ];
        let ip = |s: &str| Some(s.parse().unwrap());
        assert_eq!(
            client_behind(&headers(&["203.0.113.7"]), &proxies),
            ip("203.0.113.7")
        );
        // The client wrote a fake address first; the proxy appended the real one.
        assert_eq!(
            client_behind(&headers(&["1.2.3.4, 203.0.113.7, 10.0.0.5"]), &proxies),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_behind(&headers(&["1.2.3.4", "203.0.113.7"]), &proxies),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_behind(&headers(&["10.1.1.1"]), &proxies),
            ip("10.1.1.1")
        );
        assert_eq!(client_behind(&headers(&["not an address"]), &proxies), None);
        assert_eq!(client_behind(&headers(&[]), &proxies), None);
        assert_eq!(
            client_behind(&headers(&["2001:db8::1"]), &proxies),
            ip("2001:db8::1")
        );
        // Ports, IPv4-mapped addresses, and garbage on the client's side of the header.
        assert_eq!(
            client_behind(&headers(&["203.0.113.7:5555, 10.0.0.5"]), &proxies),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_behind(&headers(&["[2001:db8::2]:443"]), &proxies),
            ip("2001:db8::2")
        );
        assert_eq!(
            client_behind(&headers(&["::ffff:203.0.113.9"]), &proxies),
            ip("203.0.113.9")
        );
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe junk, 203.0.113.7").unwrap(),
        );
        assert_eq!(client_behind(&h, &proxies), ip("203.0.113.7"));
    }
}
