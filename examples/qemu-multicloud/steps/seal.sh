#!/bin/sh
# Milestone 95 (seal).
#
# A real pipeline removes SSH host keys, machine-id, cloud-init state, shell history
# and logs, then shuts the VM down. This example checks the image's consistency one
# last time and removes the intermediate files: what is left is the sealed image.
set -eu
# shellcheck source=lib.sh
. "$(dirname -- "$0")/lib.sh"

need_qemu
enter
rm -f disk.raw check.raw green.qcow2 image.qcow2.tmp config.read
qemu-img check -f qcow2 image.qcow2
record "sealed image.qcow2: qemu-img check found no errors"
