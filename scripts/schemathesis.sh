#!/usr/bin/env bash
# Installs schemathesis and openapi-spec-validator (PyPI, in a venv of their own) for
# the server's API tests, idempotently: a venv that already has the pinned versions is
# left alone. Sourced by setup.sh; exports BUILDSTATE_SCHEMATHESIS, the `st` that the
# test runs (the validator is beside it, `openapi-spec-validator`); in CI a missing one
# fails that test, it never skips.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
SPEC_VALIDATOR_VERSION="0.9.0"
SCHEMATHESIS_VENV="${BUILDSTATE_TOOLS_DIR:-$HOME/.cache/buildstate}/schemathesis-$SCHEMATHESIS_VERSION"

install_schemathesis() {
    local venv="$SCHEMATHESIS_VENV"
    local want="schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$SPEC_VALIDATOR_VERSION"
    if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ] || ! [ -x "$venv/bin/st" ]; then
        echo "setup: installing $want in $venv" >&2
        rm -rf "$venv"
        # Debian's python, not a pyenv shim: the venv must not depend on a shell's PATH.
        local py=/usr/bin/python3
        [ -x "$py" ] || py="$(command -v python3)"
        "$py" -m venv "$venv"
        # shellcheck disable=SC2086 # two requirements, split on purpose
        "$venv/bin/pip" install -q --disable-pip-version-check $want >&2
        echo "$want" >"$venv/.installed"
    fi
    export BUILDSTATE_SCHEMATHESIS="$venv/bin/st"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    install_schemathesis
    echo "$BUILDSTATE_SCHEMATHESIS"
fi
