# The build's cell, from the variables `buildstate run` sets for each step. Give them
# with -var to run Packer by hand: packer build -only=null.dry-run -var os=… .

variable "os" {
  type    = string
  default = env("BUILDSTATE_OS")
}

variable "platform" {
  type    = string
  default = env("BUILDSTATE_PLATFORM")
}

variable "image" {
  type    = string
  default = env("BUILDSTATE_IMAGE")
}

# `buildstate packer` also passes it as PKR_VAR_buildstate_build.
variable "buildstate_build" {
  type    = string
  default = env("BUILDSTATE_BUILD")
}

variable "aws_region" {
  type    = string
  default = "eu-central-1"
}

variable "azure_location" {
  type    = string
  default = "westeurope"
}

variable "gcp_project" {
  type    = string
  default = "CHANGE-ME"
}

variable "gcp_zone" {
  type    = string
  default = "europe-west4-a"
}

# Where `buildstate packer` wants this run's manifest: a file of the run's own, so that
# builds running at once in this directory never write (or read) each other's. Empty
# when Packer is run by hand: then packer-manifest.json.
variable "manifest" {
  type    = string
  default = env("BUILDSTATE_PACKER_MANIFEST")
}
