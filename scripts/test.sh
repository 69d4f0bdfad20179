#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, then runs
# format check, clippy, every test and cfn-lint. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it started, so a slow CI run shows where the time went.
step() { echo "==> $* (at ${SECONDS}s)"; }

VENV=target/venv
PY_REQS=scripts/test-requirements.txt

# 1. Python tools the tests use (moto's servers, cfn-lint), pinned, in a venv under target/.
# Installed in the background while cargo lints and builds (it is mostly downloads and
# unpacking); the tests wait for it. Its output goes to a log that is shown if it fails.
install_venv() {
  python3 -m venv "$VENV" &&
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PY_REQS" &&
    cp "$PY_REQS" "$VENV/.requirements"
}
venv_pid=
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$PY_REQS" "$VENV/.requirements"; then
  step "installing Python test tools into $VENV (in the background)"
  mkdir -p target
  install_venv >target/venv-install.log 2>&1 &
  venv_pid=$!
fi
wait_for_venv() {
  if [ -n "$venv_pid" ] && ! wait "$venv_pid"; then
    echo "installing the Python test tools failed:" >&2
    cat target/venv-install.log >&2
    exit 1
  fi
  venv_pid=
}
export CHIME_SYNC_VENV="$PWD/$VENV"

# 2. cargo-nextest if missing (CI machines have it; a fresh laptop may not).
if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The README's replay command builds the CLI without its `aws` feature: lint that build too, so
# a newcomer's first command cannot be the one that stopped compiling.
cargo clippy -p chime-sync --no-default-features --all-targets -- -D warnings
step "tests"
# One build of the binaries and the tests together: built apart, the tests' dev-dependency
# features would rebuild half the dependencies a second time. The end-to-end tests spawn these
# same debug bootstraps behind a mock Lambda Runtime API: a second, optimised build of them
# would compile every dependency a third time (after clippy's check and this build) for code
# that behaves the same; the benchmarks measure the release build (docs/TESTING.md). The
# binaries are the ones the tests spawn: those template.yaml deploys (its `Binary:` properties)
# and the CLI; the benchmarks' own are linted above and built by scripts/bench.sh.
bins=(--bin chime-sync)
deployed=0
while read -r bin; do
  bins+=(--bin "$bin")
  deployed=$((deployed + 1))
done < <(sed -n 's/^ *Binary: *\([A-Za-z0-9_-]*\) *$/\1/p' template.yaml)
if [ "$deployed" -lt 5 ]; then
  echo "template.yaml names $deployed 'Binary:' build properties; the functions are five" >&2
  exit 1
fi
cargo build --workspace --tests "${bins[@]}"
wait_for_venv
# Two tests a core: most end-to-end tests wait on the processes they drive (.config/nextest.toml
# also starts the longest first).
cargo nextest run --workspace --no-fail-fast --test-threads "$(( 2 * $(nproc) ))"
if [ -f template.yaml ]; then
  wait_for_venv
  step "cfn-lint template.yaml"
  "$VENV/bin/cfn-lint" template.yaml
fi
echo "==> all checks passed in ${SECONDS}s"
