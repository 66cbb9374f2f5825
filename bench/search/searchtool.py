#!/usr/bin/env python3
"""searchtool.py: helpers of scripts/plan-check.sh and scripts/bench-search.sh (stdlib only).

  searchtool.py plans --base http://127.0.0.1:8182/fhir --values values.tsv --out PLANS.md
                      [--header-note TEXT]
      Runs each care-record query shape (SHAPES below) with `_explain=true` (the server must run
      with INVICTA_SEARCH_EXPLAIN=on), writes the FHIR query, SQL and plan of each to --out and
      prints one summary line per shape. Exits 1 naming the shapes whose plan has a sequential
      scan of `resource` or of an index table (`idx_*`) (or, with --max-removed N, a node whose
      filter threw away more than N rows; with --fail-on-misestimate, a scan returning 10 times
      the rows the planner expected); 2 on any other failure. Misestimates are always reported.

  searchtool.py probe --base http://127.0.0.1:8183 --values values.tsv --template T
                      [--samples 100]
      Sends --samples searches built from the URL template (placeholders as in search.lua) with
      random rows of the value list, checks each answers 200 with a searchset Bundle, and prints
      `PROBE samples=N matches_mean=M included_mean=I empty_pct=E bytes_mean=B ms_mean=T`.

  searchtool.py pick --values values.tsv
      Prints the patient row the plan check uses (tab-separated).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import sys
import time
import urllib.parse

NHS = "https://fhir.nhs.uk/Id/nhs-number"
SAFEGUARDING = "https://invicta.example.org/fhir/CodeSystem/flag-category|safeguarding"
# One year before the generator's reference date (2026-11-01).
RECENT = "2025-11-01"

# (slug, title, query template, what a good plan looks like)
SHAPES = [
    ("patient-nhs", "Patient by NHS number",
     "Patient?identifier=" + NHS + "|{nhs}",
     "idx_token_lookup finds the one token row (code and system), then resource_pkey fetches "
     "the Patient."),
    ("patient-family-birthdate", "Patient by family-name prefix and birth date",
     "Patient?family={family}&birthdate={birthdate}",
     "idx_string_lookup range scan on the normalised prefix (text_pattern_ops) and/or "
     "idx_date_lookup on the birth date, intersected, then resource_pkey."),
    ("patient-name-contains", "Patient by part of a name (:contains)",
     "Patient?name:contains={infix}",
     "idx_string_contains (trigram GIN over the normalised names and addresses) gives the rows "
     "holding the text; res_type and param are checked per row; then resource_pkey."),
    ("patient-id", "Patient by _id",
     "Patient?_id={id}",
     "resource_type_id (res_type, id) unique index: one row."),
    ("observation-labs-recent", "Recent lab results of a patient, newest first",
     "Observation?patient={id}&category=laboratory&date=ge" + RECENT + "&_sort=-date",
     "idx_reference_lookup on (res_type, param, target_id) gives the patient's Observations; "
     "category and date are checked per row (idx_token_rid_param_code / idx_date_rid or the lookup "
     "indexes); the sort key is a per-row subquery on idx_date_rid; a top-N sort of a few "
     "hundred rows at most."),
    ("observation-patient-code", "A patient's results for one test (potassium)",
     "Observation?patient={id}&code=http://loinc.org|2823-3",
     "idx_reference_lookup for the patient and idx_token_lookup / idx_token_rid_param_code for the "
     "code, then resource_pkey."),
    ("observation-code-subject-chain", "Results for one test (haemoglobin) by the patient's NHS "
     "number (chain)",
     "Observation?code=http://loinc.org|718-7&subject:Patient.identifier=" + NHS + "|{nhs}",
     "The chain resolves the NHS number through idx_token_lookup and resource, then "
     "idx_reference_lookup/idx_reference_target finds the Observations pointing at it; the "
     "code is checked per row. Never a scan of every haemoglobin result."),
    ("medication-active", "A patient's active medicines",
     "MedicationStatement?patient={id}&status=active",
     "idx_reference_lookup for the patient, status checked per row through idx_token_rid_param_code (or "
     "idx_token_lookup), then resource_pkey."),
    ("allergies", "A patient's allergies",
     "AllergyIntolerance?patient={id}",
     "idx_reference_lookup for the patient, then resource_pkey."),
    ("flags-active", "A patient's active alerts",
     "Flag?patient={id}&status=active",
     "idx_reference_lookup for the patient, status checked per row, then resource_pkey."),
    ("patient-has-safeguarding", "Patients with a safeguarding alert (_has)",
     "Patient?_has:Flag:patient:category=" + SAFEGUARDING,
     "idx_token_lookup finds the safeguarding Flags (about 3% of patients), idx_reference_rid "
     "their patient references, then resource_type_id the Patients; first page by rid."),
    ("compartment-observation-code", "Compartment search: a patient's potassium results",
     "Patient/{id}/Observation?code=http://loinc.org|2823-3",
     "resource_compartments (GIN) for the compartment and/or idx_token_lookup for the code, "
     "then resource_pkey."),
]

SEQ_SCAN = re.compile(r"(?:Parallel )?Seq Scan on (resource|idx_[a-z_]+)\b")


def ran(plan):
    """The plan's lines less the nodes run-time partition pruning left unexecuted (the audit
    trail's partition of an index table, for a clinical search): they read nothing."""
    return [ln for ln in plan.splitlines() if "(never executed)" not in ln]
SCAN_NODE = re.compile(
    r"((?:Parallel )?(?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan|Bitmap Heap Scan)"
    r"(?: Backward)?(?: using \S+)?(?: on \S+)?)")
EXEC_TIME = re.compile(r"Execution Time: ([0-9.]+) ms")
PLAN_TIME = re.compile(r"Planning Time: ([0-9.]+) ms")
REMOVED = re.compile(r"Rows Removed by (?:Filter|Join Filter|Index Recheck): (\d+)")
BUFFERS = re.compile(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?")
NODE = re.compile(r"^\s*(?:->\s*)?(.*?)\s+\(cost=[0-9.]+\.\.[0-9.]+ rows=(\d+) width=\d+\) "
                  r"\(actual time=[0-9.]+\.\.[0-9.]+ rows=(\d+) loops=(\d+)\)")


def misestimates(plan, factor=10, floor=100):
    """Scan nodes that returned at least `floor` rows per loop and `factor` times what the
    planner expected: the plan was chosen on a wrong estimate (typically an index scan over
    every resource of a type where the planner thought it would find one)."""
    out = []
    for line in plan.splitlines():
        m = NODE.match(line)
        if not m or "Scan" not in m.group(1):
            continue
        est, act = int(m.group(2)), int(m.group(3))
        if act >= floor and act >= factor * max(est, 1):
            out.append((m.group(1).strip(), est, act, int(m.group(4))))
    return out


def read_values(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(dict(zip(header, line.split("\t"))))
    if not rows:
        raise SystemExit(f"searchtool: no rows in {path}")
    return rows


def placeholders(row):
    return {
        "id": row["id"],
        "nhs": row["nhs"],
        "family": row["family"][:4].lower(),
        # Inside the name, not its start: what only :contains finds.
        "infix": row["family"][1:5].lower(),
        "birthdate": row["birthdate"],
    }


def fill(template, row, encode):
    """The template with {placeholders} filled; values percent-encoded when `encode`."""
    values = placeholders(row)

    def sub(m):
        v = values[m.group(1)]
        return urllib.parse.quote(v, safe="") if encode else v

    return re.sub(r"\{([a-z]+)\}", sub, template)


def encode_query(path_and_query):
    """Percent-encodes the values of a readable `Type?a=b|c&d=e` query (not the names)."""
    if "?" not in path_and_query:
        return path_and_query
    path, query = path_and_query.split("?", 1)
    parts = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        parts.append(f"{name}={urllib.parse.quote(value, safe='')}")
    return path + "?" + "&".join(parts)


def pick(rows):
    """The patient the plan check asks about: one with an active alert, an active medicine and
    an allergy record, at the 90th percentile of Observation count (a heavy, not freak, record).
    """
    good = [r for r in rows if int(r["active_flags"]) > 0 and int(r["active_meds"]) > 0
            and int(r["allergies"]) > 0 and int(r["observations"]) > 0]
    if not good:
        good = rows
    good.sort(key=lambda r: (int(r["observations"]), r["id"]))
    return good[min(len(good) - 1, int(len(good) * 0.9))]


class Client:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base.rstrip("/"))
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"searchtool: --base must be http://HOST:PORT[/PATH], got {base}")
        self.host, self.port, self.prefix = u.hostname, u.port or 80, u.path
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def get(self, path):
        for attempt in range(2):
            try:
                self.conn.request("GET", self.prefix + path,
                                  headers={"Accept": "application/fhir+json"})
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# plans
# ---------------------------------------------------------------------------------------------


def format_sql(sql):
    """Line breaks before the top-level clauses and before each AND of the WHERE list (the
    filter's conditions sit one parenthesis deep)."""
    lines, buf, depth, i, clause = [], "", 0, 0, ""
    while i < len(sql):
        c = sql[i]
        brk = None
        if depth == 0:
            for k in (" FROM ", " WHERE ", " ORDER BY ", " LIMIT "):
                if sql.startswith(k, i):
                    brk = k
                    break
        if brk is None and clause == "WHERE" and depth <= 1 and sql.startswith(" AND ", i):
            brk = " AND "
        if brk:
            lines.append(buf)
            clause = brk.strip()
            buf = ("  " if brk == " AND " else "") + brk.strip() + " "
            if clause == "AND":
                clause = "WHERE"
            i += len(brk)
            continue
        depth += c == "("
        depth -= c == ")"
        buf += c
        i += 1
    lines.append(buf)
    return "\n".join(line.rstrip() for line in lines if line.strip())


def reading(plan):
    scans = []
    for m in SCAN_NODE.finditer(plan):
        s = m.group(1)
        if s.startswith("Bitmap Heap Scan"):
            continue
        if s not in scans:
            scans.append(s)
    top = plan.splitlines()[0].strip() if plan else "?"
    top_node = top.split("  (")[0]
    rows = re.search(r"actual time=[0-9.]+\.\.[0-9.]+ rows=(\d+)", top)
    exec_ms = EXEC_TIME.search(plan)
    plan_ms = PLAN_TIME.search(plan)
    hit = read = 0
    # The first Buffers line belongs to the top node (totals of its subtree).
    b = BUFFERS.search(plan)
    if b:
        hit = int(b.group(1) or 0)
        read = int(b.group(2) or 0)
    removed = max((int(x) for x in REMOVED.findall(plan)), default=0)
    parts = []
    parts.append(f"{exec_ms.group(1) if exec_ms else '?'} ms execution"
                 f" (+{plan_ms.group(1) if plan_ms else '?'} ms planning)")
    parts.append(f"top node {top_node}" + (f" returning {rows.group(1)} rows" if rows else ""))
    parts.append(f"{hit + read} shared buffers ({read} read from outside shared_buffers)")
    parts.append("access: " + ("; ".join(scans) if scans else "no table access"))
    if removed:
        parts.append(f"at most {removed} rows removed by a filter in one node")
    return "; ".join(parts) + "."


def cmd_plans(args):
    rows = read_values(args.values)
    row = pick(rows)
    client = Client(args.base)
    results = []
    warned = {}
    for slug, title, template, expect in SHAPES:
        readable = fill(template, row, encode=False)
        path = "/" + encode_query(readable) + ("&" if "?" in readable else "?") + "_explain=true"
        status, body = client.get(path)
        if status != 200:
            print(f"searchtool: {slug}: HTTP {status}: {body[:2000].decode('utf-8', 'replace')}",
                  file=sys.stderr)
            return 2
        try:
            doc = json.loads(body)
            params = {p["name"]: p.get("valueString", "") for p in doc["parameter"]}
            sql, plan = params["sql"], params["plan"]
        except (ValueError, KeyError, TypeError):
            print(f"searchtool: {slug}: not an _explain answer (is INVICTA_SEARCH_EXPLAIN=on?): "
                  f"{body[:500].decode('utf-8', 'replace')}", file=sys.stderr)
            return 2
        seq = sorted({m.group(0) for ln in ran(plan) for m in SEQ_SCAN.finditer(ln)})
        removed = max((int(x) for x in REMOVED.findall(plan)), default=0)
        results.append((slug, title, readable, expect, sql, plan, seq, removed))
        mis = misestimates(plan)
        if mis:
            warned[slug] = mis

    degraded = [r for r in results if r[6]]
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("# Search query plans\n\n")
        out.write("<!-- Generated by scripts/plan-check.sh: do not edit by hand, run it again. -->\n\n")
        out.write(
            "The SQL Invicta runs for the most common care-record searches, and the plan "
            "PostgreSQL chose for it (`EXPLAIN (ANALYZE, BUFFERS)`, obtained with `_explain=true` "
            "and `INVICTA_SEARCH_EXPLAIN=on`). `scripts/plan-check.sh` (`make plan-check`) "
            "regenerates this file and fails when a plan scans `resource` or an `idx_*` table "
            "sequentially: every one of these searches must reach its rows through an index, "
            "whatever the size of the database.\n\n")
        if args.header_note:
            out.write(args.header_note.strip() + "\n\n")
        out.write(f"Values come from the generated population (`bench/generate.py values`): "
                  f"patient `{row['id']}` (NHS number {row['nhs']}, {row['family']}, born "
                  f"{row['birthdate']}, {row['observations']} Observations, "
                  f"{row['active_meds']} active medicines, {row['active_flags']} active alerts), "
                  f"chosen as the 90th percentile of Observation count among patients with an "
                  f"alert, a medicine and an allergy record. Bind values are not shown in the SQL "
                  f"(`$n`); `$1` is the searched types, `$2` the snapshot (largest `rid`) and the "
                  f"last one the page size plus one.\n\n")
        out.write("Not covered: `_include`/`_revinclude` (`_explain` shows the page query only) "
                  "and the `_total=accurate` count query.\n\n")
        out.write("Columns: the most rows a filter threw away in one plan node (a nested loop "
                  "re-reading an index shows here), and scans that returned at least 10 times "
                  "the rows the planner expected (a plan chosen on a wrong estimate: it may "
                  "read work proportional to the whole table). Plans can change after any "
                  "`ANALYZE`: PostgreSQL estimates a condition on an index table by multiplying "
                  "the selectivities of `res_type`, `param` and the value as if they were "
                  "independent, which they are not, so a run that shows no misestimate does not "
                  "prove the next one will not.\n\n")
        out.write("| # | shape | execution | rows removed by a filter | misestimated scans | "
                  "sequential scan of resource / idx_* |\n|---:|---|---:|---:|---|---|\n")
        for n, (slug, title, _q, _e, _s, plan, seq, removed) in enumerate(results, 1):
            t = EXEC_TIME.search(plan)
            mis = "; ".join(f"**{node}: {est} expected, {act} returned**"
                            for node, est, act, _l in warned.get(slug, [])) or "none"
            out.write(f"| {n} | [{title}](#{n}-{slug}) | {t.group(1) + ' ms' if t else '?'} | "
                      f"{removed} | {mis} | {'**' + ', '.join(seq) + '**' if seq else 'none'} |\n")
        out.write("\n")
        for n, (slug, title, readable, expect, sql, plan, seq, removed) in enumerate(results, 1):
            out.write(f'<a id="{n}-{slug}"></a>\n\n## {n}. {title}\n\n')
            out.write(f"`GET /fhir/{readable}`\n\n")
            out.write(f"Expected: {expect}\n\n")
            verdict = ("**DEGRADED: " + ", ".join(seq) + ".**" if seq else "No sequential scan.")
            for node, est, act, loops in warned.get(slug, []):
                verdict += (f" **Misestimate: {node} returned {act} rows"
                            f"{' per loop' if loops > 1 else ''} where the planner expected "
                            f"{est}.**")
            out.write(f"Reading: {reading(plan)} {verdict}\n\n")
            out.write("```sql\n" + format_sql(sql) + "\n```\n\n")
            out.write("```\n" + plan + "\n```\n\n")
    for n, (slug, title, _q, _e, _s, plan, seq, removed) in enumerate(results, 1):
        t = EXEC_TIME.search(plan)
        flag = "DEGRADED " + ", ".join(seq) if seq else "ok"
        extra = f" (a filter removed {removed} rows)" if removed >= 10_000 else ""
        for node, est, act, _l in warned.get(slug, []):
            extra += f" (misestimate: {node}: {est} rows expected, {act} returned)"
        print(f"{n:2d}. {slug:32s} {t.group(1) if t else '?':>9s} ms  {flag}{extra}")
    failed = bool(degraded)
    for slug, title, readable, _e, _s, plan, seq, removed in results:
        where = f"{slug} ({title}: GET /fhir/{readable})"
        if seq:
            lines = [ln.strip() for ln in ran(plan) if SEQ_SCAN.search(ln)]
            print(f"plan-check: {where} scans sequentially: " + " | ".join(lines),
                  file=sys.stderr)
        if args.max_removed and removed > args.max_removed:
            failed = True
            print(f"plan-check: {where}: a filter removed {removed} rows in one node (more than "
                  f"--max-removed {args.max_removed})", file=sys.stderr)
        if slug in warned:
            failed = failed or args.fail_on_misestimate
            print(f"plan-check: {'' if args.fail_on_misestimate else 'warning: '}{where}: "
                  f"misestimated scan: " + "; ".join(f"{n}: {e} rows expected, {a} returned"
                                                     for n, e, a, _ in warned[slug]),
                  file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# probe
# ---------------------------------------------------------------------------------------------


def cmd_probe(args):
    rows = read_values(args.values)
    rng = random.Random(args.seed)
    client = Client(args.base)
    matches = included = empty = total_bytes = 0
    elapsed = 0.0
    for _ in range(args.samples):
        path = fill(args.template, rng.choice(rows), encode=True)
        t0 = time.perf_counter()
        status, body = client.get(path)
        elapsed += time.perf_counter() - t0
        if status != 200:
            print(f"searchtool: GET {path}: HTTP {status}: "
                  f"{body[:2000].decode('utf-8', 'replace')}", file=sys.stderr)
            return 1
        doc = json.loads(body)
        if doc.get("resourceType") != "Bundle" or doc.get("type") != "searchset":
            print(f"searchtool: GET {path}: not a searchset Bundle", file=sys.stderr)
            return 1
        modes = [e.get("search", {}).get("mode") for e in doc.get("entry", [])]
        m = modes.count("match")
        matches += m
        included += modes.count("include")
        empty += m == 0
        total_bytes += len(body)
    n = args.samples
    print(f"PROBE samples={n} matches_mean={matches / n:.2f} included_mean={included / n:.2f} "
          f"empty_pct={100 * empty / n:.0f} bytes_mean={total_bytes / n:.0f} "
          f"ms_mean={1000 * elapsed / n:.2f}")
    return 0


# ---------------------------------------------------------------------------------------------
# ceiling
# ---------------------------------------------------------------------------------------------


def cmd_ceiling(args):
    """Writes the first-page statement of the template, filled from the middle row of the value
    list, with its values inlined (the server's `_explain=true`, `sql-with-values`), for pgbench."""
    rows = read_values(args.values)
    path = fill(args.template, rows[len(rows) // 2], encode=True)
    path += ("&" if "?" in path else "?") + "_explain=true"
    status, body = Client(args.base).get(path)
    if status != 200:
        print(f"searchtool: GET {path}: HTTP {status} (is INVICTA_SEARCH_EXPLAIN=on?)",
              file=sys.stderr)
        return 1
    params = {p["name"]: p.get("valueString") for p in json.loads(body).get("parameter", [])}
    sql = params.get("sql-with-values")
    if not sql:
        print(f"searchtool: GET {path}: no sql-with-values in the answer", file=sys.stderr)
        return 1
    with open(args.out, "w") as f:
        f.write(" ".join(sql.split()) + ";\n")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plans")
    p.add_argument("--base", required=True)
    p.add_argument("--values", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--header-note", default="")
    p.add_argument("--max-removed", type=int, default=0,
                   help="also fail when a plan node's filter removes more rows than this "
                        "(0: never)")
    p.add_argument("--fail-on-misestimate", action="store_true",
                   help="also fail when a scan returns 10 times the rows the planner expected "
                        "(at least 100)")
    q = sub.add_parser("probe")
    q.add_argument("--base", required=True)
    q.add_argument("--values", required=True)
    q.add_argument("--template", required=True)
    q.add_argument("--samples", type=int, default=100)
    q.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("ceiling")
    c.add_argument("--base", required=True)
    c.add_argument("--values", required=True)
    c.add_argument("--template", required=True)
    c.add_argument("-o", "--out", required=True)
    k = sub.add_parser("pick")
    k.add_argument("--values", required=True)
    args = parser.parse_args(argv)
    if args.command == "plans":
        return cmd_plans(args)
    if args.command == "probe":
        return cmd_probe(args)
    if args.command == "ceiling":
        return cmd_ceiling(args)
    print("\t".join(pick(read_values(args.values)).values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
