#!/usr/bin/env bash
# The main job, for now: create the embedded SQLite store with the sample catalog and
# builds, then walk one image build through its lifecycle — a milestone fails, the build
# stays there, is retried and resumes where it failed — and show what was recorded.
#
# Uses a scratch store under target/tour/ unless BUILDSTATE_DB is set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build -p buildstate --locked -q
bs() { target/debug/buildstate "$@"; }
say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
show() { printf '$ buildstate %s\n' "$*"; bs "$@"; }

scratch="$PWD/target/tour"
if [ -z "${BUILDSTATE_DB:-}" ]; then
    rm -rf "$scratch" && mkdir -p "$scratch"
    export BUILDSTATE_DB="$scratch/buildstate.db"
fi
export BUILDSTATE_ACTOR="tour"
work="$(dirname "$BUILDSTATE_DB")"
mkdir -p "$work"

say "Create the store with the sample catalog and a few builds in assorted states"
show init --sample
show build list

say "A new build of RHEL 9.6 base for AWS: it gets a unique, readable number"
B=$(bs build create --platform aws-commercial --os rhel-9.6 --image base --meta owner=platform-team)
echo "$B"

say "Milestones 0, 5 (kickstart) and 10 (green image) succeed"
for code in 0 5 10; do
    bs state start "$B" "$code" >/dev/null
    bs state complete "$B" "$code" >/dev/null
done
show build show "$B"

say "Milestone 15 (base-config) fails: the build stays at 15, it does not start over"
bs state start "$B" 15 >/dev/null
show state fail "$B" 15 --type ansible --class transient --component base-config \
    --error "TASK [repos : enable EPEL] fatal: Could not resolve host: mirror.example" \
    --details '{"playbook":"15-base-config.yml","task":"enable EPEL","host":"10.0.0.12"}' --exit-code 2

say "What next? resume says: retry 15 (exit code 0 = run state N)"
show resume "$B" || true

say "Completing 20 now is refused: the build is at 15 (exit code 4, nothing changed)"
show state complete "$B" 20 || echo "(exit code $?)"

say "Retry 15 and carry on to 30"
show retry "$B" --reason "mirror is back"
for code in 15 20 25 30; do
    bs state start "$B" "$code" >/dev/null
    bs state complete "$B" "$code" >/dev/null
done
show history "$B"

say "Record an artifact with its size and SHA-256, and look at failures"
qemu-img create -q -f qcow2 "$work/disk.qcow2" 64M 2>/dev/null || echo "disk image stand-in" > "$work/disk.qcow2"
show artifact add "$B" --name openstack-qcow2 --kind disk --uri "file://$work/disk.qcow2" --file "$work/disk.qcow2"
show artifact list "$B"
show failure list --build "$B"

say "The sample build that failed three times at 25 needs a person (resume exit code 11)"
F=$(bs build list --status failed --needs-intervention --json | sed -n 's/.*"number": *"\([^"]*\)".*/\1/p' | head -n 1)
show resume "$F" || echo "(exit code $?)"

say "Every build exports to one JSON document and imports back losslessly"
bs export "$B" --output "$work/$B.json"
echo "wrote $work/$B.json ($(wc -c < "$work/$B.json") bytes)"

say "Explore further"
cat <<EOT
  export BUILDSTATE_DB=$BUILDSTATE_DB
  target/debug/buildstate build list --status failed
  target/debug/buildstate build show $B
  target/debug/buildstate history $B --json
  target/debug/buildstate --help
EOT
