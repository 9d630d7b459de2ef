#!/bin/sh
# Milestone 10 (green-image): real data in the disk. Provisioner 1 of
# packer/image.pkr.hcl, mapped to 10 by the pipeline's `packer:` step.
#
# A real pipeline's Packer build ends here with a bootable image: default user, SSH
# key authentication. This example writes a marker into the disk the way any raw-disk
# tool would: qcow2 -> raw, write at 1 MiB with dd, raw -> qcow2. Later milestones
# read it back from every output format.
set -eu
# shellcheck source=lib.sh
. "$(dirname -- "$0")/lib.sh"

need_qemu
enter
rm -f disk.raw green.qcow2
printf 'buildstate green-image %s %s %s %s\n' "$BUILDSTATE_BUILD" "${BUILDSTATE_OS:-?}" \
    "${BUILDSTATE_IMAGE:-?}" "$BUILDSTATE_PLATFORM" >marker.txt
qemu-img convert -f qcow2 -O raw base.qcow2 disk.raw
dd if=marker.txt of=disk.raw bs=512 seek="$MARKER_SECTOR" conv=notrunc 2>/dev/null
qemu-img convert -f raw -O qcow2 disk.raw green.qcow2
rm -f disk.raw
# Replaced in one rename: a retry or a resumed build never sees a half-written base.
mv -f green.qcow2 base.qcow2
check_marker base.qcow2 qcow2
record "wrote the green-image marker at sector $MARKER_SECTOR of base.qcow2 and read it back"
