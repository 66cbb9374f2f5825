//! `invicta load PATH...`: loads FHIR transaction or batch Bundles (`.json`) and NDJSON files
//! (`.ndjson`, one resource per line) from disk through the path a transaction Bundle takes
//! over REST: the same validation, conditional and reference handling, indexing, provenance
//! and audit. An NDJSON line with an `id` is stored under that id (an update, so loading a file
//! twice changes nothing); a line without one is created with a new id. Lines are written in
//! transactions of `--chunk` lines by `--writers` threads, each on its own connection, while a
//! reader thread parses and validates what comes next; files are taken one after another.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use store::{Store, WriteContext};

use crate::cli::LoadArgs;
use crate::config::Config;
use interactions::authorize::{audit_hook, SOURCE_CLIENT_PREFIX};
use interactions::transaction::{self, Entry, EntryOutcome, Work};
use interactions::{Error, Settings};

/// A file to load and, when its folder's `load-order.txt` names one, the organisation (ODS
/// code) that sends it in place of `--org`.
type DataFile = (PathBuf, Option<String>);

/// The files under `paths`: a folder gives its `.json` and `.ndjson` files, in the order of its
/// `load-order.txt` when it has one, else by name. In `load-order.txt` a line `[source ODS]`
/// makes the files after it load as sent by that organisation (a sample record fed by several).
fn files(paths: &[PathBuf]) -> Result<Vec<DataFile>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let order = p.join("load-order.txt");
            if order.is_file() {
                let text = std::fs::read_to_string(&order)
                    .map_err(|e| format!("{}: {e}", order.display()))?;
                let mut source = None;
                for (n, line) in text.lines().map(str::trim).enumerate() {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    if let Some(rest) = line.strip_prefix('[') {
                        source = Some(source_directive(rest).ok_or_else(|| {
                            format!(
                                "{}:{}: expected [source ODS-CODE], found {line}",
                                order.display(),
                                n + 1
                            )
                        })?);
                        continue;
                    }
                    out.push((p.join(line), source.clone()));
                }
                continue;
            }
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| is_data_file(f))
                .collect();
            found.sort();
            out.extend(found.into_iter().map(|f| (f, None)));
        } else if p.is_file() {
            out.push((p.clone(), None));
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    Ok(out)
}

/// The ODS code of a `[source ODS]` line (after its `[`).
fn source_directive(rest: &str) -> Option<String> {
    let code = rest.strip_suffix(']')?.strip_prefix("source")?.trim();
    (!code.is_empty() && code.len() <= 16 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| code.to_string())
}

fn is_data_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("json" | "ndjson" | "jsonl")
    )
}

fn is_ndjson(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("ndjson" | "jsonl")
    )
}

/// A unit of work for the writer: entries that commit together (a Bundle, or a chunk of lines).
struct Unit {
    /// Where each entry came from (`file:line` or `file#entry[i]`).
    origins: Vec<String>,
    works: Vec<Work>,
    /// A transaction Bundle: all or nothing. Otherwise a failing entry is reported and the rest
    /// are written.
    atomic: bool,
}

/// Counts for the summary.
#[derive(Default)]
struct Tally {
    files: usize,
    created: u64,
    updated: u64,
    unchanged: u64,
    failed: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.files += other.files;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failed.extend(other.failed);
    }

    fn done(&self) -> u64 {
        self.created + self.updated + self.unchanged
    }

    fn add(&mut self, o: &EntryOutcome) {
        if o.status == 201 {
            self.created += 1;
        } else if o.unchanged {
            self.unchanged += 1;
        } else {
            self.updated += 1;
        }
    }
}

/// Runs `invicta load` with the options `o` (checked by clap before anything connected).
pub fn run(
    config: &Config,
    o: &LoadArgs,
    store: &Store,
    policy: authz::Policy,
) -> Result<(), String> {
    let files = files(&o.paths)?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|(f, _)| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let read_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let policy = Arc::new(policy);
    let principal = Arc::new(authz::Principal {
        subject: "invicta-load".into(),
        role: "feed".into(),
        org: o.org.clone(),
        client_id: Some(o.client.clone()),
        jti: None,
        patient: None,
        fhir_user: None,
        name: Some("invicta load".into()),
        scopes: Vec::new(),
        purpose_of_use: None,
        break_glass_reason: None,
    });
    let record = authz::audit::AuditRecord {
        principal: Some(principal),
        interaction: fhir_model::RestInteraction::Transaction,
        action: fhir_model::AuditAction::Execute,
        request_id: format!("load-{}", uuid::Uuid::new_v4()),
        recorded: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        ..Default::default()
    };
    let ctx = WriteContext {
        org: o.org.clone(),
        source: Some(format!("{SOURCE_CLIENT_PREFIX}{}", o.client)),
        access: None,
        record_source: o.org.is_some(),
        audit: config.audit.then(|| audit_hook(record, policy)),
    };
    let env = crate::state::settings(config);
    let started = Instant::now();
    let (tx, rx) = sync_channel::<Read>(2);
    let reader = {
        let base_url = config.base_url.clone();
        let chunk = o.chunk;
        let ctx = ctx.clone();
        let read_bytes = read_bytes.clone();
        std::thread::spawn(move || read_all(&files, &base_url, chunk, &ctx, &tx, &read_bytes))
    };
    let mut tally = Tally::default();
    let mut progress = Progress::new(total_bytes, read_bytes);
    // Writers take units concurrently, each on a connection of its own; at the end of a file
    // they all finish before the next file starts, so a folder's load order still holds
    // (Organizations before the Patients whose registered practice they are).
    let env = Arc::new(env);
    let (work_tx, work_rx) = sync_channel::<Unit>(o.writers);
    let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Tally>();
    let workers: Vec<_> = (0..o.writers)
        .map(|_| {
            let (store, env, work_rx, done_tx) =
                (store.clone(), env.clone(), work_rx.clone(), done_tx.clone());
            std::thread::spawn(move || loop {
                let unit = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(unit) = unit else { return };
                let mut t = Tally::default();
                write_unit(&store, unit, &env, &mut t);
                if done_tx.send(t).is_err() {
                    return;
                }
            })
        })
        .collect();
    drop(done_tx);
    let mut in_flight = 0usize;
    for unit in rx {
        while let Ok(t) = done_rx.try_recv() {
            in_flight -= 1;
            tally.merge(t);
        }
        match unit {
            Read::Unit(unit) => {
                in_flight += 1;
                if work_tx.send(unit).is_err() {
                    return Err("the writers stopped".into());
                }
            }
            Read::Failed(failure) => tally.failed.push(failure),
            Read::FileDone => {
                // A file is done: wait for its units before the next file's start.
                while in_flight > 0 {
                    let t = done_rx
                        .recv()
                        .map_err(|_| "the writers stopped".to_string())?;
                    in_flight -= 1;
                    tally.merge(t);
                }
                tally.files += 1;
            }
        }
        progress.show(&tally, started);
    }
    drop(work_tx);
    for t in done_rx {
        tally.merge(t);
    }
    for w in workers {
        w.join().map_err(|_| "a writer failed".to_string())?;
    }
    reader
        .join()
        .map_err(|_| "the file reader failed".to_string())?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {} resources from {} files in {:.1} s ({:.0} resources/s): {} created, {} updated, {} unchanged, {} failed",
        tally.done(),
        tally.files,
        secs,
        tally.done() as f64 / secs.max(0.001),
        tally.created,
        tally.updated,
        tally.unchanged,
        tally.failed.len()
    );
    if tally.failed.is_empty() {
        return Ok(());
    }
    eprintln!("failures:");
    for f in tally.failed.iter().take(100) {
        eprintln!("  {f}");
    }
    if tally.failed.len() > 100 {
        eprintln!("  … and {} more", tally.failed.len() - 100);
    }
    Err(format!(
        "{} entries could not be loaded",
        tally.failed.len()
    ))
}

/// What the file reader sends the writers.
enum Read {
    /// Entries to write together.
    Unit(Unit),
    /// A failure outside any unit (a line that could not be read or checked).
    Failed(String),
    /// A file read to its end: its units are all sent.
    FileDone,
}

/// Reads and checks every file, sending units of work, failures, and the end of each file.
fn read_all(
    files: &[DataFile],
    base_url: &str,
    chunk: usize,
    ctx: &WriteContext,
    out: &std::sync::mpsc::SyncSender<Read>,
    read_bytes: &std::sync::atomic::AtomicU64,
) {
    use std::sync::atomic::Ordering::Relaxed;
    for (file, source) in files {
        let ctx = match source {
            Some(org) => WriteContext {
                org: Some(org.clone()),
                record_source: true,
                ..ctx.clone()
            },
            None => ctx.clone(),
        };
        let work = |e: Entry| Work::with_context(e, ctx.clone());
        let name = file.display().to_string();
        if is_ndjson(file) {
            let reader = match std::fs::File::open(file) {
                Ok(f) => std::io::BufReader::new(f),
                Err(e) => {
                    let _ = out.send(Read::Failed(format!("{name}: {e}")));
                    continue;
                }
            };
            let mut unit = Unit {
                origins: Vec::new(),
                works: Vec::new(),
                atomic: false,
            };
            for (n, line) in reader.lines().enumerate() {
                let origin = format!("{name}:{}", n + 1);
                if let Ok(l) = &line {
                    read_bytes.fetch_add(l.len() as u64 + 1, Relaxed);
                }
                let line = match line {
                    Ok(l) if l.trim().is_empty() => continue,
                    Ok(l) => l,
                    Err(e) => {
                        let _ = out.send(Read::Failed(format!("{origin}: {e}")));
                        break;
                    }
                };
                match resource_entry(&line, base_url) {
                    Ok(e) => {
                        unit.origins.push(origin);
                        unit.works.push(work(e));
                    }
                    Err(e) => {
                        let _ = out.send(Read::Failed(format!("{origin}: {}", e.message())));
                    }
                }
                if unit.works.len() >= chunk {
                    let full = std::mem::replace(
                        &mut unit,
                        Unit {
                            origins: Vec::new(),
                            works: Vec::new(),
                            atomic: false,
                        },
                    );
                    if out.send(Read::Unit(full)).is_err() {
                        return;
                    }
                }
            }
            if !unit.works.is_empty() && out.send(Read::Unit(unit)).is_err() {
                return;
            }
        } else {
            let text = match std::fs::read(file) {
                Ok(t) => {
                    read_bytes.fetch_add(t.len() as u64, Relaxed);
                    t
                }
                Err(e) => {
                    let _ = out.send(Read::Failed(format!("{name}: {e}")));
                    continue;
                }
            };
            match json_file(&text, base_url, &name) {
                Ok((origins, entries, atomic)) => {
                    let unit = Unit {
                        origins,
                        works: entries.into_iter().map(work).collect(),
                        atomic,
                    };
                    if out.send(Read::Unit(unit)).is_err() {
                        return;
                    }
                }
                Err(msgs) => {
                    for m in msgs {
                        let _ = out.send(Read::Failed(m));
                    }
                }
            }
        }
        let _ = out.send(Read::FileDone);
    }
}

/// One resource as a Bundle entry: PUT under its id, or POST without one.
fn resource_entry(text: &str, base_url: &str) -> Result<Entry, Error> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("not valid JSON: {e}")))?;
    resource_value_entry(v, base_url)
}

fn resource_value_entry(v: Value, base_url: &str) -> Result<Entry, Error> {
    let t = v["resourceType"].as_str().unwrap_or_default().to_string();
    let request = match v["id"].as_str() {
        Some(id) => json!({"method": "PUT", "url": format!("{t}/{id}")}),
        None => json!({"method": "POST", "url": t}),
    };
    Ok(transaction::parse_entry(
        0,
        &json!({"resource": v, "request": request}),
        base_url,
    )?)
}

/// The entries of a `.json` file: a transaction or batch Bundle, or one resource.
#[allow(clippy::type_complexity)]
fn json_file(
    text: &[u8],
    base_url: &str,
    name: &str,
) -> Result<(Vec<String>, Vec<Entry>, bool), Vec<String>> {
    let v: Value =
        serde_json::from_slice(text).map_err(|e| vec![format!("{name}: not valid JSON: {e}")])?;
    if v["resourceType"] != "Bundle" {
        return resource_value_entry(v, base_url)
            .map(|e| (vec![name.to_string()], vec![e], true))
            .map_err(|e| vec![format!("{name}: {}", e.message())]);
    }
    let atomic = match v["type"].as_str() {
        Some("transaction") => true,
        Some("batch") => false,
        other => {
            return Err(vec![format!(
                "{name}: a Bundle to load must be a transaction or batch, not {other:?}"
            )])
        }
    };
    let mut origins = Vec::new();
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, e) in v["entry"].as_array().into_iter().flatten().enumerate() {
        let origin = format!("{name}#entry[{i}]");
        match transaction::parse_entry(i, e, base_url).map_err(Error::from) {
            Ok(entry) => {
                origins.push(origin);
                entries.push(entry);
            }
            Err(err) => errors.push(format!("{origin}: {}", err.message())),
        }
    }
    if atomic && !errors.is_empty() {
        return Err(errors);
    }
    Ok((origins, entries, atomic))
}

/// Writes a unit: all at once; when a non-atomic unit fails, entry by entry, so one bad line
/// costs only itself.
fn write_unit(store: &Store, mut unit: Unit, env: &Settings, tally: &mut Tally) {
    match transaction::run(store, &mut unit.works, env) {
        Ok(outcomes) => outcomes.iter().for_each(|o| tally.add(o)),
        Err(f) if unit.atomic => {
            let origin = f
                .index
                .and_then(|i| unit.origins.get(i))
                .cloned()
                .unwrap_or_else(|| unit.origins.first().cloned().unwrap_or_default());
            tally.failed.push(format!(
                "{origin}: {} (nothing of it was loaded)",
                f.error.message()
            ));
        }
        Err(_) => {
            for (origin, work) in unit.origins.into_iter().zip(unit.works) {
                let mut one = [work];
                match transaction::run(store, &mut one, env) {
                    Ok(outcomes) => outcomes.iter().for_each(|o| tally.add(o)),
                    Err(f) => tally
                        .failed
                        .push(format!("{origin}: {}", f.error.message())),
                }
            }
        }
    }
}

/// A progress line on a terminal, redrawn at most every 200 ms (every 10 s when not a terminal).
struct Progress {
    tty: bool,
    last: Instant,
    total_bytes: u64,
    read_bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Progress {
    fn new(total_bytes: u64, read_bytes: Arc<std::sync::atomic::AtomicU64>) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: Instant::now(),
            total_bytes,
            read_bytes,
        }
    }

    fn show(&mut self, t: &Tally, started: Instant) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = started.elapsed().as_secs_f64().max(0.001);
        // The bar is the share of the input read and checked; writes trail it by a chunk or two.
        const WIDTH: u64 = 30;
        let read = self.read_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let filled = (read * WIDTH)
            .checked_div(self.total_bytes)
            .unwrap_or(0)
            .min(WIDTH) as usize;
        let line = format!(
            "[{}{}] {} files, {} resources, {:.0}/s, {} failed",
            "#".repeat(filled),
            "-".repeat(WIDTH as usize - filled),
            t.files,
            t.done(),
            t.done() as f64 / secs,
            t.failed.len()
        );
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::source_directive;

    #[test]
    fn source_lines() {
        assert_eq!(
            source_directive("source G82977]").as_deref(),
            Some("G82977")
        );
        assert_eq!(source_directive("source  R0X ]").as_deref(), Some("R0X"));
        for bad in ["source]", "sauce R0X]", "source R0X", "source R0-X]"] {
            assert_eq!(source_directive(bad), None, "{bad}");
        }
    }
}
