//! PV1 and PV2 to Encounter (and PV1-54 to EpisodeOfCare), after the guide's PV1[Encounter],
//! PV2[Encounter] and event-to-status maps.
//!
//! Owns: the Encounter's identifier (PV1-19, the visit number, which is also its key), class,
//! status by trigger event, period, locations with their status, and participants (given by name
//! and identifier only: no Practitioner or Location resources are made).
//!
//! Does not: decide whether the Encounter is written or only created when absent (ADT owns the
//! visit; results and documents only make sure it exists), or add diagnoses (DG1 does, in `adt`).

use concord_hl7v2::Segment;
use serde_json::{Map, Value, json};

use crate::bundle::{Key, Write};
use crate::context::{Ctx, at};
use crate::datatype::{
    Comp, codeable, cx_identifier, first, location_display, period, reps, table_code, val,
    xcn_reference,
};
use crate::tables;

/// How an event sets the Encounter's status and period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// A fixed status for the event (A01 in-progress, A03 finished, ...).
    Fixed(&'static str),
    /// An event that undoes a discharge (A13): in progress, and PV1-45 is not kept.
    Undischarged,
    /// An event that undoes a transfer (A12): in progress at PV1-3 (the location before the
    /// transfer); PV1-6, the location of the cancelled transfer, is not kept.
    TransferCancelled,
    /// Read from PV1 itself, as the guide's PV1 map does: PV1-45 valued is finished, otherwise
    /// the patient class decides (P planned, U unknown, any other in progress; none unknown).
    FromVisit,
}

/// The Encounter of an ADT trigger event (HL7 table 0003), after the guide's event-to-status map
/// where it has one. `None` for events about the person only (A28, A31, A40, ...).
pub(crate) fn status_for_event(event: &str) -> Option<Status> {
    use Status::{Fixed, FromVisit, TransferCancelled, Undischarged};
    Some(match event {
        // Admit, transfer, tracking, pending transfer/discharge and their cancellations all
        // leave the patient in the visit.
        "A01" | "A02" | "A06" | "A07" | "A09" | "A10" | "A15" | "A16" | "A22" | "A25" | "A26"
        | "A32" | "A33" | "A52" | "A54" | "A55" => Fixed("in-progress"),
        // v2 chapter 3: A04 signals that the patient has arrived or checked in (the guide says
        // "planned"; see MAPPING.md).
        "A04" => Fixed("in-progress"),
        "A03" => Fixed("finished"),
        "A05" | "A14" => Fixed("planned"),
        "A11" | "A27" | "A38" => Fixed("cancelled"),
        "A12" => TransferCancelled,
        "A13" => Undischarged,
        "A21" | "A53" => Fixed("onleave"),
        "A23" => Fixed("entered-in-error"),
        "A08" | "A45" => FromVisit,
        _ => return None,
    })
}

/// An Encounter written from PV1/PV2.
pub(crate) struct EncounterRef {
    pub urn: String,
    pub key: Key,
}

/// Maps PV1 (and PV2) to an Encounter and adds it to the bundle. `write_key` overrides the key the
/// write is conditional on (A45 moves the visit named by MRG-5). Returns `None`, with a warning,
/// when PV1-19 (the visit number) is empty: without it the visit could never be updated again.
pub(crate) fn map(
    ctx: &mut Ctx<'_>,
    pv1: &Segment,
    pv2: Option<&Segment>,
    status: Status,
    write: Write,
    patient_urn: &str,
    write_key: Option<Key>,
) -> Option<EncounterRef> {
    ctx.used(pv1);
    if let Some(pv2) = pv2 {
        ctx.used(pv2);
    }
    let Some((visit_id, visit_key)) = first(pv1, 19).and_then(|v| cx_identifier(ctx, v, "visit"))
    else {
        ctx.warn(format!(
            "{}: no visit number, so no Encounter (it could not be found again to update)",
            at(pv1, 19)
        ));
        return None;
    };
    let mut visit_id = visit_id;
    if visit_id.get("type").is_none() {
        visit_id["type"] = table_code("0203", "VN", Some("Visit number"));
    }
    let mut identifiers = vec![visit_id];
    for v in reps(pv1, 50) {
        if let Some((id, _)) = cx_identifier(ctx, v, "visit") {
            identifiers.push(id);
        }
    }
    let class_code = val(pv1, 2, 1);
    let status_code = match status {
        Status::Fixed(s) => s,
        Status::Undischarged | Status::TransferCancelled => "in-progress",
        Status::FromVisit => {
            if val(pv1, 45, 1).is_some() {
                "finished"
            } else {
                match class_code.map(str::to_ascii_uppercase).as_deref() {
                    Some("P") => "planned",
                    Some("U") | None => "unknown",
                    Some(_) => "in-progress",
                }
            }
        }
    };
    let mut e = Map::new();
    e.insert("resourceType".into(), json!("Encounter"));
    e.insert("meta".into(), ctx.meta());
    e.insert("identifier".into(), Value::Array(identifiers));
    e.insert("status".into(), json!(status_code));
    let class = match class_code.and_then(tables::encounter_class) {
        Some((system, code, display)) => {
            json!({"system": system, "code": code, "display": display})
        }
        None => {
            if class_code.is_some() {
                ctx.warn(format!(
                    "{}: not a code of table 0004; class unknown",
                    at(pv1, 2)
                ));
            }
            json!({"system": tables::V3_NULL_FLAVOR, "code": "UNK", "display": "unknown"})
        }
    };
    e.insert("class".into(), class);
    if let Some(t) = first(pv1, 4).and_then(|v| codeable(ctx, v, Some("0007"))) {
        e.insert("type".into(), Value::Array(vec![t]));
    }
    if let Some(s) = first(pv1, 10).and_then(|v| codeable(ctx, v, Some("0069"))) {
        e.insert("serviceType".into(), s);
    }
    if let Some(p) = pv2
        .and_then(|s| first(s, 25))
        .and_then(|v| codeable(ctx, v, Some("0217")))
    {
        e.insert("priority".into(), p);
    }
    e.insert("subject".into(), json!({"reference": patient_urn}));
    let participants = participants(ctx, pv1);
    if !participants.is_empty() {
        e.insert("participant".into(), Value::Array(participants));
    }
    let start = ctx.date_time(val(pv1, 44, 1), &at(pv1, 44));
    let end = match status {
        Status::Undischarged => None,
        _ => ctx.date_time(val(pv1, 45, 1), &at(pv1, 45)),
    };
    if let Some(p) = period(start, end) {
        e.insert("period".into(), p);
    }
    if let Some(reason) = pv2
        .and_then(|s| first(s, 3))
        .and_then(|v| codeable(ctx, v, None))
    {
        e.insert("reasonCode".into(), Value::Array(vec![reason]));
    }
    let hospitalization = hospitalization(ctx, pv1);
    if !hospitalization.is_empty() {
        e.insert("hospitalization".into(), Value::Object(hospitalization));
    }
    let locations = locations(pv1, status_code, status == Status::TransferCancelled);
    if !locations.is_empty() {
        e.insert("location".into(), Value::Array(locations));
    }
    if let Some(episode) = episode_of_care(ctx, pv1, patient_urn, write) {
        e.insert("episodeOfCare".into(), json!([{"reference": episode}]));
    }
    // A45 writes the visit found by its prior number; that number stays on the record with
    // `use` old, so applying the message again finds the same record.
    let key = match write_key {
        Some(prior) if prior != visit_key => {
            if let Some(Value::Array(ids)) = e.get_mut("identifier") {
                let mut old = prior.identifier();
                old["use"] = json!("old");
                ids.push(old);
            }
            prior
        }
        _ => visit_key,
    };
    let (urn, _) = ctx.bundle.add(&key, write, Value::Object(e));
    Some(EncounterRef { urn, key })
}

/// PV1-7 attending, PV1-8 referring, PV1-9 consulting, PV1-17 admitting, PV1-52 other.
fn participants(ctx: &Ctx<'_>, pv1: &Segment) -> Vec<Value> {
    let mut out = Vec::new();
    for (field, code, display) in [
        (7, "ATND", "attender"),
        (8, "REF", "referrer"),
        (9, "CON", "consultant"),
        (17, "ADM", "admitter"),
        (52, "PART", "Participation"),
    ] {
        for v in reps(pv1, field) {
            if let Some(individual) = xcn_reference(ctx, v) {
                let mut participant = json!({
                    "type": [{"coding": [{"system": tables::V3_PARTICIPATION, "code": code, "display": display}]}],
                });
                // Moved in, not copied as `json!` would.
                participant["individual"] = individual;
                out.push(participant);
            }
        }
    }
    out
}

/// PV1-5, 13, 14, 16, 36, 37, 38 to `Encounter.hospitalization`.
fn hospitalization(ctx: &mut Ctx<'_>, pv1: &Segment) -> Map<String, Value> {
    let mut h = Map::new();
    if let Some((id, _)) = first(pv1, 5).and_then(|v| cx_identifier(ctx, v, "preadmit")) {
        h.insert("preAdmissionIdentifier".into(), id);
    }
    if let Some(c) = first(pv1, 14).and_then(|v| codeable(ctx, v, Some("0023"))) {
        h.insert("admitSource".into(), c);
    }
    if let Some(c) = first(pv1, 13).and_then(|v| codeable(ctx, v, Some("0092"))) {
        h.insert("reAdmission".into(), c);
    }
    if let Some(c) = first(pv1, 38).and_then(|v| codeable(ctx, v, Some("0114"))) {
        h.insert("dietPreference".into(), Value::Array(vec![c]));
    }
    if let Some(c) = first(pv1, 16).and_then(|v| codeable(ctx, v, Some("0099"))) {
        h.insert("specialCourtesy".into(), Value::Array(vec![c]));
    }
    if let Some(dest) = first(pv1, 37).and_then(|v| v.get(1)) {
        h.insert("destination".into(), json!({"display": dest}));
    }
    if let Some(c) = first(pv1, 36).and_then(|v| codeable(ctx, v, Some("0112"))) {
        h.insert("dischargeDisposition".into(), c);
    }
    h
}

/// PV1-3 assigned (active; planned for a pre-admit; completed once finished), PV1-6 prior
/// (completed), PV1-11 temporary (active), PV1-42 pending (reserved), PV1-43 prior temporary
/// (completed). Locations are given by name only.
fn locations(pv1: &Segment, status: &str, transfer_cancelled: bool) -> Vec<Value> {
    let assigned = match status {
        "finished" | "cancelled" | "entered-in-error" => "completed",
        "planned" => "planned",
        _ => "active",
    };
    let mut out = Vec::new();
    for (field, loc_status) in [
        (3, assigned),
        (
            11,
            if assigned == "active" {
                "active"
            } else {
                "completed"
            },
        ),
        (42, "reserved"),
        (6, "completed"),
        (43, "completed"),
    ] {
        if field == 6 && transfer_cancelled {
            continue;
        }
        if let Some(display) = first(pv1, field).and_then(location_display) {
            out.push(json!({"location": {"display": display}, "status": loc_status}));
        }
    }
    out
}

/// PV1-54 (service episode identifier) to an EpisodeOfCare for the patient; returns its fullUrl.
fn episode_of_care(
    ctx: &mut Ctx<'_>,
    pv1: &Segment,
    patient_urn: &str,
    write: Write,
) -> Option<String> {
    let (id, key) = first(pv1, 54).and_then(|v| cx_identifier(ctx, v, "episode"))?;
    let mut ep = json!({
        "resourceType": "EpisodeOfCare",
        "meta": ctx.meta(),
        "identifier": [id],
        "status": "active",
        "patient": {"reference": patient_urn},
    });
    if let Some(description) = val(pv1, 53, 1) {
        ep["extension"] = json!([{
            "url": "http://hl7.org/fhir/StructureDefinition/resource-instance-description",
            "valueString": description,
        }]);
    }
    let (urn, _) = ctx.bundle.add(&key, write, ep);
    Some(urn)
}

/// A location given by name, for other maps (AIL in SIU).
pub(crate) fn location_reference(v: Comp<'_>) -> Option<Value> {
    location_display(v).map(|d| json!({"display": d}))
}
