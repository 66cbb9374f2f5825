//! Configuration from the environment, overridable by command-line flags.
//!
//! | variable | flag | default |
//! |---|---|---|
//! | `DATABASE_URL` | `--database-url` | `postgres://postgres@127.0.0.1:5432/invicta` |
//! | `INVICTA_LISTEN` | `--listen` | `127.0.0.1:8080` |
//! | `INVICTA_BASE_URL` | `--base-url` | `http://<listen>/fhir` |
//! | `INVICTA_MAX_BODY` | `--max-body` | `16777216` (16 MiB) |
//! | `INVICTA_DB_POOL` | `--db-pool` | `16` |
//! | `INVICTA_BUNDLE_MAX_ENTRIES` | | `10000` |
//! | `INVICTA_BUNDLE_MAX_BYTES` | | `67108864` (64 MiB) |
//! | `INVICTA_CONDITIONAL_DELETE` | | `single` (`multiple`: a conditional delete may delete several) |
//! | `INVICTA_SEARCH_DEFAULT_COUNT` | | `20` |
//! | `INVICTA_SEARCH_MAX_COUNT` | | `1000` |
//! | `INVICTA_SEARCH_EXPLAIN` | | `off` |
//! | `INVICTA_STATEMENT_TIMEOUT` | | `10s` (`500ms`, `30s`; `off`: no limit) |
//! | `INVICTA_CURSOR_KEY` | | random per process (a secret shared by instances behind one load balancer) |
//! | `INVICTA_AUTH` | | `on` (`off`: no tokens, development only) |
//! | `INVICTA_AUDIT` | | `on` (`off`: no audit trail, benchmarking only) |
//! | `INVICTA_SIGNING_KEY` | | `.data/signing-key.pem` (created when missing) |
//! | `INVICTA_ISSUER` | | the base URL |
//! | `INVICTA_OIDC_ISSUERS` | | none (comma-separated issuer URLs) |
//! | `INVICTA_POLICY` | | the shipped `profiles/role-policy.json` |
//! | `INVICTA_ROLE_CLAIM` | | `role` |

use std::net::SocketAddr;

/// What the binary was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Apply migrations and serve HTTP (the default).
    Serve,
    /// Apply migrations and exit.
    Migrate,
    /// Apply migrations, rebuild every index row and exit.
    Reindex,
    /// Print an access token signed with the server's key.
    Token,
    /// Load FHIR Bundles and NDJSON files from disk.
    Load,
}

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
    /// Tokens are required (the default); off only for local development.
    pub auth: bool,
    /// Every access is audited (the default); off only to measure what auditing costs.
    pub audit: bool,
    /// PKCS#8 PEM file of the server's own signing key.
    pub signing_key: std::path::PathBuf,
    /// `iss` of tokens signed with the server's key.
    pub issuer: String,
    /// External OpenID Connect issuers trusted for tokens.
    pub oidc_issuers: Vec<String>,
    /// Role policy file (`None`: the shipped one).
    pub policy: Option<std::path::PathBuf>,
    /// The claim naming the care-record role when there are no CIS2 RBAC claims.
    pub role_claim: String,
    /// Arguments after `token` or `load`.
    pub command_args: Vec<String>,
}

const USAGE: &str = "usage: invicta [serve|migrate|reindex] [--database-url URL] [--listen ADDR] [--base-url URL] [--max-body BYTES] [--db-pool N] | invicta token --role ROLE [--patient ID] [--scope \"...\"] [--ttl SECS] [--client ID] [--org ODS] [--sub ID] | invicta load [--org ODS] [--client ID] [--chunk N] PATH...";

impl Config {
    /// Reads the environment (through `env`) and the arguments (without the program name).
    pub fn load(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Command, Config), String> {
        let mut command = Command::Serve;
        let mut database_url = env("DATABASE_URL");
        let mut listen = env("INVICTA_LISTEN");
        let mut base_url = env("INVICTA_BASE_URL");
        let mut max_body = env("INVICTA_MAX_BODY");
        let mut pool = env("INVICTA_DB_POOL");
        let mut command_args = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "token" || arg == "load" {
                command = if arg == "token" {
                    Command::Token
                } else {
                    Command::Load
                };
                command_args = it.by_ref().cloned().collect();
                break;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))
            };
            match flag {
                "serve" => command = Command::Serve,
                "migrate" => command = Command::Migrate,
                "reindex" => command = Command::Reindex,
                "--database-url" => database_url = Some(value()?),
                "--listen" => listen = Some(value()?),
                "--base-url" => base_url = Some(value()?),
                "--max-body" => max_body = Some(value()?),
                "--db-pool" => pool = Some(value()?),
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument '{other}'; {USAGE}")),
            }
        }
        let database_url = database_url
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/invicta".to_string());
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(format!(
                "DATABASE_URL must be a postgres:// URL, got '{database_url}'"
            ));
        }
        let listen_text = listen.unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            format!("INVICTA_LISTEN must be HOST:PORT with an IP address, got '{listen_text}'")
        })?;
        let base_url = match base_url {
            Some(b) => {
                if !(b.starts_with("http://") || b.starts_with("https://")) {
                    return Err(format!(
                        "INVICTA_BASE_URL must be an absolute http(s) URL, got '{b}'"
                    ));
                }
                b.trim_end_matches('/').to_string()
            }
            None => format!("http://{listen}/fhir"),
        };
        let max_body = parse_number(max_body, "INVICTA_MAX_BODY", 16 * 1024 * 1024)?;
        let pool_size = parse_number(pool, "INVICTA_DB_POOL", 16)?;
        let search_default_count = parse_number(
            env("INVICTA_SEARCH_DEFAULT_COUNT"),
            "INVICTA_SEARCH_DEFAULT_COUNT",
            20,
        )?;
        let search_max_count = parse_number(
            env("INVICTA_SEARCH_MAX_COUNT"),
            "INVICTA_SEARCH_MAX_COUNT",
            1000,
        )?;
        let search_explain = match env("INVICTA_SEARCH_EXPLAIN").as_deref() {
            None | Some("off" | "false" | "0" | "") => false,
            Some("on" | "true" | "1") => true,
            Some(other) => {
                return Err(format!(
                    "INVICTA_SEARCH_EXPLAIN must be on or off, got '{other}'"
                ))
            }
        };
        let statement_timeout = parse_duration(
            env("INVICTA_STATEMENT_TIMEOUT"),
            "INVICTA_STATEMENT_TIMEOUT",
            DEFAULT_STATEMENT_TIMEOUT,
        )?;
        let cursor_key = match env("INVICTA_CURSOR_KEY") {
            Some(secret) if secret.len() >= 16 => search::CursorKey::from_secret(secret.as_bytes()),
            Some(_) => return Err("INVICTA_CURSOR_KEY must be at least 16 characters".into()),
            None => search::CursorKey::random()?,
        };
        if search_max_count == 0 || search_default_count > search_max_count {
            return Err("INVICTA_SEARCH_DEFAULT_COUNT must not exceed INVICTA_SEARCH_MAX_COUNT, which must be above zero".into());
        }
        let on_off = |name: &str| -> Result<bool, String> {
            match env(name).as_deref() {
                None | Some("on" | "true" | "1" | "") => Ok(true),
                Some("off" | "false" | "0") => Ok(false),
                Some(other) => Err(format!("{name} must be on or off, got '{other}'")),
            }
        };
        let auth = on_off("INVICTA_AUTH")?;
        let audit = on_off("INVICTA_AUDIT")?;
        let oidc_issuers: Vec<String> = env("INVICTA_OIDC_ISSUERS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for i in &oidc_issuers {
            if !(i.starts_with("https://") || i.starts_with("http://")) {
                return Err(format!(
                    "INVICTA_OIDC_ISSUERS must hold http(s) URLs, got '{i}'"
                ));
            }
        }
        let bundle_max_entries = parse_number(
            env("INVICTA_BUNDLE_MAX_ENTRIES"),
            "INVICTA_BUNDLE_MAX_ENTRIES",
            10_000,
        )?;
        let bundle_max_bytes = parse_number(
            env("INVICTA_BUNDLE_MAX_BYTES"),
            "INVICTA_BUNDLE_MAX_BYTES",
            64 * 1024 * 1024,
        )?;
        let delete_multiple = match env("INVICTA_CONDITIONAL_DELETE").as_deref() {
            None | Some("single" | "") => false,
            Some("multiple") => true,
            Some(other) => {
                return Err(format!(
                    "INVICTA_CONDITIONAL_DELETE must be single or multiple, got '{other}'"
                ))
            }
        };
        if max_body == 0 || pool_size == 0 || bundle_max_entries == 0 || bundle_max_bytes == 0 {
            return Err("INVICTA_MAX_BODY, INVICTA_DB_POOL and the INVICTA_BUNDLE_MAX_* limits must be greater than zero".into());
        }
        Ok((
            command,
            Config {
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
                cursor_key,
                auth,
                audit,
                signing_key: env("INVICTA_SIGNING_KEY")
                    .unwrap_or_else(|| ".data/signing-key.pem".into())
                    .into(),
                issuer: env("INVICTA_ISSUER").unwrap_or_else(|| base_url.clone()),
                oidc_issuers,
                policy: env("INVICTA_POLICY").map(Into::into),
                role_claim: env("INVICTA_ROLE_CLAIM").unwrap_or_else(|| "role".into()),
                command_args,
                base_url,
            },
        ))
    }
}

/// The statement timeout when `INVICTA_STATEMENT_TIMEOUT` is not set: long enough for any search
/// the query limits admit on a loaded server, short enough that a runaway one frees its
/// connection and core soon.
const DEFAULT_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `500ms`, `10s`, or `off`/`0` for no limit.
fn parse_duration(
    value: Option<String>,
    name: &str,
    default: std::time::Duration,
) -> Result<Option<std::time::Duration>, String> {
    let Some(v) = value else {
        return Ok(Some(default));
    };
    let t = v.trim();
    if matches!(t, "off" | "0") {
        return Ok(None);
    }
    let (digits, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else {
        return Err(format!(
            "{name} must be a duration such as 500ms or 10s, or off, got '{v}'"
        ));
    };
    let n: u64 = digits.trim().parse().map_err(|_| {
        format!("{name} must be a duration such as 500ms or 10s, or off, got '{v}'")
    })?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(std::time::Duration::from_millis(
        n.saturating_mul(unit_ms),
    )))
}

fn parse_number(value: Option<String>, name: &str, default: usize) -> Result<usize, String> {
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, got '{v}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str], vars: &[(&str, &str)]) -> Result<(Command, Config), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Config::load(&args, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
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
            Some(DEFAULT_STATEMENT_TIMEOUT)
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
        ] {
            let e = load(&args, &vars).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
