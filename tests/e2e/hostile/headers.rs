//! Hostile input: request lines and headers. Refusals made by the HTTP layer itself, before any
//! handler runs, carry an OperationOutcome like every other error.

use super::{raw, refused, still_healthy, versions};
use crate::harness::{Resp, Server};

/// `raw` as a [`Resp`], failing when the connection was dropped without an answer.
fn send_raw(s: &Server, what: &str, request: &[u8]) -> Resp {
    let (status, body) = raw(s, request)
        .unwrap_or_else(|| panic!("{what}: the connection closed without an answer"));
    Resp {
        status,
        headers: Vec::new(),
        body,
    }
}

#[test]
fn malformed_and_oversized_heads_answer_with_an_outcome() {
    let s = Server::start();
    let before = versions(&s);
    let long_uri = format!(
        "GET /fhir/Patient?name={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let mut many_headers = String::from("GET /fhir/Patient HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        many_headers.push_str(&format!("X-H{i}: v\r\n"));
    }
    many_headers.push_str("\r\n");
    let huge_header = format!(
        "GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1024 * 1024)
    );
    let body = br#"{"resourceType":"Patient"}"#;
    let both_lengths = format!(
        "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        body.len(),
        body.len(),
        String::from_utf8_lossy(body)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("URI over 64 KiB", long_uri.into_bytes(), 400),
        ("500 headers", many_headers.into_bytes(), 431),
        ("1 MiB header", huge_header.into_bytes(), 431),
        (
            "NUL in a header",
            b"GET /fhir/Patient HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n".to_vec(),
            400,
        ),
        ("Content-Length with Transfer-Encoding", both_lengths.into_bytes(), 400),
        (
            "garbage request line",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two Content-Lengths that disagree",
            b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
            400,
        ),
    ];
    for (what, request, status) in cases {
        let r = send_raw(&s, what, &request);
        assert_eq!(
            r.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        refused(what, &r);
    }
    assert_eq!(versions(&s), before, "refused requests wrote nothing");
    still_healthy(&s);
}

#[test]
fn odd_header_values_are_client_errors() {
    let s = Server::secure();
    let token = s.token("gp", "user/*.cruds", Some("A81001"), None);
    let bearer = format!("Bearer {token}");
    let before = versions(&s);
    let huge_token = format!("Bearer {}", "A".repeat(60 * 1024));
    let dotted = format!("Bearer {}.{}.{}", "e30", "e30", "x".repeat(5000));
    let many_types = vec!["text/x-a;q=0.1"; 2000].join(", ");
    let long_id = "x".repeat(8 * 1024);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no token", vec![]),
        ("empty bearer", vec![("Authorization", "Bearer ")]),
        ("basic auth", vec![("Authorization", "Basic dXNlcjpwYXNz")]),
        ("60 KiB token", vec![("Authorization", &huge_token)]),
        ("forged three-part token", vec![("Authorization", &dotted)]),
        ("bearer twice", vec![("Authorization", "Bearer a Bearer b")]),
        (
            "unknown Accept",
            vec![("Authorization", &bearer), ("Accept", "image/png")],
        ),
        (
            "Accept of 10k types",
            vec![("Authorization", &bearer), ("Accept", &many_types)],
        ),
        (
            "If-None-Match garbage",
            vec![("Authorization", &bearer), ("If-None-Match", "W/\"\"\"\"")],
        ),
        (
            "Prefer garbage",
            vec![
                ("Authorization", &bearer),
                ("Prefer", "handling=strict;;;==,,"),
            ],
        ),
        (
            "X-Request-Id of 8 KiB",
            vec![("Authorization", &bearer), ("X-Request-Id", &long_id)],
        ),
    ];
    for (what, headers) in &cases {
        let r = s.get("/Patient?_count=1", headers);
        assert!(r.status != 500 && r.status < 502, "{what}: {}", r.status);
        if r.status >= 400 {
            refused(what, &r);
        }
    }
    assert_eq!(versions(&s), before, "refused reads wrote nothing");
    still_healthy(&s);
}

#[test]
fn odd_write_headers_are_client_errors() {
    // Tokens off: the cases are about headers, not about who may write.
    let s = Server::start();
    let before = versions(&s);
    type Write<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8]);
    let writes: Vec<Write> = vec![
        (
            "unknown Content-Type",
            vec![("Content-Type", "text/plain")],
            br#"{"resourceType":"Patient"}"#,
        ),
        (
            "Content-Type with a charset other than UTF-8",
            vec![("Content-Type", "application/fhir+json; charset=utf-16")],
            br#"{"resourceType":"Patient"}"#,
        ),
        (
            "If-Match garbage",
            vec![
                ("Content-Type", "application/fhir+json"),
                ("If-Match", "W/\"x\"y"),
            ],
            br#"{"resourceType":"Patient","id":"p1"}"#,
        ),
        (
            "If-None-Exist with 2,000 parameters",
            vec![
                ("Content-Type", "application/fhir+json"),
                ("If-None-Exist", "x"),
            ],
            br#"{"resourceType":"Patient"}"#,
        ),
    ];
    let if_none_exist = vec!["family=a"; 2000].join("&");
    for (what, mut headers, body) in writes {
        if what.starts_with("If-None-Exist") {
            headers.retain(|(k, _)| *k != "If-None-Exist");
            headers.push(("If-None-Exist", &if_none_exist));
        }
        let path = if what.starts_with("If-Match") {
            "/Patient/p1"
        } else {
            "/Patient"
        };
        let method = if what.starts_with("If-Match") {
            "PUT"
        } else {
            "POST"
        };
        let r = s.send(method, path, &headers, body);
        refused(what, &r);
    }
    assert_eq!(versions(&s), before, "refused writes wrote nothing");
    still_healthy(&s);
}
