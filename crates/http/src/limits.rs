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

/// Requests per second and burst; `per_second = 0` turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_credential: Option<DefaultKeyedRateLimiter<[u8; 16]>>,
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
            clock: DefaultClock::default(),
        }
    }

    /// Drops the state of clients that have been idle (call periodically).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_credential {
            l.retain_recent();
        }
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

/// The peer's IP address (`None` when the server was not started with connection info).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    fn of(extensions: &axum::http::Extensions) -> ClientIp {
        ClientIp(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        )
    }
}

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
