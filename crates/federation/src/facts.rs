//! Reading the clinical facts two sources can agree on: identifiers, codes, clinical dates and
//! observation values, turned into comparable keys.
//!
//! Owns the per-type table of which element holds a resource's code and clinical date, the date
//! keys (the calendar day for matching, an instant for ordering) and the canonical text of an
//! observation's value. Does not: decide that two resources are the same fact (see
//! [`crate::dedup`]); it only produces the keys. Malformed elements yield no key rather than an
//! error, so a bad element can only prevent a match, never cause one.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::resource::Resource;

/// Something whose members can be read by name: a parsed JSON object, or a [`Resource`] whose
/// members are parsed on first read.
pub(crate) trait Fields {
    fn field(&self, key: &str) -> Option<&Value>;

    /// The member `key` when it is a string.
    fn field_str(&self, key: &str) -> Option<&str> {
        self.field(key).and_then(Value::as_str)
    }
}

impl Fields for Map<String, Value> {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

impl Fields for Resource {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }

    /// Read without parsing the member when it holds no escapes ([`Resource::get_str`]).
    fn field_str(&self, key: &str) -> Option<&str> {
        self.get_str(key)
    }
}

/// The resource types matched by code, clinical date (and, for Observation, value) as well as by
/// identifier.
pub(crate) const FACT_TYPES: [&str; 7] = [
    "AllergyIntolerance",
    "Condition",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
];

/// The elements that may hold a resource's clinical date, most specific first; the first one
/// present is the date. Matching uses it for the fact types; ordering uses it for every type.
fn date_paths(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Observation" => &[
            "effectiveDateTime",
            "effectivePeriod.start",
            "effectiveInstant",
        ],
        "Condition" | "AllergyIntolerance" => {
            &["onsetDateTime", "onsetPeriod.start", "recordedDate"]
        }
        "Immunization" => &["occurrenceDateTime"],
        "Procedure" => &["performedDateTime", "performedPeriod.start"],
        "MedicationRequest" => &["authoredOn"],
        "MedicationStatement" | "MedicationAdministration" => {
            &["effectiveDateTime", "effectivePeriod.start"]
        }
        "MedicationDispense" => &["whenHandedOver", "whenPrepared"],
        "DiagnosticReport" => &["effectiveDateTime", "effectivePeriod.start", "issued"],
        "Encounter" | "EpisodeOfCare" | "Flag" => &["period.start"],
        "CarePlan" => &["period.start", "created"],
        "DocumentReference" | "Composition" => &["date"],
        "ServiceRequest" => &["authoredOn", "occurrenceDateTime", "occurrencePeriod.start"],
        "Appointment" => &["start"],
        "Consent" => &["dateTime"],
        "ClinicalImpression" => &["effectiveDateTime", "effectivePeriod.start", "date"],
        "FamilyMemberHistory" | "RiskAssessment" => &["date", "occurrenceDateTime"],
        _ => &[],
    }
}

/// The element holding the code that says what the fact is.
fn code_path(resource_type: &str) -> &'static str {
    match resource_type {
        "Immunization" => "vaccineCode",
        "MedicationRequest" | "MedicationStatement" => "medicationCodeableConcept",
        _ => "code",
    }
}

/// Follows a dotted path of object keys.
pub(crate) fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn at_map<'a>(resource: &'a impl Fields, path: &str) -> Option<&'a Value> {
    let (first, rest) = path.split_once('.').unwrap_or((path, ""));
    let head = resource.field(first)?;
    if rest.is_empty() {
        Some(head)
    } else {
        at(head, rest)
    }
}

/// The clinical date text of a resource, if the type has one and it is present as a string.
pub(crate) fn clinical_date<'a>(resource_type: &str, resource: &'a impl Fields) -> Option<&'a str> {
    date_paths(resource_type).iter().find_map(|path| {
        if path.contains('.') {
            at_map(resource, path).and_then(Value::as_str)
        } else {
            resource.field_str(path)
        }
    })
}

/// `system|value` for every identifier that has both, after `resource_type` and `identifier`
/// (so a key matches only the same type's identifiers).
pub(crate) fn identifier_keys(resource_type: &str, resource: &Resource) -> Vec<String> {
    let Some(identifiers) = resource.read::<Vec<IdentifierView>>("identifier") else {
        return Vec::new();
    };
    identifiers
        .iter()
        .filter_map(|i| {
            let system = i.system.as_deref().filter(|s| !s.is_empty())?;
            let value = i.value.as_deref().filter(|s| !s.is_empty())?;
            Some([resource_type, "\u{1e}identifier\u{1e}", system, "|", value].concat())
        })
        .collect()
}

// Typed views of the few elements the keys are made of. Each is read straight from a member's
// text (`Resource::read`), which builds no map; members of other types than FHIR's fail to
// read and yield no key, as a malformed element should. Strings are borrowed where the text has
// no escapes.

/// Reads an optional string member as borrowed text where it has no escapes. serde's `borrow`
/// makes a `Cow<'a, str>` field borrow, but not an `Option<Cow<'a, str>>` one
/// (serde-rs/serde#1497): that always copies into a new `String`, a sixth of a federated view's
/// allocations when it was how every coding's system, code and display were read. Use as
/// `#[serde(borrow, default, deserialize_with = "borrowed")]`.
pub(crate) fn borrowed<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'a>>::deserialize(deserializer)?.map(|text| text.0))
}

#[derive(Deserialize)]
struct IdentifierView<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed")]
    system: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    value: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct ConceptView<'a> {
    #[serde(borrow, default)]
    pub coding: Vec<CodingView<'a>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct CodingView<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub system: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub code: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub display: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(crate) struct QuantityView<'a> {
    pub value: Option<Number>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub code: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub unit: Option<Cow<'a, str>>,
}

/// An observation component: its code and value. An observation's own value has the same
/// members, read one by one from the resource into the same view (`own_value`).
#[derive(Deserialize, Default)]
pub(crate) struct ComponentView<'a> {
    #[serde(borrow)]
    code: Option<ConceptView<'a>>,
    #[serde(rename = "valueQuantity", borrow)]
    pub quantity: Option<QuantityView<'a>>,
    #[serde(rename = "valueCodeableConcept", borrow)]
    concept: Option<ConceptView<'a>>,
    #[serde(rename = "valueString", borrow, default, deserialize_with = "borrowed")]
    string: Option<Cow<'a, str>>,
    #[serde(rename = "valueBoolean")]
    boolean: Option<bool>,
    #[serde(rename = "valueInteger")]
    integer: Option<Number>,
}

impl ConceptView<'_> {
    /// `(system, code)` of every coding that has both.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.coding.iter().filter_map(|c| {
            let system = c.system.as_deref().filter(|s| !s.is_empty())?;
            let code = c.code.as_deref().filter(|s| !s.is_empty())?;
            Some((system, code))
        })
    }

    /// `system|code` for every coding that has both.
    fn keys(&self) -> Vec<String> {
        self.pairs()
            .map(|(system, code)| [system, "|", code].concat())
            .collect()
    }
}

/// What the merge reads of a fact-type resource: the keys it matches other sources' copies by,
/// and what it is in words when those reads settle it.
#[derive(Default)]
pub(crate) struct Fact {
    /// One per code the fact carries, each joined with its clinical day and (Observation only)
    /// one per value reading, after the resource type and `fact` (so a key matches only the
    /// same type's facts, never an identifier). Empty when any part is missing: a fact with no
    /// date or no value cannot be shown to be the same as another, and wrongly hiding a fact is
    /// worse than showing it twice.
    pub keys: Vec<String>,
    /// The words the summary's narrative shows for it (its code's words and an observation's
    /// value), made from the elements the keys were read from, so the narrative need not read
    /// them again. `None` when these reads do not settle them (a medication named only by
    /// reference, an observation with no date or an unusual value); the narrative then reads
    /// the resource itself.
    pub label: Option<String>,
}

/// Reads a resource's [`Fact`]: nothing for a type that is not a fact type. `date` is its
/// [`clinical_date`], which the caller has read already for ordering.
pub(crate) fn read_fact(resource_type: &str, resource: &Resource, date: Option<&str>) -> Fact {
    if !FACT_TYPES.contains(&resource_type) {
        return Fact::default();
    }
    let code = resource.read::<ConceptView>(code_path(resource_type));
    let name = code.as_ref().and_then(concept_text);
    // An observation's words wait for its value; other types' are settled here.
    let (mut label, name) = match resource_type {
        "Observation" => (None, name),
        // A medication with no coded name is named by its reference's display, which the
        // narrative reads itself.
        "MedicationRequest" | "MedicationStatement" => (name, None),
        _ => (
            Some(name.unwrap_or_else(|| resource_type.to_string())),
            None,
        ),
    };
    let Some(day) = date.and_then(day_key) else {
        return Fact {
            keys: Vec::new(),
            label,
        };
    };
    // Types other than Observation carry no value: one key per code, with an empty value part.
    const NO_VALUE: &[String] = &[String::new()];
    let observed;
    let values = if resource_type == "Observation" {
        let value_text;
        (observed, value_text) = observation_values(resource);
        // The line written once at its length, not grown from the name.
        label = value_text.map(|value| match value {
            Some(value) => [name.as_deref().unwrap_or(resource_type), ": ", &value].concat(),
            None => name.unwrap_or_else(|| resource_type.to_string()),
        });
        observed.as_slice()
    } else {
        NO_VALUE
    };
    // Each key written once, into one string: building `system|code` first, and qualifying
    // it by type and kind after, made three strings of every key, for every fact of a view.
    let mut keys = Vec::new();
    for (system, code) in code.iter().flat_map(ConceptView::pairs) {
        for value in values {
            keys.push(
                [
                    resource_type,
                    "\u{1e}fact\u{1e}",
                    system,
                    "|",
                    code,
                    "\u{1f}",
                    day,
                    "\u{1f}",
                    value.as_str(),
                ]
                .concat(),
            );
        }
    }
    Fact { keys, label }
}

/// The words of a CodeableConcept: its text, else the first coding's display, else its code.
pub(crate) fn concept_text(concept: &ConceptView) -> Option<String> {
    if let Some(text) = &concept.text {
        return Some(text.to_string());
    }
    let codings = &concept.coding;
    codings
        .iter()
        .find_map(|c| c.display.as_deref())
        .or_else(|| codings.iter().find_map(|c| c.code.as_deref()))
        .map(str::to_string)
}

/// A quantity in words: its value, then its unit (else its code). `None` without a value.
pub(crate) fn quantity_text(quantity: &QuantityView) -> Option<String> {
    let value = quantity.value.as_ref()?.as_str();
    Some(
        match quantity.unit.as_deref().or(quantity.code.as_deref()) {
            Some(unit) => [value, " ", unit].concat(),
            None => value.to_string(),
        },
    )
}

/// An observation's components in words: each quantity with its unit, joined by ` / `.
pub(crate) fn components_text(components: &[ComponentView]) -> Option<String> {
    let parts: Vec<String> = components
        .iter()
        .filter_map(|c| {
            let quantity = c.quantity.as_ref()?;
            let value = quantity.value.as_ref()?.as_str();
            let unit = quantity.unit.as_deref().unwrap_or("");
            Some([value, " ", unit].concat().trim_end().to_string())
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" / "))
}

/// The calendar day of a FHIR date or dateTime as written (its first ten characters), or the
/// whole text for a year or year-month. `None` for text that is not a FHIR date.
///
/// The day is taken in the source's own offset, not converted to UTC: a date-only value is a
/// local date and has no offset to convert, and UK sources write local dates, so the written day
/// is the one two sources agree on. A year-month only matches the same year-month, never a day
/// inside it.
pub(crate) fn day_key(text: &str) -> Option<&str> {
    let date = parse_date(text)?;
    Some(&text[..date.prefix_len])
}

struct ParsedDate {
    year: i64,
    month: u32,
    day: u32,
    /// Length of the date part (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
    prefix_len: usize,
    /// Milliseconds after local midnight and the offset from UTC in minutes, when a time is given.
    time: Option<(i64, i64)>,
}

fn digits(text: &str, from: usize, len: usize) -> Option<i64> {
    let part = text.get(from..from + len)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

fn parse_date(text: &str) -> Option<ParsedDate> {
    let year = digits(text, 0, 4)?;
    let mut date = ParsedDate {
        year,
        month: 1,
        day: 1,
        prefix_len: 4,
        time: None,
    };
    let bytes = text.as_bytes();
    if bytes.len() == 4 {
        return Some(date);
    }
    if bytes.get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(text, 5, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    date.month = month as u32;
    date.prefix_len = 7;
    if bytes.len() == 7 {
        return Some(date);
    }
    if bytes.get(7) != Some(&b'-') {
        return None;
    }
    let day = digits(text, 8, 2)?;
    if day < 1 || day > days_in_month(year, month as u32) {
        return None;
    }
    date.day = day as u32;
    date.prefix_len = 10;
    if bytes.len() == 10 {
        return Some(date);
    }
    if bytes.get(10) != Some(&b'T') {
        return None;
    }
    date.time = Some(parse_time(&text[11..])?);
    Some(date)
}

/// `hh:mm[:ss[.fff…]]` then `Z` or `±hh:mm` (FHIR requires the offset with a time; a missing one
/// is read as UTC so an otherwise good date still orders sensibly).
fn parse_time(text: &str) -> Option<(i64, i64)> {
    let hour = digits(text, 0, 2)?;
    if text.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let minute = digits(text, 3, 2)?;
    let mut pos = 5;
    let mut second = 0;
    let mut millis = 0;
    if text.as_bytes().get(pos) == Some(&b':') {
        second = digits(text, pos + 1, 2)?;
        pos += 3;
        if text.as_bytes().get(pos) == Some(&b'.') {
            let fraction: String = text[pos + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if fraction.is_empty() {
                return None;
            }
            pos += 1 + fraction.len();
            let padded = format!("{:0<3}", &fraction[..fraction.len().min(3)]);
            millis = padded.parse().ok()?;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match &text[pos..] {
        "" | "Z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.as_bytes()[3] != b':' {
                return None;
            }
            let hours = digits(zone, 1, 2)?;
            let minutes = digits(zone, 4, 2)?;
            if hours > 14 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };
    let local_ms = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    Some((local_ms, offset))
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A FHIR date or dateTime as UTC epoch milliseconds, for ordering. A partial date stands for its
/// start (so `2024` sorts with 1 January 2024), and a time is converted to UTC using its offset.
pub(crate) fn instant_key(text: &str) -> Option<i64> {
    let date = parse_date(text)?;
    let midnight = days_from_civil(date.year, date.month, date.day) * 86_400_000;
    Some(match date.time {
        None => midnight,
        Some((local_ms, offset_minutes)) => midnight + local_ms - offset_minutes * 60_000,
    })
}

/// Canonical text of a JSON number, so `5`, `5.0` and `0.5e1` compare equal: the significant
/// digits and a power of ten, after `prefix` (the key's kind), so the key is built in one string.
fn canonical_number(number: &Number, prefix: &str) -> Option<String> {
    // The number's own text (serde_json keeps it, with `arbitrary_precision`), built into the
    // result without `format!`: the merge makes a key like this for every reading of a view.
    let text = number.as_str();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.trim_start_matches('+').parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // Checked arithmetic: the exponent is the sender's text and may sit at the edge of i64.
    let mut exponent = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let mut all = String::with_capacity(prefix.len() + text.len() + 24);
    all.push_str(prefix);
    if negative {
        all.push('-');
    }
    let digits = all.len();
    all.push_str(whole.trim_start_matches('0'));
    if all.len() == digits {
        all.push_str(fraction.trim_start_matches('0'));
    } else {
        all.push_str(fraction);
    }
    while all.ends_with('0') {
        all.pop();
        exponent = exponent.checked_add(1)?;
    }
    if all.len() == digits {
        return Some([prefix, "0"].concat());
    }
    all.push('e');
    all.push_str(&exponent.to_string());
    Some(all)
}

/// The value readings of one observation-like element (the observation or one component).
fn value_keys(value: &ComponentView) -> Vec<String> {
    if let Some(quantity) = &value.quantity {
        let Some(mut key) = quantity
            .value
            .as_ref()
            .and_then(|n| canonical_number(n, "q:"))
        else {
            return Vec::new();
        };
        // A UCUM code when present, else the unit text: sources that send only `unit` still
        // match sources that also send the code, as long as the unit reads the same.
        let unit = quantity
            .code
            .as_deref()
            .or(quantity.unit.as_deref())
            .unwrap_or("");
        key.push(' ');
        key.push_str(unit);
        return vec![key];
    }
    if let Some(concept) = &value.concept {
        return concept
            .keys()
            .into_iter()
            .map(|c| ["c:", &c].concat())
            .collect();
    }
    if let Some(text) = &value.string {
        return vec![["s:", text].concat()];
    }
    if let Some(flag) = value.boolean {
        return vec![if flag { "b:true" } else { "b:false" }.to_string()];
    }
    if let Some(key) = value
        .integer
        .as_ref()
        .and_then(|n| canonical_number(n, "i:"))
    {
        return vec![key];
    }
    Vec::new()
}

/// An observation's own value, read member by member. A value member present but malformed
/// yields no key, as it would if the whole element were read at once.
fn own_value(resource: &Resource) -> Option<ComponentView<'_>> {
    let mut value = ComponentView::default();
    if resource.contains_key("valueQuantity") {
        value.quantity = Some(resource.read("valueQuantity")?);
    } else if resource.contains_key("valueCodeableConcept") {
        value.concept = Some(resource.read("valueCodeableConcept")?);
    } else if resource.contains_key("valueString") {
        value.string = Some(resource.read("valueString")?);
    } else if resource.contains_key("valueBoolean") {
        value.boolean = Some(resource.read("valueBoolean")?);
    } else if resource.contains_key("valueInteger") {
        value.integer = Some(resource.read("valueInteger")?);
    }
    Some(value)
}

/// An observation's value keys (for one without `value[x]`, a blood pressure, one key made of
/// every component's code and value, so two readings only match when all components agree),
/// and its value in words when these reads settle it: `Some(None)` when it has none to show,
/// `None` when the narrative must read it itself.
fn observation_values(resource: &Resource) -> (Vec<String>, Option<Option<String>>) {
    let Some(own) = own_value(resource) else {
        return (Vec::new(), None);
    };
    // The narrative shows a quantity, a concept or a string; without one of these it shows
    // the components' quantities, and for a boolean or integer value it reads for itself.
    let settled = match (&own.quantity, &own.concept, &own.string) {
        (Some(quantity), _, _) => Some(quantity_text(quantity)),
        (None, Some(concept), _) => Some(concept_text(concept)),
        (None, None, Some(text)) => Some(Some(text.to_string())),
        (None, None, None) => None,
    };
    let in_components = settled.is_none() && own.boolean.is_none() && own.integer.is_none();
    let own_keys = value_keys(&own);
    if !own_keys.is_empty() {
        return (own_keys, settled);
    }
    let components = resource.read::<Vec<ComponentView>>("component");
    let text = if in_components {
        Some(components.as_deref().and_then(components_text))
    } else {
        settled
    };
    let Some(components) = components else {
        return (Vec::new(), text);
    };
    let mut parts = Vec::new();
    for component in &components {
        // The smallest coding and value stand for the component: components coded in different
        // systems then do not match, which shows both copies rather than hiding one.
        let code = component
            .code
            .as_ref()
            .and_then(|c| c.keys().into_iter().min());
        let value = value_keys(component).into_iter().min();
        match (code, value) {
            (Some(code), Some(value)) => parts.push([code, "=".to_string(), value].concat()),
            _ => return (Vec::new(), text),
        }
    }
    if parts.is_empty() {
        return (Vec::new(), text);
    }
    parts.sort();
    (vec![["components:", &parts.join(";")].concat()], text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codings_borrow_their_text_unless_it_has_escapes() {
        let text = r#"{"system":"http://snomed.info/sct","code":"44465007","display":"Sprain \"left\" ankle"}"#;
        let coding: CodingView = serde_json::from_str(text).unwrap();
        assert!(matches!(
            coding.system,
            Some(Cow::Borrowed("http://snomed.info/sct"))
        ));
        assert!(matches!(coding.code, Some(Cow::Borrowed("44465007"))));
        // Text with escapes cannot be borrowed; it is read all the same.
        assert!(matches!(coding.display, Some(Cow::Owned(ref d)) if d == r#"Sprain "left" ankle"#));

        let coding: CodingView = serde_json::from_str(r#"{"code":null}"#).unwrap();
        assert!(coding.system.is_none() && coding.code.is_none() && coding.display.is_none());
        // A member of another type than FHIR's fails the read, as it did before.
        assert!(serde_json::from_str::<CodingView>(r#"{"code":7}"#).is_err());
    }

    #[test]
    fn decimals_compare_by_value_not_spelling() {
        // Numbers as a source's text gives them, read as `Number` the way the keys read them.
        let canon = |v: Value| {
            serde_json::from_value::<Number>(v)
                .ok()
                .and_then(|n| canonical_number(&n, ""))
        };
        let five: Value = serde_json::from_str("5.0").unwrap();
        let five_e: Value = serde_json::from_str("0.5e1").unwrap();
        assert_eq!(canon(json!(5)), canon(five));
        assert_eq!(canon(json!(5)), canon(five_e));
        assert_ne!(canon(json!(5)), canon(json!(50)));
        assert_ne!(canon(json!(5)), canon(json!(-5)));
        assert_eq!(canon(json!(0)), Some("0".to_string()));
        let neg_zero: Value = serde_json::from_str("-0.00").unwrap();
        assert_eq!(canon(neg_zero), Some("0".to_string()));
        assert_eq!(canon(json!("5")), None);
        // The canonical text itself: significant digits, then the power of ten.
        for (text, canonical) in [
            ("12.50", "125e-1"),
            ("-0.0012e3", "-12e-1"),
            ("100", "1e2"),
            ("0.050", "5e-2"),
            ("1E+400", "1e400"),
            ("-7", "-7e0"),
        ] {
            let number: Value = serde_json::from_str(text).unwrap();
            assert_eq!(canon(number).as_deref(), Some(canonical), "{text}");
        }
    }

    #[test]
    fn day_keys_keep_the_written_day_and_partial_precision() {
        assert_eq!(day_key("2024-03-01T23:30:00+00:00"), Some("2024-03-01"));
        assert_eq!(day_key("2024-03-01"), Some("2024-03-01"));
        assert_eq!(day_key("2024-03"), Some("2024-03"));
        assert_eq!(day_key("2024"), Some("2024"));
        for bad in [
            "",
            "24-03-01",
            "2024-13-01",
            "2024-02-30",
            "2024-03-01X",
            "yesterday",
        ] {
            assert_eq!(day_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_convert_offsets_to_utc() {
        let utc = instant_key("2024-06-01T09:30:00Z").unwrap();
        let bst = instant_key("2024-06-01T10:30:00+01:00").unwrap();
        assert_eq!(utc, bst);
        assert_eq!(instant_key("1970-01-01"), Some(0));
        assert_eq!(instant_key("1970-01-02"), Some(86_400_000));
        assert_eq!(instant_key("2024"), instant_key("2024-01-01T00:00:00Z"));
        assert_eq!(
            instant_key("2024-01-01T00:00:00.5Z"),
            Some(instant_key("2024-01-01").unwrap() + 500)
        );
        assert!(instant_key("1969-12-31").unwrap() < 0);
        assert_eq!(instant_key("2024-01-01T25:00:00Z"), None);
        assert_eq!(instant_key("2024-01-01T10:00:00+1:00"), None);
    }
}
