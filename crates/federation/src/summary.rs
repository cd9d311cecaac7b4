//! The `$summary` document: the merged record as an IPS-shaped FHIR `document` Bundle.
//!
//! Owns [`Section`] (the sections, their codes and titles), [`section_of`] (which section a
//! resource belongs in), the generated section narratives and [`summary`], which assembles the
//! Composition and the Bundle. Does not: merge (see [`crate::merge`]), mint random ids or read
//! a clock: the caller passes the ids and the time, and the document-local `urn:uuid:`s it needs
//! beyond those are derived from them.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use memchr::memmem::Finder;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::facts::{
    ComponentView, ConceptView, at, clinical_date, components_text, concept_text, quantity_text,
};
use crate::merge::{Merged, MergedEntry};
use crate::resource::{RawText, Resource, write_json_str, write_json_value};

const LOINC: &str = "http://loinc.org";
/// Concord's codes for summary sections that have no LOINC section code.
pub const SUMMARY_SECTION_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/summary-section";
const LIST_EMPTY_REASON: &str = "http://terminology.hl7.org/CodeSystem/list-empty-reason";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const XHTML_OPEN: &str = "<div xmlns=\"http://www.w3.org/1999/xhtml\">";

/// A section of the summary, in the order the document lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Problems,
    Allergies,
    Medications,
    Immunizations,
    Results,
    VitalSigns,
    Procedures,
    CarePlans,
    Encounters,
    Documents,
    SocialCare,
}

impl Section {
    /// Every section, in document order: the three IPS requires first, then the rest.
    pub const ALL: [Section; 11] = [
        Section::Problems,
        Section::Allergies,
        Section::Medications,
        Section::Immunizations,
        Section::Results,
        Section::VitalSigns,
        Section::Procedures,
        Section::CarePlans,
        Section::Encounters,
        Section::Documents,
        Section::SocialCare,
    ];

    /// The section code as `(system, code, display)`: the IPS IG's LOINC section codes where IPS
    /// (or C-CDA, for encounters) has one, Concord's own code system otherwise.
    pub fn code(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Section::Problems => (LOINC, "11450-4", "Problem list - Reported"),
            Section::Allergies => (LOINC, "48765-2", "Allergies and adverse reactions Document"),
            Section::Medications => (LOINC, "10160-0", "History of Medication use Narrative"),
            Section::Immunizations => (LOINC, "11369-6", "History of Immunization Narrative"),
            Section::Results => (
                LOINC,
                "30954-2",
                "Relevant diagnostic tests/laboratory data Narrative",
            ),
            Section::VitalSigns => (LOINC, "8716-3", "Vital signs"),
            Section::Procedures => (LOINC, "47519-4", "History of Procedures Document"),
            Section::CarePlans => (LOINC, "18776-5", "Plan of care note"),
            Section::Encounters => (
                LOINC,
                "46240-8",
                "History of Hospitalizations+Outpatient visits Narrative",
            ),
            Section::Documents => (SUMMARY_SECTION_SYSTEM, "documents", "Clinical documents"),
            Section::SocialCare => (
                SUMMARY_SECTION_SYSTEM,
                "social-care",
                "Social care involvement",
            ),
        }
    }

    /// The section title shown to people.
    pub fn title(self) -> &'static str {
        match self {
            Section::Problems => "Problems",
            Section::Allergies => "Allergies and intolerances",
            Section::Medications => "Medications",
            Section::Immunizations => "Immunizations",
            Section::Results => "Results",
            Section::VitalSigns => "Vital signs",
            Section::Procedures => "Procedures",
            Section::CarePlans => "Care plans",
            Section::Encounters => "Encounters",
            Section::Documents => "Clinical documents",
            Section::SocialCare => "Social care involvement",
        }
    }

    /// Whether the IPS requires the section even when it is empty.
    pub fn required(self) -> bool {
        matches!(
            self,
            Section::Problems | Section::Allergies | Section::Medications
        )
    }
}

/// The section an Observation belongs in, by its `category` codes (in the FHIR
/// observation-category system, or with no system, which some sources omit for these well-known
/// codes): vital signs, then results (laboratory, imaging). The categories are read once, as
/// typed views of their text: most of a summary's resources are Observations.
fn observation_section(resource: &Resource) -> Option<Section> {
    let (mut vital, mut result) = (false, false);
    let mut note = |system: Option<&str>, code: Option<&str>| {
        if system.is_some_and(|s| s != OBSERVATION_CATEGORY) {
            return;
        }
        match code {
            Some("vital-signs") => vital = true,
            Some("laboratory" | "imaging") => result = true,
            _ => {}
        }
    };
    match resource.read::<Vec<ConceptView>>("category") {
        Some(categories) => {
            for coding in categories.iter().flat_map(|c| &c.coding) {
                note(coding.system.as_deref(), coding.code.as_deref());
            }
        }
        // Not the shape FHIR gives `category` (one element of another type, say): what can be
        // read of it still places the Observation, rather than leaving it out of the summary.
        None => {
            let codings = resource
                .get("category")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("coding").and_then(Value::as_array))
                .flatten();
            for coding in codings {
                note(
                    coding.get("system").and_then(Value::as_str),
                    coding.get("code").and_then(Value::as_str),
                );
            }
        }
    }
    if vital {
        Some(Section::VitalSigns)
    } else if result {
        Some(Section::Results)
    } else {
        None
    }
}

/// The section a resource belongs in, or `None` when the summary leaves it out (Patient and
/// other supporting resources, and Observations that are neither vital signs nor results).
/// An Observation that is both vital signs and a result is a vital sign: that category is the
/// more specific one.
pub fn section_of(resource: &Resource) -> Option<Section> {
    let resource_type = resource.get_str("resourceType")?;
    Some(match resource_type {
        "Condition" => Section::Problems,
        "AllergyIntolerance" => Section::Allergies,
        "MedicationStatement" | "MedicationRequest" => Section::Medications,
        "Immunization" => Section::Immunizations,
        "DiagnosticReport" => Section::Results,
        "Observation" => return observation_section(resource),
        "Procedure" => Section::Procedures,
        "CarePlan" => Section::CarePlans,
        "Encounter" => Section::Encounters,
        "DocumentReference" => Section::Documents,
        "EpisodeOfCare" => Section::SocialCare,
        _ => return None,
    })
}

/// Escapes text for the XHTML narrative into `out`, copying the runs between the characters it
/// escapes whole: a summary's narrative is tens of kilobytes.
fn escape_into(out: &mut String, text: &str) {
    let mut run = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        // The escaped characters are ASCII, so `at` is on a character boundary.
        out.push_str(&text[run..at]);
        out.push_str(escaped);
        run = at + 1;
    }
    out.push_str(&text[run..]);
}

/// The words of a CodeableConcept read from a resource, if it could be read.
fn concept_words(concept: Option<ConceptView>) -> Option<String> {
    concept.as_ref().and_then(concept_text)
}

/// The first CodeableConcept of an array member.
fn first_concept<'a>(resource: &'a Resource, key: &str) -> Option<ConceptView<'a>> {
    resource
        .read::<Vec<ConceptView>>(key)
        .and_then(|concepts| concepts.into_iter().next())
}

/// A string member, as words for a narrative line.
fn words(resource: &Resource, key: &str) -> Option<String> {
    resource.read::<Cow<str>>(key).map(Cow::into_owned)
}

/// What a resource is, in words, for its narrative line. The members are read straight from
/// the source's text, so the narrative builds no values.
fn describe(resource_type: &str, resource: &Resource) -> String {
    let name = match resource_type {
        "Immunization" => concept_words(resource.read("vaccineCode")),
        "MedicationStatement" | "MedicationRequest" => {
            concept_words(resource.read("medicationCodeableConcept")).or_else(|| {
                #[derive(serde::Deserialize)]
                struct Display<'a> {
                    #[serde(borrow, default, deserialize_with = "crate::facts::borrowed")]
                    display: Option<Cow<'a, str>>,
                }
                resource
                    .read::<Display>("medicationReference")
                    .and_then(|m| m.display)
                    .map(Cow::into_owned)
            })
        }
        "Encounter" | "EpisodeOfCare" => concept_words(first_concept(resource, "type")),
        "CarePlan" => {
            words(resource, "title").or_else(|| concept_words(first_concept(resource, "category")))
        }
        "DocumentReference" => {
            concept_words(resource.read("type")).or_else(|| words(resource, "description"))
        }
        _ => concept_words(resource.read("code")),
    };
    let mut line = name.unwrap_or_else(|| resource_type.to_string());
    if resource_type == "Observation"
        && let Some(value) = observation_value_text(resource)
    {
        line.push_str(": ");
        line.push_str(&value);
    }
    line
}

fn observation_value_text(resource: &Resource) -> Option<String> {
    if resource.contains_key("valueQuantity") {
        return quantity_text(&resource.read("valueQuantity")?);
    }
    if resource.contains_key("valueCodeableConcept") {
        return concept_words(resource.read("valueCodeableConcept"));
    }
    if let Some(text) = words(resource, "valueString") {
        return Some(text);
    }
    components_text(&resource.read::<Vec<ComponentView>>("component")?)
}

/// One narrative line: what, when, and who reported it.
fn narrative_line(entry: &MergedEntry) -> String {
    let resource = &entry.resource;
    let resource_type = resource.get_str("resourceType").unwrap_or("Resource");
    // The merge made the words from what it read to match the resource, when that settled them.
    debug_assert!(
        entry
            .label
            .as_ref()
            .is_none_or(|label| *label == describe(resource_type, resource)),
        "the merge's label is the narrative's words"
    );
    let described;
    let what = match &entry.label {
        Some(label) => label.as_str(),
        None => {
            described = describe(resource_type, resource);
            described.as_str()
        }
    };
    let date = clinical_date(resource_type, resource);
    let origin = entry.origin.as_deref();
    // Sized once: a summary has a line for each of its few hundred entries.
    let mut line = String::with_capacity(
        what.len() + date.map_or(0, |d| d.len() + 2) + origin.map_or(0, |o| o.len() + 3),
    );
    line.push_str(what);
    if let Some(date) = date {
        line.push_str(", ");
        line.push_str(date);
    }
    if let Some(origin) = origin {
        line.push_str(" (");
        line.push_str(origin);
        line.push(')');
    }
    line
}

fn list_div(lines: &[String]) -> String {
    // Room for the lines and their tags, and a little for what escaping adds.
    let length: usize = lines.iter().map(|line| line.len() + 16).sum();
    let mut div = String::with_capacity(XHTML_OPEN.len() + 16 + length + length / 8);
    div.push_str(XHTML_OPEN);
    div.push_str("<ul>");
    for line in lines {
        div.push_str("<li>");
        escape_into(&mut div, line);
        div.push_str("</li>");
    }
    div.push_str("</ul></div>");
    div
}

/// Whether text is a UUID in its canonical 8-4-4-4-12 hexadecimal form.
fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// 64-bit FNV-1a, seeded, over the parts with a separator between them.
fn fnv1a(seed: u64, parts: &[&str]) -> u64 {
    let mut hash = seed;
    for part in parts {
        for byte in part.bytes().chain([0x1f]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// A UUID derived from the parts (RFC 9562 version 8, the custom layout): the same inputs give
/// the same UUID, so the document is deterministic, and different inputs give different UUIDs
/// with the probability of a 122-bit hash.
fn derived_uuid(parts: &[&str]) -> String {
    let high = fnv1a(0xcbf2_9ce4_8422_2325, parts);
    let low = fnv1a(0x6c62_272e_07bb_0142, parts);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `urn:uuid:` for an id: the id itself when it is a UUID, else one derived from it.
fn urn_for(kind: &str, id: &str) -> String {
    if is_uuid(id) {
        format!("urn:uuid:{}", id.to_ascii_lowercase())
    } else {
        format!("urn:uuid:{}", derived_uuid(&[kind, id]))
    }
}

/// The base relative references inside `entry` resolve against: the fullUrl it came with, less
/// its `Type/id`.
fn base_of(entry: &MergedEntry) -> Option<&str> {
    let resource_type = entry.resource.get_str("resourceType")?;
    let id = entry.resource.get_str("id")?;
    entry
        .full_url
        .strip_suffix(id)?
        .strip_suffix('/')?
        .strip_suffix(resource_type)?
        .strip_suffix('/')
}

/// The fullUrl a reference points at, written into `url` (one buffer for all of a document's
/// references): absolute ones as written, relative `Type/id` ones against `base`, both without
/// any `/_history/n`. Contained (`#`) references point inside the resource itself.
fn resolve<'u>(base: Option<&str>, reference: &str, url: &'u mut String) -> Option<&'u str> {
    if reference.starts_with('#') {
        return None;
    }
    // Searchers built once: `str::split_once` and `contains` build one per call, which cost
    // more than the searching for a view's few thousand short references.
    static HISTORY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("/_history/"));
    static SCHEME: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("://"));
    let reference = HISTORY
        .find(reference.as_bytes())
        .map_or(reference, |at| &reference[..at]);
    url.clear();
    if reference.starts_with("urn:") || SCHEME.find(reference.as_bytes()).is_some() {
        url.push_str(reference);
    } else {
        url.push_str(base?);
        url.push('/');
        url.push_str(reference);
    }
    Some(url)
}

/// Builds the IPS-shaped `document` Bundle for `$summary`.
///
/// `patient` is the hub's Patient (the document's subject), `composition_id` and `bundle_id`
/// are fresh ids from the caller (UUIDs are used as they are; other ids get a derived UUID for
/// their `urn:uuid:`), and `now` is the instant text for `Composition.date` and
/// `Bundle.timestamp`.
///
/// Entries: the Composition, the Patient, every merged entry placed in a section (in section
/// order, newest first within a section), every merged entry those reference (directly or through each
/// other, so references resolve inside the document), and last the sources OperationOutcome,
/// which the "Sources consulted" section references.
pub fn summary(
    merged: Merged,
    patient: &Value,
    composition_id: &str,
    bundle_id: &str,
    now: &str,
) -> Document {
    let mut by_section: Vec<(Section, Vec<usize>)> =
        Section::ALL.iter().map(|s| (*s, Vec::new())).collect();
    for (i, entry) in merged.entries.iter().enumerate() {
        if let Some(section) = section_of(&entry.resource)
            && let Some((_, members)) = by_section.iter_mut().find(|(s, _)| *s == section)
        {
            members.push(i);
        }
    }

    // Within a section the newest comes first whatever its type (a Results section mixes
    // reports and observations); the merged order settles ties.
    for (_, members) in &mut by_section {
        // The merge read each entry's clinical date (`MergedEntry::date_ms`).
        members.sort_by_key(|&i| {
            let date = merged.entries[i].date_ms;
            (date.is_none(), Reverse(date), i)
        });
    }

    // Entries placed in sections, then whatever they reference, followed until nothing new
    // turns up; each entry is included once. Only the entries not yet in can be added, so only
    // they are looked up, and the walk stops once none is left.
    let mut included: Vec<usize> = by_section
        .iter()
        .flat_map(|(_, members)| members.iter().copied())
        .collect();
    let placed: BTreeSet<usize> = included.iter().copied().collect();
    // foldhash, as the merge's match index (see `crate::dedup`), for the same reasons.
    let mut outside: HashMap<&str, usize, foldhash::fast::RandomState> = merged
        .entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !placed.contains(i))
        .map(|(i, e)| (e.full_url.as_str(), i))
        .collect();
    let mut referenced = BTreeSet::new();
    let mut frontier = included.clone();
    let mut url = String::new();
    while let Some(i) = frontier.pop() {
        if outside.is_empty() {
            break;
        }
        let entry = &merged.entries[i];
        let base = base_of(entry);
        entry.resource.any_reference(|reference| {
            if let Some(url) = resolve(base, reference, &mut url)
                && let Some(target) = outside.remove(url)
            {
                referenced.insert(target);
                frontier.push(target);
            }
            false
        });
    }
    included.extend(referenced);

    let patient_id = patient.get("id").and_then(Value::as_str);
    let patient_url = match patient_id {
        Some(id) => urn_for("Patient", id),
        None => format!("urn:uuid:{}", derived_uuid(&["Patient", bundle_id])),
    };
    let outcome_url = format!("urn:uuid:{}", derived_uuid(&["source-status", bundle_id]));

    // The sections are written as JSON text once, from views of what they say: built as
    // `Value`s, each of a view's few hundred entry references was a map of its own, hashed,
    // then written out again (docs/performance.md, seventeenth session).
    let lines_of = |members: &[usize]| -> Vec<String> {
        members
            .iter()
            .map(|&i| narrative_line(&merged.entries[i]))
            .collect()
    };
    let mut sections: Vec<SectionText> = Vec::new();
    for (section, members) in &by_section {
        if members.is_empty() && !section.required() {
            continue;
        }
        let (system, code, display) = section.code();
        let code = SectionCode {
            coding: [Coding {
                system,
                code,
                display,
            }],
            text: (system != LOINC).then_some(display),
        };
        sections.push(if members.is_empty() {
            // Nothing reported is not the same as "none": no source asserted an absence, so the
            // reason is `unavailable`, never `nilknown`.
            SectionText {
                title: section.title(),
                code,
                text: Narrative::new(format!(
                    "{XHTML_OPEN}<p>No information is available from the sources consulted.</p></div>"
                )),
                empty_reason: Some(EmptyReason {
                    coding: [Coding {
                        system: LIST_EMPTY_REASON,
                        code: "unavailable",
                        display: "Unavailable",
                    }],
                }),
                entry: Vec::new(),
            }
        } else {
            SectionText {
                title: section.title(),
                code,
                text: Narrative::new(list_div(&lines_of(members))),
                empty_reason: None,
                entry: members
                    .iter()
                    .map(|&i| Reference {
                        reference: &merged.entries[i].full_url,
                    })
                    .collect(),
            }
        });
    }
    let source_lines: Vec<String> = merged
        .outcome
        .get("issue")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|issue| {
            issue
                .get("diagnostics")
                .or_else(|| at(issue, "details.text"))
                .and_then(Value::as_str)
                .unwrap_or("An issue without text.")
                .to_string()
        })
        .collect();
    sections.push(SectionText {
        title: "Sources consulted",
        code: SectionCode {
            coding: [Coding {
                system: SUMMARY_SECTION_SYSTEM,
                code: "sources",
                display: "Sources consulted",
            }],
            text: Some("Sources consulted"),
        },
        text: Narrative::new(list_div(&source_lines)),
        empty_reason: None,
        entry: vec![Reference {
            reference: &outcome_url,
        }],
    });
    // Serialising these views cannot fail (they hold strings only); `null` is only a guard.
    let section_text =
        serde_json::value::to_raw_value(&sections).unwrap_or_else(|_| RawValue::NULL.to_owned());
    drop(sections);

    let composition = json!({
        "resourceType": "Composition",
        "id": composition_id,
        "status": "final",
        "type": { "coding": [{ "system": LOINC, "code": "60591-5", "display": "Patient summary Document" }] },
        "subject": { "reference": patient_url },
        "date": now,
        "author": [{ "display": "Concord" }],
        "title": "Patient Summary",
    });
    let mut composition = Resource::from_value(composition).unwrap_or_default();
    composition.insert_raw("section", RawText::from(section_text));

    let mut entries = vec![
        DocumentEntry {
            full_url: urn_for("Composition", composition_id),
            resource: composition,
        },
        entry_of(patient_url, patient.clone()),
    ];
    // The merged resources are moved into the document, not copied: a whole record is most of
    // a view's memory traffic.
    let Merged {
        entries: merged_entries,
        outcome,
    } = merged;
    let mut slots: Vec<Option<MergedEntry>> = merged_entries.into_iter().map(Some).collect();
    for i in included {
        if let Some(entry) = slots.get_mut(i).and_then(Option::take) {
            entries.push(DocumentEntry {
                full_url: entry.full_url,
                resource: entry.resource,
            });
        }
    }
    entries.push(entry_of(outcome_url, outcome));

    let head = json!({
        "resourceType": "Bundle",
        "id": bundle_id,
        "identifier": { "system": "urn:ietf:rfc:3986", "value": urn_for("Bundle", bundle_id) },
        "type": "document",
        "timestamp": now,
    });
    Document {
        head: match head {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        entry: entries,
    }
}

/// A Composition section as the document writes it (members in this order).
#[derive(Serialize)]
struct SectionText<'a> {
    title: &'a str,
    code: SectionCode<'a>,
    text: Narrative,
    #[serde(rename = "emptyReason", skip_serializing_if = "Option::is_none")]
    empty_reason: Option<EmptyReason>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entry: Vec<Reference<'a>>,
}

#[derive(Serialize)]
struct SectionCode<'a> {
    coding: [Coding<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

#[derive(Serialize)]
struct Coding<'a> {
    system: &'a str,
    code: &'a str,
    display: &'a str,
}

#[derive(Serialize)]
struct EmptyReason {
    coding: [Coding<'static>; 1],
}

/// Generated narrative.
#[derive(Serialize)]
struct Narrative {
    status: &'static str,
    div: String,
}

impl Narrative {
    fn new(div: String) -> Narrative {
        Narrative {
            status: "generated",
            div,
        }
    }
}

#[derive(Serialize)]
struct Reference<'a> {
    reference: &'a str,
}

/// The `$summary` document Bundle. Its merged resources stay [`Resource`]s, so what nobody read
/// of them is written out as the sources sent it.
#[derive(Debug, Serialize)]
pub struct Document {
    /// The Bundle's members before `entry`.
    #[serde(flatten)]
    head: Map<String, Value>,
    entry: Vec<DocumentEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DocumentEntry {
    full_url: String,
    resource: Resource,
}

impl Document {
    /// The document as a value (parses what the sources sent; for tests and small documents).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The document as JSON text.
    pub fn to_json(&self) -> String {
        // Every piece written is UTF-8 (serde_json's text, and the sources' text, checked when
        // it was read), so this check cannot fail; it is the price of a `String` without
        // `unsafe`, which the HTTP answer does without ([`Document::to_vec`]).
        String::from_utf8(self.to_vec()).unwrap_or_default()
    }

    /// The document as JSON text in bytes: what the [`Serialize`] impl writes, its resources
    /// written by [`Resource::write_json`].
    pub fn to_vec(&self) -> Vec<u8> {
        // About what a record's entries take (sources' resources run to a kilobyte or two
        // each), so the text is rarely copied to grow.
        let mut out = Vec::with_capacity(16 * 1024 + self.entry.len() * 2048);
        out.push(b'{');
        for (key, value) in &self.head {
            write_json_str(&mut out, key);
            out.push(b':');
            write_json_value(&mut out, value);
            out.push(b',');
        }
        out.extend_from_slice(b"\"entry\":[");
        for (at, entry) in self.entry.iter().enumerate() {
            if at > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"fullUrl\":");
            write_json_str(&mut out, &entry.full_url);
            out.extend_from_slice(b",\"resource\":");
            entry.resource.write_json(&mut out);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// A Bundle entry, moving the resource in.
fn entry_of(full_url: String, resource: Value) -> DocumentEntry {
    DocumentEntry {
        full_url,
        resource: Resource::from_value(resource).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_are_placed_by_category_even_beside_a_malformed_one() {
        let section = |category: Value| {
            let observation = json!({"resourceType": "Observation", "category": category});
            section_of(&Resource::from_json(&observation.to_string()).unwrap())
        };
        let coding =
            |system: &str, code: &str| json!({"coding": [{"system": system, "code": code}]});
        let vital = coding(OBSERVATION_CATEGORY, "vital-signs");
        let lab = coding(OBSERVATION_CATEGORY, "laboratory");
        assert_eq!(
            section(json!([lab.clone(), vital.clone()])),
            Some(Section::VitalSigns)
        );
        assert_eq!(section(json!([lab.clone()])), Some(Section::Results));
        assert_eq!(
            section(json!([{"coding": [{"code": "imaging"}]}])),
            Some(Section::Results)
        );
        assert_eq!(
            section(json!([coding("https://other.example", "laboratory")])),
            None
        );
        assert_eq!(
            section(json!(["not a concept", vital])),
            Some(Section::VitalSigns)
        );
        assert_eq!(
            section(json!([{"coding": "junk"}, lab])),
            Some(Section::Results)
        );
        assert_eq!(section(json!("junk")), None);
    }

    #[test]
    fn uuids_are_kept_or_derived_deterministically() {
        let id = "0F8FAD5B-D9CB-469F-A165-70867728950E";
        assert_eq!(
            urn_for("Bundle", id),
            "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"
        );
        let derived = urn_for("Bundle", "summary-1");
        assert_eq!(derived, urn_for("Bundle", "summary-1"));
        assert_ne!(derived, urn_for("Bundle", "summary-2"));
        assert_ne!(derived, urn_for("Composition", "summary-1"));
        let uuid = derived.strip_prefix("urn:uuid:").unwrap();
        assert!(is_uuid(uuid), "{uuid}");
        assert_eq!(&uuid[14..15], "8", "version 8");
        assert!("89ab".contains(&uuid[19..20]), "RFC variant");
    }

    /// The merge's words for a fact are the narrative's, whatever shape its elements have; and
    /// the usual shapes are settled by the merge's reads, so the narrative reads them once.
    #[test]
    fn the_merges_labels_are_the_narratives_words() {
        let day = r#""effectiveDateTime":"2024-01-02""#;
        let code = r#""code":{"coding":[{"system":"http://loinc.org","code":"1","display":"Hb"}]}"#;
        let cases = [
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueQuantity":{{"value":5.10,"unit":"g/dL"}}}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueQuantity":{{"value":5,"code":"g"}}}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueQuantity":{{"unit":"g"}}}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueCodeableConcept":{{"text":"positive"}}}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueString":"a < b"}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"component":[{{"code":{{"text":"sys"}},"valueQuantity":{{"value":120,"unit":"mm[Hg]"}}}},{{"valueQuantity":{{"value":80}}}}]}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{code},{day}}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{day},"valueString":"x"}}"#), true),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueBoolean":true}}"#), false),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueInteger":3}}"#), false),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueQuantity":"5"}}"#), false),
            (format!(r#"{{"resourceType":"Observation",{code},{day},"valueString":5,"component":[{{"valueQuantity":{{"value":1}}}}]}}"#), false),
            (format!(r#"{{"resourceType":"Observation",{code},"valueString":"x"}}"#), false),
            (format!(r#"{{"resourceType":"Condition",{code}}}"#), true),
            (r#"{"resourceType":"Condition","code":"odd"}"#.to_string(), true),
            (r#"{"resourceType":"Immunization","vaccineCode":{"coding":[{"code":"v"}]}}"#.to_string(), true),
            (r#"{"resourceType":"MedicationRequest","medicationCodeableConcept":{"text":"Aspirin"}}"#.to_string(), true),
            (r#"{"resourceType":"MedicationRequest","medicationReference":{"display":"Aspirin"}}"#.to_string(), false),
        ];
        for (text, settled) in cases {
            let resource = Resource::from_json(&text).unwrap();
            let resource_type = resource.get_str("resourceType").unwrap().to_string();
            let date = clinical_date(&resource_type, &resource);
            let label = crate::facts::read_fact(&resource_type, &resource, date).label;
            assert_eq!(label.is_some(), settled, "{text}");
            if let Some(label) = label {
                assert_eq!(label, describe(&resource_type, &resource), "{text}");
            }
        }
    }

    #[test]
    fn narrative_text_is_escaped() {
        assert_eq!(
            list_div(&["<b>&\"'".to_string(), "Café <x> ü, 5 > 4".to_string()]),
            format!(
                "{XHTML_OPEN}<ul><li>&lt;b&gt;&amp;&quot;&#39;</li><li>Café &lt;x&gt; ü, 5 &gt; 4</li></ul></div>"
            )
        );
    }

    #[test]
    fn references_resolve_against_the_entry_source() {
        let entry = MergedEntry {
            full_url: "https://gp.example/fhir/Condition/c1".into(),
            resource: Resource::from_value(json!({ "resourceType": "Condition", "id": "c1" }))
                .unwrap(),
            source_id: "gp".into(),
            origin: None,
            label: None,
            date_ms: None,
        };
        let base = base_of(&entry);
        assert_eq!(base, Some("https://gp.example/fhir"));
        let mut url = String::new();
        let mut resolve = |reference| resolve(base, reference, &mut url).map(str::to_string);
        assert_eq!(
            resolve("Patient/p1").as_deref(),
            Some("https://gp.example/fhir/Patient/p1")
        );
        assert_eq!(
            resolve("Encounter/e1/_history/2").as_deref(),
            Some("https://gp.example/fhir/Encounter/e1")
        );
        assert_eq!(
            resolve("https://other.example/fhir/Practitioner/x").as_deref(),
            Some("https://other.example/fhir/Practitioner/x")
        );
        assert_eq!(resolve("#med"), None);
    }
}
