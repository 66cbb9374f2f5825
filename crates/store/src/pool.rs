//! The connection pool, migrations and readiness checks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::StoreError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Connections kept for cancelling abandoned statements.
const CANCELLER_CONNECTIONS: u32 = 2;
/// The statement timeout of a cancel (it returns at once).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A `postgres://` URL.
    pub database_url: String,
    /// Maximum pooled connections.
    pub pool_size: u32,
    /// How long a request may wait for a connection before it fails with 503.
    pub connect_timeout: Duration,
    /// How long one statement may run before PostgreSQL cancels it (`statement_timeout`);
    /// `None`: no limit (migrations, reindexing and `invicta load`).
    pub statement_timeout: Option<Duration>,
}

/// How long a pooled connection is used without a liveness check. The check is a round trip:
/// on every check-out it was a sixth of the server's CPU for a search (`perf`), and it only
/// matters after PostgreSQL dropped connections, which [`note_lost_connection`] reports.
const CHECK_AFTER: Duration = Duration::from_secs(1);

/// Statements that found their connection gone (restart, failover, terminated backend), in
/// this process.
static LOST: AtomicU64 = AtomicU64::new(0);

/// Records that a statement found its connection gone, so every pooled connection is checked
/// at its next check-out.
pub(crate) fn note_lost_connection() {
    LOST.fetch_add(1, Ordering::Relaxed);
}

/// When a pooled connection was last known to be alive, and how many lost connections the
/// process had seen then.
#[derive(Debug, Clone, Copy)]
struct Checked {
    at: Instant,
    lost: u64,
}

/// Session settings every pooled connection gets when it is opened.
#[derive(Debug)]
struct SessionSetup {
    statement_timeout: Option<Duration>,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        // 0 is PostgreSQL's "no limit"; a limit under a millisecond would round to none.
        let ms = self
            .statement_timeout
            .map_or(0, |d| d.as_millis().clamp(1, i32::MAX as u128));
        diesel::sql_query(format!("SET statement_timeout = {ms}"))
            .execute(conn)
            .map(|_| ())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The pool's customizer: the session settings, shared with [`Store`].
#[derive(Debug)]
struct SharedSetup(Arc<SessionSetup>);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SharedSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        self.0.on_acquire(conn)
    }
}

/// A handle on the database; cheap to clone. All methods block: call them off the async executor.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool<ConnectionManager<PgConnection>>,
    /// Connections for `pg_cancel_backend` only, opened when first needed.
    pub(crate) canceller: Pool<ConnectionManager<PgConnection>>,
    /// The database URL, for connections that must not come from the pool (LISTEN).
    pub(crate) url: std::sync::Arc<str>,
    /// The pool's statement time limit in milliseconds, for connections outside it.
    statement_timeout_ms: Option<u128>,
    /// The pool's session settings, for a connection replaced in place.
    setup: Arc<SessionSetup>,
}

pub(crate) type Conn = PooledConnection<ConnectionManager<PgConnection>>;

impl Store {
    /// Builds the pool and checks that one connection can be made.
    pub fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        let url = loopback_without_tls(&config.database_url);
        let manager = ConnectionManager::<PgConnection>::new(url.clone());
        let setup = Arc::new(SessionSetup {
            statement_timeout: config.statement_timeout,
        });
        let pool = Pool::builder()
            .max_size(config.pool_size)
            // Liveness is checked by `checked_out`, only when it may have changed.
            .test_on_check_out(false)
            .min_idle(Some(1))
            .connection_timeout(config.connect_timeout)
            .connection_customizer(Box::new(SharedSetup(setup.clone())))
            .build(manager)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let canceller = Pool::builder()
            .max_size(CANCELLER_CONNECTIONS)
            .min_idle(Some(0))
            .test_on_check_out(true)
            .connection_timeout(config.connect_timeout)
            .connection_customizer(Box::new(SessionSetup {
                statement_timeout: Some(CANCEL_TIMEOUT),
            }))
            .build_unchecked(ConnectionManager::<PgConnection>::new(url));
        Ok(Store {
            pool,
            canceller,
            url: config.database_url.as_str().into(),
            statement_timeout_ms: config.statement_timeout.map(|d| d.as_millis().max(1)),
            setup,
        })
    }

    /// A connection outside the pool, with the pool's session settings (a statement time
    /// limit of 30 s when the pool has none), for a thread that keeps one for itself.
    pub(crate) fn dedicated_connection(&self) -> Result<PgConnection, StoreError> {
        use diesel::Connection;
        let mut conn = PgConnection::establish(&loopback_without_tls(&self.url))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let ms = self.statement_timeout_ms.unwrap_or(30_000);
        diesel::sql_query(format!("SET statement_timeout = {ms}")).execute(&mut conn)?;
        Ok(conn)
    }

    /// A pooled connection in the default plan mode (see [`crate::plan_mode`]).
    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        let mut conn = self.checked_out()?;
        crate::plan_mode::ensure(&mut conn, crate::plan_mode::PlanMode::Default)?;
        Ok(conn)
    }

    /// A pooled connection in whatever plan mode its last use left; the caller sets the mode
    /// each statement needs ([`crate::Session`]).
    pub(crate) fn conn_any_plan_mode(&self) -> Result<Conn, StoreError> {
        self.checked_out()
    }

    /// A pooled connection known to be alive: one checked in the last [`CHECK_AFTER`], with no
    /// connection lost since, is taken as it is; any other is pinged, and replaced in place by
    /// a new one when the ping fails (r2d2 cannot be told to drop it).
    fn checked_out(&self) -> Result<Conn, StoreError> {
        use diesel::connection::SimpleConnection;
        use diesel::r2d2::ManageConnection;
        let mut conn = self.pool.get()?;
        let lost = LOST.load(Ordering::Relaxed);
        let fresh = Conn::extensions(&conn)
            .get::<Checked>()
            .is_some_and(|c| c.lost == lost && c.at.elapsed() < CHECK_AFTER);
        if fresh {
            return Ok(conn);
        }
        if conn.batch_execute("SELECT 1").is_err() {
            let mut replacement =
                ConnectionManager::<PgConnection>::new(loopback_without_tls(&self.url))
                    .connect()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            self.setup
                .on_acquire(&mut replacement)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            *conn = replacement;
            // What was known of the old session (its backend, its plan mode) is gone with it.
            Conn::extensions_mut(&mut conn).clear();
        }
        Conn::extensions_mut(&mut conn).insert(Checked {
            at: Instant::now(),
            lost,
        });
        Ok(conn)
    }

    /// Applies pending migrations; returns how many were applied.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        // Two servers starting together must not both run the same migration.
        diesel::sql_query("SELECT pg_advisory_lock(7231001)").execute(&mut conn)?;
        let result = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| StoreError::Migration(e.to_string()));
        diesel::sql_query("SELECT pg_advisory_unlock(7231001)").execute(&mut conn)?;
        result
    }

    /// True when the database answers and no migration is pending.
    pub fn ready(&self) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        diesel::sql_query("SELECT 1").execute(&mut conn)?;
        let pending = conn
            .has_pending_migration(MIGRATIONS)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(!pending)
    }
}

/// The URL with `sslmode=disable` added when it names a loopback host and no `sslmode`: TLS on a
/// connection that never leaves the machine protects nothing and cost about a sixth of the
/// server's CPU in the benchmarks (libpq's default `prefer` negotiates it whenever the server
/// offers it). An explicit `sslmode` is always kept.
pub(crate) fn loopback_without_tls(url: &str) -> String {
    if url.contains("sslmode=") {
        return url.to_string();
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if matches!(host, "127.0.0.1" | "localhost" | "::1") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode=disable")
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_without_tls as f;

    #[test]
    fn tls_is_dropped_only_for_loopback_without_an_explicit_sslmode() {
        assert_eq!(
            f("postgres://postgres@127.0.0.1:5432/db"),
            "postgres://postgres@127.0.0.1:5432/db?sslmode=disable"
        );
        assert_eq!(
            f("postgres://u:p@localhost/db?application_name=x"),
            "postgres://u:p@localhost/db?application_name=x&sslmode=disable"
        );
        assert_eq!(
            f("postgres://[::1]:5432/db"),
            "postgres://[::1]:5432/db?sslmode=disable"
        );
        assert_eq!(
            f("postgres://db.example.org/db"),
            "postgres://db.example.org/db"
        );
        assert_eq!(
            f("postgres://127.0.0.1/db?sslmode=require"),
            "postgres://127.0.0.1/db?sslmode=require"
        );
    }
}
