# shellcheck shell=sh disable=SC2034  # the variables are used by the steps that source this
# Sourced by every step of pipeline.yaml (POSIX sh): where this build's files live,
# the manifest of what was done to the image, and shared checks.
#
# The runner sets BUILDSTATE_BUILD, BUILDSTATE_STATE, BUILDSTATE_PLATFORM, BUILDSTATE_OS,
# BUILDSTATE_IMAGE, BUILDSTATE_DB, ... in every step's environment (docs/pipeline.md).

: "${BUILDSTATE_BUILD:?is not set: run this step through \`buildstate run pipeline.yaml\`}"
: "${BUILDSTATE_STATE:?is not set: run this step through \`buildstate run pipeline.yaml\`}"
: "${BUILDSTATE_PLATFORM:?is not set: run this step through \`buildstate run pipeline.yaml\`}"

# One directory per build, so that builds running side by side (--jobs) never share a
# file, and a resumed build finds what its earlier milestones made.
case "${WORK_DIR:-}" in
    '') WORK_ROOT=$PWD/work ;;
    /*) WORK_ROOT=$WORK_DIR ;;
    *) WORK_ROOT=$PWD/$WORK_DIR ;;
esac
WORK=$WORK_ROOT/$BUILDSTATE_BUILD
MANIFEST=$WORK/manifest.txt
DISK_SIZE=${DISK_SIZE:-1G}

# The buildstate binary running this pipeline, so that artifacts are recorded into the
# same store ($BUILDSTATE_DB) by the same version.
BUILDSTATE=${BUILDSTATE_BIN:-buildstate}

# The green-image marker lives at 1 MiB, where a first partition would start.
MARKER_SECTOR=2048

# The milestone a step works for: the runner's, unless the Packer template says which
# of the milestones its step passes this provisioner is (MILESTONE, MILESTONE_NAME).
MILESTONE=${MILESTONE:-$BUILDSTATE_STATE}
MILESTONE_NAME=${MILESTONE_NAME:-${BUILDSTATE_STATE_NAME:-?}}

# Appends one line to the manifest: when, which milestone, what was done.
record() {
    printf '%s %3s %-17s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$MILESTONE" \
        "$MILESTONE_NAME" "$*" >>"$MANIFEST"
    printf '%s\n' "$*"
}

# A missing tool is a persistent failure (exit 127 is not in the transient exit codes):
# retrying will not install it.
need_qemu() {
    if ! command -v qemu-img >/dev/null 2>&1; then
        echo "qemu-img not found: install it (Debian/Ubuntu: apt-get install qemu-utils; Fedora/RHEL: dnf install qemu-img)" >&2
        exit 127
    fi
}

# Every step after 0 works in the build's directory, which milestone 0 made.
enter() {
    if [ ! -d "$WORK" ]; then
        echo "work directory $WORK does not exist: milestone 0 creates it (buildstate rewind $BUILDSTATE_BUILD --to 0 --reason ... to start over)" >&2
        exit 1
    fi
    cd "$WORK" || exit 1
}

# Reads the green-image marker back from an image in any format qemu-img reads: proof
# that the data written at milestone 10 survived every conversion.
check_marker() { # IMAGE FORMAT
    rm -f check.raw
    qemu-img convert -f "$2" -O raw "$1" check.raw
    found=$(dd if=check.raw bs=512 skip="$MARKER_SECTOR" count=1 2>/dev/null | tr -d '\000')
    rm -f check.raw
    if [ "$found" != "$(cat marker.txt)" ]; then
        echo "$1: the green-image marker is not at sector $MARKER_SECTOR (found: '$found')" >&2
        return 1
    fi
}
