//! The authorization code flow's tables: requests in progress, sessions, codes, EHR launch
//! contexts and refresh-token families. Every secret a browser or client holds is looked up by
//! its hash (the caller hashes); every "use once" is one conditional `UPDATE … RETURNING`, so two
//! processes racing for the same code or launch cannot both win.

use diesel::sql_types::{Array, Bool, Nullable, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};

use crate::error::StoreError;
use crate::pool::Store;
use crate::sql::{query, Bind};

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    data: String,
}

/// An authorization request as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct StoredRequest {
    /// The client's parameters (JSON).
    #[diesel(sql_type = Text)]
    pub params: String,
    /// The upstream sign-in's state, nonce and verifier (JSON), once started.
    #[diesel(sql_type = Nullable<Text>)]
    pub upstream: Option<String>,
}

/// The outcome of spending a single-use value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent {
    /// It was unused and unexpired; here is what it holds (JSON), now used.
    Fresh(String),
    /// It was used before: what it holds, and what was issued from it.
    Reused {
        /// The JSON it holds.
        data: String,
        /// `jti`s of access tokens issued from it.
        issued: Vec<String>,
        /// The refresh-token family it started, if any.
        family: Option<String>,
    },
    /// Expired or unknown.
    Unknown,
}

#[derive(QueryableByName)]
struct SpendRow {
    #[diesel(sql_type = Text)]
    data: String,
    #[diesel(sql_type = Bool)]
    fresh: bool,
    #[diesel(sql_type = Bool)]
    live: bool,
    #[diesel(sql_type = Array<Text>)]
    issued: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    family: Option<String>,
}

/// A refresh token's family, as found by the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// A live token, now spent: its family and the grant it carries (JSON).
    Fresh {
        /// Family id.
        family: String,
        /// The grant (JSON).
        grant: String,
        /// The client it was issued to.
        client_id: String,
    },
    /// A spent token used again: its family is now revoked; these access tokens were issued
    /// from it (revoke them too).
    Reused {
        /// Family id.
        family: String,
        /// The client it was issued to.
        client_id: String,
        /// `jti`s and `exp`s of access tokens the family issued.
        issued: Vec<String>,
    },
    /// Unknown, expired or revoked.
    Unknown,
}

#[derive(QueryableByName)]
struct RefreshRow {
    #[diesel(sql_type = Text)]
    family: String,
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = Text)]
    grant_data: String,
    #[diesel(sql_type = Bool)]
    spent: bool,
    #[diesel(sql_type = Bool)]
    live: bool,
    #[diesel(sql_type = Array<Text>)]
    issued: Vec<String>,
}

impl Store {
    /// Stores an authorization request for `ttl_secs`.
    pub fn put_auth_request(
        &self,
        id: &str,
        params: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "INSERT INTO auth_request (id, params, expires_at) \
             VALUES ($1, $2::jsonb, now() + make_interval(secs => $3))",
            &[
                Bind::Text(id.into()),
                Bind::Text(params.into()),
                Bind::BigInt(ttl_secs),
            ],
        )
        .execute(&mut conn)?;
        Ok(())
    }

    /// A live authorization request.
    pub fn auth_request(&self, id: &str) -> Result<Option<StoredRequest>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<StoredRequest> = query(
            "SELECT params::text AS params, upstream::text AS upstream FROM auth_request \
             WHERE id = $1 AND expires_at > now()",
            &[Bind::Text(id.into())],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next())
    }

    /// Replaces the parameters of a live authorization request.
    pub fn set_auth_request_params(&self, id: &str, params: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = query(
            "UPDATE auth_request SET params = $2::jsonb WHERE id = $1 AND expires_at > now()",
            &[Bind::Text(id.into()), Bind::Text(params.into())],
        )
        .execute(&mut conn)?;
        Ok(n > 0)
    }

    /// Records what an upstream sign-in for the request needs to finish.
    pub fn set_auth_request_upstream(&self, id: &str, upstream: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n = query(
            "UPDATE auth_request SET upstream = $2::jsonb WHERE id = $1 AND expires_at > now()",
            &[Bind::Text(id.into()), Bind::Text(upstream.into())],
        )
        .execute(&mut conn)?;
        Ok(n > 0)
    }

    /// Deletes an authorization request (answered or abandoned).
    pub fn delete_auth_request(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "DELETE FROM auth_request WHERE id = $1",
            &[Bind::Text(id.into())],
        )
        .execute(&mut conn)?;
        Ok(())
    }

    /// Stores a session (the person as JSON) under the hash of its id.
    pub fn put_session(
        &self,
        id_hash: &str,
        person: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "INSERT INTO auth_session (id_hash, person, expires_at) \
             VALUES ($1, $2::jsonb, now() + make_interval(secs => $3))",
            &[
                Bind::Text(id_hash.into()),
                Bind::Text(person.into()),
                Bind::BigInt(ttl_secs),
            ],
        )
        .execute(&mut conn)?;
        Ok(())
    }

    /// The person of a live session.
    pub fn signed_in(&self, id_hash: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<JsonRow> = query(
            "SELECT person::text AS data FROM auth_session WHERE id_hash = $1 AND expires_at > now()",
            &[Bind::Text(id_hash.into())],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next().map(|r| r.data))
    }

    /// Ends a session.
    pub fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "DELETE FROM auth_session WHERE id_hash = $1",
            &[Bind::Text(id_hash.into())],
        )
        .execute(&mut conn)?;
        Ok(())
    }

    /// Stores an authorization code's grant for `ttl_secs`.
    pub fn put_code(&self, code_hash: &str, grant: &str, ttl_secs: i64) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "INSERT INTO auth_code (code_hash, grant_data, expires_at) \
             VALUES ($1, $2::jsonb, now() + make_interval(secs => $3))",
            &[
                Bind::Text(code_hash.into()),
                Bind::Text(grant.into()),
                Bind::BigInt(ttl_secs),
            ],
        )
        .execute(&mut conn)?;
        Ok(())
    }

    /// Spends an authorization code.
    pub fn spend_code(&self, code_hash: &str) -> Result<Spent, StoreError> {
        self.spend(
            "UPDATE auth_code c SET used_at = COALESCE(c.used_at, now()) \
             FROM (SELECT code_hash, used_at IS NULL AS fresh FROM auth_code \
                   WHERE code_hash = $1 FOR UPDATE) old \
             WHERE c.code_hash = old.code_hash \
             RETURNING c.grant_data::text AS data, old.fresh, c.expires_at > now() AS live, \
                       c.issued_jtis AS issued, c.family_id::text AS family",
            code_hash,
        )
    }

    /// Notes what a code issued (so a second use can revoke it).
    pub fn code_issued(
        &self,
        code_hash: &str,
        jti: &str,
        family: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "UPDATE auth_code SET issued_jtis = array_append(issued_jtis, $2), \
             family_id = COALESCE($3::uuid, family_id) WHERE code_hash = $1",
            &[
                Bind::Text(code_hash.into()),
                Bind::Text(jti.into()),
                Bind::OptText(family.map(str::to_string)),
            ],
        )
        .execute(&mut conn)?;
        Ok(())
    }

    /// Stores an EHR launch context for `ttl_secs`.
    pub fn put_launch(
        &self,
        launch_hash: &str,
        created_by: &str,
        context: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        query(
            "INSERT INTO auth_launch (launch_hash, created_by, context, expires_at) \
             VALUES ($1, $2, $3::jsonb, now() + make_interval(secs => $4))",
            &[
                Bind::Text(launch_hash.into()),
                Bind::Text(created_by.into()),
                Bind::Text(context.into()),
                Bind::BigInt(ttl_secs),
            ],
        )
        .execute(&mut conn)?;
        Ok(())
    }

    /// A live, unused launch context (JSON), without spending it.
    pub fn launch(&self, launch_hash: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<JsonRow> = query(
            "SELECT context::text AS data FROM auth_launch \
             WHERE launch_hash = $1 AND used_at IS NULL AND expires_at > now()",
            &[Bind::Text(launch_hash.into())],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next().map(|r| r.data))
    }

    /// Spends a launch context.
    pub fn spend_launch(&self, launch_hash: &str) -> Result<Spent, StoreError> {
        self.spend(
            "UPDATE auth_launch l SET used_at = COALESCE(l.used_at, now()) \
             FROM (SELECT launch_hash, used_at IS NULL AS fresh FROM auth_launch \
                   WHERE launch_hash = $1 FOR UPDATE) old \
             WHERE l.launch_hash = old.launch_hash \
             RETURNING l.context::text AS data, old.fresh, l.expires_at > now() AS live, \
                       '{}'::text[] AS issued, NULL::text AS family",
            launch_hash,
        )
    }

    fn spend(&self, sql: &str, key: &str) -> Result<Spent, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<SpendRow> = query(sql, &[Bind::Text(key.into())]).load(&mut conn)?;
        Ok(match rows.into_iter().next() {
            Some(r) if r.fresh && r.live => Spent::Fresh(r.data),
            Some(r) if !r.fresh => Spent::Reused {
                data: r.data,
                issued: r.issued,
                family: r.family,
            },
            _ => Spent::Unknown,
        })
    }

    /// Starts a refresh-token family with its first token; returns the family id.
    pub fn start_refresh_family(
        &self,
        client_id: &str,
        grant: &str,
        ttl_secs: i64,
        token_hash: &str,
        first_jti: &str,
    ) -> Result<String, StoreError> {
        let mut conn = self.conn()?;
        let family = uuid::Uuid::new_v4().to_string();
        conn.transaction(|conn| {
            query(
                "INSERT INTO auth_refresh_family (id, client_id, grant_data, expires_at, issued_jtis) \
                 VALUES ($1::uuid, $2, $3::jsonb, now() + make_interval(secs => $4), ARRAY[$5])",
                &[
                    Bind::Text(family.clone()),
                    Bind::Text(client_id.into()),
                    Bind::Text(grant.into()),
                    Bind::BigInt(ttl_secs),
                    Bind::Text(first_jti.into()),
                ],
            )
            .execute(conn)?;
            query(
                "INSERT INTO auth_refresh_token (token_hash, family_id) VALUES ($1, $2::uuid)",
                &[Bind::Text(token_hash.into()), Bind::Text(family.clone())],
            )
            .execute(conn)?;
            Ok::<_, StoreError>(())
        })?;
        Ok(family)
    }

    /// Spends a refresh token. A spent token used again revokes its family.
    pub fn spend_refresh(&self, token_hash: &str) -> Result<Refresh, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let rows: Vec<RefreshRow> = query(
                "SELECT f.id::text AS family, f.client_id, f.grant_data::text AS grant_data, \
                        t.used_at IS NOT NULL AS spent, \
                        (f.revoked_at IS NULL AND f.expires_at > now()) AS live, \
                        f.issued_jtis AS issued \
                 FROM auth_refresh_token t JOIN auth_refresh_family f ON f.id = t.family_id \
                 WHERE t.token_hash = $1 FOR UPDATE OF t, f",
                &[Bind::Text(token_hash.into())],
            )
            .load(conn)?;
            let Some(row) = rows.into_iter().next() else {
                return Ok(Refresh::Unknown);
            };
            if row.spent {
                query(
                    "UPDATE auth_refresh_family SET revoked_at = COALESCE(revoked_at, now()) \
                     WHERE id = $1::uuid",
                    &[Bind::Text(row.family.clone())],
                )
                .execute(conn)?;
                return Ok(Refresh::Reused {
                    family: row.family,
                    client_id: row.client_id,
                    issued: row.issued,
                });
            }
            if !row.live {
                return Ok(Refresh::Unknown);
            }
            query(
                "UPDATE auth_refresh_token SET used_at = now() WHERE token_hash = $1",
                &[Bind::Text(token_hash.into())],
            )
            .execute(conn)?;
            Ok(Refresh::Fresh {
                family: row.family,
                grant: row.grant_data,
                client_id: row.client_id,
            })
        })
    }

    /// Adds the next refresh token of a family and the access token issued with it.
    pub fn continue_refresh_family(
        &self,
        family: &str,
        token_hash: &str,
        jti: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            query(
                "INSERT INTO auth_refresh_token (token_hash, family_id) VALUES ($1, $2::uuid)",
                &[Bind::Text(token_hash.into()), Bind::Text(family.into())],
            )
            .execute(conn)?;
            query(
                "UPDATE auth_refresh_family SET issued_jtis = array_append(issued_jtis, $2) \
                 WHERE id = $1::uuid",
                &[Bind::Text(family.into()), Bind::Text(jti.into())],
            )
            .execute(conn)?;
            Ok(())
        })
    }

    /// Revokes a refresh-token family (only when it is `client`'s, if one is named); returns its
    /// client and the access tokens it issued, if it was revoked.
    pub fn revoke_refresh_family(
        &self,
        family: &str,
        client: Option<&str>,
    ) -> Result<Option<(String, Vec<String>)>, StoreError> {
        let mut conn = self.conn()?;
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            client_id: String,
            #[diesel(sql_type = Array<Text>)]
            issued: Vec<String>,
        }
        let rows: Vec<Row> = query(
            "UPDATE auth_refresh_family SET revoked_at = COALESCE(revoked_at, now()) \
             WHERE id = $1::uuid AND ($2::text IS NULL OR client_id = $2) \
             RETURNING client_id, issued_jtis AS issued",
            &[
                Bind::Text(family.into()),
                Bind::OptText(client.map(str::to_string)),
            ],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next().map(|r| (r.client_id, r.issued)))
    }

    /// The family of a refresh token (spent or not).
    pub fn refresh_family_of(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<JsonRow> = query(
            "SELECT family_id::text AS data FROM auth_refresh_token WHERE token_hash = $1",
            &[Bind::Text(token_hash.into())],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next().map(|r| r.data))
    }

    /// The Patient id recorded for an NHS number (`person_identity`), if any.
    pub fn patient_for_nhs_number(&self, nhs_number: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        let rows: Vec<JsonRow> = query(
            "SELECT patient_id AS data FROM person_identity WHERE nhs_number = $1",
            &[Bind::Text(nhs_number.into())],
        )
        .load(&mut conn)?;
        Ok(rows.into_iter().next().map(|r| r.data))
    }
}
