//! Provenance tags: which organisation a resource came from, through which hub, and how old it is.
//!
//! Owns the Concord extension URLs, the organisation reference that names a source, the age of a
//! batch source's data, checking that a value is a resource at all, and writing the tags into
//! `meta`. Does not: decide which copy of a fact is kept (see [`crate::dedup`]) or build
//! outcome issues (see [`crate::outcome`]).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::resource::{RawText, Resource};
use crate::source::{Freshness, SourceInfo};

/// Names the organisation that holds the record a resource came from.
pub const SOURCE_ORGANIZATION_URL: &str =
    "https://concord.health/fhir/StructureDefinition/source-organization";
/// Names a region hub a resource passed through on its way here (one per hop).
pub const VIA_ORGANIZATION_URL: &str =
    "https://concord.health/fhir/StructureDefinition/via-organization";
/// How old a batch source's data was when it was read, in seconds.
pub const SOURCE_DATA_AGE_URL: &str =
    "https://concord.health/fhir/StructureDefinition/source-data-age";
/// Names another organisation that reported the same fact (the duplicate was dropped).
pub const ALSO_REPORTED_BY_URL: &str =
    "https://concord.health/fhir/StructureDefinition/also-reported-by";
/// On an outcome issue: the configuration id of the source it is about.
pub const SOURCE_ID_URL: &str = "https://concord.health/fhir/StructureDefinition/source-id";
/// On an outcome issue: how long the source took, in milliseconds.
pub const SOURCE_ELAPSED_URL: &str =
    "https://concord.health/fhir/StructureDefinition/source-elapsed";
/// The NHS ODS organisation code system.
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

const UCUM: &str = "http://unitsofmeasure.org";

/// The `valueReference` that names a source's organisation: its ODS code when it has one, and
/// always its name, because a reader needs a name even when the code means nothing to them.
pub(crate) fn organization_reference(info: &SourceInfo) -> Value {
    let mut reference = Map::new();
    if let Some(ods) = info.ods_code.as_deref().filter(|c| !c.is_empty()) {
        reference.insert(
            "identifier".into(),
            json!({ "system": ODS_SYSTEM, "value": ods }),
        );
    }
    reference.insert("display".into(), Value::from(info.name.clone()));
    Value::Object(reference)
}

/// A UCUM duration quantity, in whole units.
pub(crate) fn quantity(value: i64, code: &str) -> Value {
    json!({ "value": value, "unit": code, "system": UCUM, "code": code })
}

/// The age of a batch source's data in whole seconds, when its last load time is known. A load
/// time in the future (clock skew between machines) counts as age zero rather than negative.
pub(crate) fn data_age_secs(freshness: &Freshness, now_ms: i64) -> Option<i64> {
    match freshness {
        Freshness::Live => None,
        Freshness::Batch { last_load_ms, .. } => {
            last_load_ms.map(|loaded| now_ms.saturating_sub(loaded).max(0) / 1000)
        }
    }
}

/// Whether a batch source's data is older than it may be. Unknown load time counts as stale:
/// nobody can vouch for the data's age, so the reader must be told.
pub(crate) fn is_stale(freshness: &Freshness, now_ms: i64) -> bool {
    match freshness {
        Freshness::Live => false,
        Freshness::Batch {
            last_load_ms,
            max_age_ms,
        } => match last_load_ms {
            None => true,
            Some(loaded) => now_ms.saturating_sub(*loaded) > *max_age_ms,
        },
    }
}

/// A resource that passed [`accept`]: its object, type and id.
pub(crate) struct Accepted {
    pub resource: Resource,
    pub resource_type: String,
    pub id: String,
}

/// Checks that a value is a resource the merge can place: an object with a FHIR resource type
/// name and a FHIR id, and a `meta` (if any) the tags can be written into. The id and type go
/// into the fullUrl, so anything else (a slash, a space, an empty string) is refused rather than
/// producing a URL that points somewhere else.
pub(crate) fn accept(resource: Resource) -> Option<Accepted> {
    let resource_type = resource.get_str("resourceType")?.to_string();
    let id = resource.get_str("id")?.to_string();
    if !is_type_name(&resource_type) || !is_fhir_id(&id) {
        return None;
    }
    let meta_is_object = match resource.object("meta") {
        Some(_) => true,
        None => resource.get("meta").is_none_or(Value::is_object),
    };
    if !meta_is_object
        || !resource
            .get_in("meta", "extension")
            .is_none_or(Value::is_array)
    {
        return None;
    }
    Some(Accepted {
        resource,
        resource_type,
        id,
    })
}

fn is_type_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && text.len() <= 64
}

/// FHIR `id`: 1 to 64 of `A-Z a-z 0-9 - .`.
fn is_fhir_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The `url` of an extension object, if it has one.
pub(crate) fn extension_url(extension: &Value) -> Option<&str> {
    extension.get("url").and_then(Value::as_str)
}

/// The `meta.extension` entries of a resource (empty when there are none).
pub(crate) fn meta_extensions(resource: &Resource) -> &[Value] {
    resource
        .get_in("meta", "extension")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The display name of the organisation a tagged resource names as its origin. Read straight
/// from the extensions' text: the summary asks it of every resource it lists.
pub(crate) fn origin_display(resource: &Resource) -> Option<String> {
    #[derive(Deserialize)]
    struct Extension<'a> {
        #[serde(borrow, default, deserialize_with = "crate::facts::borrowed")]
        url: Option<Cow<'a, str>>,
        #[serde(rename = "valueReference", borrow)]
        value_reference: Option<Reference<'a>>,
    }
    #[derive(Deserialize)]
    struct Reference<'a> {
        #[serde(borrow, default, deserialize_with = "crate::facts::borrowed")]
        display: Option<Cow<'a, str>>,
    }
    let extensions: Vec<Extension> = resource.read_in("meta", "extension")?;
    extensions
        .into_iter()
        .find(|e| e.url.as_deref() == Some(SOURCE_ORGANIZATION_URL))
        .and_then(|e| e.value_reference?.display)
        .map(Cow::into_owned)
}

/// One source's provenance tags, built and serialised once for all its resources.
pub(crate) struct SourceTags {
    /// The reference to the source's organisation ([`organization_reference`]).
    organization: Value,
    base_url: String,
    /// The age of a batch source's data, in seconds.
    age_secs: Option<i64>,
    /// `meta.extension` for a resource that had none: the `source-organization` and, for a batch
    /// source, the data age.
    extension: RawText,
    /// The source's base URL as JSON text, for `meta.source`.
    source: RawText,
    /// An `also-reported-by` naming the source's organisation, as JSON text.
    also_reported_by: String,
}

impl SourceTags {
    pub(crate) fn new(info: &SourceInfo, age_secs: Option<i64>) -> SourceTags {
        let organization = organization_reference(info);
        let mut extension = vec![reference_extension(SOURCE_ORGANIZATION_URL, &organization)];
        if let Some(age) = age_secs {
            extension.push(age_extension(age));
        }
        // Serialising a value built here, with string keys, cannot fail; the fallback (`null`)
        // keeps a bug from becoming a panic.
        let raw = |value: &Value| {
            RawText::from(serde_json::value::to_raw_value(value).unwrap_or_default())
        };
        let also_reported_by =
            serde_json::to_string(&reference_extension(ALSO_REPORTED_BY_URL, &organization))
                .unwrap_or_default();
        SourceTags {
            extension: raw(&Value::Array(extension)),
            also_reported_by,
            source: raw(&Value::from(info.base_url.as_str())),
            organization,
            base_url: info.base_url.clone(),
            age_secs,
        }
    }

    /// The reference to the source's organisation.
    pub(crate) fn organization(&self) -> &Value {
        &self.organization
    }

    /// The `meta.extension` of a resource tagged with these tags and nothing since ([`tag`]
    /// said so) once it also credits `reporter`: these tags and an `also-reported-by` naming
    /// `reporter`'s organisation, written from the two sources' texts without parsing either.
    /// `None` when `reporter` is this source's own organisation, which is not added. The merge
    /// credits every copy of a fact another source also holds, and the text is the same for
    /// every copy between the same two sources, so it keeps what this returns
    /// ([`set_extension`]).
    pub(crate) fn extension_crediting(&self, reporter: &SourceTags) -> Option<RawText> {
        if reporter.organization == self.organization {
            return None;
        }
        let own = self.extension.get();
        // `own` is a JSON array this type wrote, never empty: `[...]` becomes `[...,{also}]`.
        let text = format!(
            "{},{}]",
            &own[..own.len().saturating_sub(1)],
            reporter.also_reported_by
        );
        RawValue::from_string(text).ok().map(RawText::from)
    }
}

/// Sets a tagged resource's `meta.extension` to `text` ([`SourceTags::extension_crediting`]).
pub(crate) fn set_extension(resource: &mut Resource, text: RawText) {
    if let Some(meta) = resource.object_mut("meta") {
        meta.insert_raw("extension", text);
    }
}

fn age_extension(age: i64) -> Value {
    json!({ "url": SOURCE_DATA_AGE_URL, "valueQuantity": quantity(age, "s") })
}

/// Writes the provenance tags into an accepted resource.
///
/// A resource that already names its origin came through a region hub: it keeps the origin (the
/// organisation that actually holds the record) and its `meta.source`, and gains a
/// `via-organization` naming the region. Every other resource gets `meta.source` = the source's
/// base URL and a `source-organization`. A batch source's data age is added unless a hop nearer
/// the data already recorded one.
///
/// Returns whether the resource's extensions are now exactly the source's own tags (nothing
/// forwarded or recorded before), which [`SourceTags::extension_crediting`] relies on.
pub(crate) fn tag(resource: &mut Resource, tags: &SourceTags) -> bool {
    if !resource.contains_key("meta") {
        // Placed straight after `id`, where FHIR's own JSON puts it, so tagged resources read
        // like the ones a FHIR server writes.
        let at = resource
            .keys()
            .position(|k| k == "id")
            .map_or(resource.len(), |i| i + 1);
        resource.shift_insert(at, "meta", Value::Object(Map::new()));
    }
    let Some(meta) = resource.object_mut("meta") else {
        return false;
    };
    if !meta.contains_key("extension") {
        // Nothing names an origin or an age yet (a hub forwarding the resource would have), so
        // the source's own tags, serialised once for all its resources, are the extensions.
        meta.insert_raw("extension", tags.extension.clone());
        meta.insert_raw("source", tags.source.clone());
        return true;
    }
    let Some(Value::Array(extensions)) = meta.get_mut("extension") else {
        return false;
    };
    let organization = &tags.organization;
    let forwarded = extensions
        .iter()
        .any(|e| extension_url(e) == Some(SOURCE_ORGANIZATION_URL));
    let has_age = extensions
        .iter()
        .any(|e| extension_url(e) == Some(SOURCE_DATA_AGE_URL));
    if forwarded {
        extensions.push(reference_extension(VIA_ORGANIZATION_URL, organization));
    } else {
        extensions.push(reference_extension(SOURCE_ORGANIZATION_URL, organization));
    }
    if let Some(age) = tags.age_secs.filter(|_| !has_age) {
        extensions.push(age_extension(age));
    }
    if !forwarded || !meta.contains_key("source") {
        meta.insert("source", Value::from(tags.base_url.clone()));
    }
    false
}

/// An extension whose value is a reference to an organisation. Built member by member: `json!`
/// would copy the reference by serialising it, once for every resource of a view.
fn reference_extension(url: &str, organization: &Value) -> Value {
    let mut extension = Map::with_capacity(2);
    extension.insert("url".into(), Value::from(url));
    extension.insert("valueReference".into(), organization.clone());
    Value::Object(extension)
}

/// Adds an `also-reported-by` naming `organization` unless the resource already names it, as its
/// origin or as another reporter: the same organisation twice tells the reader nothing.
pub(crate) fn add_also_reported_by(resource: &mut Resource, organization: &Value) {
    let known = meta_extensions(resource).iter().any(|e| {
        matches!(
            extension_url(e),
            Some(SOURCE_ORGANIZATION_URL | ALSO_REPORTED_BY_URL)
        ) && e.get("valueReference") == Some(organization)
    });
    if known {
        return;
    }
    if let Some(Value::Array(extensions)) = resource
        .object_mut("meta")
        .and_then(|m| m.get_mut("extension"))
    {
        extensions.push(reference_extension(ALSO_REPORTED_BY_URL, organization));
    }
}

/// The organisations that reported a resource: its origin and any it already lists as
/// also reporting it (a region hub may have merged duplicates before forwarding).
pub(crate) fn reporters(resource: &Resource) -> Vec<Value> {
    meta_extensions(resource)
        .iter()
        .filter(|e| {
            matches!(
                extension_url(e),
                Some(SOURCE_ORGANIZATION_URL | ALSO_REPORTED_BY_URL)
            )
        })
        .filter_map(|e| e.get("valueReference").cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceKind;

    fn info(id: &str, ods: &str, freshness: Freshness) -> SourceInfo {
        SourceInfo {
            id: id.into(),
            name: format!("{id} organisation"),
            ods_code: Some(ods.into()),
            kind: SourceKind::Acute,
            base_url: format!("https://{id}.example/fhir"),
            resource_types: Vec::new(),
            freshness,
        }
    }

    fn tagged(tags: &SourceTags) -> (Resource, bool) {
        let mut resource = Resource::from_json(
            r#"{"resourceType":"Condition","id":"c1","meta":{"versionId":"1"},"code":{"text":"x"}}"#,
        )
        .unwrap();
        let only_own = tag(&mut resource, tags);
        (resource, only_own)
    }

    /// The text path (`extension_crediting`) writes what the value path (`add_also_reported_by`)
    /// writes, with and without a data age, and adds nothing for the resource's own
    /// organisation.
    #[test]
    fn a_reporter_written_as_text_matches_one_written_as_a_value() {
        let batch = Freshness::Batch {
            last_load_ms: Some(1_000),
            max_age_ms: 86_400_000,
        };
        let own = SourceTags::new(&info("acute", "R1", batch), Some(61));
        let live = SourceTags::new(&info("acute", "R1", Freshness::Live), None);
        let other = SourceTags::new(&info("gp", "Y1", Freshness::Live), None);
        for (kept_tags, reporter) in [(&own, &other), (&live, &other), (&own, &live)] {
            let (mut by_text, only_own) = tagged(kept_tags);
            assert!(only_own);
            let (mut by_value, _) = tagged(kept_tags);
            if let Some(text) = kept_tags.extension_crediting(reporter) {
                set_extension(&mut by_text, text);
            }
            add_also_reported_by(&mut by_value, reporter.organization());
            assert_eq!(
                serde_json::to_value(&by_text).unwrap(),
                serde_json::to_value(&by_value).unwrap()
            );
            let reported = meta_extensions(&by_text)
                .iter()
                .filter(|e| extension_url(e) == Some(ALSO_REPORTED_BY_URL))
                .count();
            // `live` and `own` name the same organisation.
            let same = reporter.organization() == kept_tags.organization();
            assert_eq!(reported, usize::from(!same));
        }
    }

    #[test]
    fn a_forwarded_resource_is_not_tagged_with_its_sources_tags_alone() {
        let tags = SourceTags::new(&info("region", "X1", Freshness::Live), None);
        let mut forwarded = Resource::from_json(&format!(
            r#"{{"resourceType":"Condition","id":"c1","meta":{{"extension":[{{"url":"{SOURCE_ORGANIZATION_URL}","valueReference":{{"display":"GP"}}}}]}}}}"#
        ))
        .unwrap();
        assert!(!tag(&mut forwarded, &tags));
        assert_eq!(
            origin_display(&forwarded).as_deref(),
            Some("GP"),
            "the origin stays the organisation that holds the record"
        );
        let urls: Vec<_> = meta_extensions(&forwarded)
            .iter()
            .filter_map(extension_url)
            .collect();
        assert_eq!(urls, [SOURCE_ORGANIZATION_URL, VIA_ORGANIZATION_URL]);
    }
}
