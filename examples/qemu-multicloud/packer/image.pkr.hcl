# The base image of every build: milestones 5 (kickstart) and 10 (green-image), run by
# `buildstate packer` as the pipeline's `packer:` step (see ../pipeline.yaml).
#
# A real pipeline boots the OS installer here (the qemu, amazon-ebs or azure-arm
# builder with a kickstart file). This example uses the `null` builder, which makes no
# VM, and `shell-local` provisioners that do the disk work with qemu-img on this
# machine: the same shape of template, and the same milestones, without a hypervisor.
#
# Run from the example's directory (the step's workdir), so that ./steps and ./work
# are where the shell steps expect them.

# buildstate passes the build number in PKR_VAR_buildstate_build; the manifest's
# custom_data carries it, so a manifest can be traced back to its build.
variable "buildstate_build" {
  type    = string
  default = ""
}

# Where the steps keep each build's files: $WORK_DIR/<build>, as steps/lib.sh does.
# Packer 1.6 allows env() only as a variable's default.
variable "work_dir" {
  type    = string
  default = env("WORK_DIR")
}

variable "platform" {
  type    = string
  default = env("BUILDSTATE_PLATFORM")
}

variable "os" {
  type    = string
  default = env("BUILDSTATE_OS")
}

variable "image" {
  type    = string
  default = env("BUILDSTATE_IMAGE")
}

locals {
  # A relative WORK_DIR (or none: ./work) starts in Packer's working directory, which
  # is the steps' working directory too.
  work = "${var.work_dir == "" ? "work" : var.work_dir}/${var.buildstate_build}"
}

source "null" "base" {
  communicator = "none"
}

build {
  sources = ["source.null.base"]

  # Provisioner 0: milestone 5 (kickstart), the build's milestone when Packer starts.
  # A real build installs the OS onto a fresh disk; this one creates the disk.
  provisioner "shell-local" {
    inline           = ["./steps/kickstart.sh"]
    environment_vars = ["MILESTONE=5", "MILESTONE_NAME=kickstart"]
  }

  # Provisioner 1: milestone 10 (green-image), by the step's map {1: 10}. Real data
  # written into the disk and read back.
  provisioner "shell-local" {
    inline           = ["./steps/green-image.sh"]
    environment_vars = ["MILESTONE=10", "MILESTONE_NAME=green-image"]
  }

  post-processors {
    # The base disk as this build's artifact: `buildstate packer` records the files
    # Packer announces (kind `disk`, with size and SHA-256).
    post-processor "artifice" {
      files = ["${local.work}/base.qcow2"]
    }
    # Packer's manifest, in the build's directory: builds running side by side never
    # share it. Milestone 100 records it beside the cloud's disk.
    post-processor "manifest" {
      output = "${local.work}/packer-manifest.json"
      custom_data = {
        buildstate_build = var.buildstate_build
        platform         = var.platform
        os               = var.os
        image            = var.image
      }
    }
  }
}
