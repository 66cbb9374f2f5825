#!/usr/bin/env python3
"""perfsplit.py: splits a whole-machine perf profile into processes and phases, for
scripts/bench-ingest.sh.

    perf script -i perf.data -F comm,pid,tid,time,ip,sym,dso --no-inline |
        perfsplit.py --invicta-pid PID --snapshot snap.json --db NAME > split.json

The profile is `perf record -a -g --call-graph dwarf`: every sample has a call stack. Each
sample is counted for its process group (invicta, PostgreSQL backends of database NAME, the
WAL writer, the checkpointer... as bench/ingest/procstat.py groups them, using the snapshot
taken when the profile started; the load driver; idle) and, for invicta and the PostgreSQL
backends, for a phase: walking the stack from the innermost frame outwards, the first frame
that matches one of the patterns below decides (so malloc, memcpy and the kernel count for the
phase that called them). Prints JSON: {hz, seconds, samples, groups, categories, top_symbols}.
Python 3.9+ standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import group as proc_group  # noqa: E402

# invicta: (phase, substrings of a frame's symbol)
INVICTA_RULES = [
    ("JSON parsing (serde_json)", ["serde_json::de", "serde_json::read", "serde_json::value::de",
                                   "serde_json::from_", "serde::de::", "serde_json::value::from"]),
    ("JSON writing (serde_json)", ["serde_json::ser", "serde_json::value::ser", "serde::ser::",
                                   "serde_json::to_"]),
    ("validation (fhir_model::validate)", ["fhir_model::validate", "fhir_model::elements"]),
    ("index extraction (fhir_model::index, store::index_rows)", [
        "fhir_model::index", "store::index_rows", "fhir_model::compartment", "fhir_model::access",
        "fhir_model::search_params", "fhir_model::nhs_number"]),
    ("Bundle references (fullUrl, conditional references)", ["bundle::refs"]),
    ("search SQL for conditions (search crate)", ["search::"]),
    ("SQL client (diesel, libpq)", ["diesel::", "pq_sys", "diesel_"]),
    ("store logic (transactions, history, identity)", ["store::"]),
    ("Bundle handling (server::interactions)", ["interactions::", "server::"]),
    ("HTTP (actix)", ["actix_http", "actix_web", "actix_server", "actix_codec", "httparse",
                      "h1::", "actix_router"]),
    ("async runtime (tokio, actix-rt)", ["tokio::", "actix_rt", "mio::"]),
    ("access and audit (authz)", ["authz::"]),
]
LIBPQ = re.compile(r"^(PQ|pq[A-Z]|pqsecure|pqPut|pqGet|pqFlush|pqSend)")

# PostgreSQL backend: (phase, substrings of a frame's symbol). Static functions of a stripped
# binary do not resolve; the walk then goes on to the exported callers.
PG_RULES = [
    ("WAL flush and fsync at commit", ["XLogFlush", "XLogWrite", "issue_xlog_fsync", "pg_fdatasync",
                                       "pg_fsync", "XLogBackgroundFlush", "fdatasync"]),
    ("WAL insertion", ["XLogInsert", "XLogRecordAssemble", "CopyXLogRecordToWAL", "XLogRegister",
                       "XLogBeginInsert", "ReserveXLogInsertLocation", "WALInsertLock", "log_heap",
                       "XLogSaveBufferForHint"]),
    ("parse, analyse, plan, executor start-up", ["raw_parser", "base_yyparse", "core_yylex", "parse_analyze",
                                       "pg_analyze_and_rewrite", "pg_plan_quer", "planner",
                                       "pg_parse_query", "transformStmt", "transformInsert",
                                       "QueryRewrite", "pg_rewrite_query", "query_planner",
                                       "subquery_planner", "grouping_planner", "create_plan",
                                       "get_relation_info", "set_base_rel", "make_one_rel",
                                       "RelationBuildDesc", "PortalStart", "ExecutorStart",
                                       "InitPlan"]),
    ("index insertion (btree, GIN)", ["btinsert", "_bt_doinsert", "_bt_insertonpg", "_bt_findinsertloc",
                                      "_bt_split", "_bt_check_unique", "gininsert", "ginInsert",
                                      "ginEntryInsert", "ginHeapTupleFastInsert", "ExecInsertIndexTuples",
                                      "index_insert"]),
    ("index scans (lookups, conditions)", ["btgettuple", "_bt_first", "_bt_next", "_bt_readpage",
                                           "_bt_checkkeys", "index_getnext", "IndexNext",
                                           "ExecIndexScan", "ExecIndexOnlyScan", "BitmapHeapNext",
                                           "MultiExecBitmap", "gingetbitmap", "index_fetch_heap",
                                           "heap_hot_search"]),
    ("heap insert and update", ["heap_insert", "heap_update", "heap_multi_insert", "heap_delete",
                                "RelationGetBufferForTuple", "ExecInsert", "ExecUpdate", "ExecDelete",
                                "heap_prepare_insert", "toast_"]),
    ("foreign keys, constraints, triggers", ["RI_FKey", "ri_", "ExecConstraints", "AfterTrigger",
                                             "ExecCheck", "ExecARInsertTriggers"]),
    ("executor (other)", ["ExecutorRun", "standard_ExecutorRun", "ExecProcNode", "ExecScan", "ExecAgg",
                          "ExecSort", "ExecHash", "ExecNestLoop", "ExecModifyTable", "ExecResult",
                          "ExecInterpExpr", "ExecEvalExpr", "PortalRun", "ExecutorEnd", "ExecEndPlan"]),
    ("commit, locks, snapshots", ["CommitTransaction", "StartTransaction", "LockAcquire", "LWLock",
                                  "LockRelease", "GetSnapshotData", "AbortTransaction", "PreCommit",
                                  "AtEOXact", "ProcArray", "XactLockTable", "pg_advisory",
                                  "RecordTransactionCommit", "TransactionIdCommit"]),
    ("buffers and storage", ["ReadBuffer", "BufferAlloc", "FlushBuffer", "smgr", "mdwrite", "mdextend",
                             "FileWrite", "pg_pwrite", "StrategyGetBuffer", "MarkBufferDirty"]),
    ("protocol and network", ["pq_", "secure_read", "secure_write", "socket_", "exec_bind_message",
                              "exec_parse_message", "exec_execute_message", "exec_describe",
                              "exec_simple_query", "ReadCommand", "PostgresMain", "SocketBackend"]),
]

ALLOC = re.compile(r"^(_int_malloc|_int_free|_int_realloc|malloc|free|cfree(@\S*)?|realloc|calloc|"
                   r"malloc_consolidate|unlink_chunk(\.\S*)?|tcache_\w+|palloc0?|pfree|repalloc|"
                   r"AllocSet\w+|MemoryContext\w*Alloc\w*)$")
HASH = re.compile(r"::h[0-9a-f]{16}$")
HEADER = re.compile(r"^(\S.*?)\s+(-?\d+)/(-?\d+)\s+(\d+\.\d+):?\s*$")
FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def classify(frames, rules):
    for sym, dso in frames:
        for name, pats in rules:
            for p in pats:
                if p in sym:
                    return name
        if rules is INVICTA_RULES and ("libpq" in dso or LIBPQ.match(sym)):
            return "SQL client (diesel, libpq)"
    leaf_sym, leaf_dso = frames[0] if frames else ("", "")
    if "kernel" in leaf_dso:
        return "kernel (unattributed)"
    if any(k in leaf_sym for k in ("malloc", "free", "memcpy", "memmove", "realloc", "memset", "cfree")):
        return "memory (malloc, memcpy; unattributed)"
    return "other (unresolved)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--invicta-pid", default="", help="pid(s) of invicta, comma-separated; "
                    "without, any process with a thread named invicta*")
    ap.add_argument("--snapshot", help="procstat.py snapshot taken when the profile started")
    ap.add_argument("--db", default="")
    ap.add_argument("--hz", type=int, default=49)
    args = ap.parse_args()

    snap_groups = {}
    snap_names = {}
    if args.snapshot and os.path.exists(args.snapshot):
        snap = json.load(open(args.snapshot))
        for p in snap["procs"]:
            snap_groups[p["pid"]] = proc_group(p, -1, args.db)
            snap_names[p["pid"]] = p["comm"]

    per_pid = defaultdict(Counter)         # pid -> samples
    comms = defaultdict(Counter)           # pid -> thread name -> samples
    inv_cats = defaultdict(Counter)        # pid -> invicta phase -> samples
    pg_cats = defaultdict(Counter)         # pid -> pg phase -> samples
    leaves = defaultdict(Counter)          # pid -> leaf symbol -> samples
    t_first = t_last = None
    samples = 0

    def flush(head, frames):
        nonlocal samples
        if head is None:
            return
        comm, pid = head
        samples += 1
        per_pid[pid]["n"] += 1
        comms[pid][comm] += 1
        leaf = frames[0][0] if frames else "?"
        leaves[pid][HASH.sub("", leaf)] += 1
        if comm == "postgres":
            pg_cats[pid][classify(frames, PG_RULES)] += 1
        elif comm not in ("swapper", "python3", "python", "wrk", "perf"):
            inv_cats[pid][classify(frames, INVICTA_RULES)] += 1

    head, frames = None, []
    for line in sys.stdin:
        if not line.strip():
            flush(head, frames)
            head, frames = None, []
            continue
        if not line[0].isspace():
            flush(head, frames)
            frames = []
            m = HEADER.match(line.rstrip("\n"))
            if not m:
                head = None
                continue
            head = (m.group(1).strip(), int(m.group(2)))
            t = float(m.group(4))
            t_first = t if t_first is None else t_first
            t_last = t
            continue
        m = FRAME.match(line)
        if m and head is not None:
            frames.append((m.group(2), m.group(3)))
    flush(head, frames)
    if not samples:
        raise SystemExit("perfsplit.py: no samples in the input")

    invicta_pids = {int(x) for x in str(args.invicta_pid).split(",") if x.strip() and int(x) > 0}
    groups = Counter()
    categories = defaultdict(Counter)
    alloc = Counter()
    top = defaultdict(Counter)
    for pid, c in per_pid.items():
        names = set(comms[pid])
        if pid == 0 or names <= {"swapper"}:
            g = "idle"
        elif pid in invicta_pids or (not invicta_pids and any(n.startswith("invicta") for n in names)):
            g = "invicta"
        elif "postgres" in names:
            g = snap_groups.get(pid, "pg_other")
            if not g.startswith("pg_"):
                g = "pg_other"
        elif names & {"python3", "python", "wrk"}:
            g = "driver"
        else:
            # The process's name when the snapshot knew it, else its busiest thread's.
            g = "other: " + (snap_names.get(pid) or comms[pid].most_common(1)[0][0])
        groups[g] += c["n"]
        if g == "invicta":
            categories[g].update(inv_cats[pid])
            top[g].update(leaves[pid])
        elif g == "pg_backends":
            categories[g].update(pg_cats[pid])
            top[g].update(leaves[pid])
        if g in ("invicta", "pg_backends"):
            alloc[g] += sum(n for sym, n in leaves[pid].items() if ALLOC.search(sym))
    # Collapse the small "other" processes.
    small = [g for g, n in groups.items() if g.startswith("other: ") and n < 0.01 * samples]
    for g in small:
        groups["other processes"] += groups.pop(g)
    out = {
        "hz": args.hz,
        "seconds": (t_last - t_first) if t_first is not None else 0,
        "samples": samples,
        "groups": dict(groups),
        "categories": {g: dict(c) for g, c in categories.items()},
        "top_symbols": {g: c.most_common(12) for g, c in top.items()},
        # Samples whose innermost frame is the allocator (malloc, free and their internals).
        "alloc": dict(alloc),
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
