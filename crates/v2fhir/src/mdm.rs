//! MDM (medical documents: discharge summaries, letters, reports) to DocumentReference, after the
//! guide's MDM_T02 message map and its TXA[DocumentReference] and OBX[DocumentReference] maps.
//!
//! Owns: the supported events (T01-T11) and the status each implies (T11 cancel: entered-in-error;
//! TXA-19 obsolete: superseded; otherwise current), the key (TXA-12, the unique document number,
//! as `masterIdentifier`), the content (the text OBX values as one base64 `text/plain` attachment,
//! ED values as their own attachments, RP values as URLs; a notification without content gets an
//! attachment that only says what kind of document it is), and `relatesTo` for addenda (T05/T06
//! appends TXA-13) and replacements (T09/T10 replaces TXA-13).
//!
//! Does not: mark the replaced document superseded (that would overwrite it without its content;
//! the caller can follow `relatesTo`), or write the Patient or Encounter over the ADT feed's.

use concord_hl7v2::{ErrorCode, Segment};
use serde_json::{Map, Value, json};

use crate::bundle::{Write, base64};
use crate::context::{Ctx, at, error, missing_segment};
use crate::datatype::{codeable, ei_identifier, first, reps, val, xcn_reference};
use crate::encounter::{self, Status};
use crate::observation::{attachment_from_ed, attachment_from_rp, formatted_text};
use crate::{MapError, tables};

/// Maps an MDM message with trigger `event`.
pub(crate) fn map(ctx: &mut Ctx<'_>, event: &str) -> Result<(), MapError> {
    let msg = ctx.msg;
    let relation = match event {
        "T01" | "T02" | "T03" | "T04" | "T07" | "T08" | "T11" => None,
        "T05" | "T06" => Some("appends"),
        "T09" | "T10" => Some("replaces"),
        _ => {
            return Err(error(
                msg.msh(),
                Some(9),
                ErrorCode::UnsupportedEventCode,
                format!("MDM event {event} is not supported"),
            ));
        }
    };
    let segs = msg.segments();
    let txa = msg.first("TXA").ok_or_else(|| {
        missing_segment("TXA", "a document message describes the document in TXA")
    })?;
    ctx.used(txa);
    let Some((master, key)) = first(txa, 12).and_then(|v| ei_identifier(ctx, v, "document")) else {
        return Err(error(
            txa,
            Some(12),
            ErrorCode::RequiredFieldMissing,
            "TXA-12 (unique document number) is empty",
        ));
    };
    let (patient_urn, _) = crate::patient::subject(ctx, "a document names its patient in PID")?;
    let encounter_urn = match segs.iter().find(|s| s.id() == "PV1") {
        Some(pv1) => encounter::map(
            ctx,
            pv1,
            None,
            Status::FromVisit,
            Write::CreateIfAbsent,
            &patient_urn,
            None,
        )
        .map(|e| e.urn),
        None => None,
    };

    let availability = val(txa, 19, 1).map(str::to_ascii_uppercase);
    let status = if event == "T11" || availability.as_deref() == Some("CA") {
        "entered-in-error"
    } else if availability.as_deref() == Some("OB") {
        "superseded"
    } else {
        "current"
    };
    let mut d = Map::new();
    d.insert("resourceType".into(), json!("DocumentReference"));
    d.insert("meta".into(), ctx.meta());
    d.insert("masterIdentifier".into(), master);
    if let Some(file) = val(txa, 16, 1) {
        d.insert(
            "identifier".into(),
            json!([{"system": ctx.id_system("document-file"), "value": file}]),
        );
    }
    d.insert("status".into(), json!(status));
    if let Some(ds) = val(txa, 17, 1) {
        match tables::doc_status(ds) {
            Some(s) => {
                d.insert("docStatus".into(), json!(s));
            }
            None => ctx.warn(format!(
                "{}: not a code of table 0271; left out",
                at(txa, 17)
            )),
        }
    }
    if let Some(t) = first(txa, 2).and_then(|v| codeable(ctx, v, Some("0270"))) {
        d.insert("type".into(), t);
    }
    d.insert("subject".into(), json!({"reference": patient_urn}));
    let date = val(txa, 6, 1)
        .filter(|v| Ctx::has_time(v))
        .or(val(txa, 4, 1));
    let date_at = if val(txa, 6, 1).is_some() {
        at(txa, 6)
    } else {
        at(txa, 4)
    };
    if let Some(i) = ctx.instant(date, &date_at) {
        d.insert("date".into(), json!(i));
    }
    let authors: Vec<Value> = reps(txa, 9).filter_map(|v| xcn_reference(ctx, v)).collect();
    if !authors.is_empty() {
        d.insert("author".into(), Value::Array(authors));
    }
    if let Some(a) = first(txa, 10)
        .or_else(|| first(txa, 22))
        .and_then(|v| xcn_reference(ctx, v))
    {
        d.insert("authenticator".into(), a);
    }
    if let (Some(code), Some(parent)) = (
        relation,
        first(txa, 13).and_then(|v| ei_identifier(ctx, v, "document")),
    ) {
        d.insert(
            "relatesTo".into(),
            json!([{"code": code, "target": {"type": "DocumentReference", "identifier": parent.0}}]),
        );
    } else if relation.is_some() {
        ctx.warn(format!(
            "{}: an addendum or replacement without the parent document number",
            at(txa, 13)
        ));
    }
    let titles: Vec<String> = reps(txa, 25).map(|v| v.joined(" ")).collect();
    let title = (!titles.is_empty()).then(|| titles.join("; "));
    if let Some(t) = &title {
        d.insert("description".into(), json!(t));
    }
    if let Some(code) = val(txa, 18, 1).and_then(tables::confidentiality) {
        d.insert(
            "securityLabel".into(),
            json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": code}]}]),
        );
    }
    d.insert(
        "content".into(),
        Value::Array(content(ctx, segs, txa, title.as_deref())),
    );
    if let Some(enc) = encounter_urn {
        d.insert("context".into(), json!({"encounter": [{"reference": enc}]}));
    }
    ctx.bundle.add(&key, Write::Upsert, Value::Object(d));
    Ok(())
}

/// The document's content from the OBX after TXA.
fn content(ctx: &mut Ctx<'_>, segs: &[Segment], txa: &Segment, title: Option<&str>) -> Vec<Value> {
    let presentation = val(txa, 3, 1).map(str::to_ascii_uppercase);
    let mut text_lines: Vec<String> = Vec::new();
    let mut attachments: Vec<Value> = Vec::new();
    for obx in segs.iter().filter(|s| s.id() == "OBX") {
        ctx.used(obx);
        let kind = val(obx, 2, 1).unwrap_or_default().to_ascii_uppercase();
        let here = at(obx, 5);
        for v in reps(obx, 5) {
            match kind.as_str() {
                "TX" | "ST" | "FT" => {
                    text_lines.push(formatted_text(&v.joined("^")));
                }
                "ED" => match attachment_from_ed(ctx, v, &here) {
                    Some(a) => attachments.push(a),
                    None => {
                        let content_type = tables::mime_type(v.get(2), v.get(3));
                        ctx.warn(format!(
                            "{here}: an ED value without data; only its type is kept"
                        ));
                        attachments.push(json!({"contentType": content_type}));
                    }
                },
                "RP" => attachments.extend(attachment_from_rp(v)),
                _ => {
                    ctx.warn(format!(
                        "{}: a {kind} value is not document content (text, ED or RP); left out",
                        at(obx, 2)
                    ));
                }
            }
        }
    }
    let mut out = Vec::new();
    if !text_lines.is_empty() {
        let mut attachment = json!({
            "contentType": "text/plain; charset=utf-8",
            "data": base64(text_lines.join("\n").as_bytes()),
        });
        if let Some(t) = title {
            attachment["title"] = json!(t);
        }
        out.push(json!({"attachment": attachment}));
    }
    for mut a in attachments {
        if let Some(t) = title {
            a["title"] = json!(t);
        }
        out.push(json!({"attachment": a}));
    }
    if out.is_empty() {
        // A notification (T01, T03, T05, T09, T11) without content: content is 1..* in R4, so the
        // attachment says what the document is, not what it contains.
        let content_type = match presentation.as_deref() {
            Some("TX" | "FT") | None => "text/plain".to_string(),
            Some(other) => tables::mime_type(Some(other), None),
        };
        let mut a = json!({"contentType": content_type});
        if let Some(t) = title {
            a["title"] = json!(t);
        }
        out.push(json!({"attachment": a}));
    }
    out
}
