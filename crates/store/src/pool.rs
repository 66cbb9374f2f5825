//! The connection pool, migrations and readiness checks.

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::StoreError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Settings applied to every pooled connection when it is opened.
#[derive(Debug)]
struct SessionSettings;

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        // Search statements have the same shape with very different values; a cached generic
        // plan for them was measured 22x slower than a custom one, so never use generic plans.
        diesel::sql_query("SET plan_cache_mode = force_custom_plan")
            .execute(conn)
            .map(|_| ())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A `postgres://` URL.
    pub database_url: String,
    /// Maximum pooled connections.
    pub pool_size: u32,
    /// How long a request may wait for a connection before it fails with 503.
    pub connect_timeout: Duration,
}

/// A handle on the database; cheap to clone. All methods block: call them off the async executor.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool<ConnectionManager<PgConnection>>,
}

pub(crate) type Conn = PooledConnection<ConnectionManager<PgConnection>>;

impl Store {
    /// Builds the pool and checks that one connection can be made.
    pub fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        let manager = ConnectionManager::<PgConnection>::new(&config.database_url);
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .connection_customizer(Box::new(SessionSettings))
            .min_idle(Some(1))
            .connection_timeout(config.connect_timeout)
            .build(manager)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Store { pool })
    }

    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        Ok(self.pool.get()?)
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
