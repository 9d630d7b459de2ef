#!/bin/sh
# Milestones 15-90: configuration, tests and validation.
#
# A REAL PIPELINE RUNS ANSIBLE HERE: one playbook per milestone against the VM built
# from the image, for example
#     ansible-playbook -i inventory/$BUILDSTATE_PLATFORM 25-security-baseline.yml \
#         -e cloud=$BUILDSTATE_PLATFORM -e os=$BUILDSTATE_OS
# This example records in the manifest what that playbook would do. Milestones 70
# (integration tests) and 90 (final validation) do real checks of the image.
set -eu
# shellcheck source=lib.sh
. "$(dirname -- "$0")/lib.sh"

enter
phase=${BUILDSTATE_STATE_NAME:-state-$BUILDSTATE_STATE}
playbook="$BUILDSTATE_STATE-$phase.yml"
checked=
case $BUILDSTATE_STATE in
    15) what="repositories, base packages, timezone, locale, logging" ;;
    20)
        case $BUILDSTATE_PLATFORM in
            aws*) what="SSM agent, CloudWatch agent, AWS CLI, ENA and NVMe drivers" ;;
            azure*) what="Azure Linux agent (waagent), Hyper-V drivers, Azure CLI" ;;
            gcp*) what="Google guest environment, gcloud CLI, virtio-scsi" ;;
            openstack*) what="cloud-init with the OpenStack datasource, qemu-guest-agent" ;;
            *) what="the cloud's agents and CLI" ;;
        esac
        ;;
    25) what="firewall, SELinux enforcing, latest errata, password policy" ;;
    30) what="monitoring and log-shipping agents" ;;
    35) what="language runtimes and database clients" ;;
    40) what="DNS, proxies, network interfaces" ;;
    45) what="partitions, LVM, mount points" ;;
    50) what="users, sudo rules, SSH keys, directory services" ;;
    55) what="system services" ;;
    60) what="applications for the $BUILDSTATE_IMAGE image" ;;
    65) what="environment configuration, secrets from Vault, feature flags" ;;
    70)
        need_qemu
        check_marker base.qcow2 qcow2
        checked="integration tests: read the green-image marker back from base.qcow2"
        ;;
    75) what="kernel tuning, caching" ;;
    80) what="backup agents, snapshot schedules" ;;
    85) what="image description, tags, changelog, package inventory" ;;
    90)
        need_qemu
        qemu-img check -f qcow2 base.qcow2
        checked="final validation: qemu-img check of base.qcow2 found no errors"
        ;;
    *) what="milestone $BUILDSTATE_STATE" ;;
esac
if [ -n "${checked:-}" ]; then
    record "$checked"
else
    record "would run ansible-playbook $playbook: $what"
fi
