//! Identity core for Concord: who is who.
//!
//! Owns the NHS number ([`nhs_number`]), the demographic record read from a FHIR Patient
//! ([`demographics`]), probabilistic matching in the Fellegi-Sunter model with weights estimated
//! by EM, and the links from source records to golden persons with their history.
//!
//! Does not: perform I/O, read a clock or the environment, or know about FHIR storage. The hub
//! persists what this crate decides and feeds it records; times and actors arrive as arguments.

pub mod demographics;
pub mod nhs_number;
pub mod persons;

pub use demographics::{BirthDate, Demographics, Sex};
pub use nhs_number::{NHS_NUMBER_SYSTEM, NhsNumber, NhsNumberError};
pub use persons::{Assurance, GoldenPerson, PersonMerge};
