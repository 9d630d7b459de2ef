#!/usr/bin/env bash
# Runs every check CI runs, from a fresh clone: formatting, lints, every test (unit,
# property, conformance, CLI integration with the real binary, concurrency with real
# processes), and a quick smoke run of the benchmark so it cannot rot.
# Idempotent; installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/setup.sh
source scripts/setup.sh
# shellcheck source=scripts/services.sh
source scripts/services.sh
start_services

step() { printf '\n==> %s\n' "$*" >&2; }

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "benchmark smoke run (figures are not asserted: machines are noisy)"
cargo build --workspace --locked --bins
target/debug/buildstate-bench --quick

step "tests"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
