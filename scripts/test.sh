#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, then runs
# format check, clippy, every test and cfn-lint. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/venv
PY_REQS=scripts/test-requirements.txt

# 1. Python tools the tests use (moto's SQS server, cfn-lint), pinned, in a venv under target/.
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$PY_REQS" "$VENV/.requirements"; then
  echo "==> installing Python test tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PY_REQS"
  cp "$PY_REQS" "$VENV/.requirements"
fi
export CHIME_SYNC_VENV="$PWD/$VENV"

# 2. cargo-nextest if missing (CI machines have it; a fresh laptop may not).
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> tests"
# Build the Lambda bootstrap binaries first: end-to-end tests spawn them.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast
if [ -f template.yaml ]; then
  echo "==> cfn-lint template.yaml"
  "$VENV/bin/cfn-lint" template.yaml
fi
echo "==> all checks passed"
