#!/usr/bin/env bash
# The benchmark of issue 2, in release mode: Store API vs raw SQLite, the CLI vs the
# sqlite3 tool, and the CLI's peak memory. Prints ratios against baselines measured in
# the same run. Pass --quick for a smoke run.
#
# With --reports, only the report benchmark (h) runs: every report on a generated year
# of 100,000 builds in SQLite and PostgreSQL (5,000 in the JSON-file store), against
# the targets. It needs only the bench binary, so only that is built. Generating takes
# a few minutes; --reports-db PATH (and --reports-pg-schema NAME) keep the data set and
# reuse it next time:
#   scripts/bench.sh --reports --reports-db /tmp/bench-reports/reports.db
#
# With --http, only the HTTP API benchmark (i); with --ansible, only the Ansible callback
# benchmark (j): a 200-task playbook with and without the buildstate callback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# shellcheck source=scripts/services.sh
source scripts/services.sh
start_services
reports=""
for arg in "$@"; do
    [ "$arg" = "--reports" ] && reports=1
done
if [ -n "$reports" ]; then
    cargo build --release --locked -p buildstate-bench -q
else
    cargo build --release --workspace --locked --bins -q
fi
exec target/release/buildstate-bench "$@"
