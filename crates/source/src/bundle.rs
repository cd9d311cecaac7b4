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

use concord_federation::Resource;
use serde::Deserialize;
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

/// The shape of a well-formed page, for the one-pass read. Members not named here are skipped.
#[derive(Deserialize)]
struct FastPage {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    link: Option<Value>,
    #[serde(default)]
    entry: Option<Vec<FastEntry>>,
}

#[derive(Deserialize)]
struct FastEntry {
    resource: Resource,
    #[serde(default)]
    search: Option<FastSearch>,
}

#[derive(Deserialize)]
struct FastSearch {
    #[serde(default)]
    mode: Option<Value>,
}

/// Parses a page fetched from `page_url`. `Err` is the reason the answer is invalid.
pub(crate) fn parse_page(body: &[u8], page_url: &Url, base: &Url) -> Result<Page, String> {
    // The page is checked as UTF-8 once, whole, and then read as text: read from bytes,
    // serde_json checks again every member a resource keeps as text, which cost 3% of a view's
    // instructions (docs/performance.md, twelfth session).
    let fast = std::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str::<FastPage>(text).ok());
    match fast {
        Some(fast) if fast.resource_type == "Bundle" => read_fast(fast, page_url, base),
        // Not a Bundle, or not shaped like one: the careful reading names the problem.
        _ => parse_page_value(body, page_url, base),
    }
}

fn read_fast(fast: FastPage, page_url: &Url, base: &Url) -> Result<Page, String> {
    let mut page = Page::default();
    for (index, entry) in fast.entry.unwrap_or_default().into_iter().enumerate() {
        let outcome = entry
            .search
            .and_then(|s| s.mode)
            .is_some_and(|mode| mode == "outcome");
        read_resource(entry.resource, outcome, index, &mut page)?;
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
        parse_page(value.to_string().as_bytes(), &page, &base())
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
        let err = parse_page(b"{\"name\": \"Smith", &page, &base()).unwrap_err();
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
        let parsed = parse_page(body.as_bytes(), &page, &base()).unwrap();
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
        let parsed = parse_page(body.as_bytes(), &page, &base()).unwrap();
        assert_eq!(parsed.resources.len(), 2);
        assert_eq!(parsed.resources[0].get("meta"), Some(&json!([1.5, "x"])));
        assert_eq!(
            parsed.resources[1].get_in("meta", "versionId"),
            Some(&json!("2"))
        );
        let mut bad = br#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"o"#.to_vec();
        bad.extend_from_slice(b"\xff\"}}]}");
        let err = parse_page(&bad, &page, &base()).unwrap_err();
        assert!(err.starts_with("the answer is not valid JSON"), "{err}");
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
