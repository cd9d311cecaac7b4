//! ADT messages: Patient (PID, PD1, ROL), RelatedPerson (NK1), Encounter and EpisodeOfCare
//! (PV1, PV2), AllergyIntolerance (AL1, IAM), Condition (DG1) and Observation (OBX), with the
//! status each trigger event implies; merges (A40), identifier changes (A47), visit moves (A45).
//!
//! Owns: which ADT events are supported and what each writes. Every ADT upserts the Patient
//! (the patient administration system owns demographics). An A40 retires the record named by
//! MRG-1 (`active` false, `link` replaced-by the survivor; the survivor gets `link` replaces) and
//! reports the pair in [`crate::Mapped::merges`] so the caller can re-point data.
//!
//! Does not: make Practitioner, Location, Organization, Coverage, Account or Procedure resources
//! (participants and locations are given by name), or delete anything: A29 marks the record
//! inactive, A11 cancels the visit.

use concord_hl7v2::{ErrorCode, Segment};
use serde_json::{Map, Value, json};

use crate::bundle::{Key, Write, urn};
use crate::context::{Ctx, at, error, missing_segment};
use crate::datatype::{codeable, ei_identifier, first, reps, val, xcn_reference};
use crate::encounter::{self, Status};
use crate::observation::{self, Scope, Seen};
use crate::patient;
use crate::{MapError, Merge, tables};

/// What an ADT event writes besides the Patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A visit event: the Encounter too.
    Visit(Status),
    /// Person information only (A28, A31, A41, A60): no Encounter.
    Person,
    /// A29 delete person information: the record is kept, inactive.
    Delete,
    /// A40 merge: retire MRG-1's record into PID's.
    Merge,
    /// A47 change identifier: the record found by MRG-1 takes PID's identifiers.
    ChangeIdentifier,
    /// A45 move visit: the visit named by MRG-5 (or PV1-19) now belongs to PID's patient.
    MoveVisit,
}

fn kind(event: &str) -> Option<Kind> {
    match event {
        "A28" | "A31" | "A41" | "A60" => Some(Kind::Person),
        "A29" => Some(Kind::Delete),
        "A40" => Some(Kind::Merge),
        "A47" => Some(Kind::ChangeIdentifier),
        "A45" => Some(Kind::MoveVisit),
        other => encounter::status_for_event(other).map(Kind::Visit),
    }
}

/// Maps an ADT message with trigger `event`.
pub(crate) fn map(ctx: &mut Ctx<'_>, event: &str) -> Result<(), MapError> {
    let msh = ctx.msg.msh();
    let Some(kind) = kind(event) else {
        return Err(error(
            msh,
            Some(9),
            ErrorCode::UnsupportedEventCode,
            format!("ADT event {event} is not supported"),
        ));
    };
    if kind == Kind::Merge {
        return merge(ctx);
    }
    let msg = ctx.msg;
    let segs = msg.segments();
    let pid_pos = segs
        .iter()
        .position(|s| s.id() == "PID")
        .ok_or_else(|| missing_segment("PID", "an ADT message names its patient in PID"))?;
    let pid = &segs[pid_pos];
    ctx.used(pid);
    let ids = patient::patient_ids(ctx, pid)?;
    let patient_key = ids.key.clone();
    // A47 finds the record by its old identifier (MRG-1) and gives it the new ones; the old ones
    // stay on the record with `use` old, so applying the message again finds the same record.
    let mut old_ids = Vec::new();
    let write_key = match kind {
        Kind::ChangeIdentifier => {
            let mrg = msg.first("MRG").ok_or_else(|| {
                missing_segment("MRG", "A47 names the identifier to change in MRG-1")
            })?;
            ctx.used(mrg);
            let (ids, key) = patient::prior_ids(ctx, mrg, &[1]);
            old_ids = ids;
            key.ok_or_else(|| {
                error(
                    mrg,
                    Some(1),
                    ErrorCode::RequiredFieldMissing,
                    "MRG-1 (prior patient identifier) is empty",
                )
            })?
        }
        _ => patient_key.clone(),
    };
    let patient_urn = urn("Patient", &write_key);
    ctx.patient_key = Some(patient_key.clone());

    let pd1 = segs.iter().find(|s| s.id() == "PD1");
    if let Some(pd1) = pd1 {
        ctx.used(pd1);
    }
    let rols = patient_rols(segs, pid_pos);
    for rol in &rols {
        ctx.used(rol);
    }
    let nk1s: Vec<&Segment> = segs.iter().filter(|s| s.id() == "NK1").collect();
    for nk1 in &nk1s {
        ctx.used(nk1);
    }
    let contacts = if kind == Kind::Delete {
        Vec::new()
    } else {
        patient::next_of_kin(ctx, &nk1s, &patient_urn, &patient_key)
    };
    let record = patient::build(ctx, pid, ids, pd1, &rols, contacts);
    let mut resource = record.resource;
    patient::keep_old_identifiers(&mut resource, old_ids);
    if kind == Kind::Delete {
        resource["active"] = json!(false);
        ctx.warn("A29 (delete person information): the record is marked inactive, not deleted");
    }
    ctx.bundle.add(&write_key, Write::Upsert, resource);
    if kind == Kind::Delete {
        return Ok(());
    }

    let pv1 = segs.iter().find(|s| s.id() == "PV1");
    let pv2 = segs.iter().find(|s| s.id() == "PV2");
    let encounter = match (kind, pv1) {
        (Kind::Visit(status), Some(pv1)) => {
            encounter::map(ctx, pv1, pv2, status, Write::Upsert, &patient_urn, None)
        }
        (Kind::Visit(_), None) => {
            ctx.warn("no PV1 segment: no Encounter");
            None
        }
        (Kind::MoveVisit, Some(pv1)) => {
            let mrg = msg.first("MRG");
            let prior = mrg
                .and_then(|m| first(m, 5))
                .and_then(|v| crate::datatype::cx_identifier(ctx, v, "visit"));
            if let Some(m) = mrg {
                ctx.used(m);
            }
            encounter::map(
                ctx,
                pv1,
                pv2,
                Status::FromVisit,
                Write::Upsert,
                &patient_urn,
                prior.map(|(_, k)| k),
            )
        }
        _ => None,
    };
    let encounter_urn = encounter.as_ref().map(|e| e.urn.clone());
    let visit_token = encounter
        .as_ref()
        .map(|e| e.key.token())
        .unwrap_or_default();

    let patient_token = patient_key.token();
    let mut allergy_seen = Seen::default();
    let mut condition_seen = Seen::default();
    let mut obs_seen = Seen::default();
    for (i, seg) in segs.iter().enumerate() {
        match seg.id() {
            "AL1" => {
                ctx.used(seg);
                allergy(ctx, seg, &patient_urn, &patient_token, &mut allergy_seen);
            }
            "IAM" => {
                ctx.used(seg);
                adverse_reaction(ctx, seg, &patient_urn, &patient_token, &mut allergy_seen);
            }
            "DG1" => {
                ctx.used(seg);
                diagnosis(
                    ctx,
                    seg,
                    &patient_urn,
                    encounter_urn.as_deref(),
                    &format!("{patient_token}|{visit_token}"),
                    &mut condition_seen,
                );
            }
            "OBX" => {
                let notes = following(segs, i, "NTE");
                let scope = Scope {
                    subject: &patient_urn,
                    encounter: None,
                    specimen: None,
                    default_time: None,
                    parent: patient_token.clone(),
                };
                observation::map(ctx, seg, &notes, &scope, &mut obs_seen);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The ROL segments of the patient group: after PID, among PD1/ARV/ROL/PRT, before anything else.
fn patient_rols(segs: &[Segment], pid_pos: usize) -> Vec<&Segment> {
    segs[pid_pos + 1..]
        .iter()
        .take_while(|s| matches!(s.id(), "PD1" | "ARV" | "ROL" | "PRT"))
        .filter(|s| s.id() == "ROL" && val(s, 3, 1).is_some_and(|r| r.eq_ignore_ascii_case("PP")))
        .collect()
}

/// The `id` segments right after position `i` (participation segments, PRT, may come between).
pub(crate) fn following<'a>(segs: &'a [Segment], i: usize, id: &str) -> Vec<&'a Segment> {
    segs[i + 1..]
        .iter()
        .take_while(|s| s.id() == id || s.id() == "PRT")
        .filter(|s| s.id() == id)
        .collect()
}

/// A40: PID is the surviving record, MRG-1 the one merged into it (retired).
fn merge(ctx: &mut Ctx<'_>) -> Result<(), MapError> {
    let msg = ctx.msg;
    let segs = msg.segments();
    // ADT_A39 groups PID, [PD1], MRG, [PV1] per pair; pair each PID with the MRG after it.
    let mut pairs = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        if seg.id() != "PID" {
            continue;
        }
        let mrg = segs[i + 1..]
            .iter()
            .take_while(|s| s.id() != "PID")
            .find(|s| s.id() == "MRG");
        pairs.push((i, mrg));
    }
    if pairs.is_empty() {
        return Err(missing_segment(
            "PID",
            "A40 names the surviving patient in PID",
        ));
    }
    for (pid_pos, mrg) in pairs {
        let pid = &segs[pid_pos];
        ctx.used(pid);
        let mrg =
            mrg.ok_or_else(|| missing_segment("MRG", "A40 names the merged patient in MRG-1"))?;
        ctx.used(mrg);
        let ids = patient::patient_ids(ctx, pid)?;
        let survivor_key = ids.key.clone();
        let (retired_ids, retired_key) = patient::prior_ids(ctx, mrg, &[1]);
        let Some(retired_key) = retired_key else {
            return Err(error(
                mrg,
                Some(1),
                ErrorCode::RequiredFieldMissing,
                "MRG-1 (prior patient identifier list) has no identifier with a value",
            ));
        };
        if retired_key == survivor_key {
            return Err(error(
                mrg,
                Some(1),
                ErrorCode::ApplicationError,
                "MRG-1 names the same record as PID-3; nothing to merge",
            ));
        }
        let survivor_urn = urn("Patient", &survivor_key);
        let retired_urn = urn("Patient", &retired_key);
        let pd1 = segs[pid_pos + 1..]
            .iter()
            .take_while(|s| s.id() != "PID")
            .find(|s| s.id() == "PD1");
        if let Some(pd1) = pd1 {
            ctx.used(pd1);
        }
        let record = patient::build(ctx, pid, ids, pd1, &[], Vec::new());
        let mut survivor = record.resource;
        survivor["link"] = json!([{"other": {"reference": retired_urn}, "type": "replaces"}]);
        ctx.bundle.add(&survivor_key, Write::Upsert, survivor);

        let mut retired = Map::new();
        retired.insert("resourceType".into(), json!("Patient"));
        retired.insert("meta".into(), ctx.meta());
        retired.insert("identifier".into(), Value::Array(retired_ids));
        retired.insert("active".into(), json!(false));
        if let Some(name) =
            first(mrg, 7).and_then(|v| crate::datatype::human_name(ctx, v, &at(mrg, 7)))
        {
            retired.insert("name".into(), Value::Array(vec![name]));
        }
        retired.insert(
            "link".into(),
            json!([{"other": {"reference": survivor_urn}, "type": "replaced-by"}]),
        );
        ctx.bundle
            .add(&retired_key, Write::Upsert, Value::Object(retired));
        ctx.merges.push(Merge {
            retired: retired_key.token(),
            survivor: survivor_key.token(),
        });
        ctx.patient_key.get_or_insert(survivor_key);
    }
    Ok(())
}

/// The key of an allergy without an identifier of its own (AL1, and IAM without IAM-7): the
/// patient, the allergen (field 3) and its place among the message's same allergens.
fn allergy_key(ctx: &Ctx<'_>, segment: &Segment, patient: &str, seen: &mut Seen) -> Key {
    let allergen = val(segment, 3, 1)
        .or(val(segment, 3, 2))
        .unwrap_or_default();
    let n = seen.next_of(format!(
        "{allergen}|{}",
        val(segment, 3, 3).unwrap_or_default()
    ));
    Key::derived(
        ctx.derived_system("allergy"),
        &[patient, allergen, &n.to_string()],
    )
}

/// Type and category (field 2, table 0127) and criticality (field 4, table 0128), which AL1 and
/// IAM share; returns the reaction severity field 4 also gives.
fn allergy_kind_and_criticality(
    a: &mut Map<String, Value>,
    segment: &Segment,
) -> Option<&'static str> {
    let (category, kind) = val(segment, 2, 1)
        .map(tables::allergy_category)
        .unwrap_or((None, None));
    if let Some(k) = kind {
        a.insert("type".into(), json!(k));
    }
    if let Some(c) = category {
        a.insert("category".into(), json!([c]));
    }
    let (criticality, severity) = val(segment, 4, 1)
        .map(tables::allergy_severity)
        .unwrap_or((None, None));
    if let Some(c) = criticality {
        a.insert("criticality".into(), json!(c));
    }
    severity
}

/// AL1 to AllergyIntolerance, keyed by the patient and the allergen.
fn allergy(ctx: &mut Ctx<'_>, al1: &Segment, patient_urn: &str, patient: &str, seen: &mut Seen) {
    let Some(code) = first(al1, 3).and_then(|v| codeable(ctx, v, None)) else {
        ctx.warn(format!(
            "{}: no allergen; the allergy is not mapped",
            at(al1, 3)
        ));
        return;
    };
    let key = allergy_key(ctx, al1, patient, seen);
    let mut a = Map::new();
    a.insert("resourceType".into(), json!("AllergyIntolerance"));
    a.insert("meta".into(), ctx.meta());
    a.insert("identifier".into(), json!([key.identifier()]));
    a.insert("clinicalStatus".into(), clinical_status("active"));
    let severity = allergy_kind_and_criticality(&mut a, al1);
    a.insert("code".into(), code);
    a.insert("patient".into(), json!({"reference": patient_urn}));
    if let Some(onset) = ctx.date_time(val(al1, 6, 1), &at(al1, 6)) {
        a.insert("onsetDateTime".into(), json!(onset));
    }
    // AL1-5 is free text (ST) in the standard; some senders put a code in it.
    let manifestations: Vec<Value> = reps(al1, 5)
        .map(|v| json!({"text": v.joined(" ")}))
        .collect();
    if !manifestations.is_empty() {
        let mut reaction = json!({"manifestation": manifestations});
        if let Some(s) = severity {
            reaction["severity"] = json!(s);
        }
        a.insert("reaction".into(), Value::Array(vec![reaction]));
    }
    ctx.bundle.add(&key, Write::Upsert, Value::Object(a));
}

/// IAM (A60 and others) to AllergyIntolerance: keyed by IAM-7 when present, with IAM-6 action
/// D marking the record entered-in-error.
fn adverse_reaction(
    ctx: &mut Ctx<'_>,
    iam: &Segment,
    patient_urn: &str,
    patient: &str,
    seen: &mut Seen,
) {
    let Some(code) = first(iam, 3).and_then(|v| codeable(ctx, v, None)) else {
        ctx.warn(format!(
            "{}: no allergen; the adverse reaction is not mapped",
            at(iam, 3)
        ));
        return;
    };
    let mut identifiers = Vec::new();
    let key = match first(iam, 7).and_then(|v| ei_identifier(ctx, v, "allergy")) {
        Some((id, key)) => {
            identifiers.push(id);
            key
        }
        None => {
            let key = allergy_key(ctx, iam, patient, seen);
            identifiers.push(key.identifier());
            key
        }
    };
    let deleted = val(iam, 6, 1).is_some_and(|a| a.eq_ignore_ascii_case("D"));
    let mut a = Map::new();
    a.insert("resourceType".into(), json!("AllergyIntolerance"));
    a.insert("meta".into(), ctx.meta());
    a.insert("identifier".into(), Value::Array(identifiers));
    let verification = if deleted {
        Some("entered-in-error")
    } else {
        // Table 0438 allergy clinical status.
        match val(iam, 17, 1).map(str::to_ascii_uppercase).as_deref() {
            Some("C") => Some("confirmed"),
            Some("P" | "S" | "D" | "I") => Some("unconfirmed"),
            Some("E") => Some("refuted"),
            _ => None,
        }
    };
    if verification != Some("entered-in-error") {
        a.insert("clinicalStatus".into(), clinical_status("active"));
    }
    if let Some(v) = verification {
        a.insert(
            "verificationStatus".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": v}]}),
        );
    }
    let severity = allergy_kind_and_criticality(&mut a, iam);
    a.insert("code".into(), code);
    a.insert("patient".into(), json!({"reference": patient_urn}));
    if let Some(onset) = ctx.date_time(val(iam, 11, 1), &at(iam, 11)) {
        a.insert("onsetDateTime".into(), json!(onset));
    } else if let Some(text) = val(iam, 12, 1) {
        a.insert("onsetString".into(), json!(text));
    }
    if let Some(recorded) = ctx.date_time(val(iam, 13, 1), &at(iam, 13)) {
        a.insert("recordedDate".into(), json!(recorded));
    }
    if let Some(by) = first(iam, 14).and_then(|v| crate::datatype::xpn_display(v)) {
        a.insert("asserter".into(), json!({"display": by}));
    }
    let manifestations: Vec<Value> = reps(iam, 5)
        .filter_map(|v| codeable(ctx, v, None))
        .collect();
    if !manifestations.is_empty() {
        let mut reaction = json!({"manifestation": manifestations});
        if let Some(s) = severity {
            reaction["severity"] = json!(s);
        }
        a.insert("reaction".into(), Value::Array(vec![reaction]));
    }
    ctx.bundle.add(&key, Write::Upsert, Value::Object(a));
}

fn clinical_status(code: &str) -> Value {
    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": code}]})
}

/// DG1 to Condition (category encounter-diagnosis), keyed by DG1-20 or by patient, visit and
/// code; with an Encounter, also `Encounter.diagnosis` (use from DG1-6, rank from DG1-15).
fn diagnosis(
    ctx: &mut Ctx<'_>,
    dg1: &Segment,
    patient_urn: &str,
    encounter_urn: Option<&str>,
    scope: &str,
    seen: &mut Seen,
) {
    let code = first(dg1, 3)
        .and_then(|v| codeable(ctx, v, None))
        .or_else(|| val(dg1, 4, 1).map(|t| json!({"text": t})));
    let Some(code) = code else {
        ctx.warn(format!(
            "{}: no diagnosis code or description; not mapped",
            at(dg1, 3)
        ));
        return;
    };
    let diagnosis_type = val(dg1, 6, 1).map(str::to_ascii_uppercase);
    let mut identifiers = Vec::new();
    let key = match first(dg1, 20).and_then(|v| ei_identifier(ctx, v, "diagnosis")) {
        Some((id, key)) => {
            identifiers.push(id);
            key
        }
        None => {
            let basis = format!(
                "{}|{}|{}",
                val(dg1, 3, 1).or(val(dg1, 4, 1)).unwrap_or_default(),
                val(dg1, 3, 3).unwrap_or_default(),
                diagnosis_type.as_deref().unwrap_or_default()
            );
            let n = seen.next_of(basis.clone());
            let key = Key::derived(
                ctx.derived_system("condition"),
                &[scope, &basis, &n.to_string()],
            );
            identifiers.push(key.identifier());
            key
        }
    };
    let deleted = val(dg1, 21, 1).is_some_and(|a| a.eq_ignore_ascii_case("D"));
    let mut c = Map::new();
    c.insert("resourceType".into(), json!("Condition"));
    c.insert("meta".into(), ctx.meta());
    c.insert("identifier".into(), Value::Array(identifiers));
    let verification = if deleted {
        Some("entered-in-error")
    } else {
        match diagnosis_type.as_deref() {
            Some("F") => Some("confirmed"),
            Some("A" | "W") => Some("provisional"),
            _ => None,
        }
    };
    if let Some(v) = verification {
        c.insert(
            "verificationStatus".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": v}]}),
        );
    }
    c.insert(
        "category".into(),
        json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}]),
    );
    c.insert("code".into(), code);
    c.insert("subject".into(), json!({"reference": patient_urn}));
    if let Some(enc) = encounter_urn {
        c.insert("encounter".into(), json!({"reference": enc}));
    }
    if let Some(onset) = ctx.date_time(val(dg1, 5, 1), &at(dg1, 5)) {
        c.insert("onsetDateTime".into(), json!(onset));
    }
    if let Some(recorded) = ctx.date_time(val(dg1, 19, 1), &at(dg1, 19)) {
        c.insert("recordedDate".into(), json!(recorded));
    }
    if let Some(by) = first(dg1, 16).and_then(|v| xcn_reference(ctx, v)) {
        c.insert("asserter".into(), by);
    }
    let (condition_urn, _) = ctx.bundle.add(&key, Write::Upsert, Value::Object(c));
    let Some(enc) = encounter_urn else { return };
    if deleted {
        return;
    }
    let mut d = json!({"condition": {"reference": condition_urn}});
    let role = match diagnosis_type.as_deref() {
        Some("A") => Some(("AD", "Admission diagnosis")),
        Some("F") => Some(("DD", "Discharge diagnosis")),
        _ => None,
    };
    if let Some((code, display)) = role {
        d["use"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/diagnosis-role", "code": code, "display": display}]});
    }
    if let Some(rank) = val(dg1, 15, 1)
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| *r > 0)
    {
        d["rank"] = json!(rank);
    }
    if let Some(Value::Object(e)) = ctx.bundle.resource_mut(enc) {
        match e.get_mut("diagnosis") {
            Some(Value::Array(list)) => list.push(d),
            _ => {
                e.insert("diagnosis".into(), Value::Array(vec![d]));
            }
        }
    }
}
