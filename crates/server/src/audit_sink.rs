//! Where AuditEvents go: writer threads that each store whatever has queued up in a single
//! transaction (group commit) and tell each waiting request when its records are durable.
//! Under load many requests share one commit; a request never answers before its records
//! are stored. A stored event is searchable at once: nothing is deferred (see
//! `store::audit_rows`).

use std::sync::{mpsc, Arc, Mutex};

use authz::audit::IndexedEvent;
use serde_json::Value;
use store::Store;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Most events committed in one transaction.
const MAX_BATCH: usize = 2000;
/// Writer threads, each with a connection of its own: while one batch waits for its commit
/// (the WAL flush dominates), the next is gathered and sent. More writers make smaller batches
/// and as many flushes; measured with `make bench-auth`.
const WRITERS: usize = 2;

type Job = (Vec<store::AuditRow>, oneshot::Sender<Result<(), String>>);

/// A handle to the audit writers (cheap to clone).
#[derive(Clone)]
pub struct AuditSink {
    tx: Option<mpsc::Sender<Job>>,
}

impl AuditSink {
    /// Starts the writer threads; `enabled: false` makes a sink that drops everything
    /// (`INVICTA_AUDIT=off`, for measuring what auditing costs).
    pub fn start(store: Store, enabled: bool) -> AuditSink {
        if !enabled {
            return AuditSink { tx: None };
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..WRITERS {
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

    /// Stores events whose search index entries their builder made, and waits until they
    /// are committed (the request path's records: cheaper than [`AuditSink::record`]).
    pub async fn record_indexed(&self, events: Vec<IndexedEvent>) -> Result<(), ApiError> {
        if self.tx.is_none() {
            return Ok(());
        }
        let rows = events
            .into_iter()
            .map(|e| store::AuditRow::indexed(e.body, &e.entries))
            .collect();
        self.store(rows).await
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use authz::audit::AuditRecord;
    use authz::principal::Principal;
    use fhir_model::{AuditAction, RestInteraction};
    use store::audit_keys::keys_of;

    fn principal(fhir_user: Option<&str>, extras: bool) -> Arc<Principal> {
        Arc::new(Principal {
            subject: "user-1".into(),
            role: "gp".into(),
            org: extras.then(|| "G82984".into()),
            client_id: extras.then(|| "viewer".into()),
            jti: extras.then(|| "jti-1".into()),
            patient: None,
            fhir_user: fhir_user.map(str::to_string),
            name: extras.then(|| "Dr Á Jones".into()),
            scopes: vec![],
            purpose_of_use: None,
            break_glass_reason: None,
        })
    }

    /// Every shape of record the request path writes: with and without a caller, a FHIR user
    /// (a practitioner, a patient, an absolute URL), patients, resources, a query, a failure,
    /// break-glass and the sensitive flag.
    fn records() -> Vec<AuditRecord> {
        let base = AuditRecord {
            interaction: RestInteraction::Read,
            action: AuditAction::Read,
            status: 200,
            request_id: "req-1".into(),
            recorded: "2026-12-04T10:00:00.123Z".into(),
            ..AuditRecord::default()
        };
        let mut out = vec![
            base.clone(),
            AuditRecord {
                status: 401,
                outcome_desc: Some("no token".into()),
                address: Some("10.0.0.7".into()),
                ..base.clone()
            },
        ];
        for (user, extras) in [
            (None, false),
            (Some("Practitioner/pr-1"), true),
            (Some("Patient/p-9"), false),
            (
                Some("https://fhir.example.org/fhir/Practitioner/pr-2"),
                true,
            ),
        ] {
            out.push(AuditRecord {
                principal: Some(principal(user, extras)),
                resource: Some("Observation/obs-1/_history/3".into()),
                patients: vec!["p-1".into()],
                address: extras.then(|| "127.0.0.1".into()),
                ..base.clone()
            });
            out.push(AuditRecord {
                principal: Some(principal(user, extras)),
                interaction: RestInteraction::SearchType,
                action: AuditAction::Execute,
                query: Some("Observation?subject=p-1&code=x".into()),
                patients: vec!["p-1".into(), "p-2".into()],
                purpose: Some("BTG".into()),
                review_reason: Some("collapsed in clinic".into()),
                sensitive: true,
                status: 500,
                ..base.clone()
            });
            out.push(AuditRecord {
                principal: Some(principal(user, extras)),
                interaction: RestInteraction::Transaction,
                action: AuditAction::Update,
                resource: Some("Patient/p-1/_history/2".into()),
                more_resources: vec!["Condition/c-1/_history/1".into()],
                status: 403,
                ..base.clone()
            });
        }
        out
    }

    #[test]
    fn index_entries_from_the_facts_give_the_keys_the_event_gives() {
        let mut compared = 0;
        for record in records() {
            for e in record.indexed_events() {
                let from_json = keys_of(&fhir_model::index::extract(&e.body));
                let from_facts = keys_of(&e.entries);
                assert_eq!(from_facts, from_json, "{}", e.body);
                assert!(from_facts.1.is_some(), "the date is indexed: {}", e.body);
                compared += 1;
            }
        }
        assert!(compared > 10);
    }
}
