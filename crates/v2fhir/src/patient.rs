//! PID (with PD1, patient-level ROL and NK1) to Patient and RelatedPerson, after the guide's
//! PID[Patient], PD1[Patient], ROL[Patient-GeneralPractitioner], NK1[RelatedPerson] and
//! NK1[Patient] maps.
//!
//! Owns: the patient's identifiers, including the NHS number rule (PID-2/3/4 with assigning
//! authority `NHS` or type `NH` becomes `https://fhir.nhs.uk/Id/nhs-number` only when it passes the
//! modulus-11 check; otherwise a warning, and it stays a local identifier), the choice of the key
//! a patient's records are written and ordered by, and next of kin.
//!
//! Does not: decide how the Patient is written (the message maps choose upsert or create-if-absent)
//! or handle merges (see `adt`).

use concord_hl7v2::{ErrorCode, Segment};
use concord_mpi::{NHS_NUMBER_SYSTEM, NhsNumber};
use serde_json::{Map, Value, json};

use crate::bundle::{Key, Write};
use crate::context::{Ctx, at, error};
use crate::datatype::{
    Comp, address, codeable, contact_point, cx_identifier, first, human_name, period, reps, val,
    xcn_reference, xon_reference, xpn_display,
};
use crate::{MapError, tables};

/// The UK organisation (ODS) code system, for `managingOrganization` when the source is named by
/// its organisation code.
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// NK1-3 relationship codes that name an organisation or agency rather than a person (employer,
/// federal and state agency, insurance company): a Patient.contact, not a RelatedPerson.
const NON_PERSON_RELATIONSHIPS: [&str; 5] = ["EMR", "E", "F", "I", "S"];

/// One identifier read from PID-2, PID-3 or PID-4.
struct PatientId {
    identifier: Value,
    key: Key,
    nhs: bool,
    field: usize,
    type_code: Option<String>,
}

/// A Patient built from PID, with the key it is written by.
pub(crate) struct PatientRecord {
    pub key: Key,
    pub resource: Value,
}

/// True when a CX names an NHS number: assigning authority `NHS`, the NHS number OID, or type `NH`.
fn is_nhs_number(v: Comp<'_>) -> bool {
    v.sub(4, 1).is_some_and(|a| a.eq_ignore_ascii_case("NHS"))
        || v.sub(4, 2) == Some("2.16.840.1.113883.2.1.4.1")
        || v.get(5).is_some_and(|t| t.eq_ignore_ascii_case("NH"))
}

/// The identifiers of a list of CX fields (PID-2/3/4, MRG-1), NHS numbers checked.
fn identifiers(ctx: &mut Ctx<'_>, seg: &Segment, fields: &[usize]) -> Vec<PatientId> {
    let mut out: Vec<PatientId> = Vec::new();
    for &field in fields {
        for (i, v) in reps(seg, field).enumerate() {
            let Some(value) = v.get(1) else { continue };
            let type_code = v.get(5).map(str::to_string);
            let id = if is_nhs_number(v) {
                match NhsNumber::parse(value) {
                    Ok(n) => {
                        let key = Key::new(NHS_NUMBER_SYSTEM, n.digits());
                        Some(PatientId {
                            identifier: key.identifier(),
                            key,
                            nhs: true,
                            field,
                            type_code: type_code.clone(),
                        })
                    }
                    Err(e) => {
                        ctx.warn(format!(
                            "{}[{}]: an NHS number that is not valid ({e}); kept as a local identifier",
                            at(seg, field),
                            i + 1
                        ));
                        None
                    }
                }
            } else {
                None
            };
            let id = id.or_else(|| {
                cx_identifier(ctx, v, "patient").map(|(identifier, key)| PatientId {
                    identifier,
                    key,
                    nhs: false,
                    field,
                    type_code,
                })
            });
            if let Some(id) = id
                && !out.iter().any(|o| o.key == id.key)
            {
                out.push(id);
            }
        }
    }
    out
}

/// The key a patient's records are written by: a local record number from PID-3 (type MR first),
/// else any local identifier, else the NHS number. A local number is preferred because the source
/// always has it, while an NHS number may arrive later (and a changed key would fork the record).
fn choose_key(ids: &[PatientId]) -> Option<Key> {
    let local = |id: &&PatientId| !id.nhs;
    ids.iter()
        .filter(local)
        .find(|id| id.field == 3 && id.type_code.as_deref() == Some("MR"))
        .or_else(|| ids.iter().filter(local).find(|id| id.field == 3))
        .or_else(|| ids.iter().find(local))
        .or_else(|| ids.iter().find(|id| id.nhs))
        .map(|id| id.key.clone())
}

/// The identifiers of CX fields of a segment other than PID (MRG-1), NHS numbers checked, and
/// the key chosen among them as for PID.
pub(crate) fn prior_ids(
    ctx: &mut Ctx<'_>,
    seg: &Segment,
    fields: &[usize],
) -> (Vec<Value>, Option<Key>) {
    let ids = identifiers(ctx, seg, fields);
    let key = choose_key(&ids);
    (ids.into_iter().map(|id| id.identifier).collect(), key)
}

/// Adds `old` identifiers to a resource's `identifier` list with `use` old (those it does not
/// already have), so a conditional write by an old key finds the record again when the same
/// message is applied twice.
pub(crate) fn keep_old_identifiers(resource: &mut Value, old: Vec<Value>) {
    let Some(list) = resource.get_mut("identifier").and_then(Value::as_array_mut) else {
        return;
    };
    for mut id in old {
        let known = list
            .iter()
            .any(|i| i["system"] == id["system"] && i["value"] == id["value"]);
        if !known {
            id["use"] = json!("old");
            list.push(id);
        }
    }
}

/// The identifiers of a PID and the key chosen among them.
pub(crate) struct PatientIds {
    ids: Vec<PatientId>,
    pub key: Key,
}

/// Reads PID-2/3/4; fails when none has a value (a patient that cannot be keyed).
pub(crate) fn patient_ids(ctx: &mut Ctx<'_>, pid: &Segment) -> Result<PatientIds, MapError> {
    let ids = identifiers(ctx, pid, &[2, 3, 4]);
    match choose_key(&ids) {
        Some(key) => Ok(PatientIds { ids, key }),
        None => Err(error(
            pid,
            Some(3),
            ErrorCode::RequiredFieldMissing,
            "PID-3 (patient identifier list) has no identifier with a value",
        )),
    }
}

/// PID (PD1, ROL, non-person NK1) to a Patient.
pub(crate) fn build(
    ctx: &mut Ctx<'_>,
    pid: &Segment,
    ids: PatientIds,
    pd1: Option<&Segment>,
    rols: &[&Segment],
    contacts: Vec<Value>,
) -> PatientRecord {
    let PatientIds { ids, key } = ids;
    let mut p = Map::new();
    p.insert("resourceType".into(), json!("Patient"));
    p.insert("meta".into(), ctx.meta());
    let mut extensions = Vec::new();
    if let Some(mmn) =
        first(pid, 6).and_then(|v| v.sub(1, 1).map(str::to_string).or_else(|| xpn_display(v)))
    {
        extensions.push(json!({
            "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
            "valueString": mmn,
        }));
    }
    if let Some(religion) = first(pid, 17).and_then(|v| codeable(ctx, v, Some("0006"))) {
        extensions.push(json!({
            "url": "http://hl7.org/fhir/StructureDefinition/patient-religion",
            "valueCodeableConcept": religion,
        }));
    }
    if let Some(place) = val(pid, 23, 1) {
        extensions.push(json!({
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": {"text": place},
        }));
    }
    if !extensions.is_empty() {
        p.insert("extension".into(), Value::Array(extensions));
    }
    p.insert(
        "identifier".into(),
        Value::Array(ids.iter().map(|i| i.identifier.clone()).collect()),
    );
    p.insert("active".into(), json!(true));
    let mut names = Vec::new();
    for field in [5, 9] {
        for (i, v) in reps(pid, field).enumerate() {
            let here = format!("{}[{}]", at(pid, field), i + 1);
            names.extend(human_name(ctx, v, &here));
        }
    }
    if !names.is_empty() {
        p.insert("name".into(), Value::Array(names));
    }
    let mut telecom = Vec::new();
    for (field, default_use) in [(13, Some("home")), (14, Some("work")), (40, None)] {
        for (i, v) in reps(pid, field).enumerate() {
            let here = format!("{}[{}]", at(pid, field), i + 1);
            telecom.extend(contact_point(ctx, v, default_use, &here));
        }
    }
    if !telecom.is_empty() {
        p.insert("telecom".into(), Value::Array(telecom));
    }
    if let Some(sex) = val(pid, 8, 1) {
        match tables::gender(sex) {
            Some(g) => {
                p.insert("gender".into(), json!(g));
            }
            None => ctx.warn(format!(
                "{}: not a code of table 0001; left out",
                at(pid, 8)
            )),
        }
    }
    if let Some(dob) = val(pid, 7, 1) {
        if let Some(d) = ctx.date(Some(dob), &at(pid, 7)) {
            p.insert("birthDate".into(), json!(d));
        }
        if Ctx::has_time(dob)
            && let Some(t) = ctx.date_time(Some(dob), &at(pid, 7))
            && t.contains('T')
        {
            p.insert(
                "_birthDate".into(),
                json!({"extension": [{
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": t,
                }]}),
            );
        }
    }
    if let Some(death) = ctx.date_time(val(pid, 29, 1), &at(pid, 29)) {
        p.insert("deceasedDateTime".into(), json!(death));
    } else if let Some(flag) = val(pid, 30, 1).and_then(yes_no) {
        p.insert("deceasedBoolean".into(), json!(flag));
    }
    let mut addresses = Vec::new();
    for (i, v) in reps(pid, 11).enumerate() {
        let here = format!("{}[{}]", at(pid, 11), i + 1);
        addresses.extend(address(ctx, v, &here));
    }
    if let (Some(county), [only]) = (val(pid, 12, 1), addresses.as_mut_slice())
        && only.get("district").is_none()
    {
        only["district"] = json!(county);
    }
    if !addresses.is_empty() {
        p.insert("address".into(), Value::Array(addresses));
    }
    if let Some(ms) = first(pid, 16) {
        let code = ms.get(1).unwrap_or_default();
        match tables::marital_status(code) {
            Some((system, code, display)) => {
                let mut cc =
                    json!({"coding": [{"system": system, "code": code, "display": display}]});
                if let Some(text) = ms.get(2) {
                    cc["text"] = json!(text);
                }
                p.insert("maritalStatus".into(), cc);
            }
            None => {
                if let Some(cc) = codeable(ctx, ms, Some("0002")) {
                    p.insert("maritalStatus".into(), cc);
                }
            }
        }
    }
    if let Some(order) = val(pid, 25, 1).and_then(|o| o.parse::<u32>().ok()) {
        p.insert("multipleBirthInteger".into(), json!(order));
    } else if let Some(flag) = val(pid, 24, 1).and_then(yes_no) {
        p.insert("multipleBirthBoolean".into(), json!(flag));
    }
    if !contacts.is_empty() {
        p.insert("contact".into(), Value::Array(contacts));
    }
    if let Some(lang) = first(pid, 15).and_then(|v| codeable(ctx, v, Some("0296"))) {
        p.insert(
            "communication".into(),
            json!([{"language": lang, "preferred": true}]),
        );
    }
    let gps = general_practitioners(ctx, pd1, rols);
    if !gps.is_empty() {
        p.insert("generalPractitioner".into(), Value::Array(gps));
    }
    if let Some(org) = managing_organization(&ctx.opts.source_system) {
        p.insert("managingOrganization".into(), org);
    }
    PatientRecord {
        key,
        resource: Value::Object(p),
    }
}

/// The source organisation as `managingOrganization`, when the source is named by a plain
/// organisation code (taken as its ODS code).
fn managing_organization(source: &str) -> Option<Value> {
    let code = source.trim();
    let plain = !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric());
    plain.then(|| json!({"identifier": {"system": ODS_SYSTEM, "value": code}}))
}

/// PD1-3 (primary facility), PD1-4 (primary care provider) and ROL segments with role PP.
fn general_practitioners(ctx: &Ctx<'_>, pd1: Option<&Segment>, rols: &[&Segment]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut push = |r: Option<Value>| {
        if let Some(r) = r
            && !out.contains(&r)
        {
            out.push(r);
        }
    };
    if let Some(pd1) = pd1 {
        for v in reps(pd1, 3) {
            push(xon_reference(ctx, v));
        }
        for v in reps(pd1, 4) {
            push(xcn_reference(ctx, v));
        }
    }
    for rol in rols {
        let role = val(rol, 3, 1).unwrap_or_default();
        let deleted = val(rol, 2, 1).is_some_and(|a| a.eq_ignore_ascii_case("DE"));
        if role.eq_ignore_ascii_case("PP") && !deleted {
            push(first(rol, 4).and_then(|v| xcn_reference(ctx, v)));
        }
    }
    out
}

/// `Y`/`N` to a boolean.
pub(crate) fn yes_no(s: &str) -> Option<bool> {
    match s.to_ascii_uppercase().as_str() {
        "Y" => Some(true),
        "N" => Some(false),
        _ => None,
    }
}

/// The NK1 segments: people become RelatedPerson entries (written by NK1-33 or a derived key);
/// organisations and agencies come back as `Patient.contact` entries.
pub(crate) fn next_of_kin(
    ctx: &mut Ctx<'_>,
    nk1s: &[&Segment],
    patient_ref: &str,
    patient_key: &Key,
) -> Vec<Value> {
    let mut contacts = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for nk1 in nk1s {
        let relationship = first(nk1, 3);
        let code = relationship.and_then(|r| r.get(1)).unwrap_or_default();
        let non_person = NON_PERSON_RELATIONSHIPS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(code));
        if non_person {
            contacts.extend(contact(ctx, nk1));
            continue;
        }
        let mut r = Map::new();
        r.insert("resourceType".into(), json!("RelatedPerson"));
        r.insert("meta".into(), ctx.meta());
        let mut identifiers: Vec<Value> = Vec::new();
        let mut key = None;
        for v in reps(nk1, 33) {
            if let Some((identifier, k)) = cx_identifier(ctx, v, "related-person") {
                key.get_or_insert(k);
                identifiers.push(identifier);
            }
        }
        let name = first(nk1, 2).and_then(xpn_display);
        let key = match key {
            Some(k) => k,
            None => {
                if name.is_none() && val(nk1, 13, 1).is_none() {
                    ctx.warn(format!(
                        "{}: next of kin with neither a name (NK1-2), an identifier (NK1-33) nor an organisation (NK1-13); not mapped",
                        at(nk1, 2)
                    ));
                    continue;
                }
                let basis = format!(
                    "{}|{}|{}",
                    name.as_deref().unwrap_or_default(),
                    val(nk1, 13, 1).unwrap_or_default(),
                    code
                );
                let n = seen.iter().filter(|s| **s == basis).count();
                seen.push(basis.clone());
                let k = Key::derived(
                    ctx.derived_system("related-person"),
                    &[&patient_key.token(), &basis, &n.to_string()],
                );
                identifiers.push(k.identifier());
                k
            }
        };
        r.insert("identifier".into(), Value::Array(identifiers));
        r.insert("active".into(), json!(true));
        r.insert("patient".into(), json!({"reference": patient_ref}));
        let mut rel = Vec::new();
        rel.extend(relationship.and_then(|v| codeable(ctx, v, Some("0063"))));
        rel.extend(first(nk1, 7).and_then(|v| codeable(ctx, v, Some("0131"))));
        if !rel.is_empty() {
            r.insert("relationship".into(), Value::Array(rel));
        }
        let mut names = Vec::new();
        for (i, v) in reps(nk1, 2).enumerate() {
            names.extend(human_name(ctx, v, &format!("{}[{}]", at(nk1, 2), i + 1)));
        }
        if !names.is_empty() {
            r.insert("name".into(), Value::Array(names));
        }
        let telecom = telecoms(ctx, nk1);
        if !telecom.is_empty() {
            r.insert("telecom".into(), Value::Array(telecom));
        }
        if let Some(g) = val(nk1, 15, 1).and_then(tables::gender) {
            r.insert("gender".into(), json!(g));
        }
        if let Some(d) = ctx.date(val(nk1, 16, 1), &at(nk1, 16)) {
            r.insert("birthDate".into(), json!(d));
        }
        let mut addresses = Vec::new();
        for (i, v) in reps(nk1, 4).enumerate() {
            addresses.extend(address(ctx, v, &format!("{}[{}]", at(nk1, 4), i + 1)));
        }
        if !addresses.is_empty() {
            r.insert("address".into(), Value::Array(addresses));
        }
        let start = ctx.date_time(val(nk1, 8, 1), &at(nk1, 8));
        let end = ctx.date_time(val(nk1, 9, 1), &at(nk1, 9));
        if let Some(p) = period(start, end) {
            r.insert("period".into(), p);
        }
        if let Some(lang) = first(nk1, 20).and_then(|v| codeable(ctx, v, Some("0296"))) {
            r.insert("communication".into(), json!([{"language": lang}]));
        }
        let (_, duplicate) = ctx.bundle.add(&key, Write::Upsert, Value::Object(r));
        if duplicate {
            ctx.warn(format!(
                "{}: a second next of kin with the same identifier; the later one is kept",
                at(nk1, 33)
            ));
        }
    }
    contacts
}

/// NK1-5 (home), NK1-6 (work) and NK1-40 telecoms.
fn telecoms(ctx: &mut Ctx<'_>, nk1: &Segment) -> Vec<Value> {
    let mut telecom = Vec::new();
    for (field, default_use) in [(5, Some("home")), (6, Some("work")), (40, None)] {
        for (i, v) in reps(nk1, field).enumerate() {
            let here = format!("{}[{}]", at(nk1, field), i + 1);
            telecom.extend(contact_point(ctx, v, default_use, &here));
        }
    }
    telecom
}

/// An NK1 that names an organisation or agency, as a `Patient.contact`.
fn contact(ctx: &mut Ctx<'_>, nk1: &Segment) -> Option<Value> {
    let mut c = Map::new();
    let mut rel = Vec::new();
    rel.extend(first(nk1, 7).and_then(|v| codeable(ctx, v, Some("0131"))));
    rel.extend(first(nk1, 3).and_then(|v| codeable(ctx, v, Some("0063"))));
    if !rel.is_empty() {
        c.insert("relationship".into(), Value::Array(rel));
    }
    if let Some(n) = first(nk1, 2).and_then(|v| human_name(ctx, v, &at(nk1, 2))) {
        c.insert("name".into(), n);
    }
    let telecom = telecoms(ctx, nk1);
    if !telecom.is_empty() {
        c.insert("telecom".into(), Value::Array(telecom));
    }
    if let Some(a) = first(nk1, 4).and_then(|v| address(ctx, v, &at(nk1, 4))) {
        c.insert("address".into(), a);
    }
    if let Some(org) = val(nk1, 13, 1) {
        c.insert("organization".into(), json!({"display": org}));
    }
    let start = ctx.date_time(val(nk1, 8, 1), &at(nk1, 8));
    let end = ctx.date_time(val(nk1, 9, 1), &at(nk1, 9));
    if let Some(p) = period(start, end) {
        c.insert("period".into(), p);
    }
    // pat-1: a contact has a name, telecom, address or organization.
    let useful = ["name", "telecom", "address", "organization"]
        .iter()
        .any(|k| c.contains_key(*k));
    useful.then_some(Value::Object(c))
}

/// The patient of a message whose feed does not own demographics (results, appointments,
/// documents): PID as a Patient created only when no record has its key, so a lab's sparse PID
/// never overwrites what the ADT feed wrote. Returns the Patient's fullUrl and key.
pub(crate) fn subject(ctx: &mut Ctx<'_>, why: &str) -> Result<(String, Key), MapError> {
    let msg = ctx.msg;
    let pid = msg
        .first("PID")
        .ok_or_else(|| crate::context::missing_segment("PID", why))?;
    ctx.used(pid);
    let ids = patient_ids(ctx, pid)?;
    let record = build(ctx, pid, ids, None, &[], Vec::new());
    let (urn, _) = ctx
        .bundle
        .add(&record.key, Write::CreateIfAbsent, record.resource);
    ctx.patient_key = Some(record.key.clone());
    Ok((urn, record.key))
}
