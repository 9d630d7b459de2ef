//! Packer as a reporting tool: which of a Packer run's events are milestones.
//!
//! Pure, no I/O: `events` parses the `-machine-readable` stream, `progress` follows a
//! run through it (milestones from the map, the failing component), `manifest` reads
//! the manifest post-processor's file. `buildstate packer` does the I/O around them.

mod events;
mod manifest;
mod map;
mod progress;

pub use events::{
    Event, Line, LineSplitter, MAX_LINE_BYTES, MAX_RAW_LINE_BYTES, Record, UiLevel, cut_text, parse_line,
    unescape,
};
pub use manifest::{
    CUSTOM_DATA_BUILD_KEY, ImageId, MAX_MANIFEST_BYTES, ManifestBuild, ManifestError, ManifestFile, cloud_of,
    parse_manifest, split_artifact_id,
};
pub use map::{PACKER_MAP_ENV, PackerMap, SayRule};
pub use progress::{BuildFailure, Component, EventArtifact, PROVISIONER_STARTS, Progress, builder_type};
