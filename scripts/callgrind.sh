#!/usr/bin/env bash
# Instructions per warm one-call invocation, counted by callgrind: post-confirmation and the
# no-SDK reference, the pair the warm-CPU target of BENCHMARKS.md compares. Load on the
# machine does not move these counts, so they settle what CPU time on a shared machine cannot.
#
#   bash scripts/callgrind.sh            # needs valgrind (Debian: apt-get install valgrind)
#
# Each bootstrap serves two long runs, of 100 and of 600 invocations, exactly as section 2 of
# BENCHMARKS.md serves them (chime-sync-bench --profile); start-up cancels out of the
# difference. The build is the release profile with symbols (not stripped, line tables), in
# its own target directory, so the profiles in target/callgrind/ can be read with
# `callgrind_annotate --inclusive=yes`. docs/PERFORMANCE.md says what the figures showed.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }

dir=target/callgrind
short_run=100
long_run=600
CARGO_TARGET_DIR=$dir CARGO_PROFILE_RELEASE_STRIP=false \
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release -p post-confirmation -p chime-sync-bench --bins

total() {
  callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

for bootstrap in post-confirmation bench-no-sdk-trigger; do
  for n in "$short_run" "$long_run"; do
    "$dir/release/chime-sync-bench" --profile "$bootstrap" --events "$n" -- \
      valgrind --tool=callgrind --callgrind-out-file="$dir/$bootstrap.$n.callgrind" >/dev/null
  done
  short=$(total "$dir/$bootstrap.$short_run.callgrind")
  long=$(total "$dir/$bootstrap.$long_run.callgrind")
  echo "$bootstrap: $(((long - short) / (long_run - short_run))) instructions per warm" \
    "invocation (profiles: $dir/$bootstrap.{$short_run,$long_run}.callgrind)"
done
