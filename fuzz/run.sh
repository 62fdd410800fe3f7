#!/usr/bin/env bash
# make fuzz-cargo: every cargo-fuzz target coverage-guided (libFuzzer, nightly) for a bounded time.
#
#   fuzz/run.sh SECONDS [TARGET...]      (no target: every one of fuzz/Cargo.toml)
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/, only read) plus what earlier
# runs found (fuzz/runs/<target>/, where new inputs go; not committed, nothing is minimised);
# crashes go to fuzz/artifacts/<target>/. libFuzzer runs in fork mode and keeps going after a
# crash, so each target gets its whole time. Prints executions, coverage (cov: edges, ft:
# features) and crashes per target (also in fuzz/runs/summary.txt); exits 1 if anything crashed.
set -u
seconds=${1:?seconds per target}
shift
cd "$(dirname "$0")"
cargo=${CARGO:-cargo}

if ! "$cargo" +nightly --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! "$cargo" fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  "$cargo" install cargo-fuzz || exit 1
fi
[ $# -gt 0 ] || set -- $("$cargo" +nightly fuzz list)
"$cargo" +nightly fuzz build 2>&1 | tail -n 3
[ "${PIPESTATUS[0]}" = 0 ] || { echo "fuzz: the targets do not build" >&2; exit 1; }

mkdir -p runs
summary=runs/summary.txt
printf '%-14s %10s %8s %8s %8s %7s %s\n' target execs cov ft corpus crashes seconds | tee "$summary"
failed=0
for t in "$@"; do
  mkdir -p "runs/$t" "artifacts/$t"
  log="runs/$t.log"
  before=$(find "artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  "$cargo" +nightly fuzz run "$t" "runs/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
  status=$?
  took=$(( $(date +%s) - start ))
  # The last status line: "#EXECS: cov: N ft: N corp: N exec/s: N oom/timeout/crash: a/b/c ...".
  line=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$line")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$line")
  crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  printf '%-14s %10s %8s %8s %8s %7s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" "$took" | tee -a "$summary"
  if [ "$crashes" -gt 0 ] || [ -z "$line" ] || { [ "$status" != 0 ] && [ "$status" != 1 ]; }; then
    failed=1
    echo "  $t: exit status $status, log fuzz/$log; new artifacts:" $(ls -t "artifacts/$t" | head -n "$crashes")
  fi
done
[ "$failed" = 0 ] || echo "fuzz: crashes found: reproduce one with cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE"
exit "$failed"
