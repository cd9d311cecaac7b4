//! ORU^R01 (observation results) to DiagnosticReport, Observation and Specimen, after the guide's
//! ORU_R01 message map and its OBR[DiagnosticReport], OBX[Observation] and SPM[Specimen] maps.
//!
//! Owns: the grouping of a result message (each OBR starts a report; the OBX and SPM after it
//! belong to it; OBX after an SPM are about that specimen; OBX before any OBR are about the
//! patient), report keys (OBR-3 filler order number, else OBR-2 placer, else ORC-3/ORC-2), report
//! status (OBR-25), and a Specimen from OBR-15 when a report has no SPM.
//!
//! Does not: write the Patient or Encounter over what the ADT feed wrote (both are created only
//! when absent), or make ServiceRequest, Practitioner or Organization resources.

use concord_hl7v2::{ErrorCode, Segment};
use serde_json::{Map, Value, json};

use crate::adt::following;
use crate::bundle::{Key, Write};
use crate::context::{Ctx, at, error};
use crate::datatype::{Comp, codeable, ei_identifier, first, period, reps, val};
use crate::encounter::{self, Status};
use crate::observation::{self, Scope, Seen, annotation};
use crate::{MapError, tables};

/// The R5 cross-version extension for report comments (R4 DiagnosticReport has no note).
const REPORT_NOTE_EXT: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.note";

/// One OBR's report while its segments are read.
struct Report<'a> {
    obr: &'a Segment,
    key: Key,
    identifiers: Vec<Value>,
    results: Vec<String>,
    specimens: Vec<String>,
    notes: Vec<Value>,
    seen: Seen,
    spm_seen: Seen,
}

/// Maps an ORU^R01.
pub(crate) fn map(ctx: &mut Ctx<'_>) -> Result<(), MapError> {
    let msg = ctx.msg;
    let segs = msg.segments();
    let (patient_urn, patient_key) = patient_of(ctx)?;
    let encounter_urn = match segs.iter().find(|s| s.id() == "PV1") {
        Some(pv1) => {
            let pv2 = segs.iter().find(|s| s.id() == "PV2");
            encounter::map(
                ctx,
                pv1,
                pv2,
                Status::FromVisit,
                Write::CreateIfAbsent,
                &patient_urn,
                None,
            )
            .map(|e| e.urn)
        }
        None => None,
    };
    let mut report: Option<Report<'_>> = None;
    let mut specimen: Option<String> = None;
    let mut orc: Option<&Segment> = None;
    let mut patient_seen = Seen::default();
    for (i, seg) in segs.iter().enumerate() {
        match seg.id() {
            "ORC" => {
                ctx.used(seg);
                orc = Some(seg);
            }
            "OBR" => {
                if let Some(r) = report.take() {
                    finish(ctx, r, &patient_urn, encounter_urn.as_deref());
                }
                specimen = None;
                ctx.used(seg);
                let r = start(ctx, seg, orc.take(), &patient_key)?;
                let notes = following(segs, i, "NTE");
                let mut r = r;
                for nte in &notes {
                    ctx.used(nte);
                    r.notes.extend(annotation(ctx, nte));
                }
                report = Some(r);
            }
            "OBX" => {
                let notes = following(segs, i, "NTE");
                match report.as_mut() {
                    Some(r) => {
                        let scope = Scope {
                            subject: &patient_urn,
                            encounter: encounter_urn.as_deref(),
                            specimen: specimen.as_deref(),
                            default_time: val(r.obr, 7, 1),
                            parent: r.key.token(),
                        };
                        if let Some(o) = observation::map(ctx, seg, &notes, &scope, &mut r.seen) {
                            r.results.push(o);
                        }
                    }
                    None => {
                        let scope = Scope {
                            subject: &patient_urn,
                            encounter: encounter_urn.as_deref(),
                            specimen: None,
                            default_time: None,
                            parent: patient_key.token(),
                        };
                        observation::map(ctx, seg, &notes, &scope, &mut patient_seen);
                    }
                }
            }
            "SPM" => {
                if let Some(r) = report.as_mut() {
                    ctx.used(seg);
                    let s = specimen_from_spm(ctx, seg, &patient_urn, r);
                    r.specimens.push(s.clone());
                    specimen = Some(s);
                }
            }
            _ => {}
        }
    }
    if let Some(r) = report.take() {
        finish(ctx, r, &patient_urn, encounter_urn.as_deref());
    }
    Ok(())
}

fn patient_of(ctx: &mut Ctx<'_>) -> Result<(String, Key), MapError> {
    crate::patient::subject(ctx, "a result names its patient in PID")
}

/// Starts a report at an OBR: its key and identifiers.
fn start<'a>(
    ctx: &mut Ctx<'_>,
    obr: &'a Segment,
    orc: Option<&'a Segment>,
    patient: &Key,
) -> Result<Report<'a>, MapError> {
    if first(obr, 4).is_none() {
        return Err(error(
            obr,
            Some(4),
            ErrorCode::RequiredFieldMissing,
            "OBR-4 (universal service identifier) is empty: a report needs to say what it reports",
        ));
    }
    let mut identifiers = Vec::new();
    let mut key = None;
    let sources: [(Option<&Segment>, usize, &str, &str); 4] = [
        (Some(obr), 3, "FILL", "filler-order"),
        (Some(obr), 2, "PLAC", "placer-order"),
        (orc, 3, "FILL", "filler-order"),
        (orc, 2, "PLAC", "placer-order"),
    ];
    for (seg, field, type_code, ns) in sources {
        let Some(seg) = seg else { continue };
        if let Some((mut id, k)) = first(seg, field).and_then(|v| ei_identifier(ctx, v, ns)) {
            if identifiers
                .iter()
                .any(|i: &Value| i["system"] == id["system"] && i["value"] == id["value"])
            {
                continue;
            }
            if seg.id() == "ORC" && key.is_some() {
                continue;
            }
            id["type"] =
                json!({"coding": [{"system": tables::v2_table("0203"), "code": type_code}]});
            identifiers.push(id);
            key.get_or_insert(k);
        }
    }
    let key = match key {
        Some(k) => k,
        None => {
            ctx.warn(format!(
                "{}: no filler or placer order number; the report is keyed by patient, test and time",
                at(obr, 3)
            ));
            let k = Key::derived(
                ctx.derived_system("report"),
                &[
                    &patient.token(),
                    val(obr, 4, 1).or(val(obr, 4, 2)).unwrap_or_default(),
                    val(obr, 7, 1).unwrap_or_default(),
                ],
            );
            identifiers.push(k.identifier());
            k
        }
    };
    Ok(Report {
        obr,
        key,
        identifiers,
        results: Vec::new(),
        specimens: Vec::new(),
        notes: Vec::new(),
        seen: Seen::default(),
        spm_seen: Seen::default(),
    })
}

/// Writes a report once its OBX and SPM are read.
fn finish(ctx: &mut Ctx<'_>, mut r: Report<'_>, patient_urn: &str, encounter_urn: Option<&str>) {
    let obr = r.obr;
    if r.specimens.is_empty()
        && let Some(s) = specimen_from_obr(ctx, obr, patient_urn, &r.key)
    {
        r.specimens.push(s);
    }
    let mut d = Map::new();
    d.insert("resourceType".into(), json!("DiagnosticReport"));
    d.insert("meta".into(), ctx.meta());
    if !r.notes.is_empty() {
        let notes: Vec<Value> = r
            .notes
            .into_iter()
            .map(|n| json!({"url": REPORT_NOTE_EXT, "valueAnnotation": n}))
            .collect();
        d.insert("extension".into(), Value::Array(notes));
    }
    d.insert("identifier".into(), Value::Array(r.identifiers));
    let status = match val(obr, 25, 1) {
        Some(code) => tables::report_status(code).unwrap_or_else(|| {
            ctx.warn(format!(
                "{}: not a code of table 0123; status unknown",
                at(obr, 25)
            ));
            "unknown"
        }),
        // OBR-25 is required in results; without it, the status of the results decides.
        None => "unknown",
    };
    d.insert("status".into(), json!(status));
    if let Some(section) = first(obr, 24).and_then(|v| codeable(ctx, v, Some("0074"))) {
        d.insert("category".into(), Value::Array(vec![section]));
    }
    if let Some(code) = first(obr, 4).and_then(|v| codeable(ctx, v, None)) {
        d.insert("code".into(), code);
    }
    d.insert("subject".into(), json!({"reference": patient_urn}));
    if let Some(enc) = encounter_urn {
        d.insert("encounter".into(), json!({"reference": enc}));
    }
    let start = ctx.date_time(val(obr, 7, 1), &at(obr, 7));
    let end = ctx.date_time(val(obr, 8, 1), &at(obr, 8));
    match (start, end) {
        (Some(s), None) => {
            d.insert("effectiveDateTime".into(), json!(s));
        }
        (s, e) => {
            if let Some(p) = period(s, e) {
                d.insert("effectivePeriod".into(), p);
            }
        }
    }
    if let Some(issued) = ctx.instant(val(obr, 22, 1), &at(obr, 22)) {
        d.insert("issued".into(), json!(issued));
    }
    let interpreters: Vec<Value> = reps(obr, 32).filter_map(cnn_reference).collect();
    if !interpreters.is_empty() {
        d.insert("resultsInterpreter".into(), Value::Array(interpreters));
    }
    if !r.specimens.is_empty() {
        let refs: Vec<Value> = r
            .specimens
            .iter()
            .map(|s| json!({"reference": s}))
            .collect();
        d.insert("specimen".into(), Value::Array(refs));
    }
    if !r.results.is_empty() {
        let refs: Vec<Value> = r.results.iter().map(|s| json!({"reference": s})).collect();
        d.insert("result".into(), Value::Array(refs));
    }
    let (_, duplicate) = ctx.bundle.add(&r.key, Write::Upsert, Value::Object(d));
    if duplicate {
        ctx.warn(format!(
            "{}: a second report with the same order number; the later one is kept",
            at(obr, 3)
        ));
    }
}

/// NDL (OBR-32): the name is CNN in component 1's subcomponents (id, family, given, ...).
fn cnn_reference(v: Comp<'_>) -> Option<Value> {
    let name = v.part(1)?;
    let words: Vec<&str> = [
        name.get(6),
        name.get(3),
        name.get(4),
        name.get(2),
        name.get(5),
    ]
    .into_iter()
    .flatten()
    .collect();
    let display = if words.is_empty() {
        name.get(1)?.to_string()
    } else {
        words.join(" ")
    };
    Some(json!({"display": display}))
}

/// SPM to Specimen, keyed by SPM-2 (filler id, else placer id) or by the report and SPM-1.
fn specimen_from_spm(
    ctx: &mut Ctx<'_>,
    spm: &Segment,
    patient_urn: &str,
    r: &mut Report<'_>,
) -> String {
    let mut identifiers = Vec::new();
    let mut key = None;
    if let Some(ids) = first(spm, 2) {
        for (part, type_code) in [(2, "FGN"), (1, "PGN")] {
            if let Some((mut id, k)) = ids
                .part(part)
                .and_then(|p| ei_identifier(ctx, p, "specimen"))
            {
                id["type"] =
                    json!({"coding": [{"system": tables::v2_table("0203"), "code": type_code}]});
                identifiers.push(id);
                key.get_or_insert(k);
            }
        }
    }
    let key = key.unwrap_or_else(|| {
        let basis = val(spm, 1, 1).unwrap_or_default().to_string();
        let n = r.spm_seen.next_of(basis.clone());
        let k = Key::derived(
            ctx.derived_system("specimen"),
            &[&r.key.token(), &basis, &n.to_string()],
        );
        identifiers.push(k.identifier());
        k
    });
    let mut s = Map::new();
    s.insert("resourceType".into(), json!("Specimen"));
    s.insert("meta".into(), ctx.meta());
    s.insert("identifier".into(), Value::Array(identifiers));
    if let Some(t) = first(spm, 4).and_then(|v| codeable(ctx, v, Some("0487"))) {
        s.insert("type".into(), t);
    }
    s.insert("subject".into(), json!({"reference": patient_urn}));
    if let Some(t) = ctx.date_time(val(spm, 18, 1), &at(spm, 18)) {
        s.insert("receivedTime".into(), json!(t));
    }
    let mut collection = Map::new();
    if let Some(range) = first(spm, 17) {
        let start = ctx.date_time(range.sub(1, 1), &at(spm, 17));
        let end = ctx.date_time(range.sub(2, 1), &at(spm, 17));
        match (start, end) {
            (Some(s), None) => {
                collection.insert("collectedDateTime".into(), json!(s));
            }
            (s, e) => {
                if let Some(p) = period(s, e) {
                    collection.insert("collectedPeriod".into(), p);
                }
            }
        }
    }
    if let Some(amount) = first(spm, 12)
        && let Some(n) = amount.get(1).and_then(crate::datatype::decimal)
    {
        collection.insert(
            "quantity".into(),
            crate::datatype::quantity(ctx, n, amount.part(2)),
        );
    }
    if let Some(m) = first(spm, 7).and_then(|v| codeable(ctx, v, Some("0488"))) {
        collection.insert("method".into(), m);
    }
    if let Some(site) = first(spm, 8).and_then(|v| codeable(ctx, v, None)) {
        collection.insert("bodySite".into(), site);
    }
    if !collection.is_empty() {
        s.insert("collection".into(), Value::Object(collection));
    }
    let conditions: Vec<Value> = reps(spm, 24)
        .filter_map(|v| codeable(ctx, v, Some("0493")))
        .collect();
    if !conditions.is_empty() {
        s.insert("condition".into(), Value::Array(conditions));
    }
    if let Some(container) = first(spm, 27).and_then(|v| codeable(ctx, v, None)) {
        s.insert("container".into(), json!([{"type": container}]));
    }
    if let Some(desc) = val(spm, 14, 1) {
        s.insert("note".into(), json!([{"text": desc}]));
    }
    let (urn, _) = ctx.bundle.add(&key, Write::Upsert, Value::Object(s));
    urn
}

/// OBR-15 (specimen source, before SPM existed) to a Specimen keyed by its report.
fn specimen_from_obr(
    ctx: &mut Ctx<'_>,
    obr: &Segment,
    patient_urn: &str,
    report: &Key,
) -> Option<String> {
    let source = first(obr, 15)?;
    let kind = source.part(1).and_then(|p| codeable(ctx, p, Some("0070")));
    let key = Key::derived(ctx.derived_system("specimen"), &[&report.token(), "OBR-15"]);
    let mut s = Map::new();
    s.insert("resourceType".into(), json!("Specimen"));
    s.insert("meta".into(), ctx.meta());
    s.insert("identifier".into(), json!([key.identifier()]));
    if let Some(k) = kind {
        s.insert("type".into(), k);
    }
    s.insert("subject".into(), json!({"reference": patient_urn}));
    if let Some(t) = ctx.date_time(val(obr, 14, 1), &at(obr, 14)) {
        s.insert("receivedTime".into(), json!(t));
    }
    let mut collection = Map::new();
    if let Some(t) = ctx.date_time(val(obr, 7, 1), &at(obr, 7)) {
        collection.insert("collectedDateTime".into(), json!(t));
    }
    if let Some(site) = source.part(4).and_then(|p| codeable(ctx, p, Some("0163"))) {
        collection.insert("bodySite".into(), site);
    }
    if !collection.is_empty() {
        s.insert("collection".into(), Value::Object(collection));
    }
    let (urn, _) = ctx.bundle.add(&key, Write::Upsert, Value::Object(s));
    Some(urn)
}
