//! A transaction's entries partitioned once, before anything runs: which phase each runs in,
//! in what order, which conditions to lock, and which conditional creates to look up together.

use std::collections::BTreeMap;

use super::entry::{Action, Phase, Target};
use super::refs;
use super::work::Work;

/// An identifier's system and value.
pub(super) type Identifier = (String, String);

/// The entries by phase (positions in the Bundle) and what the phases share.
pub(super) struct Plan {
    /// DELETE entries, in Bundle order.
    pub deletes: Vec<usize>,
    /// Creates in Bundle order, then updates and patches in Bundle order.
    pub writes: Vec<usize>,
    /// GET entries, in Bundle order.
    pub reads: Vec<usize>,
    /// Advisory-lock keys of every condition of the transaction.
    pub lock_keys: Vec<String>,
    /// Conditional creates by one `identifier=system|value`, by resource type: looked up in
    /// one statement per type.
    pub by_identifier: BTreeMap<String, Vec<(usize, Identifier)>>,
}

/// Partitions `works`.
pub(super) fn partition(works: &[Work]) -> Plan {
    let phase = |p: Phase| -> Vec<usize> {
        (0..works.len())
            .filter(|&i| works[i].entry.phase() == p)
            .collect()
    };
    let (deletes, mut writes, reads) = (
        phase(Phase::Delete),
        phase(Phase::Write),
        phase(Phase::Read),
    );
    writes.sort_by_key(|&i| (!matches!(works[i].entry.action, Action::Create { .. }), i));
    let lock_keys = writes
        .iter()
        .filter_map(|&i| {
            let t = works[i].entry.res_type.as_str();
            match &works[i].entry.action {
                Action::Create {
                    if_none_exist: Some(q),
                    ..
                }
                | Action::Update {
                    target: Target::Query(q),
                    ..
                } => Some(store::condition_key(t, q)),
                _ => None,
            }
        })
        .collect();
    let mut by_identifier: BTreeMap<String, Vec<(usize, Identifier)>> = BTreeMap::new();
    for &i in &writes {
        let e = &works[i].entry;
        let Action::Create {
            if_none_exist: Some(q),
            ..
        } = &e.action
        else {
            continue;
        };
        // Patients are identified one by one (NHS numbers link identities); escapes need the
        // general search path.
        if e.res_type == "Patient" || q.contains('\\') {
            continue;
        }
        if let Some((Some(system), value)) = refs::single_identifier(q) {
            if !value.is_empty() {
                by_identifier
                    .entry(e.res_type.clone())
                    .or_default()
                    .push((i, (system, value)));
            }
        }
    }
    Plan {
        deletes,
        writes,
        reads,
        lock_keys,
        by_identifier,
    }
}
