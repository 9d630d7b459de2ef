#!/usr/bin/env bash
# Installs Python selenium (PyPI, in a venv of its own) for the dashboard's browser
# test, idempotently: a venv that already has the pinned version is left alone. Sourced
# by setup.sh; exports BUILDSTATE_SELENIUM_PYTHON, the python that the test runs its
# driver script with (the browser itself is Debian's, see install_chromium in
# setup.sh); in CI a missing one fails that test, it never skips.
set -euo pipefail

SELENIUM_VERSION="4.51.0"
SELENIUM_VENV="${BUILDSTATE_TOOLS_DIR:-$HOME/.cache/buildstate}/selenium-$SELENIUM_VERSION"

install_selenium() {
    local venv="$SELENIUM_VENV"
    local want="selenium==$SELENIUM_VERSION"
    if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ] || ! [ -x "$venv/bin/python" ]; then
        echo "setup: installing $want in $venv" >&2
        rm -rf "$venv"
        # Debian's python, not a pyenv shim: the venv must not depend on a shell's PATH.
        local py=/usr/bin/python3
        [ -x "$py" ] || py="$(command -v python3)"
        "$py" -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "$want" >&2
        echo "$want" >"$venv/.installed"
    fi
    export BUILDSTATE_SELENIUM_PYTHON="$venv/bin/python"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    install_selenium
    echo "$BUILDSTATE_SELENIUM_PYTHON"
fi
