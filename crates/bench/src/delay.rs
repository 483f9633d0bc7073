//! `--db-delay-ms`: a small TCP proxy between the spawned nodes and PostgreSQL that
//! holds every chunk of bytes for half the delay in each direction, so a round trip
//! costs what a database on its own host does (~1 ms) while pipelined bytes still
//! flow (each chunk is due at its arrival plus the delay, not after the one before).

use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Most bytes read at once from one side.
const CHUNK_BYTES: usize = 64 * 1024;
/// Most chunks in flight per direction before the reader waits.
const IN_FLIGHT: usize = 1024;

/// Starts the proxy to `upstream` (`host:port`); the address to connect to instead.
pub async fn start(upstream: String, round_trip: Duration) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("delay proxy: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("delay proxy: {e}"))?
        .to_string();
    let one_way = round_trip / 2;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(&upstream).await {
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pipe(cr, sw, one_way));
                    tokio::spawn(pipe(sr, cw, one_way));
                }
            });
        }
    });
    Ok(addr)
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let writer = tokio::spawn(async move {
        let mut queue = VecDeque::new();
        while let Some(chunk) = rx.recv().await {
            queue.push_back(chunk);
            while let Some((due, bytes)) = queue.pop_front() {
                tokio::time::sleep_until(due).await;
                if to.write_all(&bytes).await.is_err() {
                    return;
                }
                while let Ok(next) = rx.try_recv() {
                    queue.push_back(next);
                }
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// `url` with its `host:port` replaced by `addr`; the `host:port` it had.
pub fn redirect(url: &str, addr: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or("--db-delay-ms needs a postgres:// URL")?;
    let (user, hostpart) = match rest.split_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), rest),
    };
    let (host, tail) = match hostpart.find(['/', '?']) {
        Some(i) => hostpart.split_at(i),
        None => (hostpart, ""),
    };
    if host.contains(',') {
        return Err("--db-delay-ms takes a URL with one host".into());
    }
    let upstream = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    Ok((format!("postgres://{user}{addr}{tail}"), upstream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_redirected_to_the_proxy() {
        let (url, up) = redirect(
            "postgres://postgres@127.0.0.1:5432/pocket_bench",
            "127.0.0.1:4000",
        )
        .unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1:4000/pocket_bench");
        assert_eq!(up, "127.0.0.1:5432");
        let (url, up) = redirect("postgres://db/x?sslmode=disable", "127.0.0.1:1").unwrap();
        assert_eq!(
            (url.as_str(), up.as_str()),
            ("postgres://127.0.0.1:1/x?sslmode=disable", "db:5432")
        );
    }
}
