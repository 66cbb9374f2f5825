//! `invicta`: the Invicta FHIR R4 server. `invicta serve` (the default) applies migrations and
//! serves HTTP; `invicta migrate` applies migrations and exits; `invicta --help` lists the rest.

mod app;
mod audit_sink;
mod auth_tools;
mod cli;
mod config;
mod error;
mod error_format;
mod format;
mod gate;
mod guard;
mod handlers;
mod load;
mod request_id;
mod respond;
mod security;
mod state;
mod token_tool;

use std::process::ExitCode;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use store::{Store, StoreConfig};

use crate::config::{Command, Config, LoadError};
use crate::state::AppState;

/// mimalloc instead of glibc's allocator. A request allocates and frees many small values
/// across threads (the HTTP workers, the blocking pool, the audit writers); under glibc a fifth
/// of the server's CPU in the mixed workload was `malloc`, `free` and their consolidation of
/// freed chunks (README: mixed workload).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, config) = match Config::load(&args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(LoadError::Info(help)) => {
            let _ = help.print();
            return ExitCode::SUCCESS;
        }
        Err(LoadError::Invalid(msg)) => {
            eprintln!("invicta: configuration error: {msg}");
            return ExitCode::from(2);
        }
    };
    // After the settings, whose validation already checked that the filter parses.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run(command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            // libpq's messages span lines; a start-up failure is reported on one.
            let line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("invicta: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, mut config: Config) -> Result<(), String> {
    let policy = match &config.policy {
        Some(path) => authz::Policy::load(path)?,
        None => authz::Policy::from_json(authz::policy::DEFAULT_POLICY)?,
    };
    // Migrations, reindexing and `invicta load` are operator-run batch work that legitimately
    // runs long: they get a store without a statement timeout. Serving gets the configured one.
    let unbounded = |pool_size| {
        Store::connect(&StoreConfig {
            database_url: config.database_url.clone(),
            pool_size,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: None,
        })
        .map_err(|e| format!("cannot connect to the database: {e}"))
    };
    let maintenance = unbounded(if matches!(command, Command::Load(_)) {
        config.pool_size
    } else {
        2
    })?;
    let applied = maintenance
        .migrate()
        .map_err(|e| format!("cannot apply migrations: {e}"))?;
    tracing::info!(applied, "database schema is up to date");
    // AuditEvents kept as resources by earlier versions join the audit trail before anything
    // reads it (a no-op once done).
    maintenance
        .prepare_audit_partitions()
        .map_err(|e| format!("cannot create the audit trail's partitions: {e}"))?;
    let moved = maintenance
        .move_legacy_audit()
        .map_err(|e| format!("cannot move AuditEvents into the audit trail: {e}"))?;
    if moved > 0 {
        tracing::info!(moved, "AuditEvents moved into the audit trail");
    }
    let rebuilt = maintenance
        .ensure_index_current(
            &fhir_model::search_params::definitions_hash(),
            command == Command::Reindex,
        )
        .map_err(|e| format!("cannot rebuild search indexes: {e}"))?;
    if rebuilt > 0 {
        tracing::info!(
            rebuilt,
            "search index rows rebuilt for new parameter definitions"
        );
    }
    auth_server::KeyRing::ensure_first(&maintenance, &config.signing_key)?;
    if !config.cursor_key_configured {
        // Every process on this database seals and opens paging links with the same key.
        let secret = maintenance
            .shared_secret("cursor-key", &auth_server::secrets::random())
            .map_err(|e| format!("cannot read the shared cursor key: {e}"))?;
        config.cursor_key = search::CursorKey::from_secret(secret.as_bytes());
    }
    match &command {
        Command::Load(args) => return load::run(&config, args, &maintenance, policy),
        Command::Token(args) => {
            let keys = auth_server::KeyRing::load(&maintenance)?;
            let token = token_tool::issue(&config, args, &policy, &keys[0])?;
            println!("{token}");
            return Ok(());
        }
        Command::Keys(keys) => return auth_tools::keys(&maintenance, keys),
        Command::Client(c) => return auth_tools::client(&maintenance, &policy, c),
        _ => {}
    }
    if command != Command::Serve {
        return Ok(());
    }
    drop(maintenance);
    let store = Store::connect(&StoreConfig {
        database_url: config.database_url.clone(),
        pool_size: config.pool_size,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: config.statement_timeout,
    })
    .map_err(|e| format!("cannot connect to the database: {e}"))?;
    store::set_prepared_searches(config.prepared_searches);
    let mut replicas = Vec::new();
    for (i, url) in config.replica_urls.iter().enumerate() {
        replicas.push(
            Store::connect(&StoreConfig {
                database_url: url.clone(),
                pool_size: config.pool_size,
                connect_timeout: Duration::from_secs(10),
                statement_timeout: config.statement_timeout,
            })
            .map_err(|e| format!("cannot connect to read replica {}: {e}", i + 1))?,
        );
    }
    if !config.auth {
        tracing::warn!("INVICTA_AUTH=off: no tokens are checked and every request may do anything. For local development only; never expose this server.");
    }
    if !config.audit {
        tracing::warn!(
            "INVICTA_AUDIT=off: accesses are not audited. For measuring the cost of auditing only."
        );
    }
    let policy = std::sync::Arc::new(policy);
    if let Some(path) = &config.clients {
        let n = auth_tools::register_file(&store, &policy, path)?;
        tracing::info!(clients = n, file = %path.display(), "clients registered from the clients file");
    }
    let verifier = authz::token::Verifier::new(authz::token::VerifierConfig {
        audience: config.base_url.clone(),
        own_issuer: config.issuer.clone(),
        own_keys: Vec::new(),
        external_issuers: config.oidc_issuers.clone(),
        leeway: Duration::from_secs(60),
    });
    if config.dev_signin {
        tracing::warn!("INVICTA_DEV_SIGNIN=on: anyone can sign in as any user and role on /auth/signin. For development and tests only; never with real records.");
    }
    let mut auth_settings = auth_server::AuthSettings::new(&config.base_url, &config.issuer);
    auth_settings.role_claim = config.role_claim.clone();
    auth_settings.dev_signin = config.dev_signin;
    let providers = match &config.identity_providers {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("identity providers file {}: {e}", path.display()))?;
            auth_server::upstream::Providers::from_json(&text)
                .map_err(|e| format!("identity providers file {}: {e}", path.display()))?
        }
        None => auth_server::upstream::Providers::default(),
    };
    let auth = auth_server::AuthServer::new(
        store.clone(),
        auth_settings,
        verifier.clone(),
        policy.clone(),
        providers,
    )?;
    auth.start_sync();
    let security = security::Security {
        verifier,
        policy,
        enabled: config.auth,
        audit: audit_sink::AuditSink::start(store.clone(), config.audit, config.audit_writers),
        role_claim: config.role_claim.clone(),
        cache: Default::default(),
    };
    let mut state = AppState::new(store.clone(), config, security, auth);
    if !replicas.is_empty() {
        tracing::info!(
            replicas = replicas.len(),
            "reads and searches go to fresh read replicas"
        );
        let r = interactions::replicas::Replicas::new(replicas, state.config.replica_window);
        r.watch(store);
        state.services = state.services.with_replicas(r);
    }
    serve(state).map_err(|e| format!("server failed: {e}"))
}

#[actix_web::main]
async fn serve(state: AppState) -> std::io::Result<()> {
    actix_http::error_body::set_error_body(error::dispatcher_error_body);
    let listen = state.config.listen;
    let base = state.config.base_url.clone();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(gate::gate))
            .wrap(from_fn(error_format::xml_errors))
            .wrap(from_fn(app::request_log))
            .wrap(tracing_actix_web::TracingLogger::<app::RequestSpan>::new())
            .configure(app::configure)
    })
    .shutdown_timeout(30)
    // A client that closes its side has gone: its handler is dropped, which cancels the
    // statement it was waiting for (see `store::CancelGuard`), instead of running to the end
    // for nobody. HTTP/1 half-close (request sent, write side shut, answer awaited) is not
    // something FHIR clients do.
    .h1_allow_half_closed(false)
    .bind(listen)?;
    tracing::info!(%listen, base_url = %base, "Invicta FHIR server listening");
    server.run().await
}
