//! Federated `Patient/[id]/$summary`: the International Patient Summary of one person across every
//! source (<https://build.fhir.org/ig/HL7/fhir-ips/OperationDefinition-summary.html>).
//!
//! Owns: asking the sources for the resource types the summary's sections draw on, and handing
//! the merged result to `concord_federation::summary`, which shapes the `document` Bundle (its
//! Composition's sections: problems, allergies, medications, immunisations, results, vital signs,
//! procedures, care plans, encounters, documents, social care involvement, and the sources
//! consulted). Does not: choose sections (the pure crate does) or fetch (`super::gather`).

use concord_fhir::primitive::format_instant;
use concord_fhir::{Error, RequestContext};
use serde_json::Value;

use super::{Fetch, Hop};
use crate::Hub;

/// The resource types the summary's sections are built from.
pub const SUMMARY_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "EpisodeOfCare",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
];

impl Hub {
    /// `GET [base]/Patient/[id]/$summary` on a hub.
    pub async fn federated_summary(
        &self,
        ctx: &RequestContext,
        hop: &Hop,
        patient_id: &str,
        params: &[(String, String)],
        base: &str,
    ) -> Result<concord_federation::Document, Error> {
        for (name, _) in params {
            if !matches!(name.as_str(), "_format" | "_pretty") {
                return Err(Error::invalid(format!(
                    "unknown $summary parameter '{name}'"
                )));
            }
        }
        let fetch = Fetch {
            types: Some(SUMMARY_TYPES.iter().map(|t| (*t).to_string()).collect()),
            since: None,
        };
        let gathered = self.gather(ctx, hop, patient_id, fetch, base).await?;
        let now_ms = gathered.now_ms;
        let merged = concord_federation::merge_prepared(gathered.sources, now_ms);
        let mut patient = gathered.patient;
        if let Some(obj) = patient.as_object_mut() {
            // The hub's copy of the record carries the index's view of the person; its own
            // `meta.source` names the edge that announced it, which the document keeps.
            obj.entry("id")
                .or_insert_with(|| Value::String(patient_id.to_string()));
        }
        Ok(concord_federation::summary(
            merged,
            &patient,
            &Hub::new_id(),
            &Hub::new_id(),
            &format_instant(now_ms),
        ))
    }
}
