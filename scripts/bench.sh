#!/usr/bin/env bash
# Rebuilds everything BENCHMARKS.md measures, then runs chime-sync-bench, which writes it.
#
#   bash scripts/bench.sh                # build, then measure (see docs/PERFORMANCE.md for times)
#   bash scripts/bench.sh --build-only   # build only
#   bash scripts/bench.sh -- --runs 5    # pass options on to chime-sync-bench
#
# What it builds (docs/PERFORMANCE.md says why each is measured):
#  1. the functions, the no-SDK reference and chime-sync-bench (release profile);
#  2. the naive floor, bench/bare-trigger, in its own workspace (target/bare-trigger);
#  3. the functions again at opt-level "s" (target/variant-opts), measured beside the
#     profile's own build ("z"): the choice between the two is what stays in question
#     (docs/PERFORMANCE.md; opt-level 3 was measured once, larger and over the RSS target,
#     and is no longer rebuilt every run);
#  4. the arm64 artifacts with `sam build` (.aws-sam/build), as deployed; see arm64() below;
#  5. criterion's per-event figures, and bench/node's pinned npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=true ;;
    --) shift; bench_args=("$@"); break ;;
    *) bench_args+=("$1") ;;
  esac
  shift
done

VARIANTS=(--variant opt-level=s=target/variant-opts/release)
VENV=target/bench-venv
# sam build and cargo-lambda, pinned (scripts/bench-requirements.txt), in a venv of their own.
BENCH_REQS=scripts/bench-requirements.txt

step() { echo "==> $*"; }

step "release build: functions, no-SDK reference, chime-sync-bench"
cargo build --release --workspace --bins

step "naive floor (bench/bare-trigger, its own workspace)"
cargo build --release --locked --manifest-path bench/bare-trigger/Cargo.toml \
  --target-dir target/bare-trigger

# --workspace, like the profile's build above and like `sam build` (which selects the default
# members): cargo unifies features over the packages it builds, and the functions built alone
# (`-p`) came out smaller than built with the workspace (docs/PERFORMANCE.md).
for level in s; do
  step "variant: the functions at opt-level $level"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=$level cargo build --release --workspace --bins \
    --target-dir "target/variant-opt$level"
done

# The arm64 artifacts, built the way `sam build` builds them for deployment: SAM's
# rust-cargolambda builder runs `cargo lambda build --release --arm64 --bin <name>` at the
# root. cargo-lambda needs the aarch64-unknown-linux-gnu standard library and a linker:
# - with rustup's own target (`rustup target add aarch64-unknown-linux-gnu`) and Zig (pip's
#   cargo-lambda brings it), nothing else;
# - where rustup cannot download targets (this project's machines reach package registries
#   only), Debian's rustc-web ships the standard library for arm64: rustc-web, cargo-web,
#   libstd-rust-web-dev:arm64 (`dpkg --add-architecture arm64`), and gcc-aarch64-linux-gnu as
#   the linker. That toolchain is linked into rustup as `chime-sync-arm64` for this build
#   only (`RUSTUP_TOOLCHAIN`); it is Debian's rustc, one release newer than the workspace's.
arm64() {
  if [ ! -x "$VENV/bin/sam" ] || ! cmp -s "$BENCH_REQS" "$VENV/.requirements"; then
    step "installing sam and cargo-lambda into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$BENCH_REQS"
    cp "$BENCH_REQS" "$VENV/.requirements"
  fi
  local toolchain=""
  if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    toolchain="$(rustup show active-toolchain | cut -d' ' -f1)"
  elif [ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] && [ -x /usr/bin/rustc ] \
      && [ -x /usr/bin/cargo ] && command -v aarch64-linux-gnu-gcc >/dev/null; then
    toolchain=chime-sync-arm64
    rustup toolchain link "$toolchain" /usr >/dev/null
  else
    echo "    no aarch64 standard library: install rustup's target, or (Debian 12) run" >&2
    echo "    dpkg --add-architecture arm64 && apt-get update && apt-get install -y \\" >&2
    echo "      rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu" >&2
    return 1
  fi
  step "arm64: sam build (cargo-lambda, toolchain $toolchain)"
  PATH="$PWD/$VENV/bin:$PATH" \
  RUSTUP_TOOLCHAIN="$toolchain" \
  CARGO_LAMBDA_COMPILER=cargo \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
  SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 \
    "$VENV/bin/sam" build --template template.yaml --build-dir .aws-sam/build \
      --parameter-overrides Architecture=arm64
}
if ! arm64; then
  echo "    arm64 sizes will be reported as not measured" >&2
fi

step "criterion: per-event handler cost"
cargo bench -p chime-sync-core --bench handlers

step "bench/node: npm ci"
npm ci --prefix bench/node --no-audit --no-fund

if [ "$build_only" = true ]; then
  step "built; measure with: target/release/chime-sync-bench ${VARIANTS[*]}"
  exit 0
fi
step "measuring (writes BENCHMARKS.md)"
# The binary step 1 built: `cargo run -p chime-sync-bench` would rebuild its dependencies with
# the features of that one package (minutes), for the same program.
target/release/chime-sync-bench "${VARIANTS[@]}" "${bench_args[@]}"
