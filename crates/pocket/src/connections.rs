//! Connections: a cap on how many are open at once, timeouts for slow and silent
//! clients, and enough file descriptors to reach the cap.
//!
//! Without these, 1,100 silent connections made the server unreachable under a
//! 1,024-descriptor limit. Now: a connection that sends no complete request head
//! within [`HEADER_READ_TIMEOUT`] (also between requests on a keep-alive connection)
//! is closed; a body that stalls is answered `408` (see `pocket_http`); beyond the cap
//! a new connection gets a plain `503` with `Retry-After` and is closed, while the
//! ones already open keep being served.

use axum_server::accept::Accept;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest wait for a complete request head, counted from when the connection is
/// ready for one (so it is also the keep-alive idle timeout).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Descriptors kept free beyond the connection cap (database, log, webhook clients).
const RESERVED_DESCRIPTORS: u64 = 256;
/// The cap when the descriptor limit allows more.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// A connection over which nothing passes for this long is closed (longer than the
/// longest long-poll, 60 s; event streams send a keep-alive every 15 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// One client address's share of the cap, unless configured: a quarter.
pub fn default_per_ip(max_connections: usize) -> usize {
    (max_connections / 4).max(1)
}

/// Raises the soft limit on open files to the hard limit; returns the soft limit now.
pub fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// The cap that the descriptor limit leaves room for.
pub fn max_connections(configured: Option<usize>, descriptors: u64) -> usize {
    let room = descriptors.saturating_sub(RESERVED_DESCRIPTORS).max(16) as usize;
    configured.unwrap_or(DEFAULT_MAX_CONNECTIONS).min(room)
}

/// What a connection over the cap reads before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 126\r\n\r\n{\"error\":{\"type\":\"api_error\",\"code\":\"server_busy\",\"message\":\"Too many open connections; retry after a moment.\",\"param\":null}}\n";

/// Admits a connection while fewer than the cap are open, and fewer than the
/// per-address share from its client's address.
#[derive(Clone)]
pub struct Capped {
    permits: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_ip_max: usize,
    /// Plain HTTP: a refused connection is told why (under TLS it is only closed).
    plain: bool,
}

impl Capped {
    pub fn new(max_connections: usize, per_ip_max: usize, plain: bool) -> Capped {
        Capped {
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            per_ip: Arc::default(),
            per_ip_max: per_ip_max.max(1),
            plain,
        }
    }

    /// A place for a connection from `ip`, if the cap and its address's share allow.
    fn place(&self, ip: Option<IpAddr>) -> Option<Place> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let slot = match ip {
            Some(ip) => {
                let mut counts = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
                let n = counts.entry(ip).or_insert(0);
                if *n >= self.per_ip_max {
                    return None;
                }
                *n += 1;
                Some(IpSlot {
                    counts: self.per_ip.clone(),
                    ip,
                })
            }
            None => None,
        };
        Some(Place {
            _permit: permit,
            _slot: slot,
        })
    }
}

/// A connection's place under the cap and in its address's share, given back on drop.
pub struct Place {
    _permit: OwnedSemaphorePermit,
    _slot: Option<IpSlot>,
}

struct IpSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for Capped {
    type Stream = Guarded<TcpStream>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Guarded<TcpStream>, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let place = self.place(stream.peer_addr().ok().map(|a| a.ip()));
        let plain = self.plain;
        Box::pin(async move {
            let _ = stream.set_nodelay(true);
            match place {
                Some(place) => Ok((
                    Guarded {
                        inner: stream,
                        _place: Some(place),
                        first_bytes: None,
                        idle: None,
                    },
                    service,
                )),
                None => {
                    if plain {
                        // Best effort, never waiting on a client that does not read.
                        let _ = stream.try_write(REFUSAL);
                    }
                    Err(io::Error::other("connection cap reached"))
                }
            }
        })
    }
}

/// Deadlines on what a connection sends, above TLS if any: its first bytes must come
/// within `first_bytes` (the server reads a new connection to tell HTTP/1 from
/// HTTP/2 before hyper's header timeout applies, and that read has none), and a
/// connection over which nothing at all passes, either way, for `idle` is closed (an
/// HTTP/2 connection without streams; hyper's header timeout covers HTTP/1).
#[derive(Clone)]
pub struct Deadlines<A> {
    inner: A,
    first_bytes: Duration,
    idle: Duration,
}

impl<A> Deadlines<A> {
    pub fn new(inner: A, first_bytes: Duration, idle: Duration) -> Deadlines<A> {
        Deadlines {
            inner,
            first_bytes,
            idle,
        }
    }
}

impl<I, S, A> Accept<I, S> for Deadlines<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let (first_bytes, idle) = (self.first_bytes, self.idle);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((
                Guarded {
                    inner: stream,
                    _place: None,
                    first_bytes: Some(Box::pin(tokio::time::sleep(first_bytes))),
                    idle: Some((idle, Box::pin(tokio::time::sleep(idle)))),
                },
                service,
            ))
        })
    }
}

/// An accepted connection: it may hold a place under the cap (given back when it
/// closes), a deadline for its first bytes, and an idle deadline; past a deadline its
/// reads and writes fail with `TimedOut`, which closes it.
pub struct Guarded<S> {
    inner: S,
    _place: Option<Place>,
    /// Until the first bytes arrive.
    first_bytes: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Pushed back whenever bytes pass either way.
    idle: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection deadline passed")
}

impl<S> Guarded<S> {
    fn passed(&mut self) {
        if let Some((idle, sleep)) = self.idle.as_mut() {
            sleep.as_mut().reset(tokio::time::Instant::now() + *idle);
        }
    }

    /// Whether a deadline has passed (registering for a wake-up when not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let first = self
            .first_bytes
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready());
        let idle = self
            .idle
            .as_mut()
            .is_some_and(|(_, d)| d.as_mut().poll(cx).is_ready());
        first || idle
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.first_bytes = None;
                self.passed();
            }
            Poll::Pending if self.expired(cx) => return Poll::Ready(Err(timed_out())),
            _ => {}
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        match &polled {
            Poll::Ready(Ok(n)) if *n > 0 => self.passed(),
            Poll::Pending if self.expired(cx) => return Poll::Ready(Err(timed_out())),
            _ => {}
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        match &polled {
            Poll::Ready(Ok(n)) if *n > 0 => self.passed(),
            Poll::Pending if self.expired(cx) => return Poll::Ready(Err(timed_out())),
            _ => {}
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "server_busy");
    }

    #[test]
    fn the_cap_leaves_descriptors_free() {
        assert_eq!(max_connections(None, 1024), 768);
        assert_eq!(max_connections(None, 1 << 20), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(max_connections(Some(100), 1 << 20), 100);
    }
}
