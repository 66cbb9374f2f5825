//! Starting a server on a fresh database, and a small HTTP client for the tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);
static NEXT_JTI: AtomicUsize = AtomicUsize::new(0);

/// The admin URL of the test PostgreSQL (database `postgres`).
pub fn admin_url() -> String {
    std::env::var("INVICTA_TEST_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql must be installed for the end-to-end tests (make test provisions it)");
    assert!(
        out.status.success(),
        "psql failed on {url}: {}\n(run the tests through `make test`, which provisions PostgreSQL)",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a query on the server's database and returns the output text.
pub fn sql_value(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A running server on its own database; stopped and the database dropped on drop.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
    /// `http://127.0.0.1:PORT/fhir`.
    pub base: String,
    /// The server's database URL.
    pub db_url: String,
    /// The database's name.
    pub db_name: String,
    port: u16,
    env: Vec<(String, String)>,
    /// The server's signing key file (tests sign their tokens with it).
    pub key_path: std::path::PathBuf,
    /// Where the server's log (its standard output) goes, when a test reads it.
    log_path: Option<std::path::PathBuf>,
    /// The admin URL of the PostgreSQL holding the server's database.
    admin: String,
}

impl Server {
    /// Creates a database and starts a server on it, with tokens off (`INVICTA_AUTH=off`):
    /// the foundation and search tests are about FHIR behaviour, not access control.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Like [`Server::start`] with access control on, as in production.
    pub fn secure() -> Server {
        Self::start_with(&[("INVICTA_AUTH", "on")])
    }

    /// Signs `claims` with the server's key, filling `iss`, `aud`, `exp`, `iat`, `jti` and `sub`
    /// when absent.
    pub fn sign(&self, mut claims: Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let obj = claims.as_object_mut().expect("claims object");
        for (k, v) in [
            ("iss", Value::from(self.base.clone())),
            ("aud", Value::from(self.base.clone())),
            ("exp", Value::from(now + 600)),
            ("iat", Value::from(now)),
            ("sub", Value::from("test-user")),
            (
                "jti",
                Value::from(format!("jti-{}", NEXT_JTI.fetch_add(1, Ordering::SeqCst))),
            ),
        ] {
            obj.entry(k).or_insert(v);
        }
        let key = authz::token::SigningKey::load_or_create(&self.key_path).expect("key");
        key.sign(&claims).expect("sign")
    }

    /// Searches the audit trail through the API (as a privacy officer when tokens are on) and
    /// checks that it answers: a test that counts AuditEvents with SQL first sees that the
    /// trail it counts is the one the API serves.
    pub fn settle_audit(&self) {
        let secure = self
            .env
            .iter()
            .any(|(k, v)| k == "INVICTA_AUTH" && v == "on");
        let bearer = secure.then(|| {
            format!(
                "Bearer {}",
                self.token("privacy-officer", "user/AuditEvent.rs", Some("X26"), None)
            )
        });
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("Authorization", b)])
            .unwrap_or_default();
        let r = self.get("/AuditEvent?_summary=count", &headers);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }

    /// A token for `role` with `scope`, organisation `org` and launch `patient`.
    pub fn token(
        &self,
        role: &str,
        scope: &str,
        org: Option<&str>,
        patient: Option<&str>,
    ) -> String {
        let mut c = serde_json::json!({"role": role, "scope": scope});
        if let Some(o) = org {
            c["org"] = o.into();
        }
        if let Some(p) = patient {
            c["patient"] = p.into();
            c["fhirUser"] = format!("Patient/{p}").into();
        }
        self.sign(c)
    }

    /// Like [`Server::start`], with extra environment variables for the server.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Self::start_inner(&admin_url(), env, false)
    }

    /// Like [`Server::start_with`], with its database on the PostgreSQL of `admin`; `{db}` in
    /// an environment value becomes the database's name.
    pub fn start_on(admin: &str, env: &[(&str, &str)]) -> Server {
        Self::start_inner(admin, env, false)
    }

    /// Like [`Server::start_with`], keeping the server's log for [`Server::log`] (the harness
    /// otherwise discards it).
    pub fn start_logging(env: &[(&str, &str)]) -> Server {
        Self::start_inner(&admin_url(), env, true)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let path = self
            .log_path
            .as_ref()
            .expect("started with Server::start_logging");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    fn start_inner(admin: &str, env: &[(&str, &str)], keep_log: bool) -> Server {
        let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
        let db_name = format!(
            "invicta_e2e_{}_{}_{}",
            std::process::id(),
            n,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        psql(admin, &format!("CREATE DATABASE {db_name}"));
        let db_url = replace_db(admin, &db_name);
        let port = free_port();
        let key_path = std::env::temp_dir()
            .join("invicta-e2e-keys")
            .join(format!("{db_name}.pem"));
        let log_path = keep_log.then(|| {
            let dir = std::env::temp_dir().join("invicta-e2e-logs");
            std::fs::create_dir_all(&dir).expect("log folder");
            dir.join(format!("{db_name}.log"))
        });
        let mut s = Server {
            child: None,
            root: format!("http://127.0.0.1:{port}"),
            base: format!("http://127.0.0.1:{port}/fhir"),
            db_url,
            port,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.replace("{db}", &db_name)))
                .collect(),
            db_name,
            log_path,
            key_path,
            admin: admin.to_string(),
        };
        s.spawn();
        s
    }

    /// Starts (or restarts) the process and waits until it is ready.
    pub fn spawn(&mut self) {
        let stdout = match &self.log_path {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("server log file"),
            ),
            None => Stdio::null(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_invicta"))
            .env("DATABASE_URL", &self.db_url)
            .env("INVICTA_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("INVICTA_MAX_BODY", (16 * 1024 * 1024).to_string())
            .env("INVICTA_DB_POOL", "8")
            .env("INVICTA_LOG", "error")
            .env("INVICTA_AUTH", "off")
            .env("INVICTA_SIGNING_KEY", &self.key_path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start invicta");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = ureq::get(&format!("{}/ready", self.root)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("invicta exited during start-up: {status}");
            }
            assert!(Instant::now() < deadline, "invicta did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server process's peak resident memory (`VmHWM`, KiB).
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("server running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM")
    }

    /// Kills the process with SIGKILL (no graceful shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGKILL without waiting (usable while other threads hold the server).
    pub fn sigkill(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-KILL", &c.id().to_string()])
                .status();
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// A request builder for a path under /fhir (or an absolute URL).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// GET with optional headers.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut r = ureq::get(&self.url(path));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        Resp::from(r.call())
    }

    /// A request with a body.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut r = ureq::request(method, &self.url(path));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        Resp::from(r.send_bytes(body))
    }

    /// POST/PUT a JSON value as FHIR JSON.
    pub fn send_json(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut h = vec![("Content-Type", "application/fhir+json")];
        h.extend_from_slice(headers);
        self.send(method, path, &h, &serde_json::to_vec(body).unwrap())
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Resp {
        Resp::from(ureq::delete(&self.url(path)).call())
    }
}

impl Server {
    /// Runs the `invicta` binary against the server's database with the server's settings;
    /// returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_invicta"))
            .args(args)
            .env("DATABASE_URL", &self.db_url)
            .env("INVICTA_BASE_URL", &self.base)
            .env("INVICTA_LOG", "error")
            .env("INVICTA_SIGNING_KEY", &self.key_path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run invicta");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Writes `Patient/{id}` with `family` and an NHS number as the feed of organisation RWF.
    pub fn put_patient(&self, id: &str, family: &str, nhs_number: &str) {
        let feed = format!(
            "Bearer {}",
            self.token("feed", "system/*.crus", Some("RWF"), None)
        );
        let p = serde_json::json!({"resourceType": "Patient", "id": id, "name": [{"family": family}],
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number}]});
        let r = self.send_json(
            "PUT",
            &format!("/Patient/{id}"),
            &p,
            &[("Authorization", &feed)],
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }

    /// A second server process on the same database and base URL, as two processes behind one
    /// load balancer would be.
    pub fn peer(&self) -> Peer {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_invicta"))
            .env("DATABASE_URL", &self.db_url)
            .env("INVICTA_LISTEN", format!("127.0.0.1:{port}"))
            .env("INVICTA_BASE_URL", &self.base)
            .env("INVICTA_DB_POOL", "4")
            .env("INVICTA_LOG", "error")
            .env("INVICTA_AUTH", "off")
            .env("INVICTA_SIGNING_KEY", &self.key_path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start invicta");
        let peer = Peer {
            child,
            root: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ureq::get(&format!("{}/ready", peer.root))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "the peer did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        peer
    }
}

/// A Node.js program of `tests/node` (a test identity provider or SMART app); killed on drop.
pub struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    /// Runs `tests/node/{script}` with `args` and `env`, once `package` is installed there, and
    /// waits for it to print `ready`.
    pub fn start(
        script: &str,
        package: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> NodeProcess {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
        assert!(
            dir.join("node_modules").join(package).exists(),
            "tests/node/node_modules is missing: run the tests through `make test`, which installs it"
        );
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed for the end-to-end tests (make test installs it)");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{script} did not start");
        // Such programs log to their standard output; keep reading it so that they never block
        // on, or die writing to, a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        NodeProcess { child }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second server process on a [`Server`]'s database; killed on drop.
pub struct Peer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub root: String,
}

impl Peer {
    /// GET a path under `/fhir` with headers.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut r = ureq::get(&format!("{}/fhir{path}", self.root));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        Resp::from(r.call())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.key_path);
        if let Some(log) = &self.log_path {
            let _ = std::fs::remove_file(log);
        }
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-qAtc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name),
            ])
            .output();
    }
}

/// A response, whatever its status.
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Resp {
    fn from(r: Result<ureq::Response, ureq::Error>) -> Resp {
        match r {
            Ok(r) => Resp::read(r),
            Err(ureq::Error::Status(_, r)) => Resp::read(r),
            Err(e) => panic!("transport error: {e}"),
        }
    }

    /// Reads a response whole.
    pub fn read(resp: ureq::Response) -> Resp {
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = resp.header(&n).unwrap_or_default().to_string();
                (n.to_ascii_lowercase(), v)
            })
            .collect();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status and that the body is an OperationOutcome; returns it.
    pub fn outcome(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
        v
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn replace_db(admin: &str, db: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let prefix = base.rsplit_once('/').map(|(p, _)| p).unwrap_or(base);
    format!("{prefix}/{db}{query}")
}

/// A small valid Patient with an NHS number of its own.
pub fn patient(family: &str) -> Value {
    patient_with_nhs(family, &fresh_nhs_number())
}

/// A Patient with the given NHS number (one NHS number identifies one Patient).
pub fn patient_with_nhs(family: &str, nhs: &str) -> Value {
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
        "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "1961-04-12"
    })
}

/// A valid NHS number (Modulus 11) not handed out before in this test process.
pub fn fresh_nhs_number() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stem = format!("{:09}", 943_000_000 + n);
        let sum: u32 = stem
            .chars()
            .zip((2..=10).rev())
            .map(|(c, w)| c.to_digit(10).unwrap() * w)
            .sum();
        let check = 11 - sum % 11;
        match check {
            11 => return format!("{stem}0"),
            10 => continue,
            d => return format!("{stem}{d}"),
        }
    }
}
