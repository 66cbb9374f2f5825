//! Where AuditEvents go: writer threads that each store whatever has queued up in a single
//! transaction (group commit) and tell each waiting request when its records are durable.
//! Under load many requests share one commit; a request never answers before its records
//! are stored. A stored event is searchable at once: nothing is deferred (see
//! `store::audit_rows`).

use std::sync::{mpsc, Arc, Mutex};

use serde_json::Value;
use store::Store;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Most events committed in one transaction.
const MAX_BATCH: usize = 2000;

type Job = (Vec<store::AuditRow>, oneshot::Sender<Result<(), String>>);

/// A handle to the audit writers (cheap to clone).
#[derive(Clone)]
pub struct AuditSink {
    tx: Option<mpsc::Sender<Job>>,
}

impl AuditSink {
    /// Starts `writers` writer threads (`INVICTA_AUDIT_WRITERS`), each with a connection of its
    /// own: while one batch waits for its commit (the WAL flush dominates), the next is
    /// gathered and sent. More writers make smaller batches and as many flushes (two is the
    /// default; the README's "Access control and audit overhead" has what one and two measured).
    /// `enabled: false` makes a sink that drops everything (`INVICTA_AUDIT=off`, for measuring
    /// what auditing costs).
    pub fn start(store: Store, enabled: bool, writers: usize) -> AuditSink {
        if !enabled {
            return AuditSink { tx: None };
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..writers.max(1) {
            let (rx, store) = (rx.clone(), store.clone());
            std::thread::Builder::new()
                .name(format!("audit-writer-{n}"))
                .spawn(move || writer(&rx, &store))
                .expect("an audit writer thread starts");
        }
        AuditSink { tx: Some(tx) }
    }

    /// False when auditing is off (`INVICTA_AUDIT=off`).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Stores `events` and waits until they are committed.
    pub async fn record(&self, events: Vec<Value>) -> Result<(), ApiError> {
        if self.tx.is_none() {
            return Ok(());
        }
        // Ids, bodies and search keys are made here, on the request's thread, so a writer
        // only sends rows and waits for the commit.
        let rows = events.into_iter().map(store::AuditRow::new).collect();
        self.store(rows).await
    }

    /// Stores a request's audit rows (`interactions::audit_rows`: narrow rows of facts, much
    /// cheaper than [`AuditSink::record`]'s whole events) and waits until they are committed.
    pub async fn record_rows(&self, rows: Vec<store::AuditRow>) -> Result<(), ApiError> {
        self.store(rows.into_iter().map(Ok).collect()).await
    }

    async fn store(
        &self,
        rows: Vec<Result<store::AuditRow, store::StoreError>>,
    ) -> Result<(), ApiError> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let unavailable = || {
            ApiError::new(
                interactions::ErrorKind::Unavailable,
                "The audit trail could not be written, so the response is withheld",
            )
        };
        let rows = rows
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                tracing::error!(error = %e, "an audit record could not be prepared");
                unavailable()
            })?;
        let (done, wait) = oneshot::channel();
        tx.send((rows, done)).map_err(|_| unavailable())?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(unavailable()),
        }
    }
}

/// One writer: takes whatever has queued up (holding the queue only while taking), commits it
/// as one transaction and answers each waiting request.
fn writer(rx: &Mutex<mpsc::Receiver<Job>>, store: &Store) {
    let mut audit = store.audit_writer();
    loop {
        let jobs = {
            let Ok(rx) = rx.lock() else { return };
            let Ok(first) = rx.recv() else { return };
            let mut count = first.0.len();
            let mut jobs = vec![first];
            while count < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => {
                        count += job.0.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let mut rows = Vec::new();
        let mut waiting = Vec::with_capacity(jobs.len());
        for (r, done) in jobs {
            rows.extend(r);
            waiting.push(done);
        }
        let result = audit.write(rows).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "audit records could not be stored");
        }
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}
