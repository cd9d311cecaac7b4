//! `concord import-csv --mapping MAPPING.toml FILE`: a declarative column-to-FHIR import for
//! extracts such as a council's adult social care system hands over (docs/social-care-import.md).
//!
//! Owns: reading the mapping (TOML), checking the extract's header against it, turning each data
//! row into one transaction Bundle of conditional updates (`PUT Type?identifier=system|value`,
//! identifiers derived from the key column and each resource's role, so re-importing is
//! idempotent), leaving out of it the resources whose content equals the stored copy (so a
//! re-import writes no new versions), simple conversions (dates, sex to gender, typed
//! QuestionnaireResponse answers), naming the row and the column of every error (including the
//! hub's own rejections, such as an invalid NHS number), ending the open episodes of people an
//! extract no longer lists (`--end-missing`) and the closing summary. Does not: validate FHIR or
//! NHS numbers itself (the hub does, as for any write), match people across sources (the master
//! patient index does), or delete anything.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use concord_fhir::{Error, RequestContext};
use concord_hub::Hub;
use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::node;

/// The NHS number identifier system; the hub rejects invalid numbers in it.
const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// The base URL used for fullUrls in responses the importer discards.
const BASE: &str = "urn:concord:import-csv";

/// The mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The column holding the source system's person id.
    pub key: String,
    /// The identifier system of the key (and of the identifiers derived from it).
    pub key_system: String,
    /// The resources made from each row, in order; the first Patient is the one the others refer to.
    #[serde(rename = "resource")]
    pub resources: Vec<ResourceMapping>,
}

/// One resource made from each row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceMapping {
    /// Patient, EpisodeOfCare, CarePlan, RelatedPerson or Observation.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The role of the resource in the row (`episode`, `care-package`, `carer`, ...): the
    /// resource's identifier is `{key}-{role}` (a Patient's is the key itself).
    pub role: Option<String>,
    /// Make the resource only when this column is not empty (e.g. only people with a carer).
    pub when: Option<String>,
    /// Field name to template (`"{column}"`, or literal text, or both).
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
    /// A QuestionnaireResponse's answers, in order (`[[resource.item]]`).
    #[serde(default, rename = "item")]
    pub items: Vec<ItemMapping>,
}

/// One QuestionnaireResponse item: a question and its answer from the row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemMapping {
    /// The question's `linkId` in the Questionnaire.
    pub link_id: String,
    /// The question as shown (`item.text`).
    pub text: Option<String>,
    /// The answer's template; an item whose answer renders empty is left out.
    pub answer: String,
    /// How the answer is typed: string (default), integer, decimal, boolean, date or coding.
    #[serde(rename = "type", default)]
    pub answer_type: AnswerType,
    /// A coding answer's code system (the answer is its code).
    pub system: Option<String>,
    /// A coding answer's display, a template.
    pub display: Option<String>,
}

/// The `value[x]` of an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerType {
    #[default]
    String,
    Integer,
    Decimal,
    Boolean,
    Date,
    Coding,
}

/// What a field means: where it goes and how its text is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Date,
    Gender,
}

/// The fields each resource type takes: name, FHIR path (for errors), conversion.
fn known_fields(resource_type: &str) -> Option<&'static [(&'static str, &'static str, Kind)]> {
    Some(match resource_type {
        "Patient" => &[
            ("nhs_number", "identifier[1]", Kind::Text),
            ("family", "name[0].family", Kind::Text),
            ("given", "name[0].given", Kind::Text),
            ("birth_date", "birthDate", Kind::Date),
            ("gender", "gender", Kind::Gender),
            ("address_line", "address[0].line", Kind::Text),
            ("postcode", "address[0].postalCode", Kind::Text),
            ("phone", "telecom", Kind::Text),
        ],
        "EpisodeOfCare" => &[
            ("status", "status", Kind::Text),
            ("type", "type", Kind::Text),
            ("start", "period.start", Kind::Date),
            ("end", "period.end", Kind::Date),
            ("care_manager", "careManager", Kind::Text),
            ("managing_organization", "managingOrganization", Kind::Text),
        ],
        "CarePlan" => &[
            ("status", "status", Kind::Text),
            ("intent", "intent", Kind::Text),
            ("category", "category", Kind::Text),
            ("title", "title", Kind::Text),
            ("description", "description", Kind::Text),
            ("start", "period.start", Kind::Date),
            ("end", "period.end", Kind::Date),
        ],
        "RelatedPerson" => &[
            ("name", "name", Kind::Text),
            ("relationship", "relationship", Kind::Text),
            ("phone", "telecom", Kind::Text),
        ],
        "Observation" => &[
            ("status", "status", Kind::Text),
            ("code", "code", Kind::Text),
            ("value", "value", Kind::Text),
            ("unit", "valueQuantity.unit", Kind::Text),
            ("date", "effectiveDateTime", Kind::Date),
        ],
        "QuestionnaireResponse" => &[
            ("questionnaire", "questionnaire", Kind::Text),
            ("status", "status", Kind::Text),
            ("authored", "authored", Kind::Date),
        ],
        _ => return None,
    })
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> anyhow::Result<Mapping> {
        let mapping: Mapping = Figment::from(Toml::file_exact(path))
            .extract()
            .with_context(|| format!("cannot read the mapping {}", path.display()))?;
        mapping.check()?;
        Ok(mapping)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.key.is_empty(), "mapping: `key` names no column");
        anyhow::ensure!(
            !self.key_system.is_empty(),
            "mapping: `key_system` is empty"
        );
        anyhow::ensure!(
            self.resources.iter().any(|r| r.resource_type == "Patient"),
            "mapping: a Patient resource is required (the others refer to it)"
        );
        let mut roles = BTreeSet::new();
        for (i, resource) in self.resources.iter().enumerate() {
            let Some(known) = known_fields(&resource.resource_type) else {
                anyhow::bail!(
                    "mapping: resource {} has type {:?}; supported: Patient, EpisodeOfCare, CarePlan, RelatedPerson, Observation, QuestionnaireResponse",
                    i + 1,
                    resource.resource_type
                );
            };
            for field in resource.fields.keys() {
                anyhow::ensure!(
                    known.iter().any(|(name, _, _)| name == field),
                    "mapping: {} has no field {field:?}; it takes {}",
                    resource.resource_type,
                    known.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
                );
            }
            anyhow::ensure!(
                resource.items.is_empty() || resource.resource_type == "QuestionnaireResponse",
                "mapping: {} takes no `item`; only a QuestionnaireResponse has items",
                resource.resource_type
            );
            let mut link_ids = BTreeSet::new();
            for item in &resource.items {
                anyhow::ensure!(
                    !item.link_id.is_empty() && link_ids.insert(item.link_id.clone()),
                    "mapping: QuestionnaireResponse items need a `link_id` each, none repeated ({:?})",
                    item.link_id
                );
                anyhow::ensure!(
                    item.answer_type == AnswerType::Coding
                        || (item.system.is_none() && item.display.is_none()),
                    "mapping: item {:?}: `system` and `display` are for coding answers",
                    item.link_id
                );
            }
            for template in resource.fields.values().chain(
                resource
                    .items
                    .iter()
                    .flat_map(|item| std::iter::once(&item.answer).chain(item.display.as_ref())),
            ) {
                columns_of(template).map_err(|e| {
                    anyhow::anyhow!(
                        "mapping: {} template {template:?}: {e}",
                        resource.resource_type
                    )
                })?;
            }
            let role = resource.role_name();
            anyhow::ensure!(
                roles.insert((resource.resource_type.clone(), role.clone())),
                "mapping: two {} resources with the role {role:?}; give each its own `role`",
                resource.resource_type
            );
        }
        Ok(())
    }

    /// Every column the mapping reads, the key first.
    pub fn columns(&self) -> Vec<String> {
        let mut columns = vec![self.key.clone()];
        for resource in &self.resources {
            let item_templates = resource
                .items
                .iter()
                .flat_map(|item| std::iter::once(&item.answer).chain(item.display.as_ref()));
            let used = resource
                .fields
                .values()
                .chain(item_templates)
                .flat_map(|t| columns_of(t).unwrap_or_default())
                .chain(resource.when.clone());
            for column in used {
                if !columns.contains(&column) {
                    columns.push(column);
                }
            }
        }
        columns
    }
}

impl ResourceMapping {
    fn role_name(&self) -> String {
        self.role
            .clone()
            .unwrap_or_else(|| self.resource_type.to_lowercase())
    }
}

/// The columns a template names (`{column}`); `{{` and `}}` are literal braces.
fn columns_of(template: &str) -> Result<Vec<String>, String> {
    let mut columns = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        let after = &rest[open + 1..];
        if rest[open..].starts_with("{{") || rest[open..].starts_with("}}") {
            rest = &after[1..];
            continue;
        }
        if rest[open..].starts_with('}') {
            return Err("a `}` without its `{`".into());
        }
        let close = after.find('}').ok_or("a `{` without its `}`")?;
        let name = after[..close].trim();
        if name.is_empty() {
            return Err("`{}` names no column".into());
        }
        columns.push(name.to_string());
        rest = &after[close + 1..];
    }
    Ok(columns)
}

/// One row's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub column: Option<String>,
    pub message: String,
}

impl RowError {
    fn at(column: &str, message: impl Into<String>) -> Self {
        RowError {
            column: Some(column.to_string()),
            message: message.into(),
        }
    }
}

/// A data row: the header and the row's values.
struct Row<'a> {
    header: &'a [String],
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        self.header
            .iter()
            .position(|h| h == column)
            .and_then(|i| self.record.get(i))
            .map_or("", str::trim)
    }

    fn render(&self, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find(['{', '}']) {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            if rest[open..].starts_with("{{") || rest[open..].starts_with("}}") {
                out.push_str(&rest[open..=open]);
                rest = &after[1..];
                continue;
            }
            let close = after.find('}').unwrap_or(after.len());
            out.push_str(self.get(after[..close].trim()));
            rest = after.get(close + 1..).unwrap_or("");
        }
        out.push_str(rest);
        out.trim().to_string()
    }
}

/// Reads `dd/mm/yyyy`, `d/m/yyyy` or ISO `yyyy-mm-dd` (also `yyyy-mm` and `yyyy`) as a FHIR date.
pub fn fhir_date(text: &str) -> Option<String> {
    let text = text.trim();
    let (year, month, day) = if let Some((d, rest)) = text.split_once('/') {
        let (m, y) = rest.split_once('/')?;
        (y, Some(m), Some(d))
    } else {
        let mut parts = text.splitn(3, '-');
        let y = parts.next()?;
        (y, parts.next(), parts.next())
    };
    let digits = |s: &str, min: usize, max: usize| {
        (s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let y = digits(year, 4, 4)?;
    let Some(month) = month else {
        return Some(format!("{y:04}"));
    };
    let m = digits(month, 1, 2).filter(|m| (1..=12).contains(m))?;
    let Some(day) = day else {
        return Some(format!("{y:04}-{m:02}"));
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let d = digits(day, 1, 2).filter(|d| (1..=days).contains(d))?;
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// Sex as extracts record it (M/F/U and the words) to FHIR administrative gender.
pub fn fhir_gender(text: &str) -> Option<&'static str> {
    match text.trim().to_ascii_lowercase().as_str() {
        "m" | "male" => Some("male"),
        "f" | "female" => Some("female"),
        "u" | "unknown" | "not known" | "not stated" => Some("unknown"),
        "o" | "other" | "i" | "indeterminate" => Some("other"),
        _ => None,
    }
}

/// Percent-encodes a search parameter value (everything but unreserved characters, `:`, `/`, `|`).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/|".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One row's transaction, and where each of its resources' fields came from (entry index, FHIR
/// path under the resource, column) to name the column of an error the hub reports.
pub struct RowBundle {
    pub bundle: Value,
    pub sources: Vec<(usize, String, String)>,
}

/// Builds the transaction for one row.
pub fn row_bundle(
    mapping: &Mapping,
    header: &[String],
    record: &csv::StringRecord,
) -> Result<RowBundle, RowError> {
    let row = Row { header, record };
    let key = row.get(&mapping.key);
    if key.is_empty() {
        return Err(RowError::at(&mapping.key, "the key is empty"));
    }
    let patient_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let patient_ref = json!({ "reference": patient_url });
    let mut entries = Vec::new();
    let mut sources = Vec::new();
    let mut patient_done = false;
    for resource_mapping in &mapping.resources {
        if let Some(when) = &resource_mapping.when
            && row.get(when).is_empty()
        {
            continue;
        }
        let resource_type = resource_mapping.resource_type.as_str();
        let is_patient = resource_type == "Patient" && !patient_done;
        let identifier_value = if is_patient {
            key.to_string()
        } else {
            format!("{key}-{}", resource_mapping.role_name())
        };
        let known = known_fields(resource_type).unwrap_or_default();
        let mut values = Map::new();
        let index = entries.len();
        for (name, path, kind) in known {
            let Some(template) = resource_mapping.fields.get(*name) else {
                continue;
            };
            let text = row.render(template);
            let column = columns_of(template)
                .unwrap_or_default()
                .into_iter()
                .next()
                .unwrap_or_else(|| "(mapping)".into());
            sources.push((index, path.to_string(), column.clone()));
            if text.is_empty() {
                continue;
            }
            let value = match kind {
                Kind::Text => text,
                Kind::Date => fhir_date(&text).ok_or_else(|| {
                    RowError::at(&column, "not a date (dd/mm/yyyy or yyyy-mm-dd)".to_string())
                })?,
                Kind::Gender => fhir_gender(&text)
                    .ok_or_else(|| RowError::at(&column, "not a sex (M, F or U)".to_string()))?
                    .to_string(),
            };
            values.insert((*name).to_string(), Value::String(value));
        }
        let identifier = json!({ "system": mapping.key_system, "value": identifier_value });
        let text = |name: &str| values.get(name).and_then(Value::as_str).map(str::to_string);
        // A QuestionnaireResponse has one identifier (0..1 in R4), the others a list.
        let identifier = if resource_type == "QuestionnaireResponse" {
            identifier
        } else {
            json!([identifier])
        };
        let mut resource = json!({ "resourceType": resource_type, "identifier": identifier });
        let body = resource.as_object_mut().ok_or_else(|| RowError {
            column: None,
            message: "internal: resource is not an object".into(),
        })?;
        let period = || {
            let mut period = Map::new();
            if let Some(start) = text("start") {
                period.insert("start".into(), start.into());
            }
            if let Some(end) = text("end") {
                period.insert("end".into(), end.into());
            }
            period
        };
        match resource_type {
            "Patient" => {
                if let Some(nhs) = text("nhs_number") {
                    let nhs: String = nhs.chars().filter(|c| !c.is_whitespace()).collect();
                    if let Some(Value::Array(ids)) = body.get_mut("identifier") {
                        ids.push(json!({ "system": NHS_NUMBER_SYSTEM, "value": nhs }));
                    }
                }
                let mut name = Map::new();
                if let Some(family) = text("family") {
                    name.insert("family".into(), family.into());
                }
                if let Some(given) = text("given") {
                    let given: Vec<Value> = given
                        .split_whitespace()
                        .map(|g| Value::String(g.into()))
                        .collect();
                    name.insert("given".into(), given.into());
                }
                if !name.is_empty() {
                    body.insert("name".into(), json!([name]));
                }
                if let Some(gender) = text("gender") {
                    body.insert("gender".into(), gender.into());
                }
                if let Some(birth_date) = text("birth_date") {
                    body.insert("birthDate".into(), birth_date.into());
                }
                let mut address = Map::new();
                if let Some(line) = text("address_line") {
                    address.insert("line".into(), json!([line]));
                }
                if let Some(postcode) = text("postcode") {
                    address.insert("postalCode".into(), postcode.into());
                }
                if !address.is_empty() {
                    body.insert("address".into(), json!([address]));
                }
                if let Some(phone) = text("phone") {
                    body.insert(
                        "telecom".into(),
                        json!([{ "system": "phone", "value": phone }]),
                    );
                }
            }
            "EpisodeOfCare" => {
                body.insert(
                    "status".into(),
                    text("status").unwrap_or_else(|| "active".into()).into(),
                );
                if let Some(kind) = text("type") {
                    body.insert("type".into(), json!([{ "text": kind }]));
                }
                body.insert("patient".into(), patient_ref.clone());
                if let Some(org) = text("managing_organization") {
                    body.insert("managingOrganization".into(), json!({ "display": org }));
                }
                let period = period();
                if !period.is_empty() {
                    body.insert("period".into(), period.into());
                }
                if let Some(worker) = text("care_manager") {
                    body.insert("careManager".into(), json!({ "display": worker }));
                }
            }
            "CarePlan" => {
                body.insert(
                    "status".into(),
                    text("status").unwrap_or_else(|| "active".into()).into(),
                );
                body.insert(
                    "intent".into(),
                    text("intent").unwrap_or_else(|| "plan".into()).into(),
                );
                body.insert(
                    "category".into(),
                    json!([{ "text": text("category").unwrap_or_else(|| "care package".into()) }]),
                );
                if let Some(title) = text("title") {
                    body.insert("title".into(), title.into());
                }
                if let Some(description) = text("description") {
                    body.insert("description".into(), description.into());
                }
                body.insert("subject".into(), patient_ref.clone());
                let period = period();
                if !period.is_empty() {
                    body.insert("period".into(), period.into());
                }
            }
            "RelatedPerson" => {
                body.insert("patient".into(), patient_ref.clone());
                if let Some(relationship) = text("relationship") {
                    body.insert("relationship".into(), json!([{ "text": relationship }]));
                }
                if let Some(name) = text("name") {
                    body.insert("name".into(), json!([{ "text": name }]));
                }
                if let Some(phone) = text("phone") {
                    body.insert(
                        "telecom".into(),
                        json!([{ "system": "phone", "value": phone }]),
                    );
                }
            }
            "Observation" => {
                body.insert(
                    "status".into(),
                    text("status").unwrap_or_else(|| "final".into()).into(),
                );
                body.insert(
                    "code".into(),
                    json!({ "text": text("code").unwrap_or_else(|| "assessment".into()) }),
                );
                body.insert("subject".into(), patient_ref.clone());
                if let Some(date) = text("date") {
                    body.insert("effectiveDateTime".into(), date.into());
                }
                if let Some(value) = text("value") {
                    match value.parse::<f64>() {
                        Ok(number) if number.is_finite() => {
                            let mut quantity = json!({ "value": number });
                            if let Some(unit) = text("unit") {
                                quantity["unit"] = unit.into();
                            }
                            body.insert("valueQuantity".into(), quantity);
                        }
                        _ => {
                            body.insert("valueString".into(), value.into());
                        }
                    }
                }
            }
            "QuestionnaireResponse" => {
                if let Some(questionnaire) = text("questionnaire") {
                    body.insert("questionnaire".into(), questionnaire.into());
                }
                body.insert(
                    "status".into(),
                    text("status").unwrap_or_else(|| "completed".into()).into(),
                );
                body.insert("subject".into(), patient_ref.clone());
                if let Some(authored) = text("authored") {
                    body.insert("authored".into(), authored.into());
                }
                let mut items = Vec::new();
                for item_mapping in &resource_mapping.items {
                    let column = columns_of(&item_mapping.answer)
                        .unwrap_or_default()
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| "(mapping)".into());
                    let Some(answer) = answer(&row, item_mapping, &column)? else {
                        continue;
                    };
                    sources.push((index, format!("item[{}]", items.len()), column));
                    let mut item = json!({ "linkId": item_mapping.link_id });
                    if let Some(question) = &item_mapping.text {
                        item["text"] = question.clone().into();
                    }
                    item["answer"] = json!([answer]);
                    items.push(item);
                }
                if !items.is_empty() {
                    body.insert("item".into(), items.into());
                }
            }
            _ => {}
        }
        let mut entry = json!({
            "resource": resource,
            "request": {
                "method": "PUT",
                "url": format!(
                    "{resource_type}?identifier={}|{}",
                    encode(&mapping.key_system),
                    encode(&identifier_value)
                ),
            },
        });
        if is_patient {
            entry["fullUrl"] = Value::String(patient_url.clone());
            patient_done = true;
        }
        entries.push(entry);
    }
    Ok(RowBundle {
        bundle: json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
        sources,
    })
}

/// An item's answer (`{"valueX": ...}`) from the row, or None when it renders empty. Errors name
/// the column, never the cell: the report must not repeat personal data.
fn answer(row: &Row, item: &ItemMapping, column: &str) -> Result<Option<Value>, RowError> {
    let text = row.render(&item.answer);
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| RowError::at(column, format!("item {}: {what}", item.link_id));
    let value = match item.answer_type {
        AnswerType::String => json!({ "valueString": text }),
        AnswerType::Integer => {
            // FHIR integers are 32-bit.
            let n: i32 = text.parse().map_err(|_| bad("not a whole number"))?;
            json!({ "valueInteger": n })
        }
        AnswerType::Decimal => match text.parse::<f64>() {
            Ok(n) if n.is_finite() => json!({ "valueDecimal": n }),
            _ => return Err(bad("not a number")),
        },
        AnswerType::Boolean => {
            let yes = match text.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "1" => true,
                "n" | "no" | "false" | "0" => false,
                _ => return Err(bad("not yes or no (Y/N, true/false)")),
            };
            json!({ "valueBoolean": yes })
        }
        AnswerType::Date => {
            let date =
                fhir_date(&text).ok_or_else(|| bad("not a date (dd/mm/yyyy or yyyy-mm-dd)"))?;
            json!({ "valueDate": date })
        }
        AnswerType::Coding => {
            let mut coding = json!({ "code": text });
            if let Some(system) = &item.system {
                coding["system"] = system.clone().into();
            }
            if let Some(display) = item.display.as_ref().map(|d| row.render(d))
                && !display.is_empty()
            {
                coding["display"] = display.into();
            }
            json!({ "valueCoding": coding })
        }
    };
    Ok(Some(value))
}

/// Turns the hub's error about a row's transaction into one naming the column, where an issue's
/// expression (`Bundle.entry[0].resource.identifier[1].value`) falls under a mapped field.
pub fn translate(error: &Error, bundle: &Value, sources: &[(usize, String, String)]) -> RowError {
    let mut column = None;
    let mut messages = Vec::new();
    for issue in &error.issues {
        let mut message = issue.diagnostics.clone();
        for expression in &issue.expression {
            let Some(rest) = expression.strip_prefix("Bundle.entry[") else {
                continue;
            };
            let Some((index, path)) = rest.split_once("].resource") else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            let path = path.trim_start_matches('.');
            let resource_type = bundle["entry"][index]["resource"]["resourceType"]
                .as_str()
                .unwrap_or("resource");
            message = message
                .replace(&format!("Bundle.entry[{index}]: "), "")
                .replace(&format!("Bundle.entry[{index}].resource"), resource_type);
            let found = sources
                .iter()
                .filter(|(i, p, _)| {
                    *i == index
                        && (path == p
                            || path.starts_with(&format!("{p}."))
                            || path.starts_with(&format!("{p}[")))
                })
                .max_by_key(|(_, p, _)| p.len());
            if let Some((_, _, c)) = found
                && column.is_none()
            {
                column = Some(c.clone());
            }
        }
        messages.push(message);
    }
    if messages.is_empty() {
        messages.push(error.to_string());
    }
    RowError {
        column,
        message: messages.join("; "),
    }
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    pub imported: usize,
    pub failed: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Open episodes of people the extract no longer lists, ended (`--end-missing`).
    pub ended: usize,
}

/// How to run an import, beyond the mapping and the file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// End the open EpisodeOfCare of every person an earlier import of the same source (the same
    /// `key_system`) stored but this extract does not list.
    pub end_missing: bool,
    /// The date the extract was taken (`period.end` of the episodes `end_missing` ends); today
    /// when absent.
    pub extract_date: Option<String>,
}

/// Runs the import and prints one line per failed row and the summary.
pub fn import(
    config: &Config,
    mapping_path: &Path,
    file: &Path,
    options: &Options,
) -> anyhow::Result<Summary> {
    let mapping = Mapping::load(mapping_path)?;
    // Checked before anything is written, like the header.
    let extract_date = match &options.extract_date {
        Some(text) => Some(fhir_date(text).filter(|d| d.len() == 10).with_context(|| {
            format!("--extract-date {text:?} is not a date (dd/mm/yyyy or yyyy-mm-dd)")
        })?),
        None => None,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("cannot read the header of {}", file.display()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let missing: Vec<String> = mapping
        .columns()
        .into_iter()
        .filter(|c| !header.contains(c))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{}: the header lacks the column{} the mapping needs: {}; nothing imported",
        file.display(),
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", ")
    );
    let store = node::open_store(config)?;
    let hub = node::hub(config, store)?;
    let mut summary = Summary::default();
    // Every key the extract lists, failed rows included: a person whose row failed is still
    // listed and must not have their episode ended.
    let mut listed = BTreeSet::new();
    let key_at = header.iter().position(|h| *h == mapping.key);
    for (i, record) in reader.records().enumerate() {
        if let (Ok(record), Some(at)) = (&record, key_at)
            && let Some(key) = record.get(at).map(str::trim)
            && !key.is_empty()
        {
            listed.insert(key.to_string());
        }
        let row_number = i + 1;
        let (line, result) = match record {
            Ok(record) => {
                let line = record
                    .position()
                    .map_or(row_number + 1, |p| p.line() as usize);
                (line, import_row(&hub, &mapping, &header, &record))
            }
            Err(e) => {
                let line = e.position().map_or(row_number + 1, |p| p.line() as usize);
                (
                    line,
                    Err(RowError {
                        column: None,
                        message: format!("cannot read the row: {e}"),
                    }),
                )
            }
        };
        match result {
            Ok(counts) => {
                summary.imported += 1;
                summary.created += counts.created;
                summary.updated += counts.updated;
                summary.unchanged += counts.unchanged;
            }
            Err(error) => {
                summary.failed += 1;
                let column = error
                    .column
                    .as_deref()
                    .map_or_else(String::new, |c| format!(", column {c}"));
                println!(
                    "FAILED row {row_number} (line {line}){column}: {}",
                    error.message
                );
            }
        }
    }
    let ended = if options.end_missing {
        // An extract with no people would end everyone's episode: far likelier a broken extract
        // than a council with no clients.
        anyhow::ensure!(
            !listed.is_empty(),
            "{}: --end-missing with an extract that lists nobody would end every episode; refused",
            file.display()
        );
        let today = match extract_date {
            Some(date) => date,
            None => concord_fhir::primitive::format_instant(hub.now_ms())
                .chars()
                .take(10)
                .collect(),
        };
        let ended = end_missing(&hub, &mapping, &listed, &today)?;
        summary.ended = ended;
        format!(", {ended} ended")
    } else {
        String::new()
    };
    println!(
        "rows: {} imported, {} failed; resources: {} created, {} updated, {} unchanged{ended}",
        summary.imported, summary.failed, summary.created, summary.updated, summary.unchanged
    );
    Ok(summary)
}

/// Ends (status `finished`, `period.end` = `today`) the open EpisodeOfCare of every person whose
/// key an earlier import of the same source stored but `listed` lacks. Nothing is deleted: the
/// record keeps that the council was involved, and until when.
fn end_missing(
    hub: &Hub,
    mapping: &Mapping,
    listed: &BTreeSet<String>,
    today: &str,
) -> anyhow::Result<usize> {
    let roles: Vec<String> = mapping
        .resources
        .iter()
        .filter(|r| r.resource_type == "EpisodeOfCare")
        .map(|r| format!("-{}", r.role_name()))
        .collect();
    if roles.is_empty() {
        return Ok(0);
    }
    let ctx = RequestContext::system("concord-import-csv", uuid::Uuid::new_v4().to_string());
    // Every episode this source stored, read in full before any is changed, so that the pages
    // do not shift under the updates.
    let mut episodes = Vec::new();
    loop {
        let params = vec![
            ("identifier".to_string(), format!("{}|", mapping.key_system)),
            ("_count".to_string(), "500".to_string()),
            ("_offset".to_string(), episodes.len().to_string()),
        ];
        let page = hub
            .search(
                &ctx,
                Some("EpisodeOfCare"),
                &params,
                concord_hub::search::Handling::Lenient,
                BASE,
            )
            .map_err(|e| anyhow::anyhow!("cannot list the stored episodes: {e}"))?;
        if page.entry.is_empty() {
            break;
        }
        for entry in &page.entry {
            if let Some(raw) = &entry.resource {
                episodes.push(serde_json::from_str::<Value>(raw.get())?);
            }
        }
    }
    let mut ended = 0;
    for mut episode in episodes {
        let key = episode["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["system"] == mapping.key_system.as_str())
            .filter_map(|i| i["value"].as_str())
            .find_map(|v| roles.iter().find_map(|role| v.strip_suffix(role.as_str())))
            .map(str::to_string);
        let Some(key) = key else { continue };
        let open = !matches!(
            episode["status"].as_str(),
            Some("finished" | "cancelled" | "entered-in-error")
        );
        if listed.contains(&key) || !open {
            continue;
        }
        let id = episode["id"].as_str().unwrap_or_default().to_string();
        let version = episode["meta"]["versionId"]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok());
        episode["status"] = "finished".into();
        let period = &mut episode["period"];
        if !period.is_object() {
            *period = json!({});
        }
        // A planned end later than the extract is brought forward; an earlier one stands. A
        // period must not end before it starts.
        let start = period["start"].as_str().unwrap_or_default().to_string();
        let end = period["end"].as_str().map(str::to_string);
        if end.as_deref().is_none_or(|e| e > today) {
            period["end"] = Value::String(if start.as_str() > today {
                start
            } else {
                today.to_string()
            });
        }
        // If-Match: an episode someone changed since it was read is left for the next run.
        hub.update(&ctx, "EpisodeOfCare", &id, episode, version)
            .map_err(|e| anyhow::anyhow!("cannot end EpisodeOfCare/{id}: {e}"))?;
        ended += 1;
    }
    Ok(ended)
}

/// What one row did to the store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RowCounts {
    created: usize,
    updated: usize,
    unchanged: usize,
}

/// The stored resource a conditional `PUT Type?identifier=...` would match, if exactly one does.
fn stored_match(hub: &Hub, ctx: &RequestContext, entry: &Value) -> Result<Option<Value>, RowError> {
    let internal = |message: String| RowError {
        column: None,
        message,
    };
    let url = entry["request"]["url"].as_str().unwrap_or_default();
    let Some((resource_type, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let params = concord_hub::search::parse_query_string(query);
    let found = hub
        .search(
            ctx,
            Some(resource_type),
            &params,
            concord_hub::search::Handling::Lenient,
            BASE,
        )
        .map_err(|e| internal(format!("cannot look up the stored {resource_type}: {e}")))?;
    // Several matches make the conditional update fail in the transaction, which reports it.
    if found.entry.len() != 1 {
        return Ok(None);
    }
    let Some(raw) = &found.entry[0].resource else {
        return Ok(None);
    };
    serde_json::from_str(raw.get())
        .map(Some)
        .map_err(|e| internal(format!("the stored {resource_type} is not JSON: {e}")))
}

/// A resource's content as the mapping decides it: without `meta` (the hub's version and time)
/// and `id` (the hub's), which differ between a fresh mapping and the stored copy.
fn content(resource: &Value) -> Value {
    let mut resource = resource.clone();
    if let Some(body) = resource.as_object_mut() {
        body.remove("meta");
        body.remove("id");
    }
    resource
}

/// Replaces every `{"reference": from}` in a resource by `to`.
fn repoint(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            if map.get("reference").and_then(Value::as_str) == Some(from) {
                map.insert("reference".into(), Value::String(to.into()));
            }
            map.values_mut().for_each(|v| repoint(v, from, to));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| repoint(v, from, to)),
        _ => {}
    }
}

fn import_row(
    hub: &Hub,
    mapping: &Mapping,
    header: &[String],
    record: &csv::StringRecord,
) -> Result<RowCounts, RowError> {
    let RowBundle { bundle, sources } = row_bundle(mapping, header, record)?;
    let ctx = RequestContext::system("concord-import-csv", uuid::Uuid::new_v4().to_string());
    let mut entries: Vec<Value> = bundle["entry"].as_array().cloned().unwrap_or_default();
    // Each resource is looked up by the same condition its PUT carries, so that one whose mapped
    // content equals the stored copy is left out of the transaction: a re-import of the same
    // extract writes no new versions (the hub's update always writes one).
    let stored: Vec<Option<Value>> = entries
        .iter()
        .map(|entry| stored_match(hub, &ctx, entry))
        .collect::<Result<_, _>>()?;
    // Once the Patient is stored, the others refer to it by id rather than through the
    // transaction's urn:uuid, so they compare equal to their stored copies and still resolve
    // when the Patient itself is left out.
    for (entry, stored) in entries.iter().zip(&stored) {
        if let (Some(full_url), Some(id)) = (
            entry["fullUrl"].as_str(),
            stored.as_ref().and_then(|s| s["id"].as_str()),
        ) {
            let (from, to) = (full_url.to_string(), format!("Patient/{id}"));
            for other in entries.iter_mut() {
                repoint(&mut other["resource"], &from, &to);
            }
            break;
        }
    }
    let mut counts = RowCounts::default();
    let mut kept = Vec::new();
    // Where each kept entry was in the row's bundle, to name the column of a hub error.
    let mut moved = Vec::new();
    for (index, (entry, stored)) in entries.into_iter().zip(stored).enumerate() {
        if stored.is_some_and(|s| content(&s) == content(&entry["resource"])) {
            counts.unchanged += 1;
        } else {
            moved.push(index);
            kept.push(entry);
        }
    }
    if kept.is_empty() {
        return Ok(counts);
    }
    let sources: Vec<(usize, String, String)> = sources
        .into_iter()
        .filter_map(|(i, path, column)| {
            let at = moved.iter().position(|m| *m == i)?;
            Some((at, path, column))
        })
        .collect();
    let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": kept });
    let response = hub
        .process_bundle(&ctx, &bundle, BASE)
        .map_err(|e| translate(&e, &bundle, &sources))?;
    for entry in &response.entry {
        match entry.response.as_ref().map(|r| r.status.as_str()) {
            Some(s) if s.starts_with("201") => counts.created += 1,
            Some(s) if s.starts_with("200") => counts.updated += 1,
            _ => {}
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(fhir_date("03/07/1941").as_deref(), Some("1941-07-03"));
        assert_eq!(fhir_date("3/7/1941").as_deref(), Some("1941-07-03"));
        assert_eq!(fhir_date("1941-07-03").as_deref(), Some("1941-07-03"));
        assert_eq!(fhir_date("29/02/2024").as_deref(), Some("2024-02-29"));
        assert_eq!(fhir_date("29/02/2023"), None);
        assert_eq!(fhir_date("31/04/2020"), None);
        assert_eq!(fhir_date("1941-13-01"), None);
        assert_eq!(fhir_date("yesterday"), None);
    }

    #[test]
    fn templates() {
        assert_eq!(columns_of("{a} and {b}").unwrap(), vec!["a", "b"]);
        assert_eq!(columns_of("{{literal}}").unwrap(), Vec::<String>::new());
        assert!(columns_of("{open").is_err());
        let header = vec!["a".to_string(), "b".to_string()];
        let record = csv::StringRecord::from(vec![" x ", "y"]);
        let row = Row {
            header: &header,
            record: &record,
        };
        assert_eq!(row.render("{a}-{b} {{c}}"), "x-y {c}");
    }

    #[test]
    fn answers_are_typed_and_errors_name_the_column_not_the_cell() {
        let header = vec!["a".to_string()];
        let item = |answer_type, system: Option<&str>| ItemMapping {
            link_id: "q".into(),
            text: None,
            answer: "{a}".into(),
            answer_type,
            system: system.map(str::to_string),
            display: None,
        };
        let typed = |cell: &str, answer_type, system| {
            let record = csv::StringRecord::from(vec![cell]);
            let row = Row {
                header: &header,
                record: &record,
            };
            answer(&row, &item(answer_type, system), "a")
        };
        assert_eq!(
            typed("x y", AnswerType::String, None).unwrap(),
            Some(json!({ "valueString": "x y" }))
        );
        assert_eq!(
            typed("7", AnswerType::Integer, None).unwrap(),
            Some(json!({ "valueInteger": 7 }))
        );
        assert_eq!(
            typed("2.5", AnswerType::Decimal, None).unwrap(),
            Some(json!({ "valueDecimal": 2.5 }))
        );
        assert_eq!(
            typed("N", AnswerType::Boolean, None).unwrap(),
            Some(json!({ "valueBoolean": false }))
        );
        assert_eq!(
            typed("03/07/2024", AnswerType::Date, None).unwrap(),
            Some(json!({ "valueDate": "2024-07-03" }))
        );
        assert_eq!(
            typed("X1", AnswerType::Coding, Some("urn:s")).unwrap(),
            Some(json!({ "valueCoding": { "system": "urn:s", "code": "X1" } }))
        );
        assert_eq!(typed("", AnswerType::Integer, None).unwrap(), None);
        for (cell, answer_type) in [
            ("3000000000", AnswerType::Integer),
            ("lots", AnswerType::Decimal),
            ("perhaps", AnswerType::Boolean),
            ("31/02/2024", AnswerType::Date),
        ] {
            let error = typed(cell, answer_type, None).unwrap_err();
            assert_eq!(error.column.as_deref(), Some("a"));
            assert!(!error.message.contains(cell), "{}", error.message);
        }
    }

    #[test]
    fn gender() {
        assert_eq!(fhir_gender("M"), Some("male"));
        assert_eq!(fhir_gender("f"), Some("female"));
        assert_eq!(fhir_gender("U"), Some("unknown"));
        assert_eq!(fhir_gender("Q"), None);
    }
}
