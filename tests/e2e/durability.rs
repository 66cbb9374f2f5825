//! Crash safety: after SIGKILL in the middle of a stream of writes, every acknowledged write is
//! readable and no resource has a partial version. SIGTERM shuts down cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::json;

use crate::harness::{patient, sql_value, Server};

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut s = Server::start();
    let acked: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, acked, stop) = (&s, &acked, &stop);
            scope.spawn(move || {
                for i in 0..10_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let family = format!("Crash{t}x{i}");
                    let url = format!("{}/Patient", s.base);
                    let body = serde_json::to_vec(&patient(&family)).unwrap();
                    // Transport errors are expected once the server dies.
                    let Ok(r) = ureq::post(&url)
                        .set("Content-Type", "application/fhir+json")
                        .send_bytes(&body)
                    else {
                        return;
                    };
                    if r.status() == 201 {
                        let v: serde_json::Value =
                            serde_json::from_str(&r.into_string().unwrap()).unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push((v["id"].as_str().unwrap().to_string(), family));
                    }
                }
            });
        }
        // Let writes flow, then pull the plug.
        while acked.lock().unwrap().len() < 200 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        s.sigkill();
        stop.store(true, Ordering::SeqCst);
    });
    s.kill();
    s.spawn();
    let acked = acked.into_inner().unwrap();
    assert!(acked.len() >= 200);
    for (id, family) in &acked {
        let r = s.get(&format!("/Patient/{id}"), &[]);
        assert_eq!(r.status, 200, "acknowledged Patient/{id} lost");
        assert_eq!(r.json()["name"][0]["family"], json!(family));
    }
    // No partial versions: every current row has its history row and its index rows.
    let orphans = sql_value(
        &s.db_url,
        "SELECT count(*) FROM resource r WHERE NOT EXISTS (SELECT 1 FROM resource_history h \
         WHERE h.res_type = r.res_type AND h.id = r.id AND h.version = r.version)",
    );
    assert_eq!(orphans, "0");
    let unindexed = sql_value(
        &s.db_url,
        "SELECT count(*) FROM resource r WHERE NOT r.deleted AND r.res_type <> 'AuditEvent' AND NOT EXISTS \
         (SELECT 1 FROM idx_string i WHERE i.rid = r.rid)",
    );
    assert_eq!(unindexed, "0");
    assert!(s.terminate(), "SIGTERM should end the server cleanly");
}

#[test]
fn a_database_restart_costs_a_retry_not_a_crash() {
    let s = Server::start();
    let mut p = patient("Restart");
    p["id"] = json!("restart");
    assert_eq!(s.send_json("PUT", "/Patient/restart", &p, &[]).status, 201);
    // Kill every connection the server holds, as a PostgreSQL restart would.
    sql_value(
        &s.db_url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    // Requests on dead connections answer 503 with Retry-After until the pool has replaced them.
    let mut ok = false;
    for _ in 0..20 {
        let r = s.get("/Patient/restart", &[]);
        if r.status == 200 {
            ok = true;
            break;
        }
        let oo = r.outcome(503);
        assert_eq!(oo["issue"][0]["code"], "transient");
        assert!(r.header("retry-after").is_some());
    }
    assert!(ok, "the server never recovered its connections");
}
