//! The server's log: every line written while a request is handled names the request, so that an
//! internal error or a warning can be traced back to the call that caused it (the id the client
//! sent as `X-Request-Id`, which the response echoes).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Server;

/// A psql session holding an exclusive lock on `table` until dropped, so that a statement
/// reading the table waits for it.
struct Lock(Child);

impl Lock {
    fn hold(db_url: &str, table: &str) -> Lock {
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
        Lock(child)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = writeln!(stdin, "ROLLBACK;");
        }
        let _ = self.0.wait();
    }
}

/// The log's lines containing `needle`, waiting up to ten seconds for one to be written.
fn lines_with(s: &Server, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<String> = s
            .log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_warning_logged_inside_a_handler_carries_the_request_id() {
    let s = Server::start_logging(&[
        ("INVICTA_LOG", "info"),
        ("INVICTA_STATEMENT_TIMEOUT", "200ms"),
    ]);
    // The search waits for the lock until its statement timeout stops it, which the handler
    // logs as a warning.
    let lock = Lock::hold(&s.db_url, "idx_string");
    let r = s.get("/Patient?family=Tam", &[("X-Request-Id", "abc-123")]);
    drop(lock);
    let v = r.outcome(503);
    assert_eq!(v["issue"][0]["code"], "too-costly", "{v}");
    assert_eq!(r.header("x-request-id"), Some("abc-123"));

    let warnings = lines_with(&s, "statement cancelled");
    assert!(!warnings.is_empty(), "no warning logged:\n{}", s.log());
    for line in &warnings {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("request_id=abc-123"), "{line}");
    }
    // The request's own line too, with its status.
    let own = lines_with(&s, "status=503");
    assert!(
        own.iter().any(|l| l.contains("request_id=abc-123")
            && l.contains("method=GET")
            && l.contains("path=/fhir/Patient")
            && l.contains("duration_ms=")),
        "{own:?}"
    );
}

#[test]
fn a_request_without_an_id_gets_one_that_its_log_lines_and_response_share() {
    let s = Server::start_logging(&[("INVICTA_LOG", "info")]);
    let r = s.get("/Patient/nobody-here", &[]);
    assert_eq!(r.status, 404);
    let id = r
        .header("x-request-id")
        .expect("an id is echoed")
        .to_string();
    assert!(!id.is_empty());
    let lines = lines_with(&s, &format!("request_id={id}"));
    assert!(
        lines.iter().any(|l| l.contains("status=404")),
        "{lines:?}\n{}",
        s.log()
    );
    // An id a client may not choose (too long, or not ASCII) is replaced, not logged.
    let long = "x".repeat(129);
    let r = s.get("/metadata", &[("X-Request-Id", long.as_str())]);
    assert_eq!(r.status, 200);
    assert_ne!(r.header("x-request-id"), Some(long.as_str()));
    assert!(!s.log().contains(&long));
}
