#!/bin/sh
# Milestone 100 (delivered): the image in the format its cloud imports, recorded as an
# artifact with its size and SHA-256.
#
# A real pipeline uploads the file here and registers the image (aws ec2 import-image,
# az image create or a Shared Image Gallery version, gcloud compute images create,
# openstack image create), then records the cloud's image id. This example makes the
# file that upload would take and records it with a file:// URI.
set -eu
# shellcheck source=lib.sh
. "$(dirname -- "$0")/lib.sh"

need_qemu
enter
: "${REGION:?is not set: pipeline.yaml sets it per platform under defaults.platform_env}"

fail() {
    echo "$*" >&2
    exit 1
}

# Packer's own manifest, written at milestone 10 by the manifest post-processor of
# packer/image.pkr.hcl: the base image this disk was made from.
[ -f packer-manifest.json ] ||
    fail "$WORK/packer-manifest.json is missing: milestone 5 (the packer: step) writes it (buildstate rewind $BUILDSTATE_BUILD --to 5 --reason ... to make it again)"

rm -rf out disk.raw check.raw
mkdir out
case $BUILDSTATE_PLATFORM in
    aws*)
        # AWS VM Import (import-image, import-snapshot) takes a stream-optimized VMDK:
        # compressed, written front to back, the format of VMDKs inside an OVA.
        output=out/aws.vmdk
        qemu-img convert -f qcow2 -O raw image.qcow2 disk.raw
        qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw "$output"
        qemu-img info -f vmdk "$output" | grep -q 'create type: streamOptimized' ||
            fail "$output is not a streamOptimized VMDK"
        check_marker "$output" vmdk
        ;;
    azure*)
        # Azure takes a fixed-size VHD (not dynamic, not VHDX) whose virtual size is a
        # whole number of MiB. force_size keeps the raw disk's exact size instead of
        # rounding it to a CHS geometry, which would break the alignment.
        output=out/azure.vhd
        qemu-img convert -f qcow2 -O raw image.qcow2 disk.raw
        qemu-img convert -f raw -O vpc -o subformat=fixed,force_size disk.raw "$output"
        # A fixed VHD is the disk's bytes followed by a 512-byte footer starting with
        # the cookie "conectix".
        size=$(wc -c <"$output" | tr -d ' ')
        virtual=$((size - 512))
        [ $((virtual % 1048576)) -eq 0 ] ||
            fail "$output: virtual size $virtual is not a multiple of 1 MiB; Azure refuses it"
        cookie=$(od -An -c -N 8 -j "$virtual" "$output" | tr -d ' \n')
        [ "$cookie" = conectix ] || fail "$output has no VHD footer (found '$cookie')"
        check_marker "$output" vpc
        ;;
    gcp*)
        # Compute Engine imports a gzip-compressed tar holding exactly one file named
        # disk.raw, in the oldgnu format; -S stores the sparse disk compactly.
        output=out/gcp.tar.gz
        qemu-img convert -f qcow2 -O raw image.qcow2 disk.raw
        check_marker disk.raw raw
        tar --format=oldgnu -Sczf "$output" disk.raw
        members=$(tar -tzf "$output")
        [ "$members" = disk.raw ] || fail "$output holds '$members'; GCP expects exactly disk.raw"
        ;;
    openstack*)
        # Glance takes qcow2 as it is (disk_format=qcow2); compressed, so the upload
        # is small.
        output=out/openstack.qcow2
        qemu-img convert -c -f qcow2 -O qcow2 image.qcow2 "$output"
        qemu-img check -f qcow2 "$output"
        check_marker "$output" qcow2
        ;;
    *)
        echo "no image format for platform '$BUILDSTATE_PLATFORM': expected aws*, azure*, gcp* or openstack* (add a case to steps/deliver.sh)" >&2
        exit 2
        ;;
esac
rm -f disk.raw
record "converted image.qcow2 to $output for $BUILDSTATE_PLATFORM ($REGION)"

# file:// URIs have no spaces: escape % and space in the path.
file_uri() {
    printf 'file://%s' "$(printf '%s' "$1" | sed 's/%/%25/g; s/ /%20/g')"
}

disk=$WORK/$output
record "recording $output, Packer's manifest and this phase record as artifacts"

# --file: buildstate reads the file and records its size and SHA-256.
"$BUILDSTATE" artifact add "$BUILDSTATE_BUILD" --name "$BUILDSTATE_PLATFORM-disk" --kind disk \
    --uri "$(file_uri "$disk")" --file "$disk" --region "$REGION"
"$BUILDSTATE" artifact add "$BUILDSTATE_BUILD" --name "$BUILDSTATE_PLATFORM-manifest" --kind manifest \
    --uri "$(file_uri "$WORK/packer-manifest.json")" --file "$WORK/packer-manifest.json" --region "$REGION"
"$BUILDSTATE" artifact add "$BUILDSTATE_BUILD" --name "$BUILDSTATE_PLATFORM-phases" --kind report \
    --uri "$(file_uri "$MANIFEST")" --file "$MANIFEST"
"$BUILDSTATE" artifact list "$BUILDSTATE_BUILD"
