#!/bin/sh
# Milestone 5 (kickstart): the base disk. Provisioner 0 of packer/image.pkr.hcl.
#
# In a real pipeline Packer boots the installer here with a kickstart (or AutoYaST,
# autoinstall) file and installs the OS onto a fresh disk. This example makes the
# fresh disk: a sparse qcow2 of $DISK_SIZE, created in milliseconds.
set -eu
# shellcheck source=lib.sh
. "$(dirname -- "$0")/lib.sh"

need_qemu
enter
# An earlier attempt may have left a half-made disk: start from nothing.
rm -f base.qcow2
qemu-img create -q -f qcow2 base.qcow2 "$DISK_SIZE"
qemu-img info base.qcow2
record "created base.qcow2: qcow2, $DISK_SIZE virtual (sparse)"
