//! Packer as a reporting tool: which of a Packer run's events are milestones.

mod map;

pub use map::{PACKER_MAP_ENV, PackerMap, SayRule};
