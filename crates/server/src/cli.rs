//! The command line. One clap definition gives each setting its flag, its environment variable,
//! its default and its `--help` text, so that they cannot drift apart; `config.rs` turns what it
//! parses into a validated [`Config`](crate::config::Config). README.md's configuration table is
//! checked against it by a test below.
//!
//! Settings are parsed as text and validated in `config.rs` rather than by clap's typed parsers:
//! a bad value usually comes from the environment, and the message then names the variable.

use std::path::PathBuf;

use clap::builder::{RangedI64ValueParser, RangedU64ValueParser};
use clap::{Args, Parser, Subcommand};

/// `invicta`: the Invicta FHIR R4 server.
#[derive(Debug, Parser)]
#[command(
    name = "invicta",
    version,
    about = "The Invicta FHIR R4 server. Each setting comes from its environment variable; its \
             flag, before or after the command, overrides it."
)]
pub struct Cli {
    /// Server and database settings, shared by every command.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do (`serve` when none is given).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve HTTP (the default)
    Serve,
    /// Apply pending migrations and exit
    Migrate,
    /// Apply pending migrations, rebuild every search-index row and exit
    Reindex,
    /// Print an access token signed with the server's key (run it with the server's settings)
    Token(TokenArgs),
    /// Load FHIR Bundles and NDJSON files through the path a REST transaction takes
    Load(LoadArgs),
    /// The server's token signing keys (kept in the database)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The registry of OAuth clients (SMART apps, point-of-care systems, backend services)
    #[command(subcommand)]
    Client(ClientCommand),
}

/// `invicta keys …`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key; tokens signed by the old ones stay valid until they expire
    Rotate,
    /// List the keys in use (kid, algorithm, created, retired)
    List,
}

/// `invicta client …`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClientCommand {
    /// Register a client (a symmetric client's secret is printed once)
    Add(Box<ClientAddArgs>),
    /// List registered clients
    List,
    /// Show one client's registration as JSON
    Show {
        /// The client id
        id: String,
    },
    /// Remove a client
    Remove {
        /// The client id
        id: String,
    },
}

/// `invicta client add`: the registration.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClientAddArgs {
    /// client_id (letters, digits, '.', '_', '-')
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// Name shown on the consent screen
    #[arg(long, value_name = "TEXT")]
    pub name: String,
    /// public, confidential-symmetric or confidential-asymmetric
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    /// Redirect URI, matched exactly (repeat for several)
    #[arg(long = "redirect-uri", value_name = "URL")]
    pub redirect_uris: Vec<String>,
    /// The most the client may be granted, space-separated
    #[arg(long, value_name = "SCOPES")]
    pub scope: String,
    /// The app's launch URL (EHR launch)
    #[arg(long, value_name = "URL")]
    pub launch_url: Option<String>,
    /// File holding the client's public keys as a JWK set (asymmetric clients)
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// URL of the client's JWK set (asymmetric clients)
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<String>,
    /// Care-record role of its client_credentials tokens (backend services, e.g. feed)
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// ODS code of the organisation running the client
    #[arg(long, value_name = "ODS")]
    pub org: Option<String>,
    /// Replace a registration of the same id
    #[arg(long)]
    pub replace: bool,
}

/// Server and database settings; each one also comes from its environment variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Settings")]
pub struct Settings {
    /// PostgreSQL URL; on a loopback host without an explicit sslmode, TLS is not used
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432/invicta",
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,

    /// Address to listen on (IP:PORT)
    #[arg(
        long,
        env = "INVICTA_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,

    /// Absolute base URL used in Location, fullUrl and links [default: http://<listen>/fhir]
    #[arg(long, env = "INVICTA_BASE_URL", value_name = "URL", global = true)]
    pub base_url: Option<String>,

    /// Largest request body in bytes; larger gets 413
    #[arg(
        long,
        env = "INVICTA_MAX_BODY",
        value_name = "BYTES",
        default_value = "16777216",
        global = true
    )]
    pub max_body: String,

    /// Database connections
    #[arg(
        long,
        env = "INVICTA_DB_POOL",
        value_name = "N",
        default_value = "16",
        global = true
    )]
    pub db_pool: String,

    /// Which recurring statements run as prepared statements: stable (searches built to keep one good plan), on (every recurring shape) or off
    // Measured with make bench-search (README): with every shape prepared, the NHS-number lookup
    // gained 15% but the patient's medicines and recent results, whose unfenced plans depend on
    // their values, ran 6 and 200 times slower once PostgreSQL switched them to a generic plan.
    #[arg(
        long,
        env = "INVICTA_PREPARED_SEARCHES",
        value_name = "stable|on|off",
        default_value = "stable",
        global = true
    )]
    pub prepared_searches: String,

    /// Streaming standbys of the database that serve reads and searches, comma-separated postgres:// URLs [default: none]
    #[arg(
        long,
        env = "INVICTA_REPLICA_URLS",
        value_name = "URLS",
        hide_env_values = true,
        global = true
    )]
    pub replica_urls: Option<String>,

    /// How long a client that wrote reads from the primary, and twice the most a standby in use may lag (500ms, 5s)
    #[arg(
        long,
        env = "INVICTA_REPLICA_WINDOW",
        value_name = "DURATION",
        default_value = "5s",
        global = true
    )]
    pub replica_window: String,

    /// Most entries of a batch or transaction Bundle; more gets 413
    #[arg(
        long,
        env = "INVICTA_BUNDLE_MAX_ENTRIES",
        value_name = "N",
        default_value = "10000",
        global = true
    )]
    pub bundle_max_entries: String,

    /// Largest batch or transaction Bundle body in bytes; larger gets 413
    #[arg(
        long,
        env = "INVICTA_BUNDLE_MAX_BYTES",
        value_name = "BYTES",
        default_value = "67108864",
        global = true
    )]
    pub bundle_max_bytes: String,

    /// `multiple`: a conditional delete deletes every match; with `single` several are a 412
    #[arg(
        long,
        env = "INVICTA_CONDITIONAL_DELETE",
        value_name = "single|multiple",
        default_value = "single",
        global = true
    )]
    pub conditional_delete: String,

    /// Search page size when _count is absent
    #[arg(
        long,
        env = "INVICTA_SEARCH_DEFAULT_COUNT",
        value_name = "N",
        default_value = "20",
        global = true
    )]
    pub search_default_count: String,

    /// Largest search page, whatever _count asks
    #[arg(
        long,
        env = "INVICTA_SEARCH_MAX_COUNT",
        value_name = "N",
        default_value = "1000",
        global = true
    )]
    pub search_max_count: String,

    /// `on`: _explain=true on a search returns its SQL and plan instead of results (operators only)
    #[arg(
        long,
        env = "INVICTA_SEARCH_EXPLAIN",
        value_name = "on|off",
        default_value = "off",
        global = true
    )]
    pub search_explain: String,

    /// How long one database statement of a request may run (500ms, 30s; off: no limit)
    // 10s: long enough for any search the query limits admit on a loaded server, short enough
    // that a runaway one frees its connection and core soon.
    #[arg(
        long,
        env = "INVICTA_STATEMENT_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        global = true
    )]
    pub statement_timeout: String,

    /// Secret (16+ characters) sealing search page cursors; by default every process on the database shares one [default: made once and kept in the database (table server_secret)]
    #[arg(
        long,
        env = "INVICTA_CURSOR_KEY",
        value_name = "SECRET",
        hide_env_values = true,
        global = true
    )]
    pub cursor_key: Option<String>,

    /// Log filter (warn, invicta=debug, ...)
    #[arg(
        long,
        env = "INVICTA_LOG",
        value_name = "FILTER",
        default_value = "info",
        global = true
    )]
    pub log: String,

    /// `off`: no tokens are checked and every request may do anything (local development only)
    #[arg(
        long,
        env = "INVICTA_AUTH",
        value_name = "on|off",
        default_value = "on",
        global = true
    )]
    pub auth: String,

    /// `off`: nothing is audited (only to measure what auditing costs)
    #[arg(
        long,
        env = "INVICTA_AUDIT",
        value_name = "on|off",
        default_value = "on",
        global = true
    )]
    pub audit: String,

    /// Audit writer threads, each committing whatever has queued up as one transaction (1-8): fewer make bigger batches and fewer WAL flushes
    #[arg(
        long,
        env = "INVICTA_AUDIT_WRITERS",
        value_name = "N",
        default_value = "2",
        global = true
    )]
    pub audit_writers: String,

    /// What a write does with a resource that breaks its type's profile (profiles/): `off`, `warn` (the findings travel with the 2xx) or `reject` (422)
    #[arg(
        long,
        env = "INVICTA_PROFILES",
        value_name = "off|warn|reject",
        default_value = "warn",
        global = true
    )]
    pub profiles: String,

    /// ES256 key (PKCS#8 PEM) that becomes the first signing key of a database that has none; created when missing
    #[arg(
        long,
        env = "INVICTA_SIGNING_KEY",
        value_name = "FILE",
        default_value = ".data/signing-key.pem",
        global = true
    )]
    pub signing_key: PathBuf,

    /// `on`: the development sign-in page (pick any user and role) is offered; never for real records
    #[arg(
        long,
        env = "INVICTA_DEV_SIGNIN",
        value_name = "on|off",
        default_value = "off",
        global = true
    )]
    pub dev_signin: String,

    /// JSON file of the OpenID Connect providers people sign in with (NHS CIS2, NHS login, others) [default: none]
    #[arg(
        long,
        env = "INVICTA_IDENTITY_PROVIDERS",
        value_name = "FILE",
        global = true
    )]
    pub identity_providers: Option<PathBuf>,

    /// JSON file of OAuth clients registered (or updated) at every start [default: none]
    #[arg(long, env = "INVICTA_CLIENTS", value_name = "FILE", global = true)]
    pub clients: Option<PathBuf>,

    /// `iss` of tokens signed with the server's key [default: the base URL]
    #[arg(long, env = "INVICTA_ISSUER", value_name = "URL", global = true)]
    pub issuer: Option<String>,

    /// Comma-separated OpenID Connect issuer URLs whose tokens are trusted [default: none]
    #[arg(long, env = "INVICTA_OIDC_ISSUERS", value_name = "URLS", global = true)]
    pub oidc_issuers: Option<String>,

    /// Folder of the built care-record viewer (apps/viewer, `npm run build`), served at /apps/viewer/
    #[arg(
        long,
        env = "INVICTA_VIEWER_DIR",
        value_name = "DIR",
        default_value = "apps/viewer/dist",
        global = true
    )]
    pub viewer_dir: PathBuf,

    /// OAuth client id the viewer signs in as (registered by `make run`)
    #[arg(
        long,
        env = "INVICTA_VIEWER_CLIENT",
        value_name = "ID",
        default_value = "viewer",
        global = true
    )]
    pub viewer_client: String,

    /// Role policy file, validated at start [default: the shipped profiles/role-policy.json]
    #[arg(long, env = "INVICTA_POLICY", value_name = "FILE", global = true)]
    pub policy: Option<PathBuf>,

    /// Claim naming the care-record role when a token has no NHS CIS2 RBAC claims
    #[arg(
        long,
        env = "INVICTA_ROLE_CLAIM",
        value_name = "CLAIM",
        default_value = "role",
        global = true
    )]
    pub role_claim: String,
}

/// `invicta token`: the claims of the token to print.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TokenArgs {
    /// Care-record role from the policy (gp, feed, patient, ...)
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// Launch patient (a `patient` token needs it)
    #[arg(long, value_name = "ID")]
    pub patient: Option<String>,
    /// SMART scopes, space-separated [default: the role's scopes]
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,
    /// Lifetime in seconds (1..86400)
    #[arg(long, value_name = "SECS", default_value = "3600",
          value_parser = RangedI64ValueParser::<i64>::new().range(1..=86_400))]
    pub ttl: i64,
    /// `client_id` claim [default: invicta-token-tool]
    #[arg(long, value_name = "ID")]
    pub client: Option<String>,
    /// ODS code of the user's organisation
    #[arg(long, value_name = "ODS")]
    pub org: Option<String>,
    /// `sub` claim [default: <role>-user]
    #[arg(long, value_name = "ID")]
    pub sub: Option<String>,
    /// `purpose_of_use` claim
    #[arg(long, value_name = "CODE")]
    pub purpose: Option<String>,
    /// `break_glass_reason` claim
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `invicta load`: what to load and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LoadArgs {
    /// ODS code of the sending organisation (tags every resource and its provenance)
    #[arg(long, value_name = "ODS")]
    pub org: Option<String>,
    /// Client id recorded as the source of every version
    #[arg(long, value_name = "ID", default_value = "invicta-load")]
    pub client: String,
    /// NDJSON lines per transaction (1..10000)
    #[arg(long, value_name = "N", default_value = "500",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub chunk: usize,
    /// Writer threads, each on its own connection (1..16)
    #[arg(long, value_name = "N", default_value = "2",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=16))]
    pub writers: usize,
    /// Files or folders of .json Bundles and .ndjson files (a folder's load-order.txt gives the order)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The rows of README.md's configuration table: variable → (flag cell, default cell).
    fn readme_rows() -> BTreeMap<String, (String, String)> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .expect("README.md has a Configuration section");
        let section = section.split("\n#").next().unwrap_or(section);
        let mut rows = BTreeMap::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split(" | ").map(|c| c.trim()).collect();
            assert!(cells.len() >= 4, "a table row with 4 cells: {line}");
            let var = cells[0]
                .trim_start_matches("| ")
                .trim_matches('`')
                .to_string();
            rows.insert(var, (cells[1].to_string(), cells[2].to_string()));
        }
        assert!(!rows.is_empty(), "README.md's configuration table has rows");
        rows
    }

    #[test]
    fn the_readme_configuration_table_matches_the_command_line() {
        let rows = readme_rows();
        let cmd = Cli::command();
        let mut known = Vec::new();
        for arg in cmd.get_arguments() {
            let Some(var) = arg.get_env().and_then(|v| v.to_str()) else {
                continue;
            };
            known.push(var.to_string());
            let (flag, default) = rows
                .get(var)
                .unwrap_or_else(|| panic!("{var} is missing from README.md's table"));
            let long = arg.get_long().expect("every setting has a long flag");
            assert_eq!(flag, &format!("`--{long}`"), "flag of {var} in README.md");
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            match arg.get_default_values() {
                [value] => {
                    let value = value.to_str().unwrap();
                    assert!(
                        default.starts_with(&format!("`{value}`")),
                        "README.md gives {var} the default {default}, --help `{value}`"
                    );
                }
                [] => {
                    // No literal default: the help text names what applies instead.
                    let stated = format!("[default: {}]", default.replace('`', ""));
                    assert!(
                        help.contains(&stated),
                        "--help of {var} should say {stated}: {help}"
                    );
                }
                many => panic!("{var} has several defaults: {many:?}"),
            }
        }
        for var in rows.keys() {
            assert!(
                known.contains(var),
                "README.md's table has {var}, which the command line does not know"
            );
        }
    }
}
