//! The hostile-input suite: requests an attacker holding a valid token, or an integrator's odd
//! client, would send, grouped by category. Every request must answer 4xx with an
//! OperationOutcome (or 2xx where the input is valid), never 5xx or a dropped connection;
//! afterwards the server still answers `/health`, its memory stayed bounded, and refused
//! requests wrote nothing.

// Helpers shared by the categories; not every category uses each one.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{sql_value, Resp, Server};

mod cursors;
mod encodings;
mod headers;
mod nesting;
mod numbers;
mod oauth;
mod query;
mod sizes;
mod strings;

/// The most resident memory the server may reach during one hostile category (its peak,
/// `VmHWM`). Generous for a debug build with a 16 MiB body limit; a request that builds
/// gigabytes (as a huge exponent once did) crosses it.
pub const MAX_PEAK_RSS_KIB: u64 = 1024 * 1024;

/// Asserts that `r` is a client error (4xx) carrying an OperationOutcome; `what` names the case.
pub fn refused(what: &str, r: &Resp) -> Value {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "{what}: the {} has no JSON OperationOutcome ({e}): {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
    });
    assert_eq!(v["resourceType"], "OperationOutcome", "{what}: {v}");
    v
}

/// Asserts that `r` is neither a server error nor anything but 2xx/4xx.
pub fn answered(what: &str, r: &Resp) {
    assert!(
        (200..300).contains(&r.status) || (400..500).contains(&r.status),
        "{what}: got {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

/// Asserts the server is still up and its peak memory stayed under [`MAX_PEAK_RSS_KIB`];
/// returns the peak (KiB) so a test can report it.
pub fn still_healthy(s: &Server) -> u64 {
    let r = s.get(&format!("{}/health", s.root), &[]);
    assert_eq!(r.status, 200, "/health after hostile input");
    let peak = s.peak_rss_kib();
    eprintln!("hostile: server peak RSS {peak} KiB");
    assert!(
        peak < MAX_PEAK_RSS_KIB,
        "the server's peak memory reached {peak} KiB"
    );
    peak
}

/// How many versions of clinical resources the database holds (refused writes must not change
/// it; the AuditEvents that record the refusals are left out).
pub fn versions(s: &Server) -> i64 {
    sql_value(
        &s.db_url,
        "SELECT count(*) FROM resource_history WHERE res_type <> 'AuditEvent'",
    )
    .parse()
    .expect("count")
}

/// Sends raw bytes on a fresh connection and returns `(status, body)` of the answer; `None`
/// when the server closed the connection without answering.
pub fn raw(s: &Server, request: &[u8]) -> Option<(u16, Vec<u8>)> {
    let addr = s.root.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer and close before reading everything sent; that is fine.
    let _ = stream.write_all(request);
    let _ = stream.flush();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let text_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..text_end]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = buf[text_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}
