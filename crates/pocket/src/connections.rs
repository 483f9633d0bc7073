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
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
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

/// Admits a connection while fewer than the cap are open.
#[derive(Clone)]
pub struct Capped {
    permits: Arc<Semaphore>,
    /// Plain HTTP: a refused connection is told why (under TLS it is only closed).
    plain: bool,
}

impl Capped {
    pub fn new(max_connections: usize, plain: bool) -> Capped {
        Capped {
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            plain,
        }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for Capped {
    type Stream = Guarded<TcpStream>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Guarded<TcpStream>, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let permit = self.permits.clone().try_acquire_owned();
        let plain = self.plain;
        Box::pin(async move {
            let _ = stream.set_nodelay(true);
            match permit {
                Ok(permit) => Ok((
                    Guarded {
                        inner: stream,
                        _permit: Some(permit),
                        deadline: None,
                    },
                    service,
                )),
                Err(_) => {
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

/// Closes a connection whose first bytes of HTTP (after TLS, if any) do not come
/// within `timeout`. Needed beside hyper's header-read timeout: the server first reads
/// a new connection to tell HTTP/1 from HTTP/2, and that read has no timeout.
#[derive(Clone)]
pub struct FirstBytesDeadline<A> {
    inner: A,
    timeout: Duration,
}

impl<A> FirstBytesDeadline<A> {
    pub fn new(inner: A, timeout: Duration) -> FirstBytesDeadline<A> {
        FirstBytesDeadline { inner, timeout }
    }
}

impl<I, S, A> Accept<I, S> for FirstBytesDeadline<A>
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
        let timeout = self.timeout;
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((
                Guarded {
                    inner: stream,
                    _permit: None,
                    deadline: Some(Box::pin(tokio::time::sleep(timeout))),
                },
                service,
            ))
        })
    }
}

/// An accepted connection: it may hold a place under the cap (given back when it
/// closes), and may have a deadline for its first bytes (its reads fail with
/// `TimedOut` if nothing came before it).
pub struct Guarded<S> {
    inner: S,
    _permit: Option<OwnedSemaphorePermit>,
    /// Until the first bytes arrive.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
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
            Poll::Ready(Ok(())) if buf.filled().len() > before => self.deadline = None,
            Poll::Pending => {
                if let Some(deadline) = self.deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request in time",
                    )));
                }
            }
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
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
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
