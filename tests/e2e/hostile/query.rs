//! Hostile input: query shapes. Searches that ask for unbounded work (many parameters, values,
//! chains, `_has`, includes, sort keys, long query strings and forms), dangling escapes, and
//! numbers and dates too big to bind are refused with a 400 OperationOutcome before any SQL runs;
//! a heavy search the limits admit is stopped by the statement timeout (503, the pool recovers);
//! a search whose client leaves is cancelled in PostgreSQL.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{refused, still_healthy, versions};
use crate::harness::{patient, sql_value, Resp, Server};

fn seed(s: &Server) {
    for family in ["Tam", "Tilly", "Bach"] {
        let r = s.send_json("POST", "/Patient", &patient(family), &[]);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}});
    let r = s.send_json("POST", "/Observation", &obs, &[]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

fn repeat(part: &str, n: usize, sep: &str) -> String {
    vec![part; n].join(sep)
}

fn issue_code(v: &Value) -> &str {
    v["issue"][0]["code"].as_str().unwrap_or_default()
}

#[test]
fn unbounded_query_shapes_are_refused_before_sql() {
    let s = Server::start();
    seed(&s);
    let before = versions(&s);
    let has = "_has:Observation:subject:";
    let cases: Vec<(&str, String)> = vec![
        ("1000 repeated parameters", format!("/Patient?{}", repeat("family=t", 1000, "&"))),
        ("160 repeated parameters", format!("/Patient?{}", repeat("family=t", 160, "&"))),
        ("8000 comma-separated values", format!("/Patient?family={}", repeat("a", 8000, ","))),
        ("101 values of one parameter", format!("/Patient?_id={}", repeat("x", 101, ","))),
        (
            "values over all parameters",
            format!("/Patient?{}", repeat(&format!("family={}", repeat("a", 40, ",")), 3, "&")),
        ),
        ("_has nested four deep", format!("/Patient?{}code=x", has.repeat(4))),
        ("many _has parameters", format!("/Patient?{}", repeat(&format!("{has}code=x"), 5, "&"))),
        (
            "chains nested four deep",
            "/Observation?subject:Patient.general-practitioner:Practitioner.organization.partof.name=x"
                .to_string(),
        ),
        (
            "many includes",
            format!("/Observation?{}", repeat("_include=Observation:subject", 11, "&")),
        ),
        ("a long query string", format!("/Patient?family={}", "x".repeat(17 * 1024))),
        ("four sort keys", "/Patient?_sort=family,given,birthdate,_id".to_string()),
        ("a hundred sort keys", format!("/Patient?_sort={}", repeat("family", 100, ","))),
    ];
    for (what, path) in &cases {
        let r = s.get(path, &[]);
        let v = refused(what, &r);
        assert_eq!(r.status, 400, "{what}");
        if !what.contains("sort") {
            assert_eq!(issue_code(&v), "too-costly", "{what}: {v}");
        }
    }
    // The same shapes as a form.
    let form = format!("value-quantity={}", repeat("1", 22_000, ","));
    let r = s.send(
        "POST",
        "/Observation/_search",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    refused("a _search form with 22,000 quantity values", &r);
    let form = repeat("family=t", 1000, "&");
    let r = s.send(
        "POST",
        "/Patient/_search",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(
        issue_code(&refused("a _search form with 1000 parameters", &r)),
        "too-costly"
    );
    // Within the limits, the same kinds of query are answered.
    for path in [
        format!("/Patient?{}", repeat("family=t", 20, "&")),
        format!("/Patient?family={}", repeat("t", 100, ",")),
        format!("/Patient?{has}code=8867-4"),
        format!(
            "/Observation?{}",
            repeat("_include=Observation:subject", 10, "&")
        ),
    ] {
        let r = s.get(&path, &[]);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(versions(&s), before, "refused searches wrote nothing");
    still_healthy(&s);
}

#[test]
fn dangling_escapes_and_empty_values_match_nothing_and_are_refused() {
    let s = Server::start();
    seed(&s);
    for path in [
        "/Patient?family=%5C",
        "/Patient?family=Tam%5C",
        "/Patient?family:contains=%5C",
        "/Patient?family:exact=%5C",
        "/Patient?family=a%5Cb",
        "/Patient?family=%20",
        "/Patient?family=%5C%5C%5C",
        "/Patient?given=%5C,%5C",
        "/Patient?identifier=%5C",
        "/Patient?identifier=%7C",
        "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C%5C",
        "/Patient?_id=%5C",
        "/Observation?code:text=%5C",
        "/Observation?code=%7C",
        "/Observation?subject=%5C",
        "/Observation?subject:identifier=%7C",
        "/Observation?value-quantity=72%7C%7C",
        "/Observation?code-value-quantity=http://loinc.org%7C8867-4$72%5C",
    ] {
        let r = s.get(path, &[]);
        let v = refused(path, &r);
        assert_eq!(r.status, 400, "{path}: {v}");
    }
    // The escapes FHIR defines still search.
    let r = s.get("/Patient?family=Tam%5C,x", &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["total"],
        0,
        "an escaped comma is part of the value"
    );
    let r = s.get("/Patient?family=Tam,Bach", &[]);
    assert_eq!(r.json()["total"], 2);
    still_healthy(&s);
}

#[test]
fn huge_numbers_and_dates_as_search_values_are_refused_quickly() {
    let s = Server::start();
    seed(&s);
    let long_fraction = format!("2024-01-01T00:00:00.{}Z", "1".repeat(200));
    let digits = "9".repeat(100);
    let huge_mantissa = format!("/Observation?value-quantity={digits}");
    let cases = [
        "/Observation?value-quantity=1e2147483647",
        "/Observation?value-quantity=gt1e2147483647",
        "/Observation?value-quantity=1e-2147483648",
        "/Observation?value-quantity=1E999999%7Chttp://unitsofmeasure.org%7C/min",
        "/Observation?value-quantity=ap1e101",
        huge_mantissa.as_str(),
        "/Observation?code-value-quantity=http://loinc.org%7C8867-4$1e99999",
        "/Observation?component-value-quantity=le1e-99999",
    ];
    for path in cases {
        let r = s.get(path, &[]);
        let v = refused(path, &r);
        assert_eq!(r.status, 400, "{path}: {v}");
    }
    for path in [
        format!("/Patient?birthdate={long_fraction}"),
        "/Patient?birthdate=99999".to_string(),
        "/Patient?birthdate=ge-0001".to_string(),
        format!("/Patient?_lastUpdated=gt{long_fraction}"),
        "/Patient?birthdate=2024-13-45".to_string(),
        format!("/Patient?birthdate={}", "2024-".repeat(3000)),
    ] {
        let r = s.get(&path, &[]);
        refused(&path, &r);
    }
    // `_count` extremes: negative and non-numbers are refused; too large is the largest page.
    for bad in ["-1", "1e3", "5.0", "", "%2B5"] {
        let path = format!("/Patient?_count={bad}");
        refused(&path, &s.get(&path, &[]));
    }
    for ok in ["0", "99999999999999999999999"] {
        let r = s.get(&format!("/Patient?_count={ok}"), &[]);
        assert_eq!(
            r.status,
            200,
            "_count={ok}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    still_healthy(&s);
}

/// Enough index rows that a search the limits admit runs for seconds: 100,000 Patients whose
/// family names all start with `t`, written straight into the tables.
fn heavy_population(s: &Server) {
    sql_value(
        &s.db_url,
        "INSERT INTO resource (res_type, id, version, last_updated, body, compartments) \
         SELECT 'Patient', 'bulk' || i, 1, now(), '{\"resourceType\":\"Patient\"}'::bytea, '{}' \
         FROM generate_series(1, 100000) i; \
         INSERT INTO idx_string (rid, res_type, param, value, norm) \
         SELECT rid, 'Patient', 'family', 'T' || rid, 't' || rid FROM resource; \
         ANALYZE",
    );
}

/// Twenty `family` parameters of five values each, every one matching every Patient: within
/// the limits, and seconds of work over [`heavy_population`].
fn heavy_search() -> String {
    format!(
        "/Patient?{}&_count=10",
        repeat(&format!("family={}", repeat("t", 5, ",")), 20, "&")
    )
}

#[test]
fn a_search_past_the_statement_timeout_is_stopped_and_the_pool_recovers() {
    let s = Server::start_with(&[
        ("INVICTA_STATEMENT_TIMEOUT", "200ms"),
        ("INVICTA_DB_POOL", "2"),
    ]);
    heavy_population(&s);
    // More heavy searches than the pool has connections: each is stopped, none holds one.
    for i in 0..4 {
        let r = s.get(&heavy_search(), &[]);
        let v = r.outcome(503);
        assert_eq!(issue_code(&v), "too-costly", "search {i}: {v}");
        assert!(r.header("retry-after").is_some());
    }
    let r = s.get("/Patient?_id=bulk7", &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["total"], 1);
    still_healthy(&s);
}

/// A psql session holding an exclusive lock on `table` until [`Locker::release`]: statements
/// that read the table wait for it, as long as the test wants.
struct Locker(Child);

impl Locker {
    fn hold(db_url: &str, table: &str) -> Locker {
        let mut child = Command::new("psql")
            .args([db_url, "-qAt", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("psql");
        let stdin = child.stdin.as_mut().expect("stdin");
        writeln!(
            stdin,
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT 'locked';"
        )
        .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        Locker(child)
    }

    fn release(mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = writeln!(stdin, "ROLLBACK;");
        }
        let _ = self.0.wait();
    }
}

/// Statements of the server's connections still running a search on its database.
/// Statements of the server's running in its database whose text contains `pattern`.
fn running(s: &Server, pattern: &str) -> i64 {
    sql_value(
        &s.db_url,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%{pattern}%'"
        ),
    )
    .parse()
    .expect("count")
}

/// Polls `f` until it holds, for at most a minute (a bound on waiting, not a timing assertion).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `GET path` while `table` is locked, so its statement waits in PostgreSQL; drops the
/// client; asserts that the statement (found by `pattern`) is cancelled, then that the same
/// request answers once the lock is gone.
fn abandoned_request_is_cancelled(table: &str, path: &str, pattern: &str) {
    let s = Server::start_with(&[("INVICTA_STATEMENT_TIMEOUT", "off")]);
    seed(&s);
    let lock = Locker::hold(&s.db_url, table);
    let addr = s.root.trim_start_matches("http://").to_string();
    let mut client = TcpStream::connect(&addr).expect("connect");
    write!(
        client,
        "GET /fhir{path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/fhir+json\r\n\r\n"
    )
    .unwrap();
    client.flush().unwrap();
    eventually("the request did not reach the database", || {
        running(&s, pattern) == 1
    });
    // The client gives up; the statement, still waiting, must not outlive it.
    drop(client);
    eventually(
        "the abandoned request's statement is still running in PostgreSQL",
        || running(&s, pattern) == 0,
    );
    lock.release();
    let r: Resp = s.get(path, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["total"].as_i64().unwrap_or(0) >= 1, "{path}");
    still_healthy(&s);
}

#[test]
fn a_search_whose_client_disconnects_is_cancelled_in_the_database() {
    abandoned_request_is_cancelled("idx_string", "/Patient?family=Tam", "FROM resource r");
}

#[test]
fn a_history_whose_client_disconnects_is_cancelled_in_the_database() {
    abandoned_request_is_cancelled("resource_history", "/Patient/_history", "MAX(hid)");
}

/// The audit trail has a search compiler of its own (`search::audit`): the same limits apply
/// before any SQL, and odd values (separators of its keys, LIKE wildcards, escapes, values too
/// long to index) are refused or match nothing; never a 5xx.
#[test]
fn hostile_audit_trail_searches_are_refused_or_harmless() {
    let s = Server::start();
    seed(&s);
    let _ = s.get("/Patient?family=tam", &[("X-Request-Id", "known-request")]);
    let long = "a".repeat(1200);
    let refused_cases: Vec<(&str, String)> = vec![
        (
            "1000 repeated parameters",
            format!("/AuditEvent?{}", repeat("action=R", 1000, "&")),
        ),
        (
            "101 values of one parameter",
            format!("/AuditEvent?action={}", repeat("R", 101, ",")),
        ),
        (
            "a value too long to index",
            format!("/AuditEvent?entity:identifier={long}"),
        ),
        (
            "a date beyond year 9999",
            "/AuditEvent?date=ge99999-01-01".to_string(),
        ),
        (
            "a dangling escape",
            "/AuditEvent?agent-name=ab%5C".to_string(),
        ),
        ("an empty token", "/AuditEvent?action=%7C".to_string()),
        ("a forged cursor", "/AuditEvent?_cursor=AAAA".to_string()),
        (
            "a type modifier with a path",
            "/AuditEvent?patient:Patient=a/b".to_string(),
        ),
        // The separators of the trail's keys are control characters, refused in any value.
        (
            "a unit separator",
            "/AuditEvent?subtype=read%1Fx".to_string(),
        ),
        (
            "a record separator",
            "/AuditEvent?entity:identifier=a%1Eb".to_string(),
        ),
    ];
    for (what, path) in &refused_cases {
        refused(what, &s.get(path, &[]));
    }
    // Wildcards and quotes inside values: answered, and they find nothing that merely shares a
    // prefix.
    for (what, path) in [
        (
            "LIKE wildcards",
            "/AuditEvent?agent-name=%25_%25&entity=%25",
        ),
        ("quotes", "/AuditEvent?entity:identifier=x'%22%3B--"),
        (
            "a system alone",
            "/AuditEvent?subtype=http://hl7.org/fhir/restful-interaction%7C",
        ),
    ] {
        let r = s.get(&format!("{path}&_total=accurate"), &[]);
        assert_eq!(
            r.status,
            200,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if what != "a system alone" {
            assert_eq!(r.json()["total"], 0, "{what}: {}", r.json());
        }
    }
    let known = s.get(
        "/AuditEvent?entity:identifier=https://invicta.example.org/fhir/Id/request-id%7Cknown-request&_total=accurate",
        &[],
    );
    assert_eq!(known.json()["total"], 1, "{}", known.json());
    still_healthy(&s);
}
