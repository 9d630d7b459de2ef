#!/usr/bin/env bash
# Starts the real services the tests use, on 127.0.0.1, idempotently (safe to run
# again; a service already up is left alone), and exports where they are. Sourced by
# test.sh. In CI every one must come up: a missing service fails the run, never skips.
set -euo pipefail

# ── PostgreSQL 15 (Debian's cluster 15/main) ────────────────────────────────────────
start_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "services: installing postgresql" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    pg_ctlcluster 15 main start >/dev/null 2>&1 || true
    for _ in $(seq 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.5
    done
    pg_isready -q -h 127.0.0.1 -p 5432 || { echo "services: postgresql did not start" >&2; return 1; }
    su postgres -c "psql -v ON_ERROR_STOP=1 -qAt" >/dev/null <<'SQL'
SELECT 'CREATE ROLE buildstate LOGIN SUPERUSER PASSWORD ''buildstate''' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='buildstate') \gexec
SELECT 'CREATE DATABASE buildstate OWNER buildstate' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname='buildstate') \gexec
SQL
    export BUILDSTATE_TEST_POSTGRES_URL="postgres://buildstate:buildstate@127.0.0.1:5432/buildstate"
}

# Object-store emulators live in their own file.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -f "$here/services-objstore.sh" ]; then
    # shellcheck source=scripts/services-objstore.sh
    source "$here/services-objstore.sh"
fi

start_services() {
    start_postgres
    if declare -F start_object_stores >/dev/null; then
        start_object_stores
    fi
}
