#!/usr/bin/env bash
# Installs what buildstate's tests and benchmark need on a fresh Debian machine.
# Safe to run any number of times. Sourced by test.sh and tour.sh.
set -euo pipefail

need_apt=()
# The benchmark compares against the sqlite3 command-line tool, the way the earlier
# shell scripts updated build state.
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
# examples/qemu-multicloud (and its CLI test) builds real disk images with qemu-img.
command -v qemu-img >/dev/null 2>&1 || need_apt+=(qemu-utils)

if ((${#need_apt[@]})); then
    echo "setup: installing ${need_apt[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is not on PATH; install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# The server's property-based API test (crates/buildstate-server) runs schemathesis.
# shellcheck source=scripts/schemathesis.sh
source "$(dirname "${BASH_SOURCE[0]}")/schemathesis.sh"
install_schemathesis
