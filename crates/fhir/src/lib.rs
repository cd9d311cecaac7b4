//! FHIR R4 domain core for Concord.
//!
//! Owns: the closed error vocabulary ([`error`]) and its single mapping to HTTP status and
//! OperationOutcome issue codes, OperationOutcome construction ([`outcome`]), the FHIR primitive
//! formats ([`primitive`]), thin typed views over resource JSON ([`resource`], [`reference`]) and
//! structural validation against the base R4 StructureDefinitions ([`validate`]).
//!
//! Does not: perform I/O, read a clock or the environment, or know about HTTP frameworks. Time and
//! ids come in as arguments; bad data comes back as issues, never as a panic.

pub mod context;
pub mod error;
pub mod outcome;
pub mod primitive;
pub mod reference;
pub mod resource;
mod resource_types;
pub mod structure;
pub mod validate;

pub use context::RequestContext;
pub use error::{Error, ErrorKind, Issue, IssueSeverity, IssueType};
