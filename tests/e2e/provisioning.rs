//! `make run` and `make test` provision PostgreSQL themselves (scripts/ensure-postgres.sh), also
//! from a clone the `postgres` system user cannot enter (root cloning under /root or into a
//! `mktemp -d` folder), which once failed with "user 'postgres' cannot write to …/.data/pg".

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::harness::sql_value;

#[test]
fn a_private_cluster_starts_from_a_clone_postgres_cannot_enter() {
    let root = std::env::temp_dir().join(format!(
        "invicta-clone-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    let scripts = root.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-postgres.sh");
    std::fs::copy(&script, scripts.join("ensure-postgres.sh")).unwrap();
    let run = |arg: &str| {
        Command::new("bash")
            .arg(scripts.join("ensure-postgres.sh"))
            .arg(arg)
            .env_remove("DATABASE_URL")
            .env("ENSURE_PG_SKIP_DEFAULT", "1")
            .env("ENSURE_PG_PORT_START", "57432")
            .output()
            .expect("run ensure-postgres.sh")
    };
    let started = run("start");
    let stderr = String::from_utf8_lossy(&started.stderr).to_string();
    let url = String::from_utf8_lossy(&started.stdout).trim().to_string();
    let answered = started
        .status
        .success()
        .then(|| sql_value(&url, "SELECT 'up'"));
    let purged = run("purge");
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        started.status.success(),
        "ensure-postgres failed:\n{stderr}"
    );
    assert_eq!(answered.as_deref(), Some("up"), "{stderr}");
    assert!(
        purged.status.success(),
        "{}",
        String::from_utf8_lossy(&purged.stderr)
    );
}
