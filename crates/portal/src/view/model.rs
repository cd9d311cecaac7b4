//! Reading the `$summary` document Bundle into what the single view shows: the subject, the
//! resources of each Composition section (by the section codes of
//! [`concord_federation::Section`] and [`concord_federation::SUMMARY_SECTION_SYSTEM`]), the
//! per-source OperationOutcome, and the classification of plans (end-of-life, ReSPECT, crisis,
//! care package).
//!
//! Owns: resolving the Composition's references inside the Bundle
//! (<https://hl7.org/fhir/R4/composition.html>) and the small facts pages need. Does not: render
//! or fetch. Malformed input yields empty sections, never a panic.

use std::collections::HashMap;

use concord_federation::{SUMMARY_SECTION_SYSTEM, Section};
use serde_json::Value;

const SNOMED: &str = "http://snomed.info/sct";
/// SNOMED CT 736373009 "End of life care plan" (the National Record Locator's pointer type).
pub const END_OF_LIFE_PLAN: &str = "736373009";
/// SNOMED CT 1382601000000107 "ReSPECT form".
pub const RESPECT_FORM: &str = "1382601000000107";
/// SNOMED CT 736253002 "Mental health crisis plan".
pub const CRISIS_PLAN: &str = "736253002";

/// The kind of plan a paramedic must see first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrgentKind {
    EndOfLife,
    Respect,
    Crisis,
}

impl UrgentKind {
    pub fn label(self) -> &'static str {
        match self {
            UrgentKind::EndOfLife => "End of life care plan",
            UrgentKind::Respect => "ReSPECT form",
            UrgentKind::Crisis => "Mental health crisis plan",
        }
    }
}

/// The summary, read.
pub struct Record<'a> {
    pub patient: Option<&'a Value>,
    sections: HashMap<Section, Vec<&'a Value>>,
    /// The per-source OperationOutcome.
    pub outcome: Option<&'a Value>,
    /// Every resource in the Bundle (and in the related searchset), for lookups.
    pub all: Vec<&'a Value>,
    by_url: HashMap<&'a str, &'a Value>,
}

impl<'a> Record<'a> {
    pub fn read(bundle: &'a Value, related: Option<&'a Value>) -> Record<'a> {
        let entries = bundle["entry"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut by_url = HashMap::new();
        let mut all = Vec::new();
        for entry in entries {
            if let Some(url) = entry["fullUrl"].as_str() {
                by_url.insert(url, &entry["resource"]);
            }
            if entry["resource"].is_object() {
                all.push(&entry["resource"]);
            }
        }
        if let Some(extra) = related.and_then(|b| b["entry"].as_array()) {
            all.extend(
                extra
                    .iter()
                    .map(|e| &e["resource"])
                    // The source records (for comparing demographics) and carers.
                    .filter(|r| {
                        matches!(
                            r["resourceType"].as_str(),
                            Some("Patient" | "RelatedPerson")
                        )
                    }),
            );
        }
        let composition = entries
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["resourceType"] == "Composition");
        let mut sections: HashMap<Section, Vec<&Value>> = HashMap::new();
        let mut outcome = None;
        let mut patient = None;
        if let Some(composition) = composition {
            patient = composition["subject"]["reference"]
                .as_str()
                .and_then(|u| by_url.get(u).copied());
            for section in composition["section"].as_array().into_iter().flatten() {
                let coding = &section["code"]["coding"][0];
                let (system, code) = (
                    coding["system"].as_str().unwrap_or_default(),
                    coding["code"].as_str().unwrap_or_default(),
                );
                let members = section["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["reference"].as_str().and_then(|u| by_url.get(u).copied()));
                if system == SUMMARY_SECTION_SYSTEM && code == "sources" {
                    outcome = members
                        .into_iter()
                        .find(|r| r["resourceType"] == "OperationOutcome");
                    continue;
                }
                if let Some(kind) = Section::ALL
                    .into_iter()
                    .find(|s| s.code().0 == system && s.code().1 == code)
                {
                    sections.entry(kind).or_default().extend(members);
                }
            }
        }
        let patient =
            patient.or_else(|| all.iter().copied().find(|r| r["resourceType"] == "Patient"));
        let outcome = outcome.or_else(|| {
            all.iter()
                .copied()
                .rev()
                .find(|r| r["resourceType"] == "OperationOutcome")
        });
        Record {
            patient,
            sections,
            outcome,
            all,
            by_url,
        }
    }

    /// The resources of one section, in the document's order (newest first).
    pub fn section(&self, section: Section) -> &[&'a Value] {
        self.sections
            .get(&section)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every resource of this type anywhere in the Bundle.
    pub fn of_type<'s>(&'s self, resource_type: &'s str) -> impl Iterator<Item = &'a Value> + 's {
        self.all
            .iter()
            .copied()
            .filter(move |r| r["resourceType"] == resource_type)
    }

    /// A resource by its full URL in the Bundle.
    pub fn resolve(&self, url: &str) -> Option<&'a Value> {
        self.by_url.get(url).copied()
    }

    pub fn patient_name(&self) -> String {
        self.patient
            .map(|p| crate::text::name(&p["name"]))
            .unwrap_or_default()
    }

    /// The issues of the per-source OperationOutcome.
    pub fn issues(&self) -> &'a [Value] {
        self.outcome
            .and_then(|o| o["issue"].as_array())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Whether a CodeableConcept (or list of them) carries SNOMED CT `code`.
fn has_snomed(concepts: &Value, code: &str) -> bool {
    let list: Vec<&Value> = match concepts {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    list.iter().any(|c| {
        c["coding"].as_array().into_iter().flatten().any(|coding| {
            coding["code"] == code && coding["system"].as_str().is_none_or(|s| s == SNOMED)
        })
    })
}

fn words(resource: &Value) -> String {
    let mut text = String::new();
    for field in ["title", "description"] {
        if let Some(t) = resource[field].as_str() {
            text.push_str(t);
            text.push(' ');
        }
    }
    for concept in resource["category"].as_array().into_iter().flatten() {
        text.push_str(&crate::text::concept(concept));
        text.push(' ');
    }
    text.push_str(&crate::text::concept(&resource["type"]));
    text.to_lowercase()
}

/// Whether a CarePlan or DocumentReference is an end-of-life plan, a ReSPECT form or a mental
/// health crisis plan: by the SNOMED CT codes the National Record Locator uses (as the demo and
/// the import mappings code them), else by the words of an uncoded title or category.
pub fn urgent_kind(resource: &Value) -> Option<UrgentKind> {
    let coded = [&resource["category"], &resource["type"]];
    for concept in coded {
        if has_snomed(concept, RESPECT_FORM) {
            return Some(UrgentKind::Respect);
        }
        if has_snomed(concept, END_OF_LIFE_PLAN) {
            return Some(UrgentKind::EndOfLife);
        }
        if has_snomed(concept, CRISIS_PLAN) {
            return Some(UrgentKind::Crisis);
        }
    }
    let text = words(resource);
    if text.contains("respect form") || text.contains("recommended summary plan for emergency") {
        Some(UrgentKind::Respect)
    } else if text.contains("end of life") || text.contains("end-of-life") {
        Some(UrgentKind::EndOfLife)
    } else if text.contains("crisis plan") {
        Some(UrgentKind::Crisis)
    } else {
        None
    }
}

/// Whether a CarePlan is a social care package: categorised so, or supporting an EpisodeOfCare.
pub fn is_care_package(record: &Record<'_>, plan: &Value) -> bool {
    let categorised = plan["category"].as_array().into_iter().flatten().any(|c| {
        crate::text::concept(c)
            .to_lowercase()
            .contains("care package")
    });
    categorised
        || plan["supportingInfo"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["reference"].as_str())
            .any(|r| {
                r.contains("EpisodeOfCare/")
                    || record
                        .resolve(r)
                        .is_some_and(|t| t["resourceType"] == "EpisodeOfCare")
            })
}

/// The clinical date of a resource (the one the summary sorts by, roughly).
pub fn when(resource: &Value) -> Option<&str> {
    [
        "/effectiveDateTime",
        "/effectivePeriod/start",
        "/effectiveInstant",
        "/onsetDateTime",
        "/onsetPeriod/start",
        "/occurrenceDateTime",
        "/performedDateTime",
        "/performedPeriod/start",
        "/authoredOn",
        "/period/start",
        "/date",
        "/issued",
        "/recordedDate",
        "/created",
        "/dateAsserted",
    ]
    .iter()
    .find_map(|p| resource.pointer(p).and_then(Value::as_str))
}
