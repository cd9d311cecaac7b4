//! OBX (with its NTE comments) to Observation, after the guide's OBX[Observation] map: the value
//! by OBX-2 value type, units, reference range, interpretation, status, time and performers.
//!
//! Owns: value types NM (Quantity), ST/TX/FT (string), CE/CWE/CNE/CF/IS/ID (CodeableConcept),
//! SN (Quantity with comparator, Range or Ratio), DT/DTM/TS (dateTime), TM (time), DR (Period),
//! NR (Range), ED and RP (an attachment, in the R5 cross-version `Observation.value`
//! extension since R4 has no valueAttachment), HD/EI (string); the Observation's key (OBX-21, else
//! derived from its report and OBX-3/OBX-4).
//!
//! Does not: decide what an Observation belongs to (the message maps pass subject, encounter,
//! specimen and the report's key), or interpret OBX-4 sub-ids beyond keeping them apart.

use concord_hl7v2::Segment;
use serde_json::{Map, Value, json};

use crate::bundle::{Key, Write, base64, is_base64};
use crate::context::{Ctx, at};
use crate::datatype::{
    Comp, codeable, decimal, ei_identifier, first, period, quantity, reps, val, xcn_reference,
    xon_reference,
};
use crate::tables;

/// The R5 cross-version extension that carries an attachment value in R4.
pub(crate) const VALUE_ATTACHMENT_EXT: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value";

/// What an OBX is about, from the message around it.
pub(crate) struct Scope<'a> {
    pub subject: &'a str,
    pub encounter: Option<&'a str>,
    pub specimen: Option<&'a str>,
    /// A v2 time to use when OBX-14 is empty (OBR-7 for results).
    pub default_time: Option<&'a str>,
    /// The key of what the OBX belongs to (the report, or the patient), for derived keys.
    pub parent: String,
}

/// Counts OBX-3/OBX-4 pairs within one parent, so repeated codes get distinct derived keys.
#[derive(Default)]
pub(crate) struct Seen(Vec<String>);

impl Seen {
    /// How many times `basis` was seen before in this scope (and notes it once more).
    pub(crate) fn next_of(&mut self, basis: String) -> usize {
        let n = self.0.iter().filter(|s| **s == basis).count();
        self.0.push(basis);
        n
    }
}

/// Maps one OBX; returns the Observation's fullUrl, or `None` (with a warning) when OBX-3 is
/// empty, since an observation of nothing in particular cannot be shown or searched.
pub(crate) fn map(
    ctx: &mut Ctx<'_>,
    obx: &Segment,
    notes: &[&Segment],
    scope: &Scope<'_>,
    seen: &mut Seen,
) -> Option<String> {
    ctx.used(obx);
    for nte in notes {
        ctx.used(nte);
    }
    let Some(code) = first(obx, 3).and_then(|v| codeable(ctx, v, None)) else {
        ctx.warn(format!(
            "{}: no observation identifier; the observation is not mapped",
            at(obx, 3)
        ));
        return None;
    };
    let mut identifiers = Vec::new();
    let key = match first(obx, 21).and_then(|v| ei_identifier(ctx, v, "observation")) {
        Some((mut id, key)) => {
            id["type"] = json!({"coding": [{"system": tables::v2_table("0203"), "code": "FILL"}]});
            identifiers.push(id);
            key
        }
        None => {
            let basis = format!(
                "{}|{}|{}",
                val(obx, 3, 1).or(val(obx, 3, 2)).unwrap_or_default(),
                val(obx, 3, 3).unwrap_or_default(),
                val(obx, 4, 1).unwrap_or_default()
            );
            let n = seen.next_of(basis.clone());
            let key = Key::derived(
                ctx.derived_system("observation"),
                &[&scope.parent, &basis, &n.to_string()],
            );
            identifiers.push(key.identifier());
            key
        }
    };
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    o.insert("meta".into(), ctx.meta());
    o.insert("identifier".into(), Value::Array(identifiers));
    let status_code = val(obx, 11, 1);
    let status = match status_code.and_then(tables::observation_status) {
        Some(s) => s,
        None => {
            ctx.warn(format!(
                "{}: empty or not a code of table 0085; status unknown",
                at(obx, 11)
            ));
            "unknown"
        }
    };
    o.insert("status".into(), json!(status));
    if let Some(kind) = val(obx, 29, 1) {
        o.insert(
            "category".into(),
            json!([{"coding": [{"system": tables::v2_table("0936"), "code": kind}]}]),
        );
    }
    o.insert("code".into(), code);
    o.insert("subject".into(), json!({"reference": scope.subject}));
    if let Some(enc) = scope.encounter {
        o.insert("encounter".into(), json!({"reference": enc}));
    }
    let time = val(obx, 14, 1).or(scope.default_time);
    if let Some(t) = ctx.date_time(time, &at(obx, 14)) {
        o.insert("effectiveDateTime".into(), json!(t));
    }
    let mut performers = Vec::new();
    for v in reps(obx, 16) {
        performers.extend(xcn_reference(ctx, v));
    }
    if let Some(org) = first(obx, 23).and_then(|v| xon_reference(ctx, v)) {
        performers.push(org);
    }
    if !performers.is_empty() {
        o.insert("performer".into(), Value::Array(performers));
    }
    let mut extensions = Vec::new();
    value(ctx, obx, &mut o, &mut extensions);
    if status_code.is_some_and(|s| s.eq_ignore_ascii_case("N"))
        && !o.keys().any(|k| k.starts_with("value"))
    {
        o.insert(
            "dataAbsentReason".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-asked"}]}),
        );
    }
    let mut interpretations = Vec::new();
    for v in reps(obx, 8) {
        interpretations.extend(interpretation(ctx, v));
    }
    if !interpretations.is_empty() {
        o.insert("interpretation".into(), Value::Array(interpretations));
    }
    let note: Vec<Value> = notes.iter().filter_map(|n| annotation(ctx, n)).collect();
    if !note.is_empty() {
        o.insert("note".into(), Value::Array(note));
    }
    if let Some(site) = first(obx, 20).and_then(|v| codeable(ctx, v, Some("0163"))) {
        o.insert("bodySite".into(), site);
    }
    if let Some(method) = first(obx, 17).and_then(|v| codeable(ctx, v, None)) {
        o.insert("method".into(), method);
    }
    if let Some(spec) = scope.specimen {
        o.insert("specimen".into(), json!({"reference": spec}));
    }
    if let Some(range) = reference_range(ctx, obx) {
        o.insert("referenceRange".into(), Value::Array(vec![range]));
    }
    if !extensions.is_empty() {
        o.insert("extension".into(), Value::Array(extensions));
    }
    let (urn, duplicate) = ctx.bundle.add(&key, Write::Upsert, Value::Object(o));
    if duplicate {
        ctx.warn(format!(
            "{}: a second observation with the same instance identifier; the later one is kept",
            at(obx, 21)
        ));
    }
    Some(urn)
}

/// OBX-5 by OBX-2.
fn value(ctx: &mut Ctx<'_>, obx: &Segment, o: &mut Map<String, Value>, ext: &mut Vec<Value>) {
    let values: Vec<Comp<'_>> = reps(obx, 5).collect();
    let Some(v) = values.first().copied() else {
        return;
    };
    let kind = val(obx, 2, 1).unwrap_or_default().to_ascii_uppercase();
    let unit = first(obx, 6);
    let here = at(obx, 5);
    let text_kinds = ["ST", "TX", "FT"];
    if values.len() > 1 && !text_kinds.contains(&kind.as_str()) {
        ctx.warn(format!(
            "{here}: {} repetitions of a {kind} value; only the first is mapped",
            values.len()
        ));
    }
    match kind.as_str() {
        "NM" => match v.get(1).and_then(decimal) {
            Some(n) => {
                o.insert("valueQuantity".into(), quantity(ctx, n, unit));
            }
            None => {
                ctx.warn(format!(
                    "{here}: an NM value that is not a number; kept as text"
                ));
                o.insert("valueString".into(), json!(v.joined("^")));
            }
        },
        "ST" | "TX" | "FT" => {
            let lines: Vec<String> = values
                .iter()
                .map(|r| formatted_text(&r.joined("^")))
                .collect();
            o.insert("valueString".into(), json!(lines.join("\n")));
        }
        "CE" | "CWE" | "CNE" | "CF" | "IS" | "ID" => {
            if let Some(cc) = codeable(ctx, v, None) {
                o.insert("valueCodeableConcept".into(), cc);
            }
        }
        "SN" => structured_numeric(ctx, v, unit, o, &here),
        "DT" | "DTM" | "TS" => {
            if let Some(t) = ctx.date_time(v.get(1), &here) {
                o.insert("valueDateTime".into(), json!(t));
            }
        }
        "TM" => match time_of_day(v.get(1).unwrap_or_default()) {
            Some(t) => {
                o.insert("valueTime".into(), json!(t));
            }
            None => ctx.warn(format!("{here}: not a valid time; left out")),
        },
        "DR" => {
            let start = ctx.date_time(v.sub(1, 1), &here);
            let end = ctx.date_time(v.sub(2, 1), &here);
            if let Some(p) = period(start, end) {
                o.insert("valuePeriod".into(), p);
            }
        }
        "NR" => {
            if let Some(r) = range(
                ctx,
                v.get(1).and_then(decimal),
                v.get(2).and_then(decimal),
                unit,
            ) {
                o.insert("valueRange".into(), r);
            }
        }
        "ED" => match attachment_from_ed(ctx, v, &here) {
            Some(a) => ext.push(json!({"url": VALUE_ATTACHMENT_EXT, "valueAttachment": a})),
            None => ctx.warn(format!("{here}: an ED value without data; left out")),
        },
        "RP" => {
            if let Some(a) = attachment_from_rp(v) {
                ext.push(json!({"url": VALUE_ATTACHMENT_EXT, "valueAttachment": a}));
            }
        }
        "HD" | "EI" => {
            o.insert(
                "valueString".into(),
                json!(v.get(1).or(v.get(2)).unwrap_or_default()),
            );
        }
        _ => {
            ctx.warn(format!(
                "{}: value type not mapped to a typed value; kept as text",
                at(obx, 2)
            ));
            o.insert("valueString".into(), json!(v.joined("^")));
        }
    }
}

/// v2 formatted text: the `\.br\` line break some senders leave in place becomes a new line.
pub(crate) fn formatted_text(s: &str) -> String {
    s.replace("\\.br\\", "\n")
}

/// SN: comparator, number, separator/suffix, number.
fn structured_numeric(
    ctx: &mut Ctx<'_>,
    v: Comp<'_>,
    unit: Option<Comp<'_>>,
    o: &mut Map<String, Value>,
    here: &str,
) {
    let comparator = v.get(1);
    let n1 = v.get(2).and_then(decimal);
    let sep = v.get(3);
    let n2 = v.get(4).and_then(decimal);
    match (comparator, n1, sep, n2) {
        (None, Some(a), Some("-"), Some(b)) => {
            if let Some(r) = range(ctx, Some(a), Some(b), unit) {
                o.insert("valueRange".into(), r);
            }
        }
        (None, Some(a), Some(":" | "/"), Some(b)) => {
            o.insert(
                "valueRatio".into(),
                json!({"numerator": quantity(ctx, a, unit), "denominator": quantity(ctx, b, None)}),
            );
        }
        (c, Some(a), None, None) if matches!(c, None | Some("<" | ">" | "<=" | ">=")) => {
            let mut q = quantity(ctx, a, unit);
            if let Some(c) = c {
                q["comparator"] = json!(c);
            }
            o.insert("valueQuantity".into(), q);
        }
        _ => {
            ctx.warn(format!(
                "{here}: a structured numeric that is not a number, range or ratio; kept as text"
            ));
            o.insert("valueString".into(), json!(v.joined(" ")));
        }
    }
}

fn range(
    ctx: &Ctx<'_>,
    low: Option<serde_json::Number>,
    high: Option<serde_json::Number>,
    unit: Option<Comp<'_>>,
) -> Option<Value> {
    let mut r = Map::new();
    if let Some(l) = low {
        r.insert("low".into(), quantity(ctx, l, unit));
    }
    if let Some(h) = high {
        r.insert("high".into(), quantity(ctx, h, unit));
    }
    (!r.is_empty()).then_some(Value::Object(r))
}

/// HHMM[SS[.SSSS]] to a FHIR time.
fn time_of_day(s: &str) -> Option<String> {
    let s = s.split(['+', '-']).next()?.trim();
    let (digits, frac) = match s.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (s, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4 | 6) {
        return None;
    }
    let part = |i: usize| digits.get(i..i + 2).unwrap_or("00");
    let (h, m, sec) = (part(0), part(2), part(4));
    if h > "23" || m > "59" || sec > "59" {
        return None;
    }
    let mut out = format!("{h}:{m}:{sec}");
    if let Some(f) = frac.filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())) {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// OBX-7 reference range: the text, and low/high when it reads as `a-b`, `<b`, `>a`.
fn reference_range(ctx: &Ctx<'_>, obx: &Segment) -> Option<Value> {
    let text = val(obx, 7, 1)?;
    let unit = first(obx, 6);
    let mut r = Map::new();
    let numeric = val(obx, 2, 1).is_some_and(|k| matches!(k, "NM" | "SN"));
    if numeric {
        let t = text.trim();
        if let Some(high) = t
            .strip_prefix("<=")
            .or_else(|| t.strip_prefix('<'))
            .and_then(decimal)
        {
            r.insert("high".into(), quantity(ctx, high, unit));
        } else if let Some(low) = t
            .strip_prefix(">=")
            .or_else(|| t.strip_prefix('>'))
            .and_then(decimal)
        {
            r.insert("low".into(), quantity(ctx, low, unit));
        } else if let Some((a, b)) = t.split_once('-').filter(|(a, _)| !a.trim().is_empty())
            && let (Some(low), Some(high)) = (decimal(a), decimal(b))
        {
            r.insert("low".into(), quantity(ctx, low, unit));
            r.insert("high".into(), quantity(ctx, high, unit));
        }
    }
    r.insert("text".into(), json!(text));
    Some(Value::Object(r))
}

/// OBX-8: codes v3 ObservationInterpretation shares with table 0078 keep their code in the v3
/// system; others stay as sent.
fn interpretation(ctx: &Ctx<'_>, v: Comp<'_>) -> Option<Value> {
    let code = v.get(1)?;
    let named = v.get(3).unwrap_or_default();
    let v2_table = named.is_empty() || named.eq_ignore_ascii_case("HL70078");
    if v2_table && tables::is_v3_interpretation(code) {
        let mut c = json!({
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": code,
        });
        if let Some(d) = v.get(2) {
            c["display"] = json!(d);
        }
        return Some(json!({"coding": [c]}));
    }
    codeable(ctx, v, Some("0078"))
}

/// An NTE as an Annotation: NTE-3 (repeating) text, NTE-5 entered by, NTE-6 entered at.
pub(crate) fn annotation(ctx: &mut Ctx<'_>, nte: &Segment) -> Option<Value> {
    let lines: Vec<String> = reps(nte, 3)
        .map(|v| formatted_text(&v.joined("^")))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut a = Map::new();
    if let Some(by) = first(nte, 5).and_then(|v| xcn_reference(ctx, v)) {
        a.insert("authorReference".into(), by);
    }
    if let Some(t) = ctx.date_time(val(nte, 6, 1), &at(nte, 6)) {
        a.insert("time".into(), json!(t));
    }
    a.insert("text".into(), json!(lines.join("\n")));
    Some(Value::Object(a))
}

/// ED (source, type of data, subtype, encoding, data) to an Attachment; `None` without data.
pub(crate) fn attachment_from_ed(ctx: &mut Ctx<'_>, v: Comp<'_>, here: &str) -> Option<Value> {
    let content_type = tables::mime_type(v.get(2), v.get(3));
    let data = v.get(5)?;
    let encoding = v.get(4).unwrap_or("A").to_ascii_uppercase();
    let encoded = match encoding.as_str() {
        "BASE64" => {
            if !is_base64(data) {
                ctx.warn(format!(
                    "{here}: ED data marked Base64 is not valid base64; left out"
                ));
                return None;
            }
            data.split_whitespace().collect::<String>()
        }
        "HEX" => {
            let bytes: Option<Vec<u8>> = (0..data.len())
                .step_by(2)
                .map(|i| {
                    data.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect();
            match bytes {
                Some(b) if data.len().is_multiple_of(2) => base64(&b),
                _ => {
                    ctx.warn(format!(
                        "{here}: ED data marked Hex is not hexadecimal; left out"
                    ));
                    return None;
                }
            }
        }
        _ => base64(formatted_text(data).as_bytes()),
    };
    Some(json!({"contentType": content_type, "data": encoded}))
}

/// RP (pointer, application id, type of data, subtype) to an Attachment with a URL.
pub(crate) fn attachment_from_rp(v: Comp<'_>) -> Option<Value> {
    let url = v.get(1)?;
    let mut a = json!({"url": url.split_whitespace().collect::<Vec<_>>().join("%20")});
    if v.get(3).is_some() || v.get(4).is_some() {
        a["contentType"] = json!(tables::mime_type(v.get(3), v.get(4)));
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(time_of_day("1230").as_deref(), Some("12:30:00"));
        assert_eq!(time_of_day("123059.5").as_deref(), Some("12:30:59.5"));
        assert_eq!(time_of_day("2530"), None);
        assert_eq!(time_of_day("12").as_deref(), Some("12:00:00"));
    }
}
