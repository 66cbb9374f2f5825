//! What the store's database tests share: a database of each test's own.

use diesel::{Connection, PgConnection, RunQueryDsl};

/// The PostgreSQL the tests use (`INVICTA_TEST_ADMIN_URL`).
pub fn admin_url() -> String {
    std::env::var("INVICTA_TEST_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database of the test's own, dropped (with its connections) when the value goes.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn create(tag: &str) -> TestDb {
        let admin = admin_url();
        let name = format!("invicta_store_{tag}_{}", std::process::id());
        let mut conn = PgConnection::establish(&admin).expect("the test PostgreSQL answers");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .expect("drop a stale test database");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create the test database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        TestDb {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}
