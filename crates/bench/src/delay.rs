//! `--db-delay-ms`: a small TCP proxy between the spawned nodes and PostgreSQL that
//! holds every chunk of bytes for half the delay in each direction, so a round trip
//! costs what a database on its own host does (~1 ms) while pipelined bytes still
//! flow (each chunk is due at its arrival plus the delay, not after the one before).
//!
//! It runs on OS threads, not tokio: tokio's timer counts whole milliseconds, so a
//! 0.5 ms hop slept until the next tick and a "1 ms" round trip cost ~2–3 ms.
//! `std::thread::sleep` wakes within tens of microseconds of its due time.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most bytes read at once from one side.
const CHUNK_BYTES: usize = 64 * 1024;
/// Most chunks in flight per direction before the reader waits.
const IN_FLIGHT: usize = 1024;

/// Starts the proxy to `upstream` (`host:port`); the address to connect to instead.
pub async fn start(upstream: String, round_trip: Duration) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("delay proxy: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("delay proxy: {e}"))?
        .to_string();
    let one_way = round_trip / 2;
    std::thread::Builder::new()
        .name("db-delay-accept".into())
        .spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                pipe(client, server2, one_way);
                pipe(server, client2, one_way);
            }
        })
        .map_err(|e| format!("delay proxy: {e}"))?;
    Ok(addr)
}

/// Copies `from` to `to` on two threads, each chunk written `delay` after it was read.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let _ = std::thread::Builder::new()
        .name("db-delay-write".into())
        .spawn(move || {
            for (due, bytes) in rx {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if to.write_all(&bytes).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    let _ = std::thread::Builder::new()
        .name("db-delay-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; CHUNK_BYTES];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
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
