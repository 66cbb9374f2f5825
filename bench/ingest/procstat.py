#!/usr/bin/env python3
"""procstat.py: where the CPU (and the WAL) went between two moments, for scripts/bench-ingest.sh.

    procstat.py snapshot --db-url URL --db NAME [--server-pid PID] -o BEFORE
    procstat.py watch --pid PID --db-url URL --db NAME [--server-pid PID] -o AFTER
    procstat.py diff BEFORE AFTER [--driver-cpu-s C] [--resources N]  -> key=value lines

A snapshot records, at one moment: the machine's CPU counters (/proc/stat), the CPU time of
every process (/proc/PID/stat: user + system, all threads), grouped as

  server            the process --server-pid (invicta serve, all threads)
  pg_backends       PostgreSQL backends connected to database NAME (the server's pool)
  pg_walwriter, pg_checkpointer, pg_bgwriter, pg_autovacuum
                    PostgreSQL's background processes
  pg_other          other PostgreSQL processes (backends of other databases, the postmaster...)
  other             every other process (the load driver's CPU is reported by the driver)

and, through psql, the WAL position, pg_stat_wal, the commits of database NAME and the
checkpoints so far. `watch` follows a run (the process PID: the driver, or `invicta load`)
to its end, reading every process twice a second, and writes the closing snapshot with the last
CPU time seen of every process, those that ended included; PID and its descendants are the
"driver" group (or "server" when named invicta*). A process that starts between the snapshots
counts from zero.

diff prints, for the interval: seconds, CPU in cores (1.00 = one core busy all the time) per
group and for the whole machine (busy, user, system, iowait, idle; steal when the hypervisor
took some), the top other processes, WAL bytes / records / full-page images / writes / syncs
(and their time when track_wal_io_timing is on), commits and checkpoints; with --resources, the
WAL bytes and commits per resource. Python 3.9+ standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")

PG_SQL = """
SELECT json_build_object(
  'lsn_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
  'xact_commit', (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
  'xact_rollback', (SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()),
  'tup_inserted', (SELECT tup_inserted FROM pg_stat_database WHERE datname = current_database()),
  'wal_records', w.wal_records, 'wal_fpi', w.wal_fpi, 'wal_bytes', w.wal_bytes::bigint,
  'wal_buffers_full', w.wal_buffers_full, 'wal_write', w.wal_write, 'wal_sync', w.wal_sync,
  'wal_write_time_ms', w.wal_write_time, 'wal_sync_time_ms', w.wal_sync_time,
  'checkpoints', (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
  'checkpoints_req', (SELECT checkpoints_req FROM pg_stat_bgwriter),
  'buffers_backend', (SELECT buffers_backend FROM pg_stat_bgwriter),
  'buffers_checkpoint', (SELECT buffers_checkpoint FROM pg_stat_bgwriter))
FROM pg_stat_wal w
"""


def machine_cpu() -> dict:
    with open("/proc/stat") as f:
        fields = f.readline().split()
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    vals = [int(x) for x in fields[1:1 + len(names)]]
    return dict(zip(names, vals))


def processes() -> list:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        # rest[0] is field 3 (state): utime is field 14, stime 15, starttime 22.
        ticks = int(rest[11]) + int(rest[12])
        out.append({"pid": int(pid), "ppid": int(rest[1]), "comm": comm, "cmd": cmdline[:200],
                    "ticks": ticks, "start": int(rest[19])})
    return out


def group(p: dict, server_pid: int, db: str) -> str:
    if p["pid"] == server_pid:
        return "server"
    cmd = p["cmd"]
    if cmd.startswith("postgres: "):
        if "walwriter" in cmd:
            return "pg_walwriter"
        if "checkpointer" in cmd:
            return "pg_checkpointer"
        if "background writer" in cmd:
            return "pg_bgwriter"
        if "autovacuum" in cmd:
            return "pg_autovacuum"
        words = cmd.split()
        # "postgres: [cluster: ]USER DATABASE HOST STATE"
        if f" {db} " in f" {' '.join(words[1:])} ":
            return "pg_backends"
        return "pg_other"
    if p["comm"] in ("postgres", "postmaster"):
        return "pg_other"
    return "other"


def pg_stats(db_url):
    if not db_url:
        return None
    try:
        text = subprocess.run(["psql", db_url, "-XAtqv", "ON_ERROR_STOP=1", "-c", PG_SQL],
                              check=True, capture_output=True, text=True, timeout=60).stdout
        return json.loads(text.strip())
    except (subprocess.SubprocessError, ValueError, OSError) as e:
        print(f"procstat.py: warning: no PostgreSQL statistics: {e}", file=sys.stderr)
        return None


def snapshot(args) -> None:
    snap = {"time": time.time(), "machine": machine_cpu(), "procs": processes(),
            "pg": pg_stats(args.db_url), "server_pid": args.server_pid or 0, "db": args.db,
            "watched_pid": 0}
    with open(args.output, "w") as f:
        json.dump(snap, f)


def watch(args) -> None:
    """Until --pid ends, reads every process's CPU time each --interval seconds and keeps the last
    value seen, so that processes which start and end in the interval (the load's connections,
    the driver) are counted up to their last reading; then writes the closing snapshot."""
    seen = {}
    while True:
        for p in processes():
            seen[(p["pid"], p["start"])] = p
        try:
            os.kill(args.pid, 0)
            alive = not open(f"/proc/{args.pid}/stat").read().split(") ")[1].startswith("Z")
        except OSError:
            alive = False
        if not alive:
            break
        time.sleep(args.interval)
    for p in processes():
        seen[(p["pid"], p["start"])] = p
    snap = {"time": time.time(), "machine": machine_cpu(), "procs": list(seen.values()),
            "pg": pg_stats(args.db_url), "server_pid": args.server_pid or 0, "db": args.db,
            "watched_pid": args.pid}
    with open(args.output, "w") as f:
        json.dump(snap, f)


def watched_tree(snap: dict) -> set:
    """The watched process of a `watch` snapshot and its descendants."""
    watched = set()
    if snap.get("watched_pid"):
        kids = {}
        for p in snap["procs"]:
            kids.setdefault(p.get("ppid"), []).append(p["pid"])
        todo = [snap["watched_pid"]]
        while todo:
            pid = todo.pop()
            if pid not in watched:
                watched.add(pid)
                todo.extend(kids.get(pid, []))
    return watched


def descendants(args) -> None:
    snap = json.load(open(args.snapshot))
    tree = watched_tree(snap)
    pids = sorted({p["pid"] for p in snap["procs"] if p["pid"] in tree and p["comm"].startswith(args.prefix)})
    print(",".join(str(p) for p in pids))


def diff(args) -> None:
    a = json.load(open(args.before))
    b = json.load(open(args.after))
    secs = b["time"] - a["time"]
    out = {"seconds": round(secs, 3)}
    server_pid, db = b["server_pid"], b["db"]
    before = {(p["pid"], p["start"]): p for p in a["procs"]}
    # The watched process and its descendants: the driver, or (named invicta*) the loader.
    watched = watched_tree(b)
    groups = {g: 0 for g in ["server", "pg_backends", "pg_walwriter", "pg_checkpointer",
                             "pg_bgwriter", "pg_autovacuum", "pg_other", "driver", "other"]}
    others = []
    for p in b["procs"]:
        prev = before.get((p["pid"], p["start"]))
        ticks = p["ticks"] - (prev["ticks"] if prev else 0)
        if ticks <= 0:
            continue
        if p["pid"] in watched:
            g = "server" if p["comm"].startswith("invicta") else "driver"
        else:
            g = group(p, server_pid, db)
        groups[g] += ticks
        if g == "other":
            others.append((ticks, p["comm"]))
    cores = lambda t: t / TICK / secs if secs > 0 else 0.0  # noqa: E731
    for g, t in groups.items():
        out[f"cpu_{g}"] = round(cores(t), 3)
    pg_total = sum(t for g, t in groups.items() if g.startswith("pg_") and g != "pg_other")
    out["cpu_postgres"] = round(cores(pg_total), 3)
    ma, mb = a["machine"], b["machine"]
    d = {k: mb[k] - ma[k] for k in ma}
    total = sum(d.values()) or 1
    ncpu = os.cpu_count() or 1
    share = lambda *ks: round(sum(d[k] for k in ks) / total * ncpu, 3)  # noqa: E731
    out["cpu_machine_busy"] = share("user", "nice", "system", "irq", "softirq", "steal")
    out["cpu_machine_user"] = share("user", "nice")
    out["cpu_machine_system"] = share("system", "irq", "softirq")
    out["cpu_machine_iowait"] = share("iowait")
    out["cpu_machine_idle"] = share("idle")
    out["cpu_machine_steal"] = share("steal")
    out["ncpu"] = ncpu
    if not watched and args.driver_cpu_s is not None and secs > 0:
        # Not watched: the driver ended before the second snapshot; its own figure.
        out["cpu_driver"] = round(args.driver_cpu_s / secs, 3)
    by_comm = {}
    for t, c in others:
        by_comm[c] = by_comm.get(c, 0) + t
    top = sorted(by_comm.items(), key=lambda kv: -kv[1])[:3]
    out["other_top"] = ",".join(f"{c}:{cores(t):.2f}" for c, t in top) or "-"
    pa, pb = a.get("pg"), b.get("pg")
    if pa and pb:
        for k in pb:
            if pb[k] is not None and pa.get(k) is not None:
                v = pb[k] - pa[k]
                out[k] = round(v, 1) if isinstance(v, float) else v
        if args.resources:
            out["wal_bytes_per_resource"] = round(out["lsn_bytes"] / args.resources, 1)
            out["commits_per_resource"] = round(out["xact_commit"] / args.resources, 4)
            out["fpi_share"] = round(out["wal_fpi"] / out["wal_records"], 4) if out.get("wal_records") else 0
        if secs > 0:
            out["wal_mb_per_s"] = round(out["lsn_bytes"] / secs / 1048576, 2)
            out["commits_per_s"] = round(out["xact_commit"] / secs, 1)
            out["wal_syncs_per_s"] = round(out.get("wal_sync", 0) / secs, 1)
        if out.get("wal_sync"):
            out["wal_sync_ms_avg"] = round(out.get("wal_sync_time_ms", 0) / out["wal_sync"], 3)
    for k, v in out.items():
        print(f"{k}={v}")


def main() -> None:
    ap = argparse.ArgumentParser(description="CPU and WAL between two snapshots")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("--db-url")
    s.add_argument("--db", default="")
    s.add_argument("--server-pid", type=int, default=0)
    s.add_argument("-o", "--output", required=True)
    k = sub.add_parser("descendants", help="pids under the watched process named PREFIX*")
    k.add_argument("snapshot")
    k.add_argument("--prefix", default="invicta")
    w = sub.add_parser("watch")
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--interval", type=float, default=0.5)
    w.add_argument("--db-url")
    w.add_argument("--db", default="")
    w.add_argument("--server-pid", type=int, default=0)
    w.add_argument("-o", "--output", required=True)
    d = sub.add_parser("diff")
    d.add_argument("before")
    d.add_argument("after")
    d.add_argument("--driver-cpu-s", type=float)
    d.add_argument("--resources", type=int, default=0)
    args = ap.parse_args()
    {"snapshot": snapshot, "watch": watch, "diff": diff, "descendants": descendants}[args.cmd](args)


if __name__ == "__main__":
    main()
