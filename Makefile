# Invicta: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo

.PHONY: help run test lint fmt bench bench-http bench-search bench-auth bench-ingest bench-record bench-mixed bench-report plan-check fuzz clean-data

help:
	@echo "make run    build, start PostgreSQL if needed, load sample data, serve on http://127.0.0.1:8080/fhir"
	@echo "make test   every test of the workspace, end-to-end tests against a real PostgreSQL"
	@echo "make lint   rustfmt and clippy, as CI runs them"
	@echo "make bench  every benchmark below, then target/bench/report.md, report.json and SVG plots against data size (about 2.5 hours)"
	@echo "make bench-http    create/read throughput over HTTP beside the raw pgbench ceiling (~3 min)"
	@echo "make bench-search  search req/s and p50/p95/p99 over a generated care record, 100k and 1M resources, beside pgbench on the same SQL; sizes and WAL per resource (~45 min)"
	@echo "make bench-auth    what token checks and policy, the relationship lookup and the audit trail cost, side by side; searches before and after 1,000,000 AuditEvents (~30 min)"
	@echo "make bench-record  a person's whole record: \$$timeline, \$$everything and a per-type search at 100k and 1M resources (~20 min)"
	@echo "make bench-mixed   a clinical day: 90% reads, searches, \$$everything, \$$timeline and 10% feed transactions, auth and audit on, 10 minutes, req/s, p99 and server memory per minute (~15 min)"
	@echo "make bench-ingest  ingest resources/s: single creates, 100-entry transaction Bundles, invicta load; 500k resources (~10 min)"
	@echo "make bench-report  rebuild target/bench/report.md, report.json and the plots from the results the benchmarks left"
	@echo "make fuzz   every cargo-fuzz target for FUZZ_SECONDS each (default 60; FUZZ_TARGETS picks some)"
	@echo "make plan-check    SQL and plans of the common searches into crates/search/PLANS.md; fails on a sequential scan"

run:
	@scripts/run.sh

test:
	@scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: bench-http bench-search bench-auth bench-ingest bench-record bench-mixed
	@python3 bench/report.py

bench-report:
	@python3 bench/report.py

bench-http:
	@scripts/bench.sh

bench-search:
	@scripts/bench-search.sh $(if $(PATIENTS),--patients $(PATIENTS))

bench-auth:
	@scripts/bench-auth.sh

bench-mixed:
	@scripts/bench-mixed.sh

bench-record:
	@scripts/bench-record.sh

bench-ingest:
	@scripts/bench-ingest.sh

fuzz:
	@scripts/fuzz.sh

plan-check:
	@scripts/plan-check.sh

clean-data:
	@scripts/ensure-postgres.sh purge
	rm -rf .data
