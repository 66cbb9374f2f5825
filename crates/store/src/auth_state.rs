//! The authorization server's tables: signing keys, registered clients, used client-assertion
//! ids and revoked tokens, and the `invicta_auth` notification channel that tells every server
//! process sharing the database about a new key or a revoked token.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::{Connection, QueryableByName, RunQueryDsl};

use crate::error::StoreError;
use crate::pool::{loopback_without_tls, Store};
use crate::sql::{query, Bind};

/// The channel the server processes listen on. Payloads: `keys` (the key set changed),
/// `revoked:<jti>:<exp>` (a token was revoked).
pub const AUTH_CHANNEL: &str = "invicta_auth";

/// One of the server's signing keys as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct StoredKey {
    /// Key id (the JWK thumbprint).
    #[diesel(sql_type = Text)]
    pub kid: String,
    /// JWS algorithm, e.g. `ES256`.
    #[diesel(sql_type = Text)]
    pub alg: String,
    /// PKCS#8 PEM of the private key.
    #[diesel(sql_type = Text)]
    pub private_pem: String,
    /// When it was made.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// When a newer key replaced it.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub retired_at: Option<DateTime<Utc>>,
}

/// A registered OAuth client as stored; `auth_server` gives the columns their meaning.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ClientRecord {
    /// `client_id`.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Name shown on the consent screen.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Hash of the client secret (symmetric clients).
    #[diesel(sql_type = Nullable<Text>)]
    pub secret_hash: Option<String>,
    /// The client's public keys as a JWKS document (asymmetric clients).
    #[diesel(sql_type = Nullable<Text>)]
    pub jwks: Option<String>,
    /// Where the client publishes its JWKS (asymmetric clients).
    #[diesel(sql_type = Nullable<Text>)]
    pub jwks_url: Option<String>,
    /// Redirect URIs, matched exactly.
    #[diesel(sql_type = Array<Text>)]
    pub redirect_uris: Vec<String>,
    /// The most the client may be granted (space-separated scopes).
    #[diesel(sql_type = Text)]
    pub scopes: String,
    /// The app's launch URL (EHR launch).
    #[diesel(sql_type = Nullable<Text>)]
    pub launch_url: Option<String>,
    /// Care-record role of its `client_credentials` tokens.
    #[diesel(sql_type = Nullable<Text>)]
    pub backend_role: Option<String>,
    /// ODS code of the organisation running the client.
    #[diesel(sql_type = Nullable<Text>)]
    pub org: Option<String>,
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = Bool)]
    inserted: bool,
}

#[derive(QueryableByName)]
struct RevokedRow {
    #[diesel(sql_type = Text)]
    jti: String,
    #[diesel(sql_type = BigInt)]
    exp: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const CLIENT_COLUMNS: &str = "id, name, kind, secret_hash, jwks::text AS jwks, jwks_url, \
                              redirect_uris, scopes, launch_url, backend_role, org";

impl Store {
    /// The signing keys in use: every unretired key and those retired less than `grace_secs`
    /// ago, newest first (the first signs).
    pub fn signing_keys(&self, grace_secs: i64) -> Result<Vec<StoredKey>, StoreError> {
        let mut conn = self.conn()?;
        Ok(query(
            "SELECT kid, alg, private_pem, created_at, retired_at FROM auth_signing_key \
             WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1) \
             ORDER BY created_at DESC, kid",
            &[Bind::BigInt(grace_secs)],
        )
        .load(&mut conn)?)
    }

    /// Adds a signing key. With `rotate` it becomes the signing key and every other one is
    /// retired now; without, it is added only when no unretired key exists (the first start),
    /// and the answer says whether it was. Either way every process is notified.
    pub fn add_signing_key(
        &self,
        kid: &str,
        alg: &str,
        private_pem: &str,
        rotate: bool,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            // Two processes starting on an empty table must not both add a first key.
            query("LOCK TABLE auth_signing_key IN EXCLUSIVE MODE", &[]).execute(conn)?;
            if rotate {
                query(
                    "UPDATE auth_signing_key SET retired_at = clock_timestamp() \
                     WHERE retired_at IS NULL",
                    &[],
                )
                .execute(conn)?;
            } else {
                let current: Vec<Count> = query(
                    "SELECT count(*) AS n FROM auth_signing_key WHERE retired_at IS NULL",
                    &[],
                )
                .load(conn)?;
                if current.first().is_some_and(|c| c.n > 0) {
                    return Ok(false);
                }
            }
            query(
                "INSERT INTO auth_signing_key (kid, alg, private_pem) VALUES ($1, $2, $3)",
                &[
                    Bind::Text(kid.into()),
                    Bind::Text(alg.into()),
                    Bind::Text(private_pem.into()),
                ],
            )
            .execute(conn)?;
            notify(conn, "keys")?;
            Ok(true)
        })
    }

    /// Every registered client, by id.
    pub fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut conn = self.conn()?;
        Ok(query(
            &format!("SELECT {CLIENT_COLUMNS} FROM auth_client ORDER BY id"),
            &[],
        )
        .load(&mut conn)?)
    }

    /// One registered client.
    pub fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<ClientRecord> = query(
            &format!("SELECT {CLIENT_COLUMNS} FROM auth_client WHERE id = $1"),
            &[Bind::Text(id.into())],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next())
    }

    /// Registers a client; with `replace` an existing one of that id is overwritten, without
    /// it the answer is false and nothing changes.
    pub fn put_client(&self, c: &ClientRecord, replace: bool) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let on_conflict = if replace {
            "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, \
             secret_hash = EXCLUDED.secret_hash, jwks = EXCLUDED.jwks, \
             jwks_url = EXCLUDED.jwks_url, redirect_uris = EXCLUDED.redirect_uris, \
             scopes = EXCLUDED.scopes, launch_url = EXCLUDED.launch_url, \
             backend_role = EXCLUDED.backend_role, org = EXCLUDED.org"
        } else {
            "ON CONFLICT (id) DO NOTHING"
        };
        let rows: Vec<Inserted> = query(
            &format!(
                "INSERT INTO auth_client (id, name, kind, secret_hash, jwks, jwks_url, \
                 redirect_uris, scopes, launch_url, backend_role, org) \
                 VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11) {on_conflict} \
                 RETURNING true AS inserted"
            ),
            &[
                Bind::Text(c.id.clone()),
                Bind::Text(c.name.clone()),
                Bind::Text(c.kind.clone()),
                Bind::OptText(c.secret_hash.clone()),
                Bind::OptText(c.jwks.clone()),
                Bind::OptText(c.jwks_url.clone()),
                Bind::TextArray(c.redirect_uris.clone()),
                Bind::Text(c.scopes.clone()),
                Bind::OptText(c.launch_url.clone()),
                Bind::OptText(c.backend_role.clone()),
                Bind::OptText(c.org.clone()),
            ],
        )
        .load(&mut conn)?;
        Ok(rows.first().is_some_and(|r| r.inserted))
    }

    /// Removes a client; false when there was none.
    pub fn remove_client(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = query(
            "DELETE FROM auth_client WHERE id = $1",
            &[Bind::Text(id.into())],
        )
        .execute(&mut conn)?;
        Ok(n > 0)
    }

    /// Records a client assertion's `jti` until `exp` (seconds since the epoch); false when it
    /// was already used (a replay).
    pub fn use_assertion_id(
        &self,
        client_id: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<Inserted> = query(
            "INSERT INTO auth_assertion_jti (client_id, jti, expires_at) \
             VALUES ($1, $2, to_timestamp($3)) ON CONFLICT DO NOTHING RETURNING true AS inserted",
            &[
                Bind::Text(client_id.into()),
                Bind::Text(jti.into()),
                Bind::BigInt(exp),
            ],
        )
        .load(&mut conn)?;
        Ok(!rows.is_empty())
    }

    /// Revokes the access token `jti` until its `exp` and notifies every process.
    pub fn revoke_token(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            query(
                "INSERT INTO auth_revoked_token (jti, expires_at) VALUES ($1, to_timestamp($2)) \
                 ON CONFLICT DO NOTHING",
                &[Bind::Text(jti.into()), Bind::BigInt(exp)],
            )
            .execute(conn)?;
            notify(conn, &format!("revoked:{exp}:{jti}"))
        })
    }

    /// Every revoked token that has not expired yet, as (`jti`, `exp`).
    pub fn revoked_tokens(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<RevokedRow> = query(
            "SELECT jti, extract(epoch FROM expires_at)::bigint AS exp FROM auth_revoked_token \
             WHERE expires_at > now()",
            &[],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().map(|r| (r.jti, r.exp)).collect())
    }

    /// Deletes expired authorization state and signing keys retired more than `grace_secs`
    /// ago; returns how many rows went.
    pub fn sweep_auth_state(&self, grace_secs: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let mut n = 0;
        for sql in [
            "DELETE FROM auth_assertion_jti WHERE expires_at < now()",
            "DELETE FROM auth_revoked_token WHERE expires_at < now()",
            "DELETE FROM auth_request WHERE expires_at < now()",
            "DELETE FROM auth_session WHERE expires_at < now()",
            // Spent codes and launches are kept a while after expiry so a late second use is
            // still recognised as a reuse rather than as an unknown value.
            "DELETE FROM auth_code WHERE expires_at < now() - interval '1 hour'",
            "DELETE FROM auth_launch WHERE expires_at < now() - interval '1 hour'",
            "DELETE FROM auth_refresh_family WHERE expires_at < now()",
        ] {
            n += query(sql, &[]).execute(&mut conn)?;
        }
        n += query(
            "DELETE FROM auth_signing_key \
             WHERE retired_at < now() - make_interval(secs => $1)",
            &[Bind::BigInt(grace_secs)],
        )
        .execute(&mut conn)?;
        Ok(n)
    }

    /// A connection of its own (not from the pool) listening on [`AUTH_CHANNEL`].
    pub fn auth_listener(&self) -> Result<Listener, StoreError> {
        let mut conn = PgConnection::establish(&loopback_without_tls(&self.url))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        query(&format!("LISTEN {AUTH_CHANNEL}"), &[]).execute(&mut conn)?;
        Ok(Listener { conn, polls: 0 })
    }
}

/// A connection that receives notifications.
pub struct Listener {
    conn: PgConnection,
    polls: u64,
}

impl Listener {
    /// The notifications that arrived since the last call, without waiting; an error means the
    /// connection is gone and a new listener is needed.
    pub fn poll(&mut self) -> Result<Vec<String>, StoreError> {
        // An idle socket that died says nothing; a round trip finds out.
        if self.polls.is_multiple_of(100) {
            query("SELECT 1", &[]).execute(&mut self.conn)?;
        }
        self.polls = self.polls.wrapping_add(1);
        let mut out = Vec::new();
        for n in self.conn.notifications_iter() {
            out.push(n?.payload);
        }
        Ok(out)
    }
}

/// Sends `payload` on [`AUTH_CHANNEL`] when the surrounding transaction commits.
fn notify(conn: &mut PgConnection, payload: &str) -> Result<(), StoreError> {
    query(
        "SELECT pg_notify($1, $2)",
        &[Bind::Text(AUTH_CHANNEL.into()), Bind::Text(payload.into())],
    )
    .execute(conn)?;
    Ok(())
}
