//! The server's settings, validated: what [`crate::cli`] parsed from the flags and environment,
//! checked and turned into typed values. A bad value stops the start with one line naming the
//! variable and its flag. `invicta --help` and README.md list every setting.

use std::ffi::OsString;
use std::net::SocketAddr;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

pub use crate::cli::Command;
use crate::cli::{Cli, Settings};

/// The server's settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL URL.
    pub database_url: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Absolute base URL of the FHIR endpoint, without a trailing slash.
    pub base_url: String,
    /// Largest accepted request body in bytes.
    pub max_body: usize,
    /// Database pool size.
    pub pool_size: u32,
    /// Most entries a batch or transaction Bundle may have.
    pub bundle_max_entries: usize,
    /// Largest batch or transaction Bundle body in bytes.
    pub bundle_max_bytes: usize,
    /// A conditional delete may delete every match (else more than one match is a 412).
    pub delete_multiple: bool,
    /// Search page size when `_count` is absent.
    pub search_default_count: i64,
    /// Largest search page, whatever `_count` asks.
    pub search_max_count: i64,
    /// `_explain=true` on a search returns its SQL and plan (for operators; off by default).
    pub search_explain: bool,
    /// How long one statement of a request may run (`None`: no limit).
    pub statement_timeout: Option<std::time::Duration>,
    /// The key that seals search page cursors.
    pub cursor_key: search::CursorKey,
    /// `INVICTA_CURSOR_KEY` was given; otherwise the key is the database's shared one.
    pub cursor_key_configured: bool,
    /// Which recurring statements run as prepared statements (`INVICTA_PREPARED_SEARCHES`).
    pub prepared_searches: store::PreparedSearches,
    /// Streaming standbys that serve reads (`INVICTA_REPLICA_URLS`).
    pub replica_urls: Vec<String>,
    /// How long a writer reads from the primary (`INVICTA_REPLICA_WINDOW`).
    pub replica_window: std::time::Duration,
    /// Tokens are required (the default); off only for local development.
    pub auth: bool,
    /// Every access is audited (the default); off only to measure what auditing costs.
    pub audit: bool,
    /// Audit writer threads (`INVICTA_AUDIT_WRITERS`, 1-8).
    pub audit_writers: usize,
    /// What a write does with a resource that breaks its type's profile.
    pub profiles: interactions::conformance::Enforcement,
    /// PKCS#8 PEM file imported as the first signing key of an empty key table.
    pub signing_key: std::path::PathBuf,
    /// Clients registered at start.
    pub clients: Option<std::path::PathBuf>,
    /// The development sign-in page is offered.
    pub dev_signin: bool,
    /// The identity providers file.
    pub identity_providers: Option<std::path::PathBuf>,
    /// `iss` of tokens signed with the server's key.
    pub issuer: String,
    /// External OpenID Connect issuers trusted for tokens.
    pub oidc_issuers: Vec<String>,
    /// Role policy file (`None`: the shipped one).
    pub policy: Option<std::path::PathBuf>,
    /// Folder of the built viewer app.
    pub viewer_dir: std::path::PathBuf,
    /// Client id of the viewer app.
    pub viewer_client: String,
    /// The claim naming the care-record role when there are no CIS2 RBAC claims.
    pub role_claim: String,
    /// The log filter (`INVICTA_LOG`), already checked to parse.
    pub log: String,
}

/// Why [`Config::load`] did not give a configuration.
#[derive(Debug)]
pub enum LoadError {
    /// `--help` or `--version` was asked for: clap's text, to print before a successful exit.
    Info(clap::Error),
    /// A bad argument or setting, in one line.
    Invalid(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Info(e) => write!(f, "{}", e.render()),
            LoadError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl From<String> for LoadError {
    fn from(msg: String) -> Self {
        LoadError::Invalid(msg)
    }
}

impl From<&str> for LoadError {
    fn from(msg: &str) -> Self {
        LoadError::Invalid(msg.into())
    }
}

impl Config {
    /// Parses the arguments (without the program name), taking each setting's environment
    /// variable through `env`, and validates the result.
    pub fn load(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Command, Config), LoadError> {
        let argv: Vec<OsString> = std::iter::once(OsString::from("invicta"))
            .chain(args.iter().map(OsString::from))
            .collect();
        let matches = match with_env(Cli::command(), &env).try_get_matches_from(&argv) {
            Ok(m) => m,
            Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
                // Rendered from the definition itself, whose help names each variable, rather
                // than from the copy whose defaults were replaced by the variables' values.
                return Err(LoadError::Info(
                    Cli::command()
                        .try_get_matches_from(&argv)
                        .err()
                        .unwrap_or(e),
                ));
            }
            Err(e) => return Err(LoadError::Invalid(one_line(&e))),
        };
        let cli = Cli::from_arg_matches(&matches).map_err(|e| one_line(&e))?;
        let config = Config::from_settings(cli.settings)?;
        Ok((cli.command.unwrap_or(Command::Serve), config))
    }

    /// Checks the parsed settings and converts them.
    fn from_settings(s: Settings) -> Result<Config, LoadError> {
        let database_url = s.database_url;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(format!(
                "DATABASE_URL (--database-url) must be a postgres:// URL, got '{database_url}'"
            )
            .into());
        }
        let listen: SocketAddr = s.listen.parse().map_err(|_| {
            format!(
                "INVICTA_LISTEN (--listen) must be HOST:PORT with an IP address, got '{}'",
                s.listen
            )
        })?;
        let base_url = match s.base_url {
            Some(b) => {
                if !(b.starts_with("http://") || b.starts_with("https://")) {
                    return Err(format!(
                        "INVICTA_BASE_URL (--base-url) must be an absolute http(s) URL, got '{b}'"
                    )
                    .into());
                }
                b.trim_end_matches('/').to_string()
            }
            None => format!("http://{listen}/fhir"),
        };
        let max_body = parse_number(&s.max_body, "INVICTA_MAX_BODY (--max-body)")?;
        let pool_size = parse_number(&s.db_pool, "INVICTA_DB_POOL (--db-pool)")?;
        let search_default_count = parse_number(
            &s.search_default_count,
            "INVICTA_SEARCH_DEFAULT_COUNT (--search-default-count)",
        )?;
        let search_max_count = parse_number(
            &s.search_max_count,
            "INVICTA_SEARCH_MAX_COUNT (--search-max-count)",
        )?;
        let search_explain = match s.search_explain.as_str() {
            "off" | "false" | "0" | "" => false,
            "on" | "true" | "1" => true,
            other => {
                return Err(format!(
                    "INVICTA_SEARCH_EXPLAIN (--search-explain) must be on or off, got '{other}'"
                )
                .into())
            }
        };
        let statement_timeout = parse_duration(
            &s.statement_timeout,
            "INVICTA_STATEMENT_TIMEOUT (--statement-timeout)",
        )?;
        let cursor_key_configured = s.cursor_key.is_some();
        let replica_urls: Vec<String> = s
            .replica_urls
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = replica_urls
            .iter()
            .find(|u| !(u.starts_with("postgres://") || u.starts_with("postgresql://")))
        {
            return Err(format!(
                "INVICTA_REPLICA_URLS (--replica-urls) must be postgres:// URLs, got '{}'",
                bad.split('@').next_back().unwrap_or_default()
            )
            .into());
        }
        let replica_window = parse_duration(
            &s.replica_window,
            "INVICTA_REPLICA_WINDOW (--replica-window)",
        )?
        .filter(|d| *d >= std::time::Duration::from_millis(500))
        .ok_or("INVICTA_REPLICA_WINDOW (--replica-window) must be at least 500ms")?;
        let cursor_key = match s.cursor_key {
            Some(secret) if secret.len() >= 16 => search::CursorKey::from_secret(secret.as_bytes()),
            Some(_) => {
                return Err(
                    "INVICTA_CURSOR_KEY (--cursor-key) must be at least 16 characters".into(),
                )
            }
            None => search::CursorKey::random()?,
        };
        if search_max_count == 0 || search_default_count > search_max_count {
            return Err("INVICTA_SEARCH_DEFAULT_COUNT must not exceed INVICTA_SEARCH_MAX_COUNT, which must be above zero".into());
        }
        let on_off = |value: &str, name: &str| -> Result<bool, String> {
            match value {
                "on" | "true" | "1" | "" => Ok(true),
                "off" | "false" | "0" => Ok(false),
                other => Err(format!("{name} must be on or off, got '{other}'")),
            }
        };
        let auth = on_off(&s.auth, "INVICTA_AUTH (--auth)")?;
        let audit = on_off(&s.audit, "INVICTA_AUDIT (--audit)")?;
        let audit_writers =
            parse_number(&s.audit_writers, "INVICTA_AUDIT_WRITERS (--audit-writers)")?;
        if !(1..=MAX_AUDIT_WRITERS).contains(&audit_writers) {
            return Err(format!(
                "INVICTA_AUDIT_WRITERS (--audit-writers) must be between 1 and {MAX_AUDIT_WRITERS}, got {audit_writers}"
            )
            .into());
        }
        let prepared_searches = match s.prepared_searches.as_str() {
            "stable" | "" => store::PreparedSearches::Stable,
            "on" | "all" => store::PreparedSearches::All,
            "off" => store::PreparedSearches::Off,
            other => {
                return Err(format!(
                    "INVICTA_PREPARED_SEARCHES (--prepared-searches) must be stable, on or off, \
                     got '{other}'"
                )
                .into())
            }
        };
        let profiles =
            interactions::conformance::Enforcement::parse(&s.profiles).ok_or_else(|| {
                format!(
                    "INVICTA_PROFILES (--profiles) must be off, warn or reject, got '{}'",
                    s.profiles
                )
            })?;
        if s.viewer_client.is_empty()
            || s.viewer_client.len() > 64
            || !s
                .viewer_client
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(format!(
                "INVICTA_VIEWER_CLIENT (--viewer-client) must be a client id (letters, digits, - _ .), got '{}'",
                s.viewer_client.escape_debug()
            )
            .into());
        }
        let dev_signin = match s.dev_signin.as_str() {
            "off" | "false" | "0" | "" => false,
            "on" | "true" | "1" => true,
            other => {
                return Err(format!(
                    "INVICTA_DEV_SIGNIN (--dev-signin) must be on or off, got '{other}'"
                )
                .into())
            }
        };
        let oidc_issuers: Vec<String> = s
            .oidc_issuers
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for i in &oidc_issuers {
            if !(i.starts_with("https://") || i.starts_with("http://")) {
                return Err(format!(
                    "INVICTA_OIDC_ISSUERS (--oidc-issuers) must hold http(s) URLs, got '{i}'"
                )
                .into());
            }
        }
        let bundle_max_entries = parse_number(
            &s.bundle_max_entries,
            "INVICTA_BUNDLE_MAX_ENTRIES (--bundle-max-entries)",
        )?;
        let bundle_max_bytes = parse_number(
            &s.bundle_max_bytes,
            "INVICTA_BUNDLE_MAX_BYTES (--bundle-max-bytes)",
        )?;
        let delete_multiple = match s.conditional_delete.as_str() {
            "single" | "" => false,
            "multiple" => true,
            other => {
                return Err(format!(
                    "INVICTA_CONDITIONAL_DELETE (--conditional-delete) must be single or multiple, got '{other}'"
                )
                .into())
            }
        };
        if max_body == 0 || pool_size == 0 || bundle_max_entries == 0 || bundle_max_bytes == 0 {
            return Err("INVICTA_MAX_BODY, INVICTA_DB_POOL and the INVICTA_BUNDLE_MAX_* limits must be greater than zero".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&s.log) {
            let e = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            return Err(format!(
                "INVICTA_LOG (--log) must be a log filter such as warn or invicta=debug, got '{}': {e}",
                s.log
            )
            .into());
        }
        Ok(Config {
            database_url,
            listen,
            max_body,
            pool_size: pool_size as u32,
            bundle_max_entries,
            bundle_max_bytes,
            delete_multiple,
            search_default_count: search_default_count as i64,
            search_max_count: search_max_count as i64,
            search_explain,
            statement_timeout,
            cursor_key_configured,
            prepared_searches,
            replica_urls,
            replica_window,
            cursor_key,
            auth,
            audit,
            audit_writers,
            profiles,
            signing_key: s.signing_key,
            clients: s.clients,
            dev_signin,
            identity_providers: s.identity_providers,
            issuer: s.issuer.unwrap_or_else(|| base_url.clone()),
            oidc_issuers,
            policy: s.policy,
            viewer_dir: s.viewer_dir,
            viewer_client: s.viewer_client,
            role_claim: s.role_claim,
            log: s.log,
            base_url,
        })
    }
}

/// The command with each setting's environment variable taken through `env` instead of from the
/// process, so that tests need not set (or be disturbed by) real variables: a variable that is
/// set becomes the setting's default, which a flag still overrides, as clap's own lookup does.
fn with_env(cmd: clap::Command, env: &impl Fn(&str) -> Option<String>) -> clap::Command {
    cmd.mut_args(|arg| {
        let value = arg.get_env().and_then(|name| name.to_str()).and_then(env);
        let arg = arg.env(None);
        match value {
            Some(v) => arg.default_value(v),
            None => arg,
        }
    })
}

/// A clap error as one line: its message (the first paragraph of the terminal rendering) and the
/// usage it names, without the blank lines and tips.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let message = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_start_matches("error: ");
    match text.lines().find_map(|l| l.trim().strip_prefix("Usage: ")) {
        Some(usage) => format!("{message}; usage: {usage} (see --help)"),
        None => format!("{message} (see --help)"),
    }
}

/// `500ms`, `10s`, or `off`/`0` for no limit.
fn parse_duration(v: &str, name: &str) -> Result<Option<std::time::Duration>, String> {
    let t = v.trim();
    if matches!(t, "off" | "0") {
        return Ok(None);
    }
    let bad = || format!("{name} must be a duration such as 500ms or 10s, or off, got '{v}'");
    let (digits, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else {
        return Err(bad());
    };
    let n: u64 = digits.trim().parse().map_err(|_| bad())?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(std::time::Duration::from_millis(
        n.saturating_mul(unit_ms),
    )))
}

/// Most audit writer threads: each holds a connection of its own.
const MAX_AUDIT_WRITERS: usize = 8;

fn parse_number(v: &str, name: &str) -> Result<usize, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{name} must be a whole number, got '{v}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads with `vars` as the whole environment: the process's own is never read.
    fn load(args: &[&str], vars: &[(&str, &str)]) -> Result<(Command, Config), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Config::load(&args, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_overrides() {
        let (cmd, c) = load(&[], &[]).unwrap();
        assert_eq!(cmd, Command::Serve);
        assert_eq!(c.base_url, "http://127.0.0.1:8080/fhir");
        assert_eq!(c.max_body, 16 * 1024 * 1024);
        let (cmd, c) = load(
            &["migrate", "--listen", "0.0.0.0:9000", "--db-pool=4"],
            &[("INVICTA_BASE_URL", "https://x.example/fhir/")],
        )
        .unwrap();
        assert_eq!(cmd, Command::Migrate);
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.pool_size, 4);
        assert_eq!(c.base_url, "https://x.example/fhir");
    }

    #[test]
    fn statement_timeout() {
        let t = |v: &str| {
            load(&[], &[("INVICTA_STATEMENT_TIMEOUT", v)]).map(|(_, c)| c.statement_timeout)
        };
        assert_eq!(
            load(&[], &[]).unwrap().1.statement_timeout,
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            t("250ms").unwrap(),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(t("30s").unwrap(), Some(std::time::Duration::from_secs(30)));
        assert_eq!(t("off").unwrap(), None);
        assert_eq!(t("0").unwrap(), None);
        for bad in ["10", "ten s", "-1s", "5m"] {
            assert!(t(bad).is_err(), "{bad}");
        }
        assert!(load(&[], &[("INVICTA_CURSOR_KEY", "short")]).is_err());
    }

    #[test]
    fn bad_values_are_one_line() {
        for (args, vars) in [
            (vec!["--listen", "nope"], vec![]),
            (vec![], vec![("INVICTA_MAX_BODY", "lots")]),
            (vec![], vec![("DATABASE_URL", "mysql://x")]),
            (vec![], vec![("INVICTA_STATEMENT_TIMEOUT", "forever")]),
            (vec!["--frobnicate"], vec![]),
            (vec!["load"], vec![]),
            (vec!["load", "--chunk", "0", "x.ndjson"], vec![]),
            (vec!["load", "--writers", "17", "x.ndjson"], vec![]),
            (vec!["load", "--frobnicate", "x.ndjson"], vec![]),
            (vec!["token"], vec![]),
            (vec!["token", "--role", "gp", "--ttl", "86401"], vec![]),
            (vec![], vec![("INVICTA_AUTH", "maybe")]),
            (vec![], vec![("INVICTA_LOG", "info,[[")]),
        ] {
            let e = load(&args, &vars).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
        // A variable's value is refused under the variable's name.
        let e = load(&[], &[("INVICTA_MAX_BODY", "lots")]).unwrap_err();
        assert!(e.starts_with("INVICTA_MAX_BODY (--max-body) "), "{e}");
    }

    #[test]
    fn a_flag_overrides_its_variable_and_may_follow_the_command() {
        let vars = [
            ("INVICTA_MAX_BODY", "20"),
            ("INVICTA_LISTEN", "127.0.0.1:7000"),
        ];
        let (_, c) = load(&["--max-body", "10"], &vars).unwrap();
        assert_eq!(c.max_body, 10);
        assert_eq!(c.listen.port(), 7000);
        let (cmd, c) = load(&["migrate", "--max-body=30"], &vars).unwrap();
        assert_eq!(cmd, Command::Migrate);
        assert_eq!(c.max_body, 30);
        // Variables set but empty mean what they did before clap: the default.
        let (_, c) = load(&[], &[("INVICTA_AUTH", ""), ("INVICTA_AUDIT", "off")]).unwrap();
        assert!(c.auth);
        assert!(!c.audit);
    }

    #[test]
    fn audit_writers_are_between_one_and_eight() {
        assert_eq!(load(&[], &[]).unwrap().1.audit_writers, 2);
        let (_, c) = load(&[], &[("INVICTA_AUDIT_WRITERS", "1")]).unwrap();
        assert_eq!(c.audit_writers, 1);
        for bad in ["0", "9", "two"] {
            let e = load(&["--audit-writers", bad], &[]).unwrap_err();
            assert!(e.contains("INVICTA_AUDIT_WRITERS"), "{e}");
        }
    }

    #[test]
    fn token_and_load_take_their_options() {
        let (cmd, c) = load(
            &["token", "--role", "gp", "--org", "G82977", "--ttl", "60"],
            &[("INVICTA_BASE_URL", "https://x.example/fhir")],
        )
        .unwrap();
        let Command::Token(t) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            (t.role.as_str(), t.org.as_deref(), t.ttl),
            ("gp", Some("G82977"), 60)
        );
        assert_eq!(t.client, None);
        assert_eq!(c.issuer, "https://x.example/fhir");

        let (cmd, c) = load(
            &[
                "--db-pool",
                "3",
                "load",
                "--chunk",
                "10",
                "a.ndjson",
                "examples",
            ],
            &[],
        )
        .unwrap();
        let Command::Load(l) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            (l.chunk, l.writers, l.client.as_str()),
            (10, 2, "invicta-load")
        );
        assert_eq!(l.org, None);
        assert_eq!(
            l.paths,
            [std::path::PathBuf::from("a.ndjson"), "examples".into()]
        );
        assert_eq!(c.pool_size, 3);
    }

    #[test]
    fn help_is_not_an_error() {
        for args in [
            &["--help"][..],
            &["load", "--help"],
            &["token", "-h"],
            &["-V"],
        ] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            match Config::load(&args, |_| None) {
                Err(LoadError::Info(e)) => assert_eq!(e.exit_code(), 0, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }
}
