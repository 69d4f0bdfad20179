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
CARGO_TARGET_DIR=$dir CARGO_PROFILE_RELEASE_STRIP=false \
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release -p post-confirmation -p chime-sync-bench --bins

total() {
  callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

for bootstrap in post-confirmation bench-no-sdk-trigger; do
  for n in 100 600; do
    "$dir/release/chime-sync-bench" --profile "$bootstrap" --events "$n" -- \
      valgrind --tool=callgrind --callgrind-out-file="$dir/$bootstrap.$n.callgrind" >/dev/null
  done
  short=$(total "$dir/$bootstrap.100.callgrind")
  long=$(total "$dir/$bootstrap.600.callgrind")
  echo "$bootstrap: $(((long - short) / 500)) instructions per warm invocation" \
    "(profiles: $dir/$bootstrap.{100,600}.callgrind)"
done
