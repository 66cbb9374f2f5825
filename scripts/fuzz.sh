#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default 60), starting
# from the corpus kept in fuzz/corpus/<target>. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the run. Works on the stable toolchain: cargo-fuzz's -Z flags
# are allowed with RUSTC_BOOTSTRAP=1, and no sanitizer is used (the code is safe Rust; what is
# hunted is panics, stack overflows, runaway memory and time).
#   FUZZ_SECONDS=600 make fuzz              every target, ten minutes each
#   FUZZ_TARGETS="xml_resource" make fuzz   one target
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${FUZZ_SECONDS:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
targets="${FUZZ_TARGETS:-$(cd fuzz && cargo fuzz list)}"
status=0
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  echo "==> fuzzing $t for ${seconds}s" >&2
  # 2 GiB and 10 s per input: anything beyond is a defect of its own (huge allocation, runaway loop).
  if ! (cd fuzz && cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1); then
    echo "==> $t: crash; the input is in fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit "$status"
