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
    start_postgres_tls
}

# ── TLS for PostgreSQL: a CA of our own and a server certificate it signs ───────────
# In a directory of the postgres user's: the server reads the key only when it is its
# own and private. The CA's certificate is readable by everyone, for the tests, which
# find it in BUILDSTATE_TEST_POSTGRES_CA. The URL above carries no sslmode, so the
# tests run over TLS by default (`prefer`); the TLS tests add `sslmode=…` themselves.
POSTGRES_TLS_DIR="/var/lib/postgresql/buildstate-tls"

# Makes the CA and the server certificate (EC P-256, names localhost, 127.0.0.1, ::1),
# unless the ones there are valid for another day and the server's is signed by the CA.
make_postgres_certs() {
    local dir="$POSTGRES_TLS_DIR" tmp
    if [ -s "$dir/ca.crt" ] && [ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ] \
        && openssl x509 -checkend 86400 -noout -in "$dir/ca.crt" >/dev/null 2>&1 \
        && openssl x509 -checkend 86400 -noout -in "$dir/server.crt" >/dev/null 2>&1 \
        && openssl verify -CAfile "$dir/ca.crt" "$dir/server.crt" >/dev/null 2>&1; then
        return 0
    fi
    echo "services: making a test CA and a server certificate for postgresql in $dir" >&2
    rm -rf "$dir"/.new.*
    tmp="$(mktemp -d "$dir/.new.XXXXXX")"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -days 3650 \
        -subj "/CN=buildstate test CA" -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 \
        -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >"$tmp/server.ext"
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
        -sha256 -days 825 -extfile "$tmp/server.ext" -out "$tmp/server.crt" 2>/dev/null
    chmod 0600 "$tmp/ca.key" "$tmp/server.key"
    chmod 0644 "$tmp/ca.crt" "$tmp/server.crt"
    chown postgres:postgres "$tmp/ca.key" "$tmp/ca.crt" "$tmp/server.key" "$tmp/server.crt"
    mv -f "$tmp/ca.key" "$tmp/ca.crt" "$tmp/server.key" "$tmp/server.crt" "$dir/"
    rm -rf "$tmp"
}

# A TLS connection that checks the certificate and the host name, made by libpq.
postgres_tls_works() {
    [ "$(psql "postgresql://buildstate:buildstate@127.0.0.1:5432/buildstate?sslmode=verify-full&sslrootcert=$POSTGRES_TLS_DIR/ca.crt&connect_timeout=5" \
        -qAtc "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>/dev/null)" = t ]
}

# Turns TLS on with those files (`ALTER SYSTEM` + reload: no restart, open sessions
# keep going) and checks it with libpq. Under a lock: test runs may start at once.
start_postgres_tls() {
    local dir="$POSTGRES_TLS_DIR" lock current wanted reloaded=""
    install -d -m 0755 -o postgres -g postgres "$dir"
    exec {lock}>"$dir/.lock"
    flock "$lock"
    make_postgres_certs
    wanted="on|$dir/server.crt|$dir/server.key"
    current="$(su postgres -c "psql -qAt" <<'SQL'
SELECT current_setting('ssl') || '|' || current_setting('ssl_cert_file') || '|' || current_setting('ssl_key_file')
SQL
)"
    if [ "$current" != "$wanted" ]; then
        su postgres -c "psql -v ON_ERROR_STOP=1 -qAt" >/dev/null <<SQL
ALTER SYSTEM SET ssl_cert_file = '$dir/server.crt';
ALTER SYSTEM SET ssl_key_file = '$dir/server.key';
ALTER SYSTEM SET ssl = on;
SQL
    fi
    # A server that still holds older files (a run stopped between making them and the
    # reload) is reloaded too.
    for _ in $(seq 20); do
        postgres_tls_works && break
        if [ -z "$reloaded" ]; then
            su postgres -c "psql -qAt -c 'SELECT pg_reload_conf()'" >/dev/null
            reloaded=1
        fi
        sleep 0.5
    done
    exec {lock}>&-
    postgres_tls_works || {
        echo "services: postgresql does not accept TLS with $dir (see /var/log/postgresql/postgresql-15-main.log)" >&2
        return 1
    }
    export BUILDSTATE_TEST_POSTGRES_CA="$dir/ca.crt"
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
