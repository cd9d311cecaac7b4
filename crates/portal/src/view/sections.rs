//! The sections of the single view, each a `<section>` with the id the browser tests rely on:
//! `summary`, `problems`, `allergies`, `medications`, `results` (trend charts), `encounters`
//! (a timeline), `documents` (readable in place), `care-plans` (with `urgent-plans`),
//! `social-care`, `immunizations`, `procedures`; and the notices above them (`sources-bar`,
//! `withheld`).
//!
//! Owns: how each kind of resource is shown, where it came from (`span class="source"`, from the
//! federation's `source-organization` and `source-data-age` meta extensions) and the
//! "Entered by the patient" tag. Does not: sort beyond what the `$summary` document already did
//! (newest first within a section), or fetch.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use concord_federation::{SOURCE_ORGANIZATION_URL, SOURCE_STATUS_SYSTEM, Section};
use maud::{Markup, html};
use serde_json::Value;

use super::model::{Record, UrgentKind, is_care_package, urgent_kind, when};
use crate::chart::{self, Point};
use crate::text;

/// Where an item came from and how fresh it is, and the patient-entered tag.
pub fn source(resource: &Value) -> Markup {
    let name = text::source_name(resource);
    let age = text::source_age_secs(resource);
    html! {
        @if text::is_patient_entered(resource) {
            span class="tag tag-patient" { "Entered by the patient" }
        }
        span class="source" {
            "From " (name.as_deref().unwrap_or("this care record"))
            @match age {
                Some(secs) => { ", data " (text::age(secs)) " old" }
                None => { ", read live" }
            }
        }
    }
}

fn date_of(resource: &Value) -> String {
    when(resource).map(text::date).unwrap_or_default()
}

fn status_code(concept: &Value) -> &str {
    concept["coding"][0]["code"].as_str().unwrap_or_default()
}

fn empty(what: &str) -> Markup {
    html! { p class="empty" { "No " (what) " from the sources that answered." } }
}

/// `div#sources-bar`: each source that failed, timed out, was skipped or is stale.
pub fn sources_bar(record: &Record<'_>) -> Markup {
    let problems: Vec<(String, &'static str, &str)> = record
        .issues()
        .iter()
        .filter_map(|issue| {
            let coding = issue["details"]["coding"]
                .as_array()?
                .iter()
                .find(|c| c["system"] == SOURCE_STATUS_SYSTEM)?;
            let words = match coding["code"].as_str()? {
                "ok" => return None,
                "stale" => "answered, but its data is out of date",
                "timeout" => "did not answer in time",
                "failed" => "could not be reached",
                "invalid" => "sent an answer that could not be used",
                "breaker-open" => "was not asked because it has been failing",
                "skipped" => "was not asked",
                _ => "did not answer fully",
            };
            let org = text::extension(issue, SOURCE_ORGANIZATION_URL)
                .and_then(|e| e["valueReference"]["display"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| "A source".into());
            let detail = issue["details"]["text"].as_str().unwrap_or_default();
            Some((org, words, detail))
        })
        .collect();
    html! {
        @if !problems.is_empty() {
            div id="sources-bar" class="sources-bar" role="status" {
                p { strong { "This record may be incomplete." } " Not every organisation answered in full:" }
                ul {
                    @for (org, words, detail) in &problems {
                        li { strong { (org) } " " (words) "." @if !detail.is_empty() { span class="source" { (detail) } } }
                    }
                }
            }
        }
    }
}

/// `div#withheld` when the answer's OperationOutcome says something was suppressed.
pub fn withheld(record: &Record<'_>) -> Markup {
    let suppressed = record.issues().iter().any(|i| i["code"] == "suppressed");
    html! {
        @if suppressed {
            div id="withheld" class="withheld" role="status" {
                p {
                    strong { "Some information in this record has been withheld" }
                    ", in line with access rules or the person's consent. What is shown is not the whole record."
                }
            }
        }
    }
}

/// The summary: what matters at a glance, the sources consulted, and links to the sections.
pub fn summary(record: &Record<'_>, urgent_shown_above: bool) -> Markup {
    let active_problems: Vec<String> = dedup(
        record
            .section(Section::Problems)
            .iter()
            .filter(|c| is_active_condition(c))
            .map(|c| text::concept(&c["code"])),
    );
    let current_meds = record
        .section(Section::Medications)
        .iter()
        .filter(|m| is_current_medication(m))
        .count();
    let urgent = urgent_items(record).len();
    let sources: Vec<(String, String)> = record
        .issues()
        .iter()
        .filter_map(|issue| {
            let org = text::extension(issue, SOURCE_ORGANIZATION_URL)?["valueReference"]["display"]
                .as_str()?
                .to_string();
            let status = issue["details"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["system"] == SOURCE_STATUS_SYSTEM)
                .and_then(|c| c["display"].as_str())
                .unwrap_or("Answered")
                .to_string();
            Some((org, status))
        })
        .collect();
    html! {
        section id="summary" aria-labelledby="summary-title" class="card" {
            h2 id="summary-title" { "Summary" }
            ul {
                li {
                    strong { (active_problems.len()) } " active problems"
                    @if !active_problems.is_empty() {
                        ": " (active_problems.iter().take(6).cloned().collect::<Vec<_>>().join(", "))
                        @if active_problems.len() > 6 { ", and more" }
                    }
                }
                li { strong { (current_meds) } " current medications" }
                @if urgent > 0 {
                    li {
                        strong { (urgent) }
                        @if urgent == 1 { " end-of-life, ReSPECT or crisis plan" } @else { " end-of-life, ReSPECT or crisis plans" }
                        @if !urgent_shown_above { " (" a href="#urgent-plans" { "see the plans" } ")" }
                    }
                }
            }
            @if !sources.is_empty() {
                h3 { "Sources consulted" }
                ul {
                    @for (org, status) in &sources { li { (org) ": " (status) } }
                }
            }
            nav class="section-nav" aria-label="Sections of this record" {
                ul {
                    @for (id, label) in [("problems", "Problems"), ("allergies", "Allergies"), ("medications", "Medications"),
                        ("results", "Results"), ("encounters", "Encounters"), ("documents", "Documents"),
                        ("care-plans", "Care plans"), ("social-care", "Social care"), ("immunizations", "Immunisations"),
                        ("procedures", "Procedures")] {
                        li { a href={"#" (id)} { (label) } }
                    }
                }
            }
        }
    }
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .filter(|i| !i.is_empty() && seen.insert(i.clone()))
        .collect()
}

fn is_active_condition(condition: &Value) -> bool {
    matches!(
        status_code(&condition["clinicalStatus"]),
        "active" | "recurrence" | "relapse" | ""
    ) && condition["abatementDateTime"].is_null()
}

pub fn problems(record: &Record<'_>) -> Markup {
    let all = record.section(Section::Problems);
    let (active, past): (Vec<&&Value>, Vec<&&Value>) =
        all.iter().partition(|c| is_active_condition(c));
    // Past problems repeat (a yearly "medication review due"): once per name and source.
    let mut past_groups: BTreeMap<(String, String), (&Value, usize)> = BTreeMap::new();
    for c in &past {
        let key = (
            text::concept(&c["code"]),
            text::source_name(c).unwrap_or_default(),
        );
        past_groups.entry(key).or_insert((c, 0)).1 += 1;
    }
    html! {
        section id="problems" aria-labelledby="problems-title" {
            h2 id="problems-title" { "Problems" }
            @if all.is_empty() { (empty("problems")) }
            @if !active.is_empty() {
                table class="data-table" {
                    caption { "Active problems" }
                    thead { tr { th scope="col" { "Problem" } th scope="col" { "Since" } th scope="col" { "Source" } } }
                    tbody {
                        @for c in &active {
                            tr {
                                td { (text::concept(&c["code"])) }
                                td { (date_of(c)) }
                                td { (source(c)) }
                            }
                        }
                    }
                }
            }
            @if !past_groups.is_empty() {
                details {
                    summary { "Past and resolved problems (" (past_groups.len()) ")" }
                    table class="data-table" {
                        caption class="visually-hidden" { "Past and resolved problems" }
                        thead { tr { th scope="col" { "Problem" } th scope="col" { "Last recorded" } th scope="col" { "Times" } th scope="col" { "Source" } } }
                        tbody {
                            @for ((name, _), (c, n)) in &past_groups {
                                tr { td { (name) } td { (date_of(c)) } td { (n) } td { (source(c)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn allergies(record: &Record<'_>) -> Markup {
    let all = record.section(Section::Allergies);
    html! {
        section id="allergies" aria-labelledby="allergies-title" {
            h2 id="allergies-title" { "Allergies and intolerances" }
            @if all.is_empty() { (empty("allergies or intolerances")) } @else {
                table class="data-table" {
                    thead { tr {
                        th scope="col" { "Substance" } th scope="col" { "Reaction" } th scope="col" { "Criticality" }
                        th scope="col" { "Status" } th scope="col" { "Recorded" } th scope="col" { "Source" }
                    } }
                    tbody {
                        @for a in all {
                            tr {
                                td { (text::concept(&a["code"])) }
                                td {
                                    (a["reaction"].as_array().into_iter().flatten()
                                        .flat_map(|r| r["manifestation"].as_array().into_iter().flatten())
                                        .map(text::concept).collect::<Vec<_>>().join(", "))
                                }
                                td { (a["criticality"].as_str().unwrap_or_default()) }
                                td { (status_code(&a["clinicalStatus"])) }
                                td { (date_of(a)) }
                                td { (source(a)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn is_current_medication(m: &Value) -> bool {
    matches!(
        m["status"].as_str(),
        Some("active" | "on-hold" | "intended" | "draft")
    )
}

fn medication_name(m: &Value) -> String {
    let name = text::concept(&m["medicationCodeableConcept"]);
    if name.is_empty() {
        m["medicationReference"]["display"]
            .as_str()
            .unwrap_or("Medication")
            .to_string()
    } else {
        name
    }
}

fn dosage(m: &Value) -> String {
    m["dosageInstruction"][0]["text"]
        .as_str()
        .or_else(|| m["dosage"][0]["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn medications(record: &Record<'_>) -> Markup {
    let all = record.section(Section::Medications);
    // Newest first already; keep the newest of each medicine per source.
    let mut current: BTreeMap<(String, String), &Value> = BTreeMap::new();
    let mut past: BTreeMap<(String, String), (&Value, usize)> = BTreeMap::new();
    for m in all {
        let key = (text::source_name(m).unwrap_or_default(), medication_name(m));
        if is_current_medication(m) {
            current.entry(key).or_insert(m);
        } else {
            past.entry(key).or_insert((m, 0)).1 += 1;
        }
    }
    html! {
        section id="medications" aria-labelledby="medications-title" {
            h2 id="medications-title" { "Medications" }
            @if all.is_empty() { (empty("medications")) }
            h3 { "Current medications" }
            @if current.is_empty() { p { "None current." } } @else {
                table class="data-table" {
                    thead { tr { th scope="col" { "Medication" } th scope="col" { "Dose" } th scope="col" { "Since" } th scope="col" { "Source" } } }
                    tbody {
                        @for ((_, name), m) in &current {
                            tr { td { (name) } td { (dosage(m)) } td { (date_of(m)) } td { (source(m)) } }
                        }
                    }
                }
            }
            @if !past.is_empty() {
                details {
                    summary { "Past medications (" (past.len()) ")" }
                    table class="data-table" {
                        caption class="visually-hidden" { "Past medications by source" }
                        thead { tr { th scope="col" { "Medication" } th scope="col" { "Last" } th scope="col" { "Times" } th scope="col" { "Status" } th scope="col" { "Source" } } }
                        tbody {
                            @for ((_, name), (m, n)) in &past {
                                tr {
                                    td { (name) } td { (date_of(m)) } td { (n) }
                                    td { (m["status"].as_str().unwrap_or_default()) } td { (source(m)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One measured series: a code (or a component's code) of an Observation.
struct Series<'a> {
    label: String,
    unit: String,
    range: Option<(f64, f64)>,
    points: Vec<Point>,
    latest: &'a Value,
    latest_value: String,
}

fn range_of(element: &Value) -> Option<(f64, f64)> {
    let range = &element["referenceRange"][0];
    Some((
        range["low"]["value"].as_f64()?,
        range["high"]["value"].as_f64()?,
    ))
}

fn series_key(code: &Value) -> String {
    let coding = &code["coding"][0];
    match (coding["system"].as_str(), coding["code"].as_str()) {
        (Some(s), Some(c)) => format!("{s}|{c}"),
        _ => text::concept(code),
    }
}

/// The numeric series in the results and vital signs sections, newest first.
fn series<'a>(record: &Record<'a>) -> (Vec<Series<'a>>, Vec<&'a Value>) {
    let mut by_key: BTreeMap<String, Series<'a>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut other = Vec::new();
    let observations = record
        .section(Section::Results)
        .iter()
        .chain(record.section(Section::VitalSigns))
        .copied()
        .filter(|r| r["resourceType"] == "Observation");
    for o in observations {
        let Some(when) = when(o) else {
            other.push(o);
            continue;
        };
        let mut parts: Vec<(&Value, &Value)> = Vec::new();
        if o["valueQuantity"]["value"].is_number() {
            parts.push((&o["code"], o));
        }
        for component in o["component"].as_array().into_iter().flatten() {
            if component["valueQuantity"]["value"].is_number() {
                parts.push((&component["code"], component));
            }
        }
        if parts.is_empty() {
            other.push(o);
            continue;
        }
        for (code, element) in parts {
            let key = series_key(code);
            let quantity = &element["valueQuantity"];
            let value = quantity["value"].as_f64().unwrap_or_default();
            let entry = by_key.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Series {
                    label: text::concept(code),
                    unit: quantity["unit"]
                        .as_str()
                        .or_else(|| quantity["code"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    range: range_of(element),
                    points: Vec::new(),
                    latest: o,
                    latest_value: quantity_text(quantity),
                }
            });
            if entry.range.is_none() {
                entry.range = range_of(element);
            }
            entry.points.push(Point {
                when: when.to_string(),
                value,
            });
        }
    }
    let series = order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .collect();
    (series, other)
}

/// A Quantity as `136 mmol/L`, rounded to two decimals (sources send measuring noise such as
/// `136.0027389073786`).
fn quantity_text(quantity: &Value) -> String {
    let Some(value) = quantity["value"].as_f64() else {
        return String::new();
    };
    let unit = quantity["unit"]
        .as_str()
        .or_else(|| quantity["code"].as_str())
        .unwrap_or_default();
    if unit.is_empty() {
        chart::number(value)
    } else {
        format!("{} {unit}", chart::number(value))
    }
}

fn value_text(o: &Value) -> String {
    if let Some(s) = o["valueString"].as_str() {
        return s.to_string();
    }
    if o["valueCodeableConcept"].is_object() {
        return text::concept(&o["valueCodeableConcept"]);
    }
    if o["valueQuantity"].is_object() {
        return quantity_text(&o["valueQuantity"]);
    }
    if let Some(b) = o["valueBoolean"].as_bool() {
        return if b { "Yes" } else { "No" }.into();
    }
    o["component"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{}: {}", text::concept(&c["code"]), value_text(c)))
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn results(record: &Record<'_>) -> Markup {
    let (series, other) = series(record);
    let reports: Vec<&Value> = record
        .section(Section::Results)
        .iter()
        .copied()
        .filter(|r| r["resourceType"] == "DiagnosticReport")
        .collect();
    let charted: Vec<&Series<'_>> = series.iter().filter(|s| s.points.len() > 1).collect();
    html! {
        section id="results" aria-labelledby="results-title" {
            h2 id="results-title" { "Results and vital signs" }
            @if series.is_empty() && other.is_empty() && reports.is_empty() { (empty("results")) }
            @if !series.is_empty() {
                table class="data-table" {
                    caption { "Latest results" }
                    thead { tr {
                        th scope="col" { "Test" } th scope="col" { "Latest" } th scope="col" { "Reference range" }
                        th scope="col" { "Date" } th scope="col" { "Readings" } th scope="col" { "Source" }
                    } }
                    tbody {
                        @for s in &series {
                            @let latest = s.points.first().map(|p| p.value);
                            tr {
                                td { (s.label) }
                                td {
                                    (s.latest_value)
                                    @if latest.is_some_and(|v| chart::out_of_range(v, s.range)) {
                                        " " span class="tag tag-urgent" { "outside range" }
                                    }
                                }
                                td { @if let Some((l, h)) = s.range { (chart::number(l)) " to " (chart::number(h)) } }
                                td { (date_of(s.latest)) }
                                td { (s.points.len()) }
                                td { (source(s.latest)) }
                            }
                        }
                    }
                }
            }
            @if !charted.is_empty() {
                h3 { "Trends" }
                div class="trends" {
                    @for s in &charted {
                        (chart::trend(&s.points, s.range, &s.unit, &s.label))
                    }
                }
            }
            @if !other.is_empty() {
                details {
                    summary { "Other observations (" (other.len()) ")" }
                    table class="data-table" {
                        caption class="visually-hidden" { "Other observations" }
                        thead { tr { th scope="col" { "Observation" } th scope="col" { "Value" } th scope="col" { "Date" } th scope="col" { "Source" } } }
                        tbody {
                            @for o in &other {
                                tr { td { (text::concept(&o["code"])) } td { (value_text(o)) } td { (date_of(o)) } td { (source(o)) } }
                            }
                        }
                    }
                }
            }
            @if !reports.is_empty() {
                details {
                    summary { "Reports (" (reports.len()) ")" }
                    table class="data-table" {
                        caption class="visually-hidden" { "Diagnostic reports" }
                        thead { tr { th scope="col" { "Report" } th scope="col" { "Date" } th scope="col" { "Status" } th scope="col" { "Source" } } }
                        tbody {
                            @for r in &reports {
                                tr {
                                    td { (text::concept(&r["code"])) }
                                    td { (date_of(r)) }
                                    td { (r["status"].as_str().unwrap_or_default()) }
                                    td { (source(r)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The encounters shown in the timeline before the rest fold away.
const TIMELINE_OPEN: usize = 15;

fn encounter_item(e: &Value) -> Markup {
    let kind = e["type"]
        .as_array()
        .and_then(|t| t.first())
        .map(text::concept)
        .filter(|t| !t.is_empty())
        .or_else(|| e["class"]["display"].as_str().map(str::to_string))
        .unwrap_or_else(|| "Encounter".into());
    let reason = e["reasonCode"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text::concept)
        .collect::<Vec<_>>()
        .join(", ");
    let end = e["period"]["end"].as_str();
    let start = e["period"]["start"].as_str();
    html! {
        li {
            strong { (date_of(e)) }
            @if let (Some(s), Some(end)) = (start, end) { @if text::date(s) != text::date(end) { " to " (text::date(end)) } }
            " " (kind)
            @if !reason.is_empty() { ": " (reason) }
            @if let Some(place) = e["serviceProvider"]["display"].as_str() { ", " (place) }
            (source(e))
        }
    }
}

pub fn encounters(record: &Record<'_>) -> Markup {
    let all = record.section(Section::Encounters);
    let (open, folded) = all.split_at(all.len().min(TIMELINE_OPEN));
    html! {
        section id="encounters" aria-labelledby="encounters-title" {
            h2 id="encounters-title" { "Encounters" }
            @if all.is_empty() { (empty("encounters")) } @else {
                ol class="timeline" aria-label="Encounters, newest first" {
                    @for e in open { (encounter_item(e)) }
                }
                @if !folded.is_empty() {
                    details {
                        summary { "Earlier encounters (" (folded.len()) ")" }
                        ol class="timeline" aria-label="Earlier encounters, newest first" {
                            @for e in folded { (encounter_item(e)) }
                        }
                    }
                }
            }
        }
    }
}

/// Strips tags from an HTML attachment so it reads as text (it is then escaped like any text).
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The readable content of a DocumentReference (its first attachment).
fn document_content(d: &Value) -> Markup {
    let attachment = &d["content"][0]["attachment"];
    let content_type = attachment["contentType"]
        .as_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let decoded = attachment["data"]
        .as_str()
        .and_then(|d| STANDARD.decode(d.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    html! {
        @match (decoded, content_type.as_str()) {
            (Some(text), "text/plain" | "") => { pre class="document-text" { (text) } }
            (Some(text), "text/html" | "application/xhtml+xml") => { pre class="document-text" { (strip_tags(&text)) } }
            (Some(_), other) => { p { "A " (other) " document that cannot be shown here." } }
            (None, _) => {
                @if let Some(url) = attachment["url"].as_str() {
                    p { "The document is held by the source at " code { (url) } "; it is not copied into this record." }
                } @else {
                    p { "No readable content was sent with this document." }
                }
            }
        }
    }
}

fn document_title(d: &Value) -> String {
    d["description"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            d["content"][0]["attachment"]["title"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| text::concept(&d["type"]))
}

fn document(d: &Value) -> Markup {
    let author = d["author"][0]["display"].as_str();
    html! {
        details class="document" {
            summary { (document_title(d)) ", " (date_of(d)) }
            p {
                (text::concept(&d["type"]))
                @if let Some(a) = author { ", by " (a) }
            }
            (source(d))
            (document_content(d))
        }
    }
}

/// The documents opened in place before the rest fold into one list.
const DOCUMENTS_OPEN: usize = 20;

pub fn documents(record: &Record<'_>) -> Markup {
    let all = record.section(Section::Documents);
    let (open, folded) = all.split_at(all.len().min(DOCUMENTS_OPEN));
    html! {
        section id="documents" aria-labelledby="documents-title" {
            h2 id="documents-title" { "Documents" }
            @if all.is_empty() { (empty("documents")) } @else {
                p { "Open a document to read it here." }
                @for d in open { (document(d)) }
                @if !folded.is_empty() {
                    h3 { "Older documents" }
                    @for d in folded { (document(d)) }
                }
            }
        }
    }
}

/// End-of-life plans, ReSPECT forms and crisis plans, active or current only.
fn urgent_items<'a>(record: &Record<'a>) -> Vec<(UrgentKind, &'a Value)> {
    record
        .of_type("CarePlan")
        .chain(record.of_type("DocumentReference"))
        .filter(|r| {
            r["status"]
                .as_str()
                .is_none_or(|s| s == "active" || s == "current")
        })
        .filter_map(|r| Some((urgent_kind(r)?, r)))
        .collect()
}

fn activities(plan: &Value) -> Markup {
    let list: Vec<String> = plan["activity"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            a["detail"]["description"]
                .as_str()
                .map(str::to_string)
                .or_else(|| Some(text::concept(&a["detail"]["code"])).filter(|t| !t.is_empty()))
        })
        .collect();
    html! {
        @if !list.is_empty() { ul { @for a in &list { li { (a) } } } }
    }
}

fn plan_heading(plan: &Value) -> String {
    plan["title"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            plan["category"]
                .as_array()
                .and_then(|c| c.first())
                .map(text::concept)
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Care plan".into())
}

/// `div#urgent-plans`, with its heading at `level` (2 when it opens the page, 3 in care plans).
pub fn urgent_plans(record: &Record<'_>, level: u8) -> Markup {
    let items = urgent_items(record);
    let heading = "End-of-life, ReSPECT and crisis plans";
    html! {
        div id="urgent-plans" class="card card-urgent" {
            @if level == 2 { h2 { (heading) } } @else { h3 { (heading) } }
            @if items.is_empty() {
                p { "No end-of-life care plan, ReSPECT form or mental health crisis plan from the sources that answered." }
            }
            @for (kind, r) in &items {
                div class="urgent-plan" {
                    p {
                        span class="tag tag-urgent" { (kind.label()) } " "
                        strong {
                            @if r["resourceType"] == "DocumentReference" { (document_title(r)) } @else { (plan_heading(r)) }
                        }
                        ", " (date_of(r))
                    }
                    @if let Some(d) = r["description"].as_str().filter(|_| r["resourceType"] == "CarePlan") { p { (d) } }
                    (activities(r))
                    @if r["resourceType"] == "DocumentReference" {
                        details { summary { "Read the " (kind.label()) } (document_content(r)) }
                    }
                    (source(r))
                }
            }
        }
    }
}

pub fn care_plans(record: &Record<'_>, with_urgent: bool) -> Markup {
    let plans: Vec<&Value> = record
        .section(Section::CarePlans)
        .iter()
        .copied()
        .filter(|p| urgent_kind(p).is_none() && !is_care_package(record, p))
        .collect();
    html! {
        section id="care-plans" aria-labelledby="care-plans-title" {
            h2 id="care-plans-title" { "Care plans" }
            @if with_urgent { (urgent_plans(record, 3)) } @else {
                p { "End-of-life, ReSPECT and crisis plans are shown " a href="#urgent-plans" { "at the top of the record" } "." }
            }
            @if plans.is_empty() { p { "No other care plans from the sources that answered." } }
            @for p in &plans {
                div class="card" {
                    h3 { (plan_heading(p)) }
                    p {
                        "Status: " (p["status"].as_str().unwrap_or("unknown"))
                        @if let Some(start) = p["period"]["start"].as_str() { ", from " (text::date(start)) }
                        @if let Some(end) = p["period"]["end"].as_str() { " to " (text::date(end)) }
                    }
                    @if let Some(d) = p["description"].as_str() { p { (d) } }
                    (activities(p))
                    (source(p))
                }
            }
        }
    }
}

pub fn social_care(record: &Record<'_>) -> Markup {
    let episodes: Vec<&Value> = record.of_type("EpisodeOfCare").collect();
    let packages: Vec<&Value> = record
        .of_type("CarePlan")
        .filter(|p| urgent_kind(p).is_none() && is_care_package(record, p))
        .collect();
    let carers: Vec<&Value> = record.of_type("RelatedPerson").collect();
    html! {
        section id="social-care" aria-labelledby="social-care-title" {
            h2 id="social-care-title" { "Social care" }
            @if episodes.is_empty() && packages.is_empty() && carers.is_empty() { (empty("social care involvement")) }
            @for e in &episodes {
                div class="card" {
                    h3 {
                        (e["type"].as_array().and_then(|t| t.first()).map(text::concept).unwrap_or_else(|| "Social care".into()))
                    }
                    dl class="facts" {
                        div { dt { "Status" } dd { (e["status"].as_str().unwrap_or("unknown")) } }
                        @if let Some(start) = e["period"]["start"].as_str() { div { dt { "Since" } dd { (text::date(start)) } } }
                        @if let Some(end) = e["period"]["end"].as_str() { div { dt { "Ended" } dd { (text::date(end)) } } }
                        div { dt { "Allocated worker" } dd { (e["careManager"]["display"].as_str().unwrap_or("None allocated")) } }
                        @if let Some(org) = e["managingOrganization"]["display"].as_str() { div { dt { "Team" } dd { (org) } } }
                    }
                    (source(e))
                }
            }
            @if !packages.is_empty() {
                h3 { "Care packages" }
                ul {
                    @for p in &packages {
                        li {
                            strong { (plan_heading(p)) }
                            " (" (p["status"].as_str().unwrap_or("unknown"))
                            @if let Some(start) = p["period"]["start"].as_str() { ", from " (text::date(start)) }
                            ")"
                            @if let Some(d) = p["description"].as_str() { br; (d) }
                            (source(p))
                        }
                    }
                }
            }
            @if !carers.is_empty() {
                h3 { "Carers and family" }
                ul {
                    @for c in &carers {
                        li {
                            strong { (text::name(&c["name"])) }
                            @let relationship = c["relationship"].as_array().into_iter().flatten().map(text::concept).collect::<Vec<_>>().join(", ");
                            @if !relationship.is_empty() { " (" (relationship) ")" }
                            @if let Some(phone) = c["telecom"].as_array().into_iter().flatten().find(|t| t["system"] == "phone").and_then(|t| t["value"].as_str()) {
                                ", phone " (phone)
                            }
                            (source(c))
                        }
                    }
                }
            }
        }
    }
}

pub fn immunizations(record: &Record<'_>) -> Markup {
    let mut groups: BTreeMap<(String, String), (&Value, usize)> = BTreeMap::new();
    for i in record.section(Section::Immunizations) {
        let key = (
            text::concept(&i["vaccineCode"]),
            text::source_name(i).unwrap_or_default(),
        );
        groups.entry(key).or_insert((i, 0)).1 += 1;
    }
    html! {
        section id="immunizations" aria-labelledby="immunizations-title" {
            h2 id="immunizations-title" { "Immunisations" }
            @if groups.is_empty() { (empty("immunisations")) } @else {
                table class="data-table" {
                    thead { tr { th scope="col" { "Vaccine" } th scope="col" { "Last given" } th scope="col" { "Doses" } th scope="col" { "Source" } } }
                    tbody {
                        @for ((name, _), (i, n)) in &groups {
                            tr { td { (name) } td { (date_of(i)) } td { (n) } td { (source(i)) } }
                        }
                    }
                }
            }
        }
    }
}

pub fn procedures(record: &Record<'_>) -> Markup {
    let mut groups: BTreeMap<(String, String), (&Value, usize)> = BTreeMap::new();
    for p in record.section(Section::Procedures) {
        let key = (
            text::concept(&p["code"]),
            text::source_name(p).unwrap_or_default(),
        );
        groups.entry(key).or_insert((p, 0)).1 += 1;
    }
    html! {
        section id="procedures" aria-labelledby="procedures-title" {
            h2 id="procedures-title" { "Procedures" }
            @if groups.is_empty() { (empty("procedures")) } @else {
                table class="data-table" {
                    thead { tr { th scope="col" { "Procedure" } th scope="col" { "Last done" } th scope="col" { "Times" } th scope="col" { "Source" } } }
                    tbody {
                        @for ((name, _), (p, n)) in &groups {
                            tr { td { (name) } td { (date_of(p)) } td { (n) } td { (source(p)) } }
                        }
                    }
                }
            }
        }
    }
}
