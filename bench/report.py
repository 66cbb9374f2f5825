#!/usr/bin/env python3
"""report.py: the benchmark report of `make bench` (stdlib only).

    python3 bench/report.py [--out target/bench]

Reads what the benchmarks left (each is optional; a missing one is named in the report):

  target/bench/search.json          scripts/bench-search.sh: searches at each data size, each
                                    beside pgbench running the same SQL in the same run
  target/bench-auth/results.json    scripts/bench-auth.sh: access control and audit overhead
  target/bench-record/results.json  scripts/bench-record.sh: $everything / $timeline by size
  target/bench/mixed.json           scripts/bench-mixed.sh: the mixed clinical workload
  target/bench/results.md           scripts/bench.sh (HTTP create/read beside pgbench)
  target/bench/ingest.md            scripts/bench-ingest.sh

and writes into --out: report.md (the targets of issue #18 with what was measured, the scale
curve, each figure beside its pgbench ceiling where the benchmark has one, and the other
benchmarks' tables), report.json (all of the above as data) and SVG plots of throughput and of
latency percentiles against data size (search-throughput.svg, search-latency.svg,
record-latency.svg). Exits 1 when none of the inputs exists.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from xml.sax.saxutils import escape

INPUTS = {
    "search": "target/bench/search.json",
    "auth": "target/bench-auth/results.json",
    "record": "target/bench-record/results.json",
    "mixed": "target/bench/mixed.json",
}
TABLES = {
    "HTTP create and read beside pgbench (make bench-http)": "target/bench/results.md",
    "Ingest (make bench-ingest)": "target/bench/ingest.md",
}
COLOURS = ["#005eb8", "#da291c", "#009639", "#ed8b00", "#7c2855", "#00a499", "#425563", "#8a1538"]


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        print(f"report.py: warning: {path} is unreadable ({e}); left out", file=sys.stderr)
        return None


def machine():
    cpus = os.cpu_count() or 0
    mem = "?"
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"
    except OSError:
        pass
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpus} CPUs, {mem}, {model}; {platform.system()} {platform.release()}"


def commit():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"]).returncode != 0
        return rev + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "no commit"


# ---------------------------------------------------------------------------------------------
# SVG line charts
# ---------------------------------------------------------------------------------------------

def nice_max(v):
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for step in (1, 2, 2.5, 5, 10):
        if v <= step * mag:
            return step * mag
    return 10 * mag


def human(v):
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def chart(title, xlabel, ylabel, series, width=640, height=360):
    """An SVG line chart: series is [(name, [(x, y), ...], dashed, colour)], x on a log scale."""
    left, right, top, bottom = 64, 180, 36, 48
    pw, ph = width - left - right, height - top - bottom
    xs = sorted({x for _, pts, _, _ in series for x, _ in pts})
    ys = [y for _, pts, _, _ in series for _, y in pts]
    if not xs or not ys:
        return None
    x0, x1 = math.log10(xs[0]), math.log10(xs[-1])
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    ymax = nice_max(max(ys) * 1.05)

    def px(x):
        return left + (math.log10(x) - x0) / (x1 - x0) * pw

    def py(y):
        return top + ph - y / ymax * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i in range(6):
        y = ymax * i / 5
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{human(y)}</text>')
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + ph}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{top + ph + 16}" text-anchor="middle">'
                   f'{human(x)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">'
               f'{escape(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(ylabel)}</text>')
    for n, (name, pts, dashed, c) in enumerate(series):
        colour = COLOURS[c % len(COLOURS)]
        pts = sorted(pts)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly = top + 10 + n * 16
        out.append(f'<line x1="{left + pw + 12}" x2="{left + pw + 32}" y1="{ly}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + pw + 36}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------

def target_rows(data):
    """(target, measured, verdict) for each of issue #18's targets the inputs speak to."""
    rows = []

    def verdict(ok):
        return "met" if ok else "**not met**"

    auth = data.get("auth")
    if auth:
        for r in auth.get("modes", []):
            if r["operation"] == "read" and r["mode"] == "audited":
                rows.append(("read by id, auth and audit on, 8 clients: ≥ 5,000 req/s, p99 < 10 ms",
                             f"{r['rps']:,.0f} req/s, p99 {r['p99_ms']} ms",
                             verdict(r["rps"] >= 5000 and r["p99_ms"] < 10)))
        for r in auth.get("ratios", []):
            rows.append((f"audit: audited ≥ 0.8 × auth-only ({r['operation']}, {r['clients']} clients)",
                         f"{r['audited_over_auth']:.2f}", verdict(r["audited_over_auth"] >= 0.8)))
        for r in auth.get("growth", []):
            ratio = r["after_rps"] / r["before_rps"] if r["before_rps"] else 0
            rows.append((f"{r['operation']} before and after {auth.get('growth_events', 0):,} "
                         "AuditEvents agree within 10%",
                         f"{r['before_rps']:,.0f} → {r['after_rps']:,.0f} req/s ({ratio:.2f})",
                         verdict(abs(ratio - 1) <= 0.10)))
    search = data.get("search")
    if search and search.get("results"):
        largest = max(r["resources"] for r in search["results"])
        for r in search["results"]:
            if r["resources"] != largest or r["clients"] != 8:
                continue
            ratio = r["rps"] / r["pgbench_tps"] if r.get("pgbench_tps") else 0
            rows.append((f"{r['search']} at {largest:,} resources, 8 clients: ≥ 0.6 × pgbench; "
                         "≥ 1,500 req/s with p95 < 20 ms (engine: auth and audit off)",
                         f"{r['rps']:,.0f} req/s (pgbench {r['pgbench_tps']:,.0f}, {ratio:.2f}), "
                         f"p95 {r['p95_ms']:.2f} ms",
                         verdict(ratio >= 0.6 and r["rps"] >= 1500 and r["p95_ms"] < 20)))
    record = data.get("record")
    if record:
        for r in record.get("results", []):
            if r["operation"] in ("everything", "timeline") and r["clients"] == 8:
                rows.append((f"${r['operation']} first page at {r['resources']:,} resources, "
                             "8 clients: p95 < 50 ms",
                             f"p95 {r['p95_ms']:.2f} ms ({r['rps']:,.0f} req/s)",
                             verdict(r["p95_ms"] < 50)))
    mixed = data.get("mixed")
    if mixed:
        worst = max((s["p99_ms"] for s in mixed.get("slices", [])), default=0)
        rows.append((f"mixed workload, {mixed['clients']} clients, {mixed['duration_s']:.0f} s: "
                     "≥ 2,000 req/s, no error",
                     f"{mixed['rps']:,.0f} req/s, {mixed['errors']} errors, worst minute p99 "
                     f"{worst:.1f} ms, server peak RSS {mixed['server_rss_peak_kb'] / 1024:.0f} MiB",
                     verdict(mixed["rps"] >= 2000 and mixed["errors"] == 0)))
    return rows


def search_sections(search, out_dir, plots):
    lines = []
    sizes = search.get("sizes", [])
    if sizes:
        lines += ["## Scale curve: storage", "",
                  "Heap (TOAST included) and index bytes of every table per resource stored; WAL "
                  "written while loading each batch, per resource loaded.", "",
                  "| patients | resources | database | heap B/resource | index B/resource | "
                  "WAL B/resource loaded |", "|---:|---:|---:|---:|---:|---:|"]
        for s in sizes:
            wal = s.get("wal_bytes_per_loaded_resource")
            lines.append(f"| {s['patients']:,} | {s['resources']:,} | "
                         f"{s['database_bytes'] / 1048576:,.0f} MiB | "
                         f"{s['table_bytes'] / s['resources']:,.0f} | "
                         f"{s['index_bytes'] / s['resources']:,.0f} | "
                         f"{'(loaded earlier)' if wal is None else f'{wal:,.0f}'} |")
        lines.append("")
    results = search.get("results", [])
    order = {n: i for i, n in enumerate(dict.fromkeys(r["search"] for r in results))}
    results = sorted(results, key=lambda r: (order[r["search"]], r["clients"], r["resources"]))
    if results:
        lines += ["## Scale curve: searches beside their pgbench ceiling", "",
                  "Engine only (auth and audit off; `make bench-auth` gives what those add). "
                  "pgbench runs the server's own first-page statement, with its values, "
                  "prepared, with the same clients for the same time, right after the server.", "",
                  "| search | resources | clients | req/s | p50 ms | p95 ms | p99 ms | "
                  "pgbench tps | server / pgbench |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results:
            ratio = r["rps"] / r["pgbench_tps"] if r.get("pgbench_tps") else 0
            lines.append(f"| {r['search']} | {r['resources']:,} | {r['clients']} | {r['rps']:,.0f} | "
                         f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | "
                         f"{r['pgbench_tps']:,.0f} | {ratio:.2f} |")
        lines.append("")
        top = max(r["clients"] for r in results)
        names = list(dict.fromkeys(r["search"] for r in results))
        series = [(n, [(r["resources"], r["rps"]) for r in results
                       if r["search"] == n and r["clients"] == top], False, i)
                  for i, n in enumerate(names)]
        svg = chart(f"Search throughput, {top} clients", "resources in the database", "req/s",
                    series)
        if svg and len({r["resources"] for r in results}) > 1:
            plots["search-throughput.svg"] = svg
        lat = []
        for i, n in enumerate(names):
            rows = [r for r in results if r["search"] == n and r["clients"] == top]
            lat.append((f"{n} p50", [(r["resources"], r["p50_ms"]) for r in rows], False, i))
            lat.append((f"{n} p99", [(r["resources"], r["p99_ms"]) for r in rows], True, i))
        svg = chart(f"Search latency, {top} clients (solid p50, dashed p99)",
                    "resources in the database", "ms", lat, width=760, height=420)
        if svg and len({r["resources"] for r in results}) > 1:
            plots["search-latency.svg"] = svg
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="target/bench")
    args = ap.parse_args()
    data = {k: load(p) for k, p in INPUTS.items()}
    tables = {}
    for title, path in TABLES.items():
        try:
            with open(path, encoding="utf-8") as f:
                tables[title] = f.read()
        except OSError:
            pass
    if not any(data.values()) and not tables:
        print("report.py: no benchmark results found; run `make bench` (or one of its parts) "
              "first", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    plots = {}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [f"# Invicta benchmark report, {now}", "",
          f"- Machine: {machine()}. Server, PostgreSQL and the load drivers share it, over "
          "loopback.", f"- Report built at commit {commit()}; each part names its own commit "
          "and date below.", ""]
    missing = [f"`{p}`" for k, p in INPUTS.items() if not data[k]]
    missing += [f"`{p}`" for t, p in TABLES.items() if t not in tables]
    if missing:
        md += ["Not run (no results found): " + ", ".join(missing) + ".", ""]
    for k in INPUTS:
        if data[k]:
            md.append(f"- {k}: {data[k].get('date', '?')}, commit {data[k].get('commit', '?')}")
    md.append("")
    rows = target_rows(data)
    if rows:
        md += ["## Targets", "", "| target | measured | |", "|---|---|---|"]
        md += [f"| {t} | {m} | {v} |" for t, m, v in rows]
        md.append("")
    if data["search"]:
        md += search_sections(data["search"], args.out, plots)
    if data["record"]:
        res = data["record"]["results"]
        md += ["## A person's whole record by data size", "",
               "| resources | operation | clients | req/s | p50 ms | p95 ms | p99 ms |",
               "|---:|---|---:|---:|---:|---:|---:|"]
        md += [f"| {r['resources']:,} | {r['operation']} | {r['clients']} | {r['rps']:,.0f} | "
               f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |" for r in res]
        md.append("")
        top = max((r["clients"] for r in res), default=0)
        series = []
        for i, op in enumerate(dict.fromkeys(r["operation"] for r in res)):
            rows_ = [r for r in res if r["operation"] == op and r["clients"] == top]
            series.append((f"{op} p95", [(r["resources"], r["p95_ms"]) for r in rows_], False, i))
            series.append((f"{op} p99", [(r["resources"], r["p99_ms"]) for r in rows_], True, i))
        svg = chart(f"Whole-record reads, {top} clients (solid p95, dashed p99)",
                    "resources in the database", "ms", series)
        if svg and len({r["resources"] for r in res}) > 1:
            plots["record-latency.svg"] = svg
    if data["mixed"]:
        m = data["mixed"]
        md += ["## Mixed clinical workload", "",
               f"{m['rps']:,.0f} req/s over {m['duration_s']:.0f} s at {m['clients']} clients, "
               f"{m['errors']} failed; CPU per request: server {m['server_us_per_request']} µs, "
               f"PostgreSQL {m['postgres_us_per_request']} µs. Per slice:", "",
               "| at | req/s | p50 ms | p95 ms | p99 ms | server RSS MiB | AuditEvents |",
               "|---:|---:|---:|---:|---:|---:|---:|"]
        md += [f"| {s['at_s']} s | {s['rps']:,.0f} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} | "
               f"{s['p99_ms']:.2f} | {s['server_rss_kb'] / 1024:.0f} | {s['audit_events']:,} |"
               for s in m.get("slices", [])]
        md.append("")
    if data["auth"]:
        md += ["## Access control and audit", ""]
        md += ["| operation | mode | clients | req/s | p50 ms | p99 ms |",
               "|---|---|---:|---:|---:|---:|"]
        md += [f"| {r['operation']} | {r['mode']} | {r['clients']} | {r['rps']:,.0f} | "
               f"{r['p50_ms']} | {r['p99_ms']} |" for r in data["auth"].get("modes", [])]
        md.append("")
    for title, text in tables.items():
        body = text.split("\n", 1)[1] if text.startswith("# ") else text
        md += [f"## {title}", "", body.replace("\n## ", "\n### ").strip(), ""]
    if plots:
        md += ["## Plots", ""] + [f"![{n}]({n})" for n in sorted(plots)] + [""]
    for name, svg in plots.items():
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(svg)
    with open(os.path.join(args.out, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    with open(os.path.join(args.out, "report.json"), "w", encoding="utf-8") as f:
        json.dump({"date": now, "machine": machine(), "commit": commit(),
                   "targets": [{"target": t, "measured": m, "verdict": v.strip("*")}
                               for t, m, v in rows],
                   **{k: v for k, v in data.items() if v},
                   "plots": sorted(plots)}, f, indent=1)
    print(f"wrote {args.out}/report.md, report.json" +
          "".join(f", {n}" for n in sorted(plots)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
