//! Reading one page of a source's answer: a FHIR `Bundle` whose entries become resources, whose
//! outcome entries (a region hub's per-source issues) become forwarded issues, and whose `next`
//! link says where the following page is.
//!
//! Owns the checks that make an answer `Invalid` and the rule that a `next` link must stay on the
//! source's own origin. Does not fetch, and does not validate resources beyond "an object with a
//! `resourceType`": the merge judges resources. Reasons it returns are fixed sentences plus
//! positions and type names, never content, because answers carry patient data.
//!
//! A page is read in one pass into typed entries whose resources keep their members as text
//! ([`Resource`]): a federated view passes whole records through, and parsing every element of
//! them into values was most of its cost. Only when that pass fails is the page parsed into a
//! value, to say exactly what is wrong with it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use concord_federation::Resource;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use url::Url;

/// One page of a Bundle, split into what the connector passes on.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub resources: Vec<Resource>,
    /// `issue` elements of OperationOutcome entries with `search.mode = outcome`.
    pub issues: Vec<Value>,
    pub next: Option<Url>,
}

/// A well-formed page as the one-pass read finds it. Members not named here are skipped.
#[derive(Default)]
struct FastPage {
    resource_type: Option<String>,
    link: Option<Value>,
    entries: Vec<FastEntry>,
}

struct FastEntry {
    resource: Resource,
    outcome: bool,
}

/// An entry's `search`; its `mode` borrowed from the page where it holds no escapes.
#[derive(Deserialize)]
struct FastSearch<'a> {
    #[serde(borrow, default)]
    mode: Option<Cow<'a, str>>,
}

/// Parses a page fetched from `page_url`. `Err` is the reason the answer is invalid.
pub(crate) fn parse_page(body: Vec<u8>, page_url: &Url, base: &Url) -> Result<Page, String> {
    // The page is checked as UTF-8 once, whole, and then read as text: read from bytes,
    // serde_json checks again every member a resource keeps as text, which cost 3% of a view's
    // instructions (docs/performance.md, twelfth session). The text is then shared by the
    // resources read from it, whose members are ranges of it rather than copies.
    let text = match String::from_utf8(body) {
        Ok(text) => Arc::new(text),
        Err(error) => return parse_page_value(error.as_bytes(), page_url, base),
    };
    let mut de = serde_json::Deserializer::from_str(&text);
    let fast = PageSeed { page: &text }
        .deserialize(&mut de)
        .and_then(|fast| de.end().map(|()| fast));
    match fast {
        Ok(fast) if fast.resource_type.as_deref() == Some("Bundle") => {
            read_fast(fast, page_url, base)
        }
        // Not a Bundle, or not shaped like one: the careful reading names the problem.
        _ => parse_page_value(text.as_bytes(), page_url, base),
    }
}

/// Reads a page's members; its entries' resources keep their members as ranges of `page`.
/// A repeated member keeps its last value, as the careful reading's `serde_json::Value` does.
struct PageSeed<'p> {
    page: &'p Arc<String>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = FastPage;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FastPage, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = FastPage;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Bundle")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastPage, A::Error> {
        let mut page = FastPage::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::ResourceType => page.resource_type = Some(map.next_value()?),
                Key::Link => page.link = Some(map.next_value()?),
                Key::Entry => {
                    page.entries = map.next_value_seed(EntriesSeed { page: self.page })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(page)
    }
}

/// The member names the one-pass read looks for, read without allocating.
enum Key {
    ResourceType,
    Link,
    Entry,
    Resource,
    Search,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E>(self, text: &str) -> Result<Key, E> {
        Ok(match text {
            "resourceType" => Key::ResourceType,
            "link" => Key::Link,
            "entry" => Key::Entry,
            "resource" => Key::Resource,
            "search" => Key::Search,
            _ => Key::Other,
        })
    }
}

/// A page's `entry`: an array, or `null` for none.
struct EntriesSeed<'p> {
    page: &'p Arc<String>,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Vec<FastEntry>;
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Vec<FastEntry>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = Vec<FastEntry>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of entries")
    }
    fn visit_none<E>(self) -> Result<Vec<FastEntry>, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E>(self) -> Result<Vec<FastEntry>, E> {
        Ok(Vec::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<FastEntry>, D::Error> {
        deserializer.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<FastEntry>, A::Error> {
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(64));
        while let Some(entry) = seq.next_element_seed(EntrySeed { page: self.page })? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// One entry: its resource (required) and whether its search mode is `outcome`.
struct EntrySeed<'p> {
    page: &'p Arc<String>,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = FastEntry;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FastEntry, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = FastEntry;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Bundle entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastEntry, A::Error> {
        let mut resource = None;
        let mut outcome = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Resource => resource = Some(map.next_value_seed(Resource::seed(self.page))?),
                Key::Search => {
                    let search: Option<FastSearch<'de>> = map.next_value()?;
                    outcome = search
                        .and_then(|s| s.mode)
                        .is_some_and(|mode| mode == "outcome");
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let resource = resource.ok_or_else(|| de::Error::missing_field("resource"))?;
        Ok(FastEntry { resource, outcome })
    }
}

fn read_fast(fast: FastPage, page_url: &Url, base: &Url) -> Result<Page, String> {
    let mut page = Page::default();
    for (index, entry) in fast.entries.into_iter().enumerate() {
        read_resource(entry.resource, entry.outcome, index, &mut page)?;
    }
    let mut links = serde_json::Map::new();
    if let Some(link) = fast.link {
        links.insert("link".into(), link);
    }
    page.next = next_link(&links, page_url, base)?;
    Ok(page)
}

/// The careful reading of a page, into a value, for answers the one-pass read refused.
fn parse_page_value(body: &[u8], page_url: &Url, base: &Url) -> Result<Page, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        // serde_json's syntax errors name a position and never quote input; still, only the
        // position is kept.
        format!(
            "the answer is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(mut bundle) = value else {
        return Err("the answer is not a JSON object".to_string());
    };
    match bundle.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {}
        Some(other) if looks_like_type_name(other) => {
            return Err(format!("the answer is a {other}, not a Bundle"));
        }
        _ => return Err("the answer is not a FHIR Bundle".to_string()),
    }

    let mut page = Page::default();
    match bundle.remove("entry") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for (index, entry) in entries.into_iter().enumerate() {
                read_entry(entry, index, &mut page)?;
            }
        }
        Some(_) => return Err("the Bundle's entry is not an array".to_string()),
    }
    page.next = next_link(&bundle, page_url, base)?;
    Ok(page)
}

fn read_entry(entry: Value, index: usize, page: &mut Page) -> Result<(), String> {
    let Value::Object(mut entry) = entry else {
        return Err(format!("Bundle entry {index} is not an object"));
    };
    let outcome = entry
        .get("search")
        .and_then(|search| search.get("mode"))
        .and_then(Value::as_str)
        == Some("outcome");
    let resource = match entry.remove("resource") {
        Some(Value::Object(resource)) => Resource::from(resource),
        _ => return Err(format!("Bundle entry {index} has no resource")),
    };
    read_resource(resource, outcome, index, page)
}

/// Files one entry's resource as a resource or, for an outcome entry, as forwarded issues.
fn read_resource(
    resource: Resource,
    outcome: bool,
    index: usize,
    page: &mut Page,
) -> Result<(), String> {
    let resource_type = resource.get_str("resourceType");
    if !resource_type.is_some_and(looks_like_type_name) {
        return Err(format!("Bundle entry {index} has no resourceType"));
    }
    if outcome {
        if resource_type != Some("OperationOutcome") {
            return Err(format!(
                "Bundle entry {index} is an outcome entry but not an OperationOutcome"
            ));
        }
        if let Some(Value::Array(issues)) = resource.get("issue") {
            page.issues.extend(issues.iter().cloned());
        }
    } else {
        page.resources.push(resource);
    }
    Ok(())
}

/// The `next` link, resolved against the page it came from. It must keep to the source's origin
/// (scheme, host and port): following it elsewhere would send this source's credentials, and the
/// patient's id in the query, to a server nobody configured.
fn next_link(
    bundle: &serde_json::Map<String, Value>,
    page_url: &Url,
    base: &Url,
) -> Result<Option<Url>, String> {
    let Some(links) = bundle.get("link").and_then(Value::as_array) else {
        return Ok(None);
    };
    let Some(next) = links
        .iter()
        .find(|link| link.get("relation").and_then(Value::as_str) == Some("next"))
    else {
        return Ok(None);
    };
    let Some(text) = next.get("url").and_then(Value::as_str) else {
        return Err("the Bundle's next link has no url".to_string());
    };
    let url = page_url
        .join(text)
        .map_err(|_| "the Bundle's next link is not a URL".to_string())?;
    if url.origin() != base.origin() {
        return Err("the Bundle's next link leaves the source's origin".to_string());
    }
    Ok(Some(url))
}

/// A FHIR resource type name: letters and digits, starting with a capital letter. Only such
/// names are ever repeated in a reason or put into a URL path.
pub(crate) fn looks_like_type_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && text.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Url {
        Url::parse("https://gp.example/fhir").unwrap()
    }

    fn parse(value: Value) -> Result<Page, String> {
        let page = Url::parse("https://gp.example/fhir/Patient/1/$everything").unwrap();
        parse_page(value.to_string().into_bytes(), &page, &base())
    }

    #[test]
    fn entries_become_resources_and_outcome_entries_become_issues() {
        let page = parse(json!({
            "resourceType": "Bundle",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": "1"}},
                {"resource": {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "warning", "code": "timeout"}, {"severity": "information", "code": "informational"}
                ]}, "search": {"mode": "outcome"}},
                {"resource": {"resourceType": "Observation", "id": "2"}, "search": {"mode": "match"}}
            ],
            "link": [{"relation": "self", "url": "x"}, {"relation": "next", "url": "https://gp.example/fhir?page=2"}]
        }))
        .unwrap();
        assert_eq!(page.resources.len(), 2);
        assert_eq!(page.issues.len(), 2);
        assert_eq!(
            page.next.unwrap().as_str(),
            "https://gp.example/fhir?page=2"
        );
    }

    #[test]
    fn relative_next_links_resolve_against_the_page() {
        let page = parse(
            json!({"resourceType": "Bundle", "link": [{"relation": "next", "url": "?page=2"}]}),
        )
        .unwrap();
        assert_eq!(
            page.next.unwrap().as_str(),
            "https://gp.example/fhir/Patient/1/$everything?page=2"
        );
    }

    #[test]
    fn invalid_answers_are_named_without_their_content() {
        let page = Url::parse("https://gp.example/fhir/x").unwrap();
        let err = parse_page(b"{\"name\": \"Smith".to_vec(), &page, &base()).unwrap_err();
        assert!(err.starts_with("the answer is not valid JSON"), "{err}");
        assert!(!err.contains("Smith"));
        assert_eq!(
            parse(json!({"resourceType": "Patient", "id": "1"})).unwrap_err(),
            "the answer is a Patient, not a Bundle"
        );
        assert_eq!(
            parse(json!({"resourceType": "Jane Smith"})).unwrap_err(),
            "the answer is not a FHIR Bundle"
        );
        assert_eq!(
            parse(json!([1])).unwrap_err(),
            "the answer is not a JSON object"
        );
        assert_eq!(
            parse(json!({"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]})).unwrap_err(),
            "Bundle entry 0 has no resource"
        );
        assert_eq!(
            parse(json!({"resourceType": "Bundle", "entry": [{"resource": {"id": "1"}}]}))
                .unwrap_err(),
            "Bundle entry 0 has no resourceType"
        );
        assert_eq!(
            parse(json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}, "search": {"mode": "outcome"}}]}))
                .unwrap_err(),
            "Bundle entry 0 is an outcome entry but not an OperationOutcome"
        );
        // Shapes the one-pass read refuses are named by the careful reading, by position.
        let good = json!({"resource": {"resourceType": "Patient", "id": "1"}});
        for (bundle, reason) in [
            (
                json!({"resourceType": "Bundle", "entry": [good.clone(), {"resource": "Jane Smith"}]}),
                "Bundle entry 1 has no resource",
            ),
            (
                json!({"resourceType": "Bundle", "entry": [good.clone(), "Jane Smith"]}),
                "Bundle entry 1 is not an object",
            ),
            (
                json!({"resourceType": "Bundle", "entry": {"resource": {}}}),
                "the Bundle's entry is not an array",
            ),
        ] {
            assert_eq!(parse(bundle).unwrap_err(), reason);
        }
    }

    #[test]
    fn resources_keep_what_the_source_sent_byte_for_byte() {
        let resource = r#"{"resourceType":"Observation","id":"o1","valueQuantity":{"value":5.0},"text":{"div":"<div>\u00e9</div>"}}"#;
        let body = format!(
            r#"{{"resourceType":"Bundle","type":"searchset","entry":[{{"fullUrl":"x","resource":{resource}}}]}}"#
        );
        let page = Url::parse("https://gp.example/fhir/x").unwrap();
        let parsed = parse_page(body.as_bytes().to_vec(), &page, &base()).unwrap();
        assert_eq!(parsed.resources.len(), 1);
        assert_eq!(
            serde_json::to_string(&parsed.resources[0]).unwrap(),
            resource
        );
    }

    /// A `meta` that is not an object is not FHIR, but it is no reason to drop the page: the
    /// one-pass read refuses it and the careful reading keeps it as it came. Text that is not
    /// UTF-8 is named as the JSON error it is.
    #[test]
    fn an_odd_meta_is_kept_and_bad_utf8_is_refused() {
        let body = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"o1","meta":[1.5,"x"]}},{"resource":{"resourceType":"Condition","id":"c1","meta":{"versionId":"2"}}}]}"#;
        let page = Url::parse("https://gp.example/fhir/x").unwrap();
        let parsed = parse_page(body.as_bytes().to_vec(), &page, &base()).unwrap();
        assert_eq!(parsed.resources.len(), 2);
        assert_eq!(parsed.resources[0].get("meta"), Some(&json!([1.5, "x"])));
        assert_eq!(
            parsed.resources[1].get_in("meta", "versionId"),
            Some(&json!("2"))
        );
        let mut bad = br#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"o"#.to_vec();
        bad.extend_from_slice(b"\xff\"}}]}");
        let err = parse_page(bad.clone(), &page, &base()).unwrap_err();
        assert!(err.starts_with("the answer is not valid JSON"), "{err}");
    }

    /// The one-pass read agrees with the careful one on pages shaped in the ways Bundles vary:
    /// no `entry`, a `null` one, a repeated one (the last counts), members it does not read,
    /// an outcome entry, a search mode that is not a string, escapes in names and values.
    #[test]
    fn the_one_pass_read_agrees_with_the_careful_one() {
        let observation = r#"{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p"},"note":[{"text":"a \"quoted\" \u00e9"}]}"#;
        let outcome = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"incomplete"}]}"#;
        let pages = [
            r#"{"resourceType":"Bundle","type":"searchset"}"#.to_string(),
            r#"{"resourceType":"Bundle","entry":null}"#.to_string(),
            format!(
                r#"{{"resourceType":"Bundle","entry":[{{"resource":{{"resourceType":"Patient","id":"x"}}}}],"total":2,"entry":[{{"fullUrl":"u","resource":{observation}}}]}}"#
            ),
            format!(
                r#"{{"id":"b","resourceType":"Bundle","link":[{{"relation":"self","url":"x"}}],"entry":[{{"resource":{observation},"search":{{"mode":"match","score":1}}}},{{"resource":{outcome},"search":{{"mode":"outcome"}}}}]}}"#
            ),
            format!(
                r#"{{"resourceType":"Bundle","entry":[{{"search":{{"mode":5}},"resource":{observation}}}],"m\u0065ta":{{}}}}"#
            ),
            format!(
                r#"{{"resourceType":"Bundle","entry":[{{"resource":{observation},"resource":{outcome}}}]}}"#
            ),
        ];
        let page = Url::parse("https://gp.example/fhir/x").unwrap();
        for (at, body) in pages.iter().enumerate() {
            // Each is read in one pass, but for the search mode that is not a string, which is
            // left to the careful read.
            let text = Arc::new(body.clone());
            let mut de = serde_json::Deserializer::from_str(&text);
            let one_pass = PageSeed { page: &text }.deserialize(&mut de);
            assert_eq!(one_pass.is_ok(), at != 4, "{body}");
            let fast = parse_page(body.as_bytes().to_vec(), &page, &base()).unwrap();
            let careful = parse_page_value(body.as_bytes(), &page, &base()).unwrap();
            assert_eq!(fast.resources, careful.resources, "{body}");
            assert_eq!(fast.issues, careful.issues, "{body}");
            assert_eq!(fast.next, careful.next, "{body}");
            for resource in &fast.resources {
                assert_eq!(
                    serde_json::to_value(resource).unwrap(),
                    resource.to_value(),
                    "{body}"
                );
            }
        }
    }

    #[test]
    fn a_next_link_to_another_origin_is_refused() {
        for url in [
            "https://evil.example/fhir?page=2",
            "http://gp.example/fhir?page=2",
            "https://gp.example:8443/fhir?page=2",
        ] {
            let err = parse(
                json!({"resourceType": "Bundle", "link": [{"relation": "next", "url": url}]}),
            )
            .unwrap_err();
            assert_eq!(err, "the Bundle's next link leaves the source's origin");
        }
    }

    #[test]
    fn type_names() {
        assert!(looks_like_type_name("Observation"));
        assert!(!looks_like_type_name("observation"));
        assert!(!looks_like_type_name("Patient/1"));
        assert!(!looks_like_type_name(""));
    }
}
