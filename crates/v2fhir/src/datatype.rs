//! HL7 v2 datatypes to FHIR datatypes, after the guide's datatype maps: CWE/CE/CNE to
//! CodeableConcept, CX/EI to Identifier, XPN to HumanName, XAD to Address, XTN to ContactPoint,
//! XCN/XON/PL to display references, NM to decimal.
//!
//! Owns: [`Comp`], one view over a composite value whether it is a field repetition (parts are
//! components) or a component (parts are subcomponents), and the reading rules every map shares:
//! values are trimmed, and empty or `""` (the v2 null) count as absent.
//!
//! Does not: know which segment or field a value came from (callers pass positions for
//! warnings), or resolve codes beyond the fixed tables in [`crate::tables`].

use concord_hl7v2::{Component, Repetition, Segment};
use serde_json::{Map, Number, Value, json};

use crate::bundle::Key;
use crate::context::Ctx;
use crate::tables;

/// A composite value: a field repetition, or one component read as its subcomponents.
#[derive(Clone, Copy)]
pub(crate) enum Comp<'a> {
    Rep(&'a Repetition),
    Sub(&'a Component),
}

/// Trims; `None` for empty and for the v2 null `""`.
pub(crate) fn clean(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty() && s != "\"\"").then_some(s)
}

impl<'a> Comp<'a> {
    /// Part `n` (1-based): a component's first subcomponent, or a subcomponent.
    pub(crate) fn get(&self, n: usize) -> Option<&'a str> {
        let i = n.checked_sub(1)?;
        match self {
            Comp::Rep(r) => r
                .components()
                .get(i)
                .and_then(|c| c.subcomponents().first())
                .and_then(|s| clean(s)),
            Comp::Sub(c) => c.subcomponents().get(i).and_then(|s| clean(s)),
        }
    }

    /// Subcomponent `m` of part `n`; for a component view only `m == 1` exists.
    pub(crate) fn sub(&self, n: usize, m: usize) -> Option<&'a str> {
        match self {
            Comp::Rep(r) => r
                .components()
                .get(n.checked_sub(1)?)
                .and_then(|c| c.subcomponents().get(m.checked_sub(1)?))
                .and_then(|s| clean(s)),
            Comp::Sub(_) if m == 1 => self.get(n),
            Comp::Sub(_) => None,
        }
    }

    /// Part `n` as a view over its subcomponents (only for a repetition view).
    pub(crate) fn part(&self, n: usize) -> Option<Comp<'a>> {
        match self {
            Comp::Rep(r) => r.components().get(n.checked_sub(1)?).map(Comp::Sub),
            Comp::Sub(_) => None,
        }
    }

    /// True when no part has a value.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Comp::Rep(r) => r
                .components()
                .iter()
                .all(|c| c.subcomponents().iter().all(|s| clean(s).is_none())),
            Comp::Sub(c) => c.subcomponents().iter().all(|s| clean(s).is_none()),
        }
    }

    /// Every part's text joined by `sep` (for values that are not meant to be composite).
    pub(crate) fn joined(&self, sep: &str) -> String {
        match self {
            Comp::Rep(r) => r
                .components()
                .iter()
                .map(|c| c.subcomponents().join("&"))
                .collect::<Vec<_>>()
                .join(sep)
                .trim_end_matches(sep)
                .to_string(),
            Comp::Sub(c) => c.subcomponents().join(sep),
        }
    }
}

/// The non-empty repetitions of a field.
pub(crate) fn reps(seg: &Segment, field: usize) -> impl Iterator<Item = Comp<'_>> {
    seg.repetitions(field)
        .iter()
        .map(Comp::Rep)
        .filter(|c| !c.is_empty())
}

/// The first non-empty repetition of a field.
pub(crate) fn first(seg: &Segment, field: usize) -> Option<Comp<'_>> {
    reps(seg, field).next()
}

/// Component `c` of the first repetition of field `f`, cleaned.
pub(crate) fn val(seg: &Segment, f: usize, c: usize) -> Option<&str> {
    first(seg, f).and_then(|v| v.get(c))
}

/// A Coding from parts `code`, `display`, `system` (and `version`) of a coded value.
fn coding(
    ctx: &Ctx<'_>,
    v: Comp<'_>,
    parts: [usize; 4],
    default_system: Option<&str>,
) -> Option<Value> {
    let code = v.get(parts[0]).map(code_text)?;
    let mut c = Map::new();
    let system = match v.get(parts[2]) {
        Some(name) => {
            Some(tables::coding_system(name).unwrap_or_else(|| ctx.local_code_system(name)))
        }
        None => default_system.map(str::to_string),
    };
    if let Some(s) = system {
        c.insert("system".into(), json!(s));
    }
    if let Some(ver) = v.get(parts[3]) {
        c.insert("version".into(), json!(ver));
    }
    c.insert("code".into(), json!(code));
    if let Some(d) = v.get(parts[1]) {
        c.insert("display".into(), json!(d));
    }
    Some(Value::Object(c))
}

/// A FHIR `code`: inner runs of whitespace become one space.
pub(crate) fn code_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// CWE (also CE, CNE, CF, IS with a text) to CodeableConcept. `table` is the HL7 table whose
/// THO code system applies when the value names no coding system.
pub(crate) fn codeable(ctx: &Ctx<'_>, v: Comp<'_>, table: Option<&str>) -> Option<Value> {
    let default_system = table.map(tables::v2_table);
    let mut codings = Vec::new();
    if let Some(c) = coding(ctx, v, [1, 2, 3, 7], default_system.as_deref()) {
        codings.push(c);
    }
    if let Some(c) = coding(ctx, v, [4, 5, 6, 8], None) {
        codings.push(c);
    }
    let text = v.get(9).or_else(|| {
        if codings.is_empty() {
            v.get(2).or_else(|| v.get(5))
        } else {
            None
        }
    });
    if codings.is_empty() && text.is_none() {
        return None;
    }
    let mut cc = Map::new();
    if !codings.is_empty() {
        cc.insert("coding".into(), Value::Array(codings));
    }
    if let Some(t) = text {
        cc.insert("text".into(), json!(t));
    }
    Some(Value::Object(cc))
}

/// A CodeableConcept for a plain code from an HL7 table (an ID or IS field).
pub(crate) fn table_code(table: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = json!({"system": tables::v2_table(table), "code": code_text(code)});
    if let Some(d) = display {
        c["display"] = json!(d);
    }
    json!({"coding": [c]})
}

/// HD (namespace, universal id, universal id type) to an identifier system: `urn:oid:` for an
/// OID, `urn:uuid:` for a UUID, the URI itself for a URI, else a source-local system under the
/// namespace. `None` when the HD is empty.
pub(crate) fn hd_system(
    ctx: &Ctx<'_>,
    namespace: Option<&str>,
    uid: Option<&str>,
    uid_type: Option<&str>,
) -> Option<String> {
    if let Some(uid) = uid {
        let kind = uid_type.unwrap_or_default().to_ascii_uppercase();
        match kind.as_str() {
            "UUID" if uid.len() == 36 => {
                return Some(format!("urn:uuid:{}", uid.to_ascii_lowercase()));
            }
            "URI" | "URL" if uid.contains(':') => return Some(uid.to_string()),
            // An OID-shaped universal id is an OID, whatever type (ISO, CLIP, HCD, ...) it is given.
            "UUID" | "URI" | "URL" | "DNS" | "X500" | "X400" => {}
            _ if tables::is_oid(uid) => return Some(format!("urn:oid:{uid}")),
            _ => {}
        }
    }
    namespace.map(|ns| ctx.id_system(ns))
}

/// CX to Identifier, with the key (system and value) it can be found by. Without an assigning
/// authority the system is a source-local one named by the identifier type, else by `default_ns`.
pub(crate) fn cx_identifier(ctx: &Ctx<'_>, v: Comp<'_>, default_ns: &str) -> Option<(Value, Key)> {
    let value = v.get(1)?;
    let (ns, uid, uid_type) = (v.sub(4, 1), v.sub(4, 2), v.sub(4, 3));
    let type_code = v.get(5);
    let system = hd_system(ctx, ns, uid, uid_type)
        .unwrap_or_else(|| ctx.id_system(type_code.unwrap_or(default_ns)));
    let key = Key::new(system, value);
    let mut id = Map::new();
    if let Some(t) = type_code {
        id.insert("type".into(), table_code("0203", t, None));
    }
    id.insert("system".into(), json!(key.system));
    id.insert("value".into(), json!(key.value));
    let start = v.get(7).and_then(crate::time::Dtm::parse).map(|d| d.date());
    let end = v.get(8).and_then(crate::time::Dtm::parse).map(|d| d.date());
    if let Some(p) = period(start, end) {
        id.insert("period".into(), p);
    }
    if let (Some(ns), Some(_)) = (ns, uid) {
        id.insert("assigner".into(), json!({"display": ns}));
    }
    Some((Value::Object(id), key))
}

/// EI (entity identifier: id, namespace, universal id, type) to Identifier and key.
pub(crate) fn ei_identifier(ctx: &Ctx<'_>, v: Comp<'_>, default_ns: &str) -> Option<(Value, Key)> {
    let value = v.get(1)?;
    let system =
        hd_system(ctx, v.get(2), v.get(3), v.get(4)).unwrap_or_else(|| ctx.id_system(default_ns));
    let key = Key::new(system, value);
    Some((key.identifier(), key))
}

/// A Period from optional start and end.
pub(crate) fn period(start: Option<String>, end: Option<String>) -> Option<Value> {
    let mut p = Map::new();
    if let Some(s) = start {
        p.insert("start".into(), json!(s));
    }
    if let Some(e) = end {
        p.insert("end".into(), json!(e));
    }
    (!p.is_empty()).then_some(Value::Object(p))
}

/// A name's parts as XPN and XCN share them: (family, given names, prefix, suffixes).
struct NameParts<'a> {
    family: Option<&'a str>,
    given: Vec<&'a str>,
    prefix: Option<&'a str>,
    suffix: Vec<&'a str>,
}

impl NameParts<'_> {
    fn display(&self) -> Option<String> {
        let mut words: Vec<&str> = Vec::new();
        words.extend(self.prefix);
        words.extend(self.given.iter().copied());
        words.extend(self.family);
        words.extend(self.suffix.iter().copied());
        (!words.is_empty()).then(|| words.join(" "))
    }
}

/// XPN to HumanName: family (FN.1), given (XPN.2, XPN.3), suffix (XPN.4, XPN.6, XPN.14),
/// prefix (XPN.5), use (XPN.7, table 0200), period (XPN.10 or XPN.12/13).
pub(crate) fn human_name(ctx: &mut Ctx<'_>, v: Comp<'_>, at: &str) -> Option<Value> {
    let parts = NameParts {
        family: v.sub(1, 1),
        given: [v.get(2), v.get(3)].into_iter().flatten().collect(),
        prefix: v.get(5),
        suffix: [v.get(4), v.get(6), v.get(14)]
            .into_iter()
            .flatten()
            .collect(),
    };
    if parts.family.is_none() && parts.given.is_empty() {
        return None;
    }
    let mut n = Map::new();
    if let Some(u) = v.get(7).and_then(tables::name_use) {
        n.insert("use".into(), json!(u));
    }
    if let Some(f) = parts.family {
        n.insert("family".into(), json!(f));
    }
    if !parts.given.is_empty() {
        n.insert("given".into(), json!(parts.given));
    }
    if let Some(p) = parts.prefix {
        n.insert("prefix".into(), json!([p]));
    }
    if !parts.suffix.is_empty() {
        n.insert("suffix".into(), json!(parts.suffix));
    }
    let start = v.sub(10, 1).or(v.get(12));
    let end = v.sub(10, 2).or(v.get(13));
    let start = ctx.date_time(start, &format!("{at}.10"));
    let end = ctx.date_time(end, &format!("{at}.10"));
    if let Some(p) = period(start, end) {
        n.insert("period".into(), p);
    }
    Some(Value::Object(n))
}

/// The display text of an XPN (for a contact's name in a display reference).
pub(crate) fn xpn_display(v: Comp<'_>) -> Option<String> {
    NameParts {
        family: v.sub(1, 1),
        given: [v.get(2), v.get(3)].into_iter().flatten().collect(),
        prefix: v.get(5),
        suffix: [v.get(4)].into_iter().flatten().collect(),
    }
    .display()
}

/// XAD to Address: line (XAD.1 street, XAD.2 other designation), city, state, postal code,
/// country, district (XAD.9), use/type (XAD.7, table 0190), period (XAD.12 or XAD.13/14).
pub(crate) fn address(ctx: &mut Ctx<'_>, v: Comp<'_>, at: &str) -> Option<Value> {
    let mut lines = Vec::new();
    let (street, name, number) = (v.sub(1, 1), v.sub(1, 2), v.sub(1, 3));
    let first_line = match (street, name, number) {
        (Some(s), Some(n), _) if !s.contains(n) => Some(format!("{s} {n}")),
        (Some(s), _, _) => Some(s.to_string()),
        (None, Some(n), Some(num)) => Some(format!("{num} {n}")),
        (None, Some(n), None) => Some(n.to_string()),
        (None, None, _) => None,
    };
    lines.extend(first_line);
    lines.extend(v.get(2).map(str::to_string));
    let mut a = Map::new();
    let (use_, type_) = v.get(7).map(tables::address_use).unwrap_or((None, None));
    if let Some(u) = use_ {
        a.insert("use".into(), json!(u));
    }
    if let Some(t) = type_ {
        a.insert("type".into(), json!(t));
    }
    if !lines.is_empty() {
        a.insert("line".into(), json!(lines));
    }
    for (part, name) in [
        (3, "city"),
        (9, "district"),
        (4, "state"),
        (5, "postalCode"),
        (6, "country"),
    ] {
        if let Some(x) = v.get(part) {
            a.insert(name.into(), json!(x));
        }
    }
    let has_content = a.keys().any(|k| k != "use" && k != "type");
    if !has_content {
        return None;
    }
    let start = v.sub(12, 1).or(v.get(13));
    let end = v.sub(12, 2).or(v.get(14));
    let start = ctx.date_time(start, &format!("{at}.12"));
    let end = ctx.date_time(end, &format!("{at}.12"));
    if let Some(p) = period(start, end) {
        a.insert("period".into(), p);
    }
    Some(Value::Object(a))
}

/// XTN to ContactPoint. `default_use` applies when XTN.2 does not say (PID-13 home, PID-14 work).
pub(crate) fn contact_point(
    ctx: &mut Ctx<'_>,
    v: Comp<'_>,
    default_use: Option<&str>,
    at: &str,
) -> Option<Value> {
    let equipment = v.get(3);
    let (mut system, mobile) = match equipment.and_then(tables::telecom_system) {
        Some((s, m)) => (Some(s), m),
        None => (None, false),
    };
    let email_address = v.get(4);
    let value = if system == Some("email")
        || (system.is_none() && equipment.is_none() && email_address.is_some())
    {
        system = Some("email");
        email_address.or(v.get(1)).map(str::to_string)
    } else if let Some(unformatted) = v.get(12) {
        Some(unformatted.to_string())
    } else if let Some(local) = v.get(7) {
        let mut s = String::new();
        if let Some(cc) = v.get(5) {
            s.push('+');
            s.push_str(cc);
            s.push(' ');
        }
        if let Some(area) = v.get(6) {
            s.push_str(area);
            s.push(' ');
        }
        s.push_str(local);
        if let Some(ext) = v.get(8) {
            s.push_str(" X");
            s.push_str(ext);
        }
        Some(s)
    } else {
        v.get(1).map(str::to_string)
    }?;
    let system = system.unwrap_or(if value.contains('@') {
        "email"
    } else {
        "phone"
    });
    let mut cp = Map::new();
    cp.insert("system".into(), json!(system));
    cp.insert("value".into(), json!(value));
    let use_ = if mobile {
        Some("mobile")
    } else {
        v.get(2).and_then(tables::telecom_use).or(default_use)
    };
    if let Some(u) = use_ {
        cp.insert("use".into(), json!(u));
    }
    if let Some(rank) = v
        .get(18)
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| *r > 0)
    {
        cp.insert("rank".into(), json!(rank));
    }
    let start = ctx.date_time(v.get(13), &format!("{at}.13"));
    let end = ctx.date_time(v.get(14), &format!("{at}.14"));
    if let Some(p) = period(start, end) {
        cp.insert("period".into(), p);
    }
    Some(Value::Object(cp))
}

/// XCN (a person: id, name, assigning authority) to a Reference with an identifier and a display.
pub(crate) fn xcn_reference(ctx: &Ctx<'_>, v: Comp<'_>) -> Option<Value> {
    let parts = NameParts {
        family: v.sub(2, 1),
        given: [v.get(3), v.get(4)].into_iter().flatten().collect(),
        prefix: v.get(6),
        suffix: [v.get(5), v.get(7)].into_iter().flatten().collect(),
    };
    let display = parts.display();
    let id = v.get(1);
    if display.is_none() && id.is_none() {
        return None;
    }
    let mut r = Map::new();
    if let Some(id) = id {
        let system = hd_system(ctx, v.sub(9, 1), v.sub(9, 2), v.sub(9, 3))
            .unwrap_or_else(|| ctx.id_system(v.get(13).unwrap_or("practitioner")));
        r.insert("identifier".into(), json!({"system": system, "value": id}));
    }
    if let Some(d) = display {
        r.insert("display".into(), json!(d));
    }
    Some(Value::Object(r))
}

/// The display text of an XCN, for participants given only by name.
pub(crate) fn xcn_display(v: Comp<'_>) -> Option<String> {
    NameParts {
        family: v.sub(2, 1),
        given: [v.get(3), v.get(4)].into_iter().flatten().collect(),
        prefix: v.get(6),
        suffix: [v.get(5), v.get(7)].into_iter().flatten().collect(),
    }
    .display()
    .or_else(|| v.get(1).map(str::to_string))
}

/// XON (organization name, ..., XON.10 identifier) to a Reference with a display (and identifier).
pub(crate) fn xon_reference(ctx: &Ctx<'_>, v: Comp<'_>) -> Option<Value> {
    let name = v.get(1);
    let id = v.get(10).or(v.get(3));
    if name.is_none() && id.is_none() {
        return None;
    }
    let mut r = Map::new();
    if let Some(id) = id {
        let system = hd_system(ctx, v.sub(6, 1), v.sub(6, 2), v.sub(6, 3))
            .unwrap_or_else(|| ctx.id_system("organization"));
        r.insert("identifier".into(), json!({"system": system, "value": id}));
    }
    if let Some(n) = name {
        r.insert("display".into(), json!(n));
    }
    Some(Value::Object(r))
}

/// PL (point of care, room, bed, facility, ..., building, floor, description) as display text.
pub(crate) fn location_display(v: Comp<'_>) -> Option<String> {
    if let Some(d) = v.get(9) {
        return Some(d.to_string());
    }
    let parts: Vec<&str> = [
        v.sub(1, 1),
        v.sub(2, 1),
        v.sub(3, 1),
        v.sub(4, 1),
        v.get(7),
        v.get(8),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A v2 NM as a FHIR decimal (keeping its digits), or `None` when it is not a number.
pub(crate) fn decimal(text: &str) -> Option<Number> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    if !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.unwrap_or_default().bytes().all(|b| b.is_ascii_digit())
        || (int.is_empty() && frac.is_none_or(str::is_empty))
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(if int.is_empty() { "0" } else { int });
    if let Some(f) = frac.filter(|f| !f.is_empty()) {
        s.push('.');
        s.push_str(f);
    }
    if s == "-0" {
        s = "0".into();
    }
    s.parse().ok()
}

/// A Quantity from a number and a CWE unit (OBX-6 style: code, text, system).
pub(crate) fn quantity(ctx: &Ctx<'_>, value: Number, unit: Option<Comp<'_>>) -> Value {
    let mut q = Map::new();
    q.insert("value".into(), Value::Number(value));
    if let Some(u) = unit {
        let code = u.get(1);
        if let Some(text) = u.get(2).or(code) {
            q.insert("unit".into(), json!(text));
        }
        if let Some(code) = code {
            let system = match u.get(3) {
                Some(name)
                    if ["ISO+", "ISO", "ANSI+", "ANS+"]
                        .iter()
                        .any(|n| name.eq_ignore_ascii_case(n)) =>
                {
                    None
                }
                Some(name) => {
                    Some(tables::coding_system(name).unwrap_or_else(|| ctx.local_code_system(name)))
                }
                None => None,
            };
            if let Some(s) = system {
                q.insert("system".into(), json!(s));
                q.insert("code".into(), json!(code_text(code)));
            }
        }
    }
    Value::Object(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        let d = |s: &str| decimal(s).map(|n| n.to_string());
        assert_eq!(d("60").as_deref(), Some("60"));
        assert_eq!(d("+1.50").as_deref(), Some("1.50"));
        assert_eq!(d(".5").as_deref(), Some("0.5"));
        assert_eq!(d("007").as_deref(), Some("7"));
        assert_eq!(d("-0").as_deref(), Some("0"));
        assert_eq!(d("5."), Some("5".into()));
        assert_eq!(d("abc"), None);
        assert_eq!(d(""), None);
        assert_eq!(d("1e5"), None);
    }

    #[test]
    fn clean_values() {
        assert_eq!(clean("  x "), Some("x"));
        assert_eq!(clean("\"\""), None);
        assert_eq!(clean("   "), None);
    }
}
