//! Federation core for Concord: one patient record out of many sources' answers.
//!
//! Owns the data the source connector reports ([`SourceInfo`], [`SourceStatus`],
//! [`SourceResult`]), [`merge`] (provenance tags, de-duplication across sources, display order,
//! the per-source OperationOutcome; in two steps, [`prepare`] for each source's answer on its own
//! and [`merge_prepared`] across them, so a caller can prepare answers in parallel as they
//! arrive) and [`summary`] (the IPS-shaped `$summary` document, with
//! [`section_of`] placing resources in its sections).
//!
//! Does not: perform I/O, read a clock or the environment, mint random ids, or log. The hub asks
//! the sources (through `concord-source`), passes their answers, the time and fresh ids in, and
//! builds the HTTP response from what comes out. Bad input never panics: a value that is not a
//! resource with a valid `resourceType` and `id` (or has a `meta` that is not an object) is
//! skipped and counted as a warning in its source's issue, and malformed elements inside a
//! resource only ever prevent a match.
//!
//! Decisions the federation contract left open:
//!
//! - **Clinical dates match by calendar day as written** (the first ten characters of the date
//!   or dateTime, in the source's own offset, not converted to UTC): date-only values are local
//!   dates with nothing to convert, and UK sources write local dates. A year or year-month only
//!   matches the same text. A fact without a date, code or (Observation) value is never matched
//!   by rule (b): hiding a real fact is worse than showing a duplicate, so every doubt falls on
//!   the side of showing both. Ordering, by contrast, converts dates to UTC instants so a
//!   timeline reads correctly across offsets.
//! - **The clinical date** is the first present of: Observation `effectiveDateTime`,
//!   `effectivePeriod.start`, `effectiveInstant`; Condition and AllergyIntolerance
//!   `onsetDateTime`, `onsetPeriod.start`, `recordedDate`; Immunization `occurrenceDateTime`;
//!   Procedure `performedDateTime`, `performedPeriod.start`; MedicationRequest `authoredOn`;
//!   MedicationStatement `effectiveDateTime`, `effectivePeriod.start` (other types, for
//!   ordering only, are listed in `facts.rs`).
//! - **Observation values** compare as the decimal's value (`5` = `5.0`) with the UCUM code, or the
//!   unit text when there is no code; `valueCodeableConcept` by any coding in common;
//!   `valueString`, `valueBoolean`, `valueInteger` exactly. An observation without `value[x]`
//!   (blood pressure) matches only when every component's code and value agree.
//! - **Within one source nothing is de-duplicated**, and a kept resource absorbs at most one copy
//!   from each other source, so two distinct resources of one source are never folded into one.
//!   Only literal repeats of one `type/id` from one source (paging that overlapped) collapse, to
//!   the highest `meta.versionId`, then latest `meta.lastUpdated`.
//! - **`also-reported-by`** names the organisation of each dropped copy (for data forwarded by a
//!   region, the organisation that holds the record, not the region), once per organisation, and
//!   never the kept copy's own organisation. A kept copy also inherits the dropped copy's
//!   identifiers and codes as match keys, so a third source matching either copy still matches.
//! - **Region data** keeps its `source-organization` and `meta.source` (they name where the data
//!   really lives) and gains a `via-organization` per hop; its fullUrl is under the region's base,
//!   the server this hub can actually ask. A batch source's `source-data-age` is added unless a hop
//!   nearer the data already recorded one.
//! - **Staleness**: a batch source with an unknown last load is stale. The `stale` coding replaces
//!   `ok` when the source answered; for other statuses the status coding stays and staleness is
//!   mentioned in the sentence only when some of its data is shown. Partial data (a timeout
//!   mid-paging) is merged and the issue says how much was included.
//! - **No sources**: the OperationOutcome still carries one `information` issue saying nothing
//!   was consulted, because an OperationOutcome must have an issue.
//! - **Summary sections** use the IPS IG's LOINC codes: problems 11450-4 (Condition), allergies
//!   48765-2, medications 10160-0 (MedicationStatement, MedicationRequest), immunizations
//!   11369-6, results 30954-2 (DiagnosticReport; Observation category `laboratory` or
//!   `imaging`), vital signs 8716-3 (Observation category `vital-signs`, which wins over a
//!   result category), procedures 47519-4, care plans 18776-5, and encounters 46240-8 (the C-CDA
//!   encounters section; IPS has none). Clinical documents (DocumentReference) and social care
//!   involvement (EpisodeOfCare) have no fitting LOINC section code (42348-3 is advance
//!   directives, 55108-5 a DICOM report section), so they use
//!   `https://concord.health/fhir/CodeSystem/summary-section` codes `documents` and
//!   `social-care`. Observations in no section (social history, surveys) stay out of the summary.
//! - **Empty sections**: the three IPS requires (problems, allergies, medications) are always
//!   present, with `emptyReason` `unavailable` when empty: no source asserted an absence, so it is
//!   never `nilknown`. Other empty sections are left out.
//! - **Summary document shape**: entries are the Composition, the hub Patient, every sectioned
//!   entry (newest first within a section, across types, so results read as a timeline), every
//!   merged entry those reference (so references resolve inside the document, which
//!   a FHIR document requires; this brings in the sources' own Patient records), then the
//!   OperationOutcome, referenced from a last section "Sources consulted" (Concord code
//!   `sources`). `urn:uuid:` fullUrls use the given id when it is a UUID and otherwise a
//!   deterministic version 8 UUID derived from it; the Bundle identifier is
//!   `urn:ietf:rfc:3986` | the Bundle's `urn:uuid:`.

mod dedup;
mod facts;
mod merge;
mod outcome;
mod provenance;
mod resource;
mod source;
mod summary;

pub use merge::{Merged, MergedEntry, Prepared, merge, merge_prepared, prepare};
pub use outcome::SOURCE_STATUS_SYSTEM;
pub use provenance::{
    ALSO_REPORTED_BY_URL, ODS_SYSTEM, SOURCE_DATA_AGE_URL, SOURCE_ELAPSED_URL, SOURCE_ID_URL,
    SOURCE_ORGANIZATION_URL, VIA_ORGANIZATION_URL,
};
pub use resource::{RawText, Resource, ResourceSeed};
pub use source::{Freshness, SourceInfo, SourceKind, SourceResult, SourceStatus};
pub use summary::{Document, SUMMARY_SECTION_SYSTEM, Section, section_of, summary};
