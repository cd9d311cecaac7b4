//! FHIR R4 search core for Concord (<https://hl7.org/fhir/R4/search.html>).
//!
//! Owns: the SearchParameter registry generated from the R4 definitions ([`registry`]), the
//! FHIRPath subset those definitions use ([`fhirpath`]), extraction of index values from a resource
//! ([`extract`]), parsing of search URLs into a typed [`query::SearchQuery`] ([`parse`]) and string
//! normalisation ([`normalize`]).
//!
//! Does not: touch a database. Stores compile [`query::SearchQuery`] into their own query language
//! and store [`index::IndexEntry`] values in their own tables.

pub mod extract;
pub mod fhirpath;
pub mod index;
pub mod normalize;
pub mod parse;
pub mod query;
pub mod registry;
