//! Identity core for Concord: who is who.
//!
//! Owns the NHS number ([`nhs_number`]), the demographic record read from a FHIR Patient
//! ([`demographics`]), probabilistic matching in the Fellegi-Sunter model with weights estimated
//! by EM, and the links from source records to golden persons with their history.
//!
//! Does not: perform I/O, read a clock or the environment, or know about FHIR storage. The hub
//! persists what this crate decides and feeds it records; times and actors arrive as arguments.

pub mod blocking;
pub mod compare;
pub mod demographics;
pub mod index;
pub mod linkage;
pub mod model;
pub mod nhs_number;
pub mod nicknames;
pub mod normalize;
pub mod persons;
pub mod phonetic;

pub use demographics::{BirthDate, Demographics, Sex};
pub use index::{Candidate, MatchIndex};
pub use linkage::{ScoredPair, link_records};
pub use model::{
    Comparison, Decision, FieldEvidence, LevelWeight, MatchConfig, MatchGrade, Model,
    TermFrequencies,
};
pub use nhs_number::{NHS_NUMBER_SYSTEM, NhsNumber, NhsNumberError};
pub use persons::{Assurance, GoldenPerson, PersonMerge};
