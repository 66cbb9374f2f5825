#!/usr/bin/env python3
"""where.py: the "where the time goes" section of target/bench/ingest.md, for
scripts/bench-ingest.sh.

    where.py --diff cpu-bundles.txt --resources N --seconds S [--driver-cpu-s C]
             [--driver-label "driver (post.py)"] [--perf perf-bundles.json]

--diff is the output of `procstat.py diff` over the measured interval; --perf the JSON of
`perfsplit.py` for part of it. Prints markdown: CPU by process, WAL and commits, the profile
when there is one, and a short reading of what bounds the throughput. Python 3.9+ standard
library only.
"""

from __future__ import annotations

import argparse
import json

TARGET = 3000  # resources/s


def read_kv(path: str) -> dict:
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
    return out


def fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--diff", required=True)
    ap.add_argument("--resources", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--driver-cpu-s", type=float, help="the driver's own CPU seconds (when not watched)")
    ap.add_argument("--driver-label", default="driver")
    ap.add_argument("--load", action="store_true", help="the run is `invicta load` (no server)")
    ap.add_argument("--app-cpu-s", type=float, help="invicta load's CPU seconds (when not watched)")
    ap.add_argument("--perf")
    args = ap.parse_args()
    d = read_kv(args.diff)
    g = lambda k: float(d.get(k, 0) or 0)  # noqa: E731
    ncpu = int(g("ncpu")) or 1
    wall = g("seconds") or args.seconds or 1
    resources = args.resources or 1
    is_load = args.load
    app = g("cpu_server")
    if not app and args.app_cpu_s:
        app = args.app_cpu_s / wall
    driver = g("cpu_driver") if "cpu_driver" in d else (args.driver_cpu_s or 0) / wall
    pg_back = g("cpu_pg_backends")
    pg_bg = g("cpu_pg_walwriter") + g("cpu_pg_checkpointer") + g("cpu_pg_bgwriter") + g("cpu_pg_autovacuum")
    pg_other = g("cpu_pg_other")
    busy = g("cpu_machine_busy")
    iowait = g("cpu_machine_iowait")
    idle = g("cpu_machine_idle")
    other = max(0.0, busy - app - pg_back - pg_bg - pg_other - driver)

    rows = []
    if not is_load:
        rows.append(("invicta serve (HTTP, JSON, validation, indexing, SQL client)", app))
    else:
        rows.append(("invicta load (parsing, validation, indexing, SQL client)", app))
    rows.append(("PostgreSQL backends of this database (SQL, index and WAL insertion, commit)", pg_back))
    rows.append(("PostgreSQL WAL writer, checkpointer, background writer, autovacuum", pg_bg))
    if pg_other > 0.005:
        rows.append(("PostgreSQL, other databases / postmaster (not this benchmark)", pg_other))
    if not is_load:
        rows.append((f"{args.driver_label}", driver))
    rows.append((f"everything else ({d.get('other_top', '-')})", other))
    print(f"Measured over the whole run ({wall:.1f} s) from /proc: CPU in cores (1.00 = one core busy "
          f"throughout; this machine has {ncpu}), and CPU time per resource stored.\n")
    print("| where | CPU (cores) | share of the machine | CPU µs per resource |")
    print("|---|---:|---:|---:|")
    for name, cores in rows:
        print(f"| {name} | {cores:.2f} | {100 * cores / ncpu:.0f}% | {1e6 * cores * wall / resources:.0f} |")
    print(f"| *machine: busy / iowait / idle* | {busy:.2f} / {iowait:.2f} / {idle:.2f} | "
          f"{100 * busy / ncpu:.0f}% / {100 * iowait / ncpu:.0f}% / {100 * idle / ncpu:.0f}% | |")
    if g("cpu_machine_steal") > 0.02:
        print(f"| *of which stolen by the hypervisor* | {g('cpu_machine_steal'):.2f} | "
              f"{100 * g('cpu_machine_steal') / ncpu:.0f}% | |")

    # WAL and commits.
    if "lsn_bytes" in d:
        commits = g("xact_commit")
        syncs = g("wal_sync")
        sync_ms = g("wal_sync_time_ms")
        print()
        print("| WAL and commits | value |")
        print("|---|---:|")
        print(f"| WAL written | {fmt_bytes(g('lsn_bytes'))} ({g('wal_mb_per_s'):.1f} MB/s) |")
        print(f"| WAL per resource | {fmt_bytes(g('lsn_bytes') / resources)} |")
        print(f"| WAL records / full-page images | {g('wal_records'):.0f} / {g('wal_fpi'):.0f} "
              f"({100 * g('fpi_share'):.1f}% of records) |")
        print(f"| transactions committed in this database (read-only ones included) | {commits:.0f} "
              f"({g('commits_per_s'):.0f}/s; {resources / commits if commits else 0:.1f} resources per commit) |")
        print(f"| WAL writes / syncs (fsync) | {g('wal_write'):.0f} / {syncs:.0f} ({g('wal_syncs_per_s'):.0f} syncs/s) |")
        if sync_ms > 0:
            print(f"| time in WAL sync (backends, track_wal_io_timing) | {sync_ms / 1000:.1f} s "
                  f"({g('wal_sync_ms_avg'):.2f} ms per sync; {100 * sync_ms / 1000 / wall:.0f}% of the wall time, summed over backends) |")
        print(f"| WAL buffers full (a backend had to write WAL itself) | {g('wal_buffers_full'):.0f} |")
        print(f"| checkpoints during the run (requested) | {g('checkpoints'):.0f} ({g('checkpoints_req'):.0f}) |")
        print("\nWAL figures are the whole cluster's (pg_stat_wal, WAL position), commits this database's.")

    perf = None
    if args.perf:
        with open(args.perf) as f:
            perf = json.load(f)
        print_perf(perf, is_load)

    # A reading.
    print("\n**Reading.**", end=" ")
    notes = []
    app_name = "`invicta load`" if is_load else "the server"
    pg_all = pg_back + pg_bg
    if busy >= 0.85 * ncpu:
        notes.append(f"CPU-bound: the {ncpu} CPUs were {100 * busy / ncpu:.0f}% busy.")
        parts = sorted([(app, app_name), (pg_all, "PostgreSQL"), (driver if not is_load else 0, "the load driver"),
                        (other, "other processes")], reverse=True)
        notes.append(f"{parts[0][1][0].upper() + parts[0][1][1:]} used the most ({parts[0][0]:.2f} cores, "
                     f"{100 * parts[0][0] / busy:.0f}% of the busy time), then {parts[1][1]} ({parts[1][0]:.2f}).")
        if not is_load and driver > 0.25 * busy:
            notes.append(f"The Python driver took {100 * driver / busy:.0f}% of the busy CPU on this "
                         f"{ncpu}-CPU machine: it limits the figure; a compiled driver or a second machine would raise it.")
    else:
        spare = idle + iowait
        notes.append(f"Not CPU-bound: {spare:.2f} of {ncpu} cores were idle or waiting on I/O "
                     f"(iowait {iowait:.2f}).")
        if g("wal_sync_time_ms") / 1000 > 0.2 * wall:
            notes.append(f"Each WAL sync took {g('wal_sync_ms_avg'):.2f} ms on average, {g('wal_syncs_per_s'):.0f} "
                         "per second, a large share of the time: commits wait on fsync; more concurrent "
                         "transactions share syncs (group commit).")
        elif is_load:
            notes.append("fsync is not it (see below): the loader and PostgreSQL wait on each other, "
                         "one statement at a time.")
        else:
            notes.append("fsync is not it (see below): the requests wait on round trips; more "
                         "concurrency (INGEST_WORKERS, INVICTA_DB_POOL) would use the idle CPU.")
    if not is_load and driver > 0.8:
        notes.append(f"The driver used {100 * driver:.0f}% of one core: close to the limit of one Python "
                     "process (the GIL); it may bound the figure.")
    elif not is_load:
        notes.append(f"The driver used {100 * driver:.0f}% of one core: not the limit.")
    work = app + pg_all
    if work > 0:
        per = work * wall / resources * 1e6
        notes.append(f"Ingest cost {per:.0f} µs of CPU per resource ({app_name} "
                     f"{app * wall / resources * 1e6:.0f} µs, PostgreSQL {pg_all * wall / resources * 1e6:.0f} µs): "
                     f"{ncpu} CPUs doing nothing else would top out near {ncpu * 1e6 / per:.0f} resources/s, "
                     f"so {TARGET} resources/s needs at most {ncpu * 1e6 / TARGET:.0f} µs per resource.")
    if other > 0.15 * ncpu:
        notes.append(f"Other processes used {other:.2f} cores during the run ({d.get('other_top', '-')} and "
                     "processes that came and went): on a quiet machine the figure would be higher.")
    if "lsn_bytes" in d and resources:
        wal_per = g("lsn_bytes") / resources
        fpi = g("fpi_share")
        notes.append(f"WAL is {fmt_bytes(wal_per)} per resource ({g('wal_mb_per_s'):.1f} MB/s"
                     + (f", {100 * fpi:.0f}% of the records full-page images: a checkpoint during the run" if fpi > 0.05 else "")
                     + "); the syncs took "
                     + (f"{100 * g('wal_sync_time_ms') / 1000 / wall:.0f}% of the wall time" if g("wal_sync_time_ms") else "an unmeasured time")
                     + (", so fsync is not what bounds this run." if g("wal_sync_time_ms") / 1000 < 0.2 * wall else
                        ", a large share: group commit or fewer, larger transactions would help."))
    if perf:
        top = top_categories(perf, "invicta", 3)
        if top:
            notes.append(f"Inside {app_name} (profile): " + ", ".join(f"{c} {p:.0f}%" for c, p in top) + ".")
        top = top_categories(perf, "pg_backends", 3)
        if top:
            notes.append("Inside the PostgreSQL backends: " + ", ".join(f"{c} {p:.0f}%" for c, p in top) + ".")
    print(" ".join(notes))
    hints = next_steps(perf, is_load, idle + iowait, ncpu, busy, g)
    if hints:
        print("\n**What to try next** (from the figures above):\n")
        for h in hints:
            print(f"- {h}")


def share(perf: dict, group: str, category: str) -> float:
    cats = (perf or {}).get("categories", {}).get(group) or {}
    total = sum(cats.values())
    return 100 * cats.get(category, 0) / total if total else 0.0


def next_steps(perf, is_load: bool, spare: float, ncpu: int, busy: float, g) -> list:
    hints = []
    who = "`invicta load`" if is_load else "the server"
    if is_load and spare > 0.25 * ncpu:
        hints.append(f"{spare:.1f} of {ncpu} CPUs sat idle: the loader and PostgreSQL take turns on one "
                     "connection (each statement waits for its answer). Writing chunks on two or more "
                     "connections at once, or pipelining the statements, would use the idle CPU.")
    if not perf:
        return hints
    plan = share(perf, "pg_backends", "parse, analyse, plan, executor start-up")
    proto = share(perf, "pg_backends", "protocol and network")
    if plan > 20:
        hints.append(f"PostgreSQL spends {plan:.0f}% of its time parsing, analysing and planning "
                     "statements and starting their executors: statements that are not prepared, or "
                     "whose text varies with the rows (VALUES lists, CTEs), are parsed and planned "
                     "anew each time. Fixed statement "
                     "texts with array parameters (`INSERT INTO idx_token SELECT * FROM "
                     "unnest($1::bigint[], $2::text[], ...)`), prepared once per connection, or COPY, "
                     "would remove most of it.")
    if proto > 15:
        hints.append(f"{proto:.0f}% of PostgreSQL's time is the protocol and the network (reading "
                     "messages, sending answers): many small round trips; fewer, larger statements "
                     "cut this and the client's share below.")
    sql = share(perf, "invicta", "SQL client (diesel, libpq)")
    if sql > 20:
        hints.append(f"{who} spends {sql:.0f}% in the SQL client (diesel, libpq): building, sending "
                     "and reading statement by statement; the same batching applies.")
    idx = share(perf, "invicta", "index extraction (fhir_model::index, store::index_rows)")
    if idx > 15:
        hints.append(f"Index extraction is {idx:.0f}% of {who}: the search-parameter expressions are "
                     "evaluated per resource (see the hottest functions); compiling each expression "
                     "once per type and skipping parameters the type cannot have would shrink it.")
    inv_total = sum(((perf.get("categories") or {}).get("invicta") or {}).values())
    alloc = (perf.get("alloc") or {}).get("invicta", 0)
    if inv_total and alloc / inv_total > 0.12:
        hints.append(f"{100 * alloc / inv_total:.0f}% of {who}'s samples are inside malloc/free: it "
                     "allocates heavily (serde_json Values, Strings, per-row Vecs). A faster "
                     "allocator (mimalloc or jemalloc as the global allocator) is a one-line "
                     "experiment; fewer clones of Values is the lasting fix.")
    top = (perf.get("top_symbols") or {}).get("invicta") or []
    sip = sum(n for sym, n in top if "sip::Hasher" in sym)
    if inv_total and sip / inv_total > 0.02:
        hints.append(f"SipHash (the default HashMap hasher) is {100 * sip / inv_total:.0f}% of {who}: "
                     "a faster hasher (FxHash, ahash) for internal maps is cheap to try.")
    val = share(perf, "invicta", "validation (fhir_model::validate)")
    parse = share(perf, "invicta", "JSON parsing (serde_json)")
    hints.append(f"For scale: validation is {val:.0f}% and JSON parsing {parse:.0f}% of {who}: "
                 + ("not where the time goes." if val + parse < 25 else "worth a look too."))
    if g("checkpoints_req") > 0:
        hints.append(f"{g('checkpoints_req'):.0f} checkpoints were requested during the run, one per "
                     f"{g('lsn_bytes') / max(1, g('checkpoints_req')) / 2**30:.1f} GB of WAL (max_wal_size "
                     "starts one about every half of it; CREATE/DROP DATABASE elsewhere on the cluster also "
                     "does): each is followed by full-page images and a burst of writes. A larger "
                     "max_wal_size for bulk loads, and less WAL per resource, space them out.")
    if g("wal_buffers_full") > 10:
        hints.append(f"WAL buffers filled up {g('wal_buffers_full'):.0f} times (backends wrote WAL "
                     "themselves): large transactions; a larger `wal_buffers` (e.g. 16MB) helps bulk loads.")
    return hints


def top_categories(perf: dict, group: str, n: int):
    cats = perf.get("categories", {}).get(group) or {}
    total = sum(cats.values())
    if not total:
        return []
    return [(c, 100 * v / total) for c, v in sorted(cats.items(), key=lambda kv: -kv[1])[:n]]


GROUP_NAMES = {
    "invicta": "invicta",
    "pg_backends": "PostgreSQL backends (this database)",
    "pg_walwriter": "PostgreSQL WAL writer",
    "pg_checkpointer": "PostgreSQL checkpointer",
    "pg_bgwriter": "PostgreSQL background writer",
    "pg_autovacuum": "PostgreSQL autovacuum",
    "pg_other": "PostgreSQL, other",
    "driver": "load driver (python3 / wrk)",
    "idle": "idle",
}


def print_perf(perf: dict, is_load: bool) -> None:
    groups = perf.get("groups", {})
    total = sum(groups.values()) or 1
    print(f"\nA sampled profile of the whole machine (perf, {perf.get('hz', '?')} Hz per CPU, "
          f"{perf.get('seconds', 0):.0f} s in the middle of the run, {total} samples; call stacks "
          "unwound with DWARF, each sample counted under the innermost frame that names a phase):\n")
    print("| process | share of the machine's samples |")
    print("|---|---:|")
    for grp, n in sorted(groups.items(), key=lambda kv: -kv[1]):
        name = GROUP_NAMES.get(grp, grp)
        if grp == "invicta":
            name = "invicta load" if is_load else "invicta serve"
        print(f"| {name} | {100 * n / total:.1f}% |")
    for grp, title in (("invicta", "invicta load" if is_load else "the server"),
                       ("pg_backends", "the PostgreSQL backends")):
        cats = perf.get("categories", {}).get(grp) or {}
        n = sum(cats.values())
        if not n:
            continue
        print(f"\nInside {title} ({n} samples):\n")
        print("| phase | share |")
        print("|---|---:|")
        for c, v in sorted(cats.items(), key=lambda kv: -kv[1]):
            print(f"| {c} | {100 * v / n:.1f}% |")
        top = perf.get("top_symbols", {}).get(grp) or []
        if top:
            print(f"\nHottest functions of {title} (self time): "
                  + "; ".join(f"`{s[:90]}` {100 * v / n:.1f}%" for s, v in top[:8]) + ".")


if __name__ == "__main__":
    main()
