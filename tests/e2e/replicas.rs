//! Read replicas on PostgreSQL's own streaming replication: a primary and a standby made with
//! `pg_basebackup` on loopback by scripts/replica-pair.sh. Reads and searches go to the standby
//! while it is fresh; a client that wrote reads from the primary, so it always sees its writes;
//! a standby that stops replaying is left out within half the window.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{sql_value, Server};

/// A primary and its standby, stopped and deleted on drop.
struct Pair {
    dir: PathBuf,
    primary: String,
    standby: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/replica-pair.sh")
}

impl Pair {
    fn start() -> Pair {
        let dir = std::env::temp_dir().join(format!(
            "invicta-replicas-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run replica-pair.sh");
        assert!(
            out.status.success(),
            "replica-pair.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let urls = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = urls.lines();
        Pair {
            primary: lines.next().expect("primary URL").to_string(),
            standby: lines.next().expect("standby URL").to_string(),
            dir,
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// The URL of database `db` on the server of admin URL `admin`.
fn on(admin: &str, db: &str) -> String {
    format!("{}/{db}", admin.rsplit_once('/').unwrap().0)
}

#[test]
fn reads_go_to_a_fresh_standby_and_a_writer_always_reads_its_writes() {
    let pair = Pair::start();
    let standby_db = on(&pair.standby, "{db}");
    let s = Server::start_on(
        &pair.primary,
        &[
            ("INVICTA_AUTH", "on"),
            ("INVICTA_REPLICA_URLS", &standby_db),
            ("INVICTA_REPLICA_WINDOW", "4s"),
        ],
    );
    let standby = on(&pair.standby, &s.db_name);
    let feed = format!(
        "Bearer {}",
        s.token("feed", "system/*.crus", Some("RWF"), None)
    );
    // Another user (the harness's tokens share one `sub` unless told otherwise).
    let gp = format!(
        "Bearer {}",
        s.sign(json!({"sub": "dr-grace", "role": "gp", "scope": "user/*.rs", "org": "RWF"}))
    );
    s.put_patient("ada", "Lovelace", "9000000009");
    // Let the standby become fresh (half a window after start, then one check).
    std::thread::sleep(Duration::from_millis(2600));
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.get("/Patient/ada", &[("Authorization", &gp)]).status != 200 {
        assert!(
            Instant::now() < deadline,
            "the record never became readable"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Replay stops on the standby: what is written now is on the primary only.
    sql_value(&standby, "SELECT pg_wal_replay_pause()");
    let grace = Instant::now();
    let p = json!({"resourceType": "Patient", "id": "bob", "name": [{"family": "Babbage"}],
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000017"}]});
    let r = s.send_json("PUT", "/Patient/bob", &p, &[("Authorization", &feed)]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // The writer reads its write at once (from the primary)...
    let own = s.get("/Patient/bob", &[("Authorization", &feed)]);
    assert_eq!(own.status, 200, "{}", String::from_utf8_lossy(&own.body));
    let search = s.get(
        "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000017",
        &[("Authorization", &feed)],
    );
    assert_eq!(search.json()["total"], 1, "{}", search.json());
    // ...while another client, still served by the standby, does not see it yet: reads do go
    // to the standby.
    let other = s.get("/Patient/bob", &[("Authorization", &gp)]);
    assert!(
        grace.elapsed() < Duration::from_millis(1500),
        "the machine was too slow to observe the standby"
    );
    assert_eq!(
        other.status,
        404,
        "{}",
        String::from_utf8_lossy(&other.body)
    );
    // Within half a window the paused standby is left out and the primary answers everyone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if s.get("/Patient/bob", &[("Authorization", &gp)]).status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a standby that stopped replaying kept serving reads"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        grace.elapsed() >= Duration::from_millis(1500),
        "left out before half a window"
    );
    // Replay resumes: the standby catches up and serves again, with everything written.
    sql_value(&standby, "SELECT pg_wal_replay_resume()");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let caught_up = sql_value(
            &standby,
            "SELECT count(*) FROM resource WHERE res_type = 'Patient' AND id = 'bob'",
        );
        if caught_up == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "the standby never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = s.get(
        "/Patient?family=babbage&_count=1",
        &[("Authorization", &gp)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 1, "{}", r.json());
}
