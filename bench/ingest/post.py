#!/usr/bin/env python3
"""post.py: POSTs transaction Bundles (one per line of --input, from gen.py bundles) to
BASE/fhir with N worker threads, each on its own keep-alive connection, and checks every answer.

    post.py --base-url http://127.0.0.1:8183/fhir --input bundles.ndjson [--workers 4]
            [--limit N] [--failures FILE] [--progress 10]

Each request: `POST /fhir`, `Content-Type: application/fhir+json`, `Prefer: return=minimal`.
An answer counts as good when it is 200 with a Bundle of type `transaction-response` whose
entries all have a `response.status` of 200 or 201 and which has as many entries as the request.
Anything else is a failure: its status and the OperationOutcome's text are tallied, the first
ones written in full to --failures, and the run goes on.

The Bundles are read from the file as they are sent (reading a line costs nothing next to
sending it); the clock starts when the workers start. At the end one line goes to stdout:

  INGEST bundles=N resources=N seconds=S rps=R bundles_per_s=B p50_ms=.. p95_ms=.. p99_ms=..
         max_ms=.. failures=N created=N unchanged=N bytes_sent=N driver_cpu_s=C driver_cpu_pct=P

resources counts the entries of the good Bundles; created the 201 entries, unchanged the 200
ones; driver_cpu_pct is this process's CPU time (all threads) over the wall time, in percent of
one core. Then, when Bundles failed, up to ten lines `FAILED <count> x HTTP <status>: <text>`
(the kinds of failure, numbers in the text replaced by N). Exit status 1 when any Bundle failed. Python 3.9+ standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter


def outcome_text(body: bytes) -> str:
    """The diagnostics of an OperationOutcome (or the start of whatever the body is)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace").strip()
    texts = []
    if isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome":
        for issue in doc.get("issue", []):
            t = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            loc = issue.get("expression") or issue.get("location")
            texts.append(f"{t}{' at ' + ','.join(loc) if loc else ''}")
        return " | ".join(texts)[:600]
    return json.dumps(doc)[:300]


class Run:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.input = open(args.input, "rb")
        self.taken = 0
        self.latencies = []
        self.resources = 0
        self.created = 0
        self.unchanged = 0
        self.good = 0
        self.failures = 0
        self.failure_kinds = Counter()
        self.failure_log = open(args.failures, "w", encoding="utf-8") if args.failures else None
        self.failures_logged = 0
        self.bytes_sent = 0
        self.stop = False

    def next_bundle(self):
        with self.lock:
            if self.stop or (self.args.limit and self.taken >= self.args.limit):
                return None, None
            line = self.input.readline()
            if not line.strip():
                return None, None
            self.taken += 1
            return self.taken, line.rstrip(b"\n")

    def fail(self, n: int, status, detail: str, body: bytes) -> None:
        with self.lock:
            self.failures += 1
            # Tallied without the numbers (ids, NHS numbers, entry indexes) that differ per Bundle.
            self.failure_kinds[f"{status}: {re.sub(r'[0-9]+', 'N', detail[:200])}"] += 1
            if self.failure_log and self.failures_logged < 20:
                self.failures_logged += 1
                self.failure_log.write(f"--- bundle {n}: HTTP {status}: {detail}\n")
                self.failure_log.write(body[:20000].decode("utf-8", "replace") + "\n")
                self.failure_log.flush()

    def worker(self) -> None:
        url = urllib.parse.urlsplit(self.args.base_url)
        path = url.path.rstrip("/") or "/"
        headers = {
            "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json",
            "Prefer": "return=minimal",
        }
        if os.environ.get("BENCH_TOKEN"):
            headers["Authorization"] = "Bearer " + os.environ["BENCH_TOKEN"]
        conn = None
        while True:
            n, body = self.next_bundle()
            if body is None:
                break
            entries = body.count(b'"request":')
            t0 = time.perf_counter()
            status, data = None, b""
            for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=self.args.timeout)
                    conn.request("POST", path, body=body, headers=headers)
                    resp = conn.getresponse()
                    status, data = resp.status, resp.read()
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (http.client.HTTPException, OSError) as e:
                    if conn is not None:
                        conn.close()
                        conn = None
                    if attempt == 2:
                        status, data = "socket", str(e).encode()
            elapsed = time.perf_counter() - t0
            self.check(n, entries, status, data, elapsed, len(body))
        if conn is not None:
            conn.close()

    def check(self, n, entries, status, data, elapsed, sent) -> None:
        if status != 200:
            self.fail(n, status, outcome_text(data) if status != "socket" else data.decode(), data)
            return
        try:
            doc = json.loads(data)
        except ValueError:
            self.fail(n, status, "answer is not JSON", data)
            return
        if doc.get("resourceType") != "Bundle" or doc.get("type") != "transaction-response":
            self.fail(n, status, f"answer is a {doc.get('resourceType')} of type {doc.get('type')}, "
                                 "not a transaction-response Bundle", data)
            return
        got = doc.get("entry") or []
        statuses = Counter(str((e.get("response") or {}).get("status", "")).split(" ")[0] for e in got)
        bad = {s: c for s, c in statuses.items() if s not in ("200", "201")}
        if bad or len(got) != entries:
            self.fail(n, status, f"entries {dict(statuses)} ({len(got)} for {entries} sent)", data)
            return
        with self.lock:
            self.good += 1
            self.resources += len(got)
            self.created += statuses.get("201", 0)
            self.unchanged += statuses.get("200", 0)
            self.latencies.append(elapsed)
            self.bytes_sent += sent

    def progress(self, started: float) -> None:
        last_t, last_n = started, 0
        while not self.stop:
            time.sleep(self.args.progress)
            if self.stop:
                break
            with self.lock:
                n, f = self.resources, self.failures
            now = time.monotonic()
            print(f"  {now - started:6.0f}s  {n:>9} resources  {(n - last_n) / (now - last_t):8.0f}/s"
                  f"{'  ' + str(f) + ' failed bundles' if f else ''}", file=sys.stderr, flush=True)
            last_t, last_n = now, n


def pct(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, int(len(sorted_values) * p / 100 + 0.999999) - 1))
    return sorted_values[k]


def main() -> None:
    ap = argparse.ArgumentParser(description="POST transaction Bundles and check the answers")
    ap.add_argument("--base-url", required=True, help="the FHIR base, e.g. http://127.0.0.1:8183/fhir")
    ap.add_argument("--input", required=True, help="Bundles, one per line (gen.py bundles)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--limit", type=int, default=0, help="send only the first N Bundles")
    ap.add_argument("--failures", help="write the first failed answers here")
    ap.add_argument("--progress", type=float, default=10, help="seconds between progress lines")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per request")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers must be positive")

    run = Run(args)
    cpu0 = os.times()
    started = time.monotonic()
    threads = [threading.Thread(target=run.worker, daemon=True) for _ in range(args.workers)]
    for t in threads:
        t.start()
    ticker = threading.Thread(target=run.progress, args=(started,), daemon=True)
    if args.progress > 0:
        ticker.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        run.stop = True
        raise
    seconds = time.monotonic() - started
    cpu1 = os.times()
    run.stop = True
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    lat = sorted(run.latencies)
    ms = lambda s: s * 1000  # noqa: E731
    print(f"INGEST bundles={run.taken} resources={run.resources} seconds={seconds:.3f} "
          f"rps={run.resources / seconds if seconds else 0:.1f} "
          f"bundles_per_s={run.good / seconds if seconds else 0:.2f} "
          f"p50_ms={ms(pct(lat, 50)):.1f} p95_ms={ms(pct(lat, 95)):.1f} p99_ms={ms(pct(lat, 99)):.1f} "
          f"max_ms={ms(lat[-1] if lat else 0):.1f} failures={run.failures} created={run.created} "
          f"unchanged={run.unchanged} bytes_sent={run.bytes_sent} driver_cpu_s={cpu:.2f} "
          f"driver_cpu_pct={100 * cpu / seconds if seconds else 0:.1f}", flush=True)
    for kind, count in run.failure_kinds.most_common(10):
        print(f"FAILED {count} x HTTP {kind}", flush=True)
    if run.failures:
        print(f"post.py: {run.failures} of {run.taken} Bundles failed:", file=sys.stderr)
        for kind, count in run.failure_kinds.most_common(10):
            print(f"  {count} x HTTP {kind}", file=sys.stderr)
        if run.failure_log:
            print(f"  (the first answers in full: {args.failures})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
