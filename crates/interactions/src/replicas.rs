//! Read replicas: reads and searches go to PostgreSQL streaming standbys, writes and everything
//! inside a transaction to the primary.
//!
//! Two rules keep what a client sees consistent with what it did:
//! - **read your writes**: a client that wrote (or claimed a relationship, or broke glass) is
//!   served by the primary for `window` after it, so its next reads see its writes;
//! - **bounded staleness**: a standby serves only while it has replayed everything the primary
//!   had written `window / 2` before (checked every [`TICK`]), so once a client's window ends
//!   every standby in use already holds its writes. A standby that falls behind, stops, or is
//!   promoted is left out until it catches up; with none fresh, reads go to the primary.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::Store;

/// How often the standbys' positions are checked.
pub const TICK: Duration = Duration::from_millis(250);

/// One standby and whether it is recent enough to serve.
struct Standby {
    store: Store,
    fresh: AtomicBool,
}

/// The standbys and the clients that wrote recently.
pub struct Replicas {
    standbys: Vec<Standby>,
    next: AtomicUsize,
    window: Duration,
    writers: Mutex<HashMap<String, Instant>>,
}

impl Replicas {
    /// Standbys reached through `stores`; `window` is how long a writer stays on the primary.
    pub fn new(stores: Vec<Store>, window: Duration) -> Arc<Replicas> {
        Arc::new(Replicas {
            standbys: stores
                .into_iter()
                .map(|store| Standby {
                    store,
                    fresh: AtomicBool::new(false),
                })
                .collect(),
            next: AtomicUsize::new(0),
            window,
            writers: Mutex::new(HashMap::new()),
        })
    }

    /// The standby to read from for the client `key`, or `None` for the primary (the client
    /// wrote within the window, or no standby is fresh).
    pub fn pick(&self, key: &str) -> Option<Store> {
        {
            let writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
            if writers
                .get(key)
                .is_some_and(|at| at.elapsed() < self.window)
            {
                return None;
            }
        }
        let n = self.standbys.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.standbys[(start + i) % n])
            .find(|s| s.fresh.load(Ordering::Relaxed))
            .map(|s| s.store.clone())
    }

    /// Notes that the client `key` wrote: its reads go to the primary for the window.
    pub fn wrote(&self, key: &str) {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.insert(key.to_string(), Instant::now());
    }

    /// Checks the standbys against the primary every [`TICK`], on a thread of its own, for
    /// as long as the process runs.
    pub fn watch(self: &Arc<Self>, primary: Store) {
        let me = self.clone();
        std::thread::Builder::new()
            .name("replica-watch".into())
            .spawn(move || {
                let mut samples: VecDeque<(Instant, String)> = VecDeque::new();
                loop {
                    me.check(&primary, &mut samples);
                    std::thread::sleep(TICK);
                }
            })
            .expect("the replica watch thread starts");
    }

    /// One check: sample the primary's position, mark each standby fresh when it has replayed
    /// the newest sample at least half a window old, forget writers whose window has passed.
    fn check(&self, primary: &Store, samples: &mut VecDeque<(Instant, String)>) {
        match primary.wal_position() {
            Ok(lsn) => samples.push_back((Instant::now(), lsn)),
            Err(e) => tracing::warn!(error = %e, "the primary's WAL position could not be read"),
        }
        let half = self.window / 2;
        // Keep one sample at least half a window old (the target) and the newer ones.
        while samples.len() > 1 && samples[1].0.elapsed() >= half {
            samples.pop_front();
        }
        let target = samples
            .front()
            .filter(|(at, _)| at.elapsed() >= half)
            .map(|(_, lsn)| lsn.clone());
        for s in &self.standbys {
            let fresh = match &target {
                Some(lsn) => s.store.replayed(lsn).unwrap_or(false),
                None => false,
            };
            if s.fresh.swap(fresh, Ordering::Relaxed) != fresh {
                tracing::info!(fresh, "a read replica changed state");
            }
        }
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.retain(|_, at| at.elapsed() < self.window);
    }
}
