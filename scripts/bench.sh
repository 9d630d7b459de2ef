#!/usr/bin/env bash
# The benchmark of issue 2, in release mode: Store API vs raw SQLite, the CLI vs the
# sqlite3 tool, and the CLI's peak memory. Prints ratios against baselines measured in
# the same run. Pass --quick for a smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# shellcheck source=scripts/services.sh
source scripts/services.sh
start_services
cargo build --release --workspace --locked --bins -q
exec target/release/buildstate-bench "$@"
