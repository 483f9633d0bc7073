//! Slow, silent and too many clients: timeouts, the connection cap, keep-alive after
//! an early refusal, and the descriptor limit.

use crate::common::{Options, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Short timeouts so the tests need not wait long.
async fn server(extra: &str) -> Server {
    Server::start_options(Options {
        config: Some(format!(
            "[limits]\nheader_read_timeout_seconds = 1\nbody_read_timeout_seconds = 1\n{extra}"
        )),
        ..Options::default()
    })
    .await
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(s.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// Reads until the peer closes (or 10 s pass); returns what came and how long it took.
fn read_to_close(c: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

/// Reads one response (head and a Content-Length body) from a keep-alive connection.
fn read_response(c: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before a full response: {}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn silent_and_slowloris_connections_are_closed() {
    let s = server("").await;
    let mut silent = connect(&s);
    let (got, took) = read_to_close(&mut silent);
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    eprintln!("silent connection closed after {took:?}");

    // A head sent one byte at a time, never finished in time.
    let mut slow = connect(&s);
    let head =
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let started = Instant::now();
    let mut closed = false;
    for b in head {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !closed {
        let (got, _) = read_to_close(&mut slow);
        assert!(!got.contains("200 OK"), "{got}");
    }
    eprintln!("slowloris connection closed after {:?}", started.elapsed());

    // An idle keep-alive connection is closed after its request was answered.
    let mut idle = connect(&s);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut idle).starts_with("HTTP/1.1 200"));
    let (rest, took) = read_to_close(&mut idle);
    assert!(!rest.contains("HTTP/1.1 200"), "{rest}");
    eprintln!("idle keep-alive connection closed after {took:?}");
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_the_connection_closes() {
    let s = server("").await;
    let (_, sk) = s.merchant("M").await;
    let mut c = connect(&s);
    write!(
        c,
        "POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"currency\""
    )
    .unwrap();
    let (got, _) = read_to_close(&mut c);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    assert!(got.contains("\"body_timeout\""), "{got}");
}

#[tokio::test]
async fn an_early_401_keeps_the_connection_usable() {
    let s = server("").await;
    let mut c = connect(&s);
    let body = r#"{"currency": "CNY", "amount": 100}"#;
    write!(
        c,
        "POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_wrong\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let first = read_response(&mut c);
    assert!(first.starts_with("HTTP/1.1 401"), "{first}");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let second = read_response(&mut c);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[tokio::test]
async fn beyond_the_connection_cap_new_clients_get_a_clear_503() {
    let s = Server::start_options(Options {
        config: Some(
            "[limits]\nmax_connections = 20\nmax_connections_per_ip = 20\nheader_read_timeout_seconds = 60\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    let held: Vec<TcpStream> = (0..20).map(|_| connect(&s)).collect();
    // Accepting is asynchronous: give the server a moment to take all 20.
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = connect(&s);
    let (got, _) = read_to_close(&mut extra);
    assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
    assert!(
        got.contains("Retry-After: 1") && got.contains("server_busy"),
        "{got}"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect(&s);
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut again).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn the_descriptor_limit_is_raised_at_start() {
    let s = Server::start().await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields[3], fields[4],
        "soft limit raised to the hard one: {line}"
    );
}

#[tokio::test]
async fn one_address_gets_only_its_share_of_the_connections() {
    let s = Server::start_options(Options {
        config: Some("[limits]\nmax_connections = 20\nheader_read_timeout_seconds = 60\n".into()),
        ..Options::default()
    })
    .await;
    // A quarter of 20 by default.
    let held: Vec<TcpStream> = (0..5).map(|_| connect(&s)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut sixth = connect(&s);
    let (got, _) = read_to_close(&mut sixth);
    assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
    // Another address is served.
    let mut other = socket_from("127.0.0.2", &s.addr()).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut other).starts_with("HTTP/1.1 200"));
    drop(held);
}

/// A connection from a given local address.
async fn socket_from(local: &str, to: &str) -> TcpStream {
    let local: std::net::SocketAddr = format!("{local}:0").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(local).unwrap();
    let stream = socket.connect(to.parse().unwrap()).await.unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off() {
    let s = server("").await;
    let (_, sk) = s.merchant("M").await;
    let mut c = connect(&s);
    write!(
        c,
        "POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    )
    .unwrap();
    // One byte every 200 ms: each piece in time, the whole far too slow.
    let started = Instant::now();
    let writer = {
        let mut c = c.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..200 {
                if c.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let (got, _) = read_to_close(&mut c);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut off after {:?}",
        started.elapsed()
    );
    drop(writer);
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let s = server("idle_timeout_seconds = 2\n").await;
    let mut c = connect(&s);
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    c.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let (_, took) = read_to_close(&mut c);
    assert!(took < Duration::from_secs(8), "closed after {took:?}");
}
