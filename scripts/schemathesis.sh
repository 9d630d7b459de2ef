#!/usr/bin/env bash
# Installs schemathesis (PyPI, in a venv of its own) for the server's property-based API
# test, idempotently: a venv that already has the pinned version is left alone. Sourced
# by setup.sh; exports BUILDSTATE_SCHEMATHESIS, the `st` that test runs (in CI a missing
# one fails that test, it never skips).
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
SCHEMATHESIS_VENV="${BUILDSTATE_TOOLS_DIR:-$HOME/.cache/buildstate}/schemathesis-$SCHEMATHESIS_VERSION"

install_schemathesis() {
    local venv="$SCHEMATHESIS_VENV"
    if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
        echo "setup: installing schemathesis $SCHEMATHESIS_VERSION in $venv" >&2
        rm -rf "$venv"
        # Debian's python, not a pyenv shim: the venv must not depend on a shell's PATH.
        local py=/usr/bin/python3
        [ -x "$py" ] || py="$(command -v python3)"
        "$py" -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
    fi
    export BUILDSTATE_SCHEMATHESIS="$venv/bin/st"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    install_schemathesis
    echo "$BUILDSTATE_SCHEMATHESIS"
fi
