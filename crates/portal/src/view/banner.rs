//! The patient banner at the top of the single view: name, formatted NHS number, date of birth
//! and age, gender, address, GP practice, allergies and urgent plans as alerts, and a warning when
//! the records the sources hold disagree on demographics.
//!
//! Owns: the banner markup and the demographic comparison across the Patient resources in the
//! `$summary` Bundle (the hub's Patient and any source records included by reference), plus the
//! MPI's `demographic-conflict` extension when present (docs/identity.md). Does not: decide which
//! record is right (the data steward does, on the matching worklist).

use std::collections::BTreeSet;

use concord_federation::Section;
use maud::{Markup, html};
use serde_json::Value;

use super::model::{Record, urgent_kind};
use crate::text;

const DEMOGRAPHIC_CONFLICT_URL: &str =
    "https://concord.health/fhir/StructureDefinition/demographic-conflict";

/// Whole years between a `YYYY-MM-DD` birth date and `today`.
pub fn age_years(birth: &str, today: &str) -> Option<u32> {
    let parse = |s: &str| -> Option<(u32, u32, u32)> {
        let mut p = s.get(..10)?.split('-');
        Some((
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
        ))
    };
    let (by, bm, bd) = parse(birth)?;
    let (ty, tm, td) = parse(today)?;
    let mut years = ty.checked_sub(by)?;
    if (tm, td) < (bm, bd) {
        years = years.checked_sub(1)?;
    }
    Some(years)
}

fn gender(value: &str) -> &str {
    match value {
        "male" => "Male",
        "female" => "Female",
        "other" => "Other",
        "unknown" => "Not known",
        other => other,
    }
}

/// The fields on which the Patient records in the Bundle disagree, in words.
pub fn demographic_conflicts(record: &Record<'_>) -> Vec<&'static str> {
    let patients: Vec<&Value> = record.of_type("Patient").collect();
    let mut fields = BTreeSet::new();
    let mut differs = |label: &'static str, values: Vec<String>| {
        let distinct: BTreeSet<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if distinct.len() > 1 {
            fields.insert(label);
        }
    };
    differs(
        "NHS number",
        patients
            .iter()
            .map(|p| text::patient_nhs_number(p).unwrap_or_default())
            .collect(),
    );
    differs(
        "date of birth",
        patients
            .iter()
            .map(|p| p["birthDate"].as_str().unwrap_or_default().to_string())
            .collect(),
    );
    differs(
        "gender",
        patients
            .iter()
            .map(|p| p["gender"].as_str().unwrap_or_default().to_string())
            .collect(),
    );
    differs(
        "family name",
        patients
            .iter()
            .map(|p| {
                p["name"][0]["family"]
                    .as_str()
                    .unwrap_or_default()
                    .to_uppercase()
            })
            .collect(),
    );
    differs(
        "given name",
        patients
            .iter()
            .map(|p| {
                p["name"][0]["given"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_uppercase()
            })
            .collect(),
    );
    differs(
        "postcode",
        patients
            .iter()
            .map(|p| {
                p["address"][0]["postalCode"]
                    .as_str()
                    .unwrap_or_default()
                    .replace(' ', "")
                    .to_uppercase()
            })
            .collect(),
    );
    for resource in record
        .all
        .iter()
        .filter(|r| matches!(r["resourceType"].as_str(), Some("Patient" | "Person")))
    {
        for ext in resource["extension"].as_array().into_iter().flatten() {
            if ext["url"] == DEMOGRAPHIC_CONFLICT_URL {
                fields.insert(match ext["valueCode"].as_str() {
                    Some("nhs-number") => "NHS number",
                    Some("birth-date") => "date of birth",
                    Some("gender") => "gender",
                    Some("family-name") => "family name",
                    Some("given-name") => "given name",
                    Some("postcode") => "postcode",
                    _ => "other details",
                });
            }
        }
    }
    fields.into_iter().collect()
}

/// The GP practice: `generalPractitioner` display (an Organization), else the managing
/// organisation.
fn gp_practice(patient: &Value) -> String {
    patient["generalPractitioner"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| {
            r["reference"]
                .as_str()
                .is_none_or(|s| s.contains("Organization"))
        })
        .and_then(|r| r["display"].as_str())
        .or_else(|| patient["managingOrganization"]["display"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn banner(record: &Record<'_>, today: &str) -> Markup {
    let null = Value::Null;
    let patient = record.patient.unwrap_or(&null);
    let name = record.patient_name();
    let nhs = text::patient_nhs_number(patient).map(|n| text::nhs_number(&n));
    let birth = patient["birthDate"].as_str().unwrap_or_default();
    let address = text::address(&patient["address"]);
    let gp = gp_practice(patient);
    let mut allergies: Vec<String> = record
        .section(Section::Allergies)
        .iter()
        .filter(|a| {
            a["clinicalStatus"]["coding"][0]["code"]
                .as_str()
                .is_none_or(|c| c == "active")
        })
        .map(|a| text::concept(&a["code"]))
        .filter(|a| !a.is_empty())
        .collect();
    allergies.sort();
    allergies.dedup();
    let mut urgent: Vec<&'static str> = record
        .of_type("CarePlan")
        .chain(record.of_type("DocumentReference"))
        .filter(|r| {
            r["status"]
                .as_str()
                .is_none_or(|s| s == "active" || s == "current")
        })
        .filter_map(urgent_kind)
        .map(|k| k.label())
        .collect();
    urgent.sort();
    urgent.dedup();
    let conflicts = demographic_conflicts(record);
    html! {
        section class="patient-banner" id="patient-banner" aria-label="Patient details" {
            div class="container" {
                p class="banner-name" { @if name.is_empty() { "Name not recorded" } @else { (name) } }
                dl class="banner-facts" {
                    div {
                        dt { "NHS number" }
                        dd id="banner-nhs-number" { @if let Some(n) = &nhs { (n) } @else { "Not known" } }
                    }
                    div {
                        dt { "Born" }
                        dd {
                            @if birth.is_empty() { "Not known" } @else {
                                (text::date(birth))
                                @if let Some(age) = age_years(birth, today) { " (" (age) " years)" }
                            }
                        }
                    }
                    @if let Some(g) = patient["gender"].as_str() {
                        div { dt { "Gender" } dd { (gender(g)) } }
                    }
                    @if !address.is_empty() {
                        div { dt { "Address" } dd { (address) } }
                    }
                    div { dt { "GP practice" } dd { @if gp.is_empty() { "Not recorded" } @else { (gp) } } }
                }
                div class="banner-alerts" id="banner-allergies" {
                    strong { "Allergies:" }
                    @if allergies.is_empty() {
                        span { "None recorded by the sources that answered" }
                    }
                    @for allergy in &allergies {
                        span class="tag tag-urgent" { (allergy) }
                    }
                    @for plan in &urgent {
                        a class="tag tag-urgent" href="#urgent-plans" { (plan) }
                    }
                }
                @if !conflicts.is_empty() {
                    p id="demographics-warning" class="warning-callout" role="alert" {
                        strong { "Check this person's details. " }
                        "The organisations' records disagree about: " (conflicts.join(", ")) "."
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_count_birthdays() {
        assert_eq!(age_years("1950-12-04", "2026-12-03"), Some(75));
        assert_eq!(age_years("1950-12-03", "2026-12-03"), Some(76));
        assert_eq!(age_years("1950", "2026-12-03"), None);
    }
}
