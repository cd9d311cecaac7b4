//! SIU (scheduling) to Appointment, after the guide's SIU_S12 message map and its SCH, AIS, AIG,
//! AIL and AIP [Appointment] maps, so patients can see their upcoming appointments.
//!
//! Owns: the supported events and the status each implies (S12 new and S13 rescheduled booked,
//! S14 modified per SCH-25, S15 cancelled, S16 discontinued as cancelled, S17 deleted as
//! entered-in-error, S26 no-show), the Appointment key (SCH-2 filler id, else SCH-1 placer id),
//! the type (SCH-7, table 0276, R4's appointmentType binding), services (AIS-3), the comment
//! (NTE after SCH), start/end (TQ1-7/8, else SCH-11.4/5, else the first AIS-4), and participants
//! (the patient by reference; staff, rooms and equipment by name).
//!
//! Does not: write the Patient over what the ADT feed wrote (created only when absent), make an
//! Encounter from the PV1 of a booking (the visit has not happened), or handle S18-S25 (changes to
//! single services or resources).

use concord_hl7v2::{ErrorCode, Segment};
use serde_json::{Map, Value, json};

use crate::bundle::Write;
use crate::context::{Ctx, at, error, missing_segment};
use crate::datatype::{codeable, ei_identifier, first, reps, val, xcn_display};
use crate::encounter::location_reference;
use crate::time::Dtm;
use crate::{MapError, tables};

/// The status an SIU event gives, or `None` when SCH-25 (filler status) decides, booked if empty.
fn event_status(event: &str) -> Option<Option<&'static str>> {
    Some(match event {
        "S12" | "S14" => None,
        "S13" => Some("booked"),
        "S15" | "S16" => Some("cancelled"),
        "S17" => Some("entered-in-error"),
        "S26" => Some("noshow"),
        _ => return None,
    })
}

/// Maps an SIU message with trigger `event`.
pub(crate) fn map(ctx: &mut Ctx<'_>, event: &str) -> Result<(), MapError> {
    let msg = ctx.msg;
    let Some(fixed) = event_status(event) else {
        return Err(error(
            msg.msh(),
            Some(9),
            ErrorCode::UnsupportedEventCode,
            format!("SIU event {event} is not supported"),
        ));
    };
    let segs = msg.segments();
    let sch_pos = segs.iter().position(|s| s.id() == "SCH").ok_or_else(|| {
        missing_segment(
            "SCH",
            "a scheduling message describes the appointment in SCH",
        )
    })?;
    let sch = &segs[sch_pos];
    ctx.used(sch);
    let (patient_urn, _) = crate::patient::subject(ctx, "an appointment names its patient in PID")?;

    let mut identifiers = Vec::new();
    let mut key = None;
    for (field, type_code, ns) in [
        (2, "FILL", "filler-appointment"),
        (1, "PLAC", "placer-appointment"),
    ] {
        if let Some((mut id, k)) = first(sch, field).and_then(|v| ei_identifier(ctx, v, ns)) {
            id["type"] =
                json!({"coding": [{"system": tables::v2_table("0203"), "code": type_code}]});
            identifiers.push(id);
            key.get_or_insert(k);
        }
    }
    let Some(key) = key else {
        return Err(error(
            sch,
            Some(2),
            ErrorCode::RequiredFieldMissing,
            "neither SCH-2 (filler appointment id) nor SCH-1 (placer appointment id) has a value",
        ));
    };

    let status = match fixed {
        Some(s) => s,
        None => match val(sch, 25, 1) {
            Some(code) => tables::appointment_status(code).unwrap_or_else(|| {
                ctx.warn(format!(
                    "{}: not a code of table 0278; taken as booked",
                    at(sch, 25)
                ));
                "booked"
            }),
            None => "booked",
        },
    };
    let mut a = Map::new();
    a.insert("resourceType".into(), json!("Appointment"));
    a.insert("meta".into(), ctx.meta());
    a.insert("identifier".into(), Value::Array(identifiers));
    a.insert("status".into(), json!(status));
    if status == "cancelled"
        && let Some(reason) = first(sch, 6).and_then(|v| codeable(ctx, v, None))
    {
        a.insert("cancelationReason".into(), reason);
    }
    let services: Vec<Value> = segs
        .iter()
        .filter(|s| s.id() == "AIS")
        .filter_map(|s| first(s, 3).and_then(|v| codeable(ctx, v, None)))
        .collect();
    if !services.is_empty() {
        a.insert("serviceType".into(), Value::Array(services));
    }
    // SCH-7 uses table 0276 (ROUTINE, WALKIN, CHECKUP, FOLLOWUP, EMERGENCY), which is the value
    // set R4 binds Appointment.appointmentType to. SCH-8 (table 0277: Normal, Tentative,
    // Complete) says how the slot was booked and has no R4 element.
    if let Some(t) = first(sch, 7).and_then(|v| codeable(ctx, v, Some("0276"))) {
        a.insert("appointmentType".into(), t);
    }
    let (start, end, minutes) = timing(ctx, segs, sch);
    if let Some(s) = start {
        a.insert("start".into(), json!(s));
    }
    if let Some(e) = end {
        a.insert("end".into(), json!(e));
    }
    if let Some(m) = minutes {
        a.insert("minutesDuration".into(), json!(m));
    }
    let comments: Vec<String> = segs[sch_pos + 1..]
        .iter()
        .take_while(|s| matches!(s.id(), "TQ1" | "TQ2" | "NTE"))
        .filter(|s| s.id() == "NTE")
        .filter_map(|nte| {
            ctx.used(nte);
            let lines: Vec<String> = reps(nte, 3).map(|v| v.joined("^")).collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect();
    if !comments.is_empty() {
        a.insert("comment".into(), json!(comments.join("\n")));
    }
    a.insert(
        "participant".into(),
        Value::Array(participants(ctx, segs, &patient_urn)),
    );
    let (_, _) = ctx.bundle.add(&key, Write::Upsert, Value::Object(a));
    Ok(())
}

/// Start, end (instants) and minutes: TQ1-7/8, else SCH-11.4/5, else AIS-4 and its duration.
fn timing(
    ctx: &mut Ctx<'_>,
    segs: &[Segment],
    sch: &Segment,
) -> (Option<String>, Option<String>, Option<u32>) {
    let tq1 = segs.iter().find(|s| s.id() == "TQ1");
    let ais = segs.iter().find(|s| s.id() == "AIS");
    if let Some(tq1) = tq1 {
        ctx.used(tq1);
    }
    let (start_raw, start_at, end_raw, end_at) = match tq1.filter(|t| val(t, 7, 1).is_some()) {
        Some(t) => (val(t, 7, 1), at(t, 7), val(t, 8, 1), at(t, 8)),
        None => match first(sch, 11).filter(|v| v.get(4).is_some()) {
            Some(v) => (v.get(4), at(sch, 11), v.get(5), at(sch, 11)),
            None => match ais {
                Some(s) => (val(s, 4, 1), at(s, 4), None, at(s, 4)),
                None => (None, String::new(), None, String::new()),
            },
        },
    };
    let minutes = duration_minutes(val(sch, 9, 1), val(sch, 10, 1))
        .or_else(|| ais.and_then(|s| duration_minutes(val(s, 7, 1), val(s, 8, 1))));
    let start = ctx.instant(start_raw, &start_at);
    let mut end = ctx.instant(end_raw, &end_at);
    if end.is_none()
        && let (Some(raw), Some(m)) = (start_raw, minutes)
        && let Some(dtm) = Dtm::parse(raw)
    {
        end = dtm.plus_minutes(m).and_then(|e| ctx.dtm_instant(&e));
    }
    if start.is_some() != end.is_some() {
        ctx.warn(format!(
            "{start_at}: an appointment needs both a start and an end; neither is kept"
        ));
        return (None, None, minutes);
    }
    (start, end, minutes)
}

/// A duration in minutes from a number and a unit (`min`, `h`, `s`; minutes when no unit).
fn duration_minutes(amount: Option<&str>, unit: Option<&str>) -> Option<u32> {
    let n: f64 = amount?.trim().parse().ok()?;
    let minutes = match unit.map(str::to_ascii_lowercase).as_deref() {
        None | Some("min" | "m" | "mins" | "minutes") => n,
        Some("h" | "hr" | "hour" | "hours") => n * 60.0,
        Some("s" | "sec" | "seconds") => n / 60.0,
        _ => return None,
    };
    let rounded = minutes.round();
    (rounded >= 1.0 && rounded < f64::from(u32::MAX)).then_some(rounded as u32)
}

/// The patient, then AIP (people, with their role), AIL (locations) and AIG (other resources).
fn participants(ctx: &mut Ctx<'_>, segs: &[Segment], patient_urn: &str) -> Vec<Value> {
    let mut out = vec![json!({
        "actor": {"reference": patient_urn},
        "required": "required",
        "status": "accepted",
    })];
    for seg in segs {
        let (actor, role) = match seg.id() {
            "AIP" => (
                first(seg, 3)
                    .and_then(xcn_display)
                    .map(|d| json!({"display": d})),
                first(seg, 4).and_then(|v| codeable(ctx, v, Some("0443"))),
            ),
            "AIL" => (
                first(seg, 3).and_then(location_reference),
                first(seg, 4).and_then(|v| codeable(ctx, v, Some("0305"))),
            ),
            "AIG" => (
                first(seg, 3)
                    .and_then(|v| v.get(2).or(v.get(1)))
                    .map(|d| json!({"display": d})),
                first(seg, 4).and_then(|v| codeable(ctx, v, None)),
            ),
            _ => continue,
        };
        let Some(actor) = actor else { continue };
        ctx.used(seg);
        let mut p = json!({"actor": actor, "required": "required", "status": "accepted"});
        if let Some(r) = role {
            p["type"] = Value::Array(vec![r]);
        }
        out.push(p);
    }
    out
}
