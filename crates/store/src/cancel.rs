//! Cancelling a request's running statement when the request is gone. actix drops a handler's
//! future when its client disconnects, but the blocking thread running the statement goes on,
//! holding a pooled connection and a database core until the statement ends by itself. The
//! handler holds a [`CancelGuard`]; the thread runs its statements through a [`Session`] that
//! marks which backend is busy; dropping the guard early asks PostgreSQL to cancel that
//! backend's statement (`pg_cancel_backend`) over a connection of its own.

use std::sync::{Arc, Mutex, MutexGuard};

use diesel::pg::PgConnection;
use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl};

use crate::error::StoreError;
use crate::history::{history_on, HistoryPage, HistoryQuery};
use crate::include::{include_on, IncludeSpec};
use crate::plan_mode::{self, PlanMode};
use crate::pool::{Conn, Store};
use crate::query::{query_resources_on, FoundResource, ResourcePage, ResourceQuery};
use crate::Access;

/// What the request's work is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between statements (or not started).
    Idle,
    /// Running statements on this backend.
    Running(i32),
    /// The request is gone: no further statement may start.
    Cancelled,
}

/// The request's side of a cancellation, shared with the thread doing its work.
#[derive(Debug, Clone)]
pub struct CancelToken(Arc<Mutex<State>>);

impl CancelToken {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a valid state behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Cancels the statement its token's work is running when dropped before [`CancelGuard::disarm`].
pub struct CancelGuard {
    token: CancelToken,
    store: Store,
    armed: bool,
}

impl CancelGuard {
    /// The token to hand to the thread that runs the statements.
    pub fn token(&self) -> CancelToken {
        self.token.clone()
    }

    /// The work finished: nothing is left to cancel.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.token.lock();
        match *state {
            State::Idle => *state = State::Cancelled,
            State::Cancelled => {}
            State::Running(_) => {
                drop(state);
                // Dropped on an executor thread, which must not wait on the database.
                let (token, store) = (self.token.clone(), self.store.clone());
                std::thread::spawn(move || {
                    // The lock is held while the cancel is sent, so the worker cannot hand its
                    // connection back (and another request start on that backend) meanwhile;
                    // a cancel that reaches a backend already idle is ignored by PostgreSQL.
                    let mut state = token.lock();
                    if let State::Running(pid) = *state {
                        if let Err(e) = store.cancel_backend(pid) {
                            tracing::warn!(error = %e, pid, "could not cancel an abandoned statement");
                        }
                    }
                    *state = State::Cancelled;
                });
            }
        }
    }
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Cancelled {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    cancelled: bool,
}

/// A connection's backend process id, read once per connection.
#[derive(Debug, Clone, Copy)]
struct BackendPid(i32);

/// One pooled connection held for a request, whose statements its guard can cancel.
pub struct Session {
    conn: Conn,
    pid: i32,
    token: CancelToken,
}

impl Store {
    /// A guard for a request's statements (see [`Store::session`]).
    pub fn cancel_guard(&self) -> CancelGuard {
        CancelGuard {
            token: CancelToken(Arc::new(Mutex::new(State::Idle))),
            store: self.clone(),
            armed: true,
        }
    }

    /// A connection whose statements run under `token`.
    pub fn session(&self, token: &CancelToken) -> Result<Session, StoreError> {
        let mut conn = self.conn_any_plan_mode()?;
        let known = Conn::extensions(&conn).get::<BackendPid>().copied();
        let pid = match known {
            Some(BackendPid(pid)) => pid,
            None => {
                let rows: Vec<Pid> =
                    diesel::sql_query("SELECT pg_backend_pid() AS pid").load(&mut *conn)?;
                let pid = rows.first().map(|r| r.pid).unwrap_or_default();
                Conn::extensions_mut(&mut conn).insert(BackendPid(pid));
                pid
            }
        };
        Ok(Session {
            conn,
            pid,
            token: token.clone(),
        })
    }

    /// Asks PostgreSQL to cancel the statement backend `pid` is running.
    fn cancel_backend(&self, pid: i32) -> Result<bool, StoreError> {
        // Its own small pool: when the cancel is needed most, abandoned statements may hold
        // every connection of the main one.
        let mut conn = self.canceller.get()?;
        let rows: Vec<Cancelled> =
            diesel::sql_query(format!("SELECT pg_cancel_backend({pid}) AS cancelled"))
                .load(&mut *conn)?;
        Ok(rows.first().is_some_and(|r| r.cancelled))
    }
}

impl Session {
    /// Runs `f` on the connection in plan mode `mode`, marked as running so that the guard
    /// can cancel it.
    fn run_in<T>(
        &mut self,
        mode: PlanMode,
        f: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        {
            let mut state = self.token.lock();
            if *state == State::Cancelled {
                return Err(StoreError::Timeout("the request was abandoned".into()));
            }
            *state = State::Running(self.pid);
        }
        let out = plan_mode::ensure(&mut self.conn, mode).and_then(|()| f(&mut self.conn));
        let mut state = self.token.lock();
        if *state == State::Running(self.pid) {
            *state = State::Idle;
        }
        out
    }

    /// [`Store::query_resources`] under the session's token.
    pub fn query_resources(&mut self, q: &ResourceQuery) -> Result<ResourcePage, StoreError> {
        let mode = if q.generic_plan() {
            PlanMode::Generic
        } else {
            PlanMode::Default
        };
        self.run_in(mode, |conn| query_resources_on(conn, q))
    }

    /// [`Store::history`] under the session's token.
    pub fn history(&mut self, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.run_in(PlanMode::Default, |conn| history_on(conn, q))
    }

    /// [`Store::include`] under the session's token.
    pub fn include(
        &mut self,
        specs: &[IncludeSpec],
        matches: &[FoundResource],
        limit: usize,
        access: Option<&Access>,
    ) -> Result<(Vec<FoundResource>, bool), StoreError> {
        // Include statements start from the page's rows whatever the values (`include`).
        let mode = if crate::shapes::generic_plans_allowed() {
            PlanMode::Generic
        } else {
            PlanMode::Default
        };
        self.run_in(mode, |conn| include_on(conn, specs, matches, limit, access))
    }
}
