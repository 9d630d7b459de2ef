#!/bin/sh
# Milestone 0 (initial): a fresh work directory for this build.
#
# Running 0 again (after `buildstate rewind REF --to 0`) starts the build over, so the
# directory is emptied rather than reused.
set -eu
# shellcheck source=lib.sh
. "$(dirname -- "$0")/lib.sh"

need_qemu
rm -rf -- "$WORK"
mkdir -p -- "$WORK"
: >"$MANIFEST"
record "build $BUILDSTATE_BUILD: ${BUILDSTATE_OS:-?} ${BUILDSTATE_IMAGE:-?} for $BUILDSTATE_PLATFORM, pipeline ${BUILDSTATE_PIPELINE:-?}"
record "work directory $WORK; $(qemu-img --version | head -n 1)"
