//! Finding a person (`/portal/search`) over a real node: by NHS number, by demographics through
//! the index's `$match`, and the form's checks.

mod common;

use axum::http::{Method, StatusCode};
use common::{ORGANIZATION, PASSWORD, TestNode};
use serde_json::json;

async fn node_with_ann() -> (TestNode, String) {
    let node = TestNode::new();
    let (status, body) = node
        .fhir(
            Method::POST,
            "/fhir/Patient",
            &json!({
                "resourceType": "Patient",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
                "name": [{"use": "official", "family": "Ash", "given": ["Ann"]}],
                "gender": "female",
                "birthDate": "1950-01-01",
                "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 4AP"}]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    (node, body["id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_has_labelled_fields() {
    let (node, _) = node_with_ann().await;
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    let page = browser.get("/portal/search").await;
    assert_eq!(page.status, StatusCode::OK);
    for field in ["nhs_number", "family", "given", "birthdate", "postcode"] {
        assert!(
            page.html.contains(&format!("<label for=\"{field}\"")),
            "{field}"
        );
        assert!(page.html.contains(&format!("name=\"{field}\"")), "{field}");
    }
    assert!(!page.html.contains("id=\"results\""));
    assert!(!page.html.contains("id=\"no-results\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nhs_number_finds_the_person() {
    let (node, id) = node_with_ann().await;
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    let page = browser.get("/portal/search?nhs_number=943+476+5919").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let results = &page.html[page.html.find("id=\"results\"").expect("results")..];
    assert!(
        results.contains(&format!("<a href=\"/portal/patient/{id}\">Ann Ash</a>")),
        "{results}"
    );
    assert!(results.contains("943 476 5919"));
    assert!(results.contains("100%"));
    assert_eq!(
        results.matches("<tr>").count(),
        2,
        "a header and one person"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_nhs_number_says_no_one_matched() {
    let (node, _) = node_with_ann().await;
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    // 401 023 2137 is a valid number nobody here has.
    let page = browser.get("/portal/search?nhs_number=4010232137").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("id=\"no-results\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_nhs_number_is_explained() {
    let (node, _) = node_with_ann().await;
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    let page = browser.get("/portal/search?nhs_number=943+476+5918").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("class=\"error-summary\""));
    assert!(page.html.contains("href=\"#nhs_number\""));
    assert!(page.html.contains("check digit is wrong"));
    // The form keeps what was typed.
    assert!(page.html.contains("value=\"943 476 5918\""));
    let short = browser.get("/portal/search?nhs_number=12345").await;
    assert!(short.html.contains("Enter the NHS number as 10 digits"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demographics_go_to_match_with_a_confidence() {
    let (node, id) = node_with_ann().await;
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    let page = browser
        .get("/portal/search?family=Ash&given=Ann&birthdate=1950-01-01&postcode=LS1+4AP")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let results = &page.html[page.html.find("id=\"results\"").expect("results")..];
    assert!(results.contains(&format!("/portal/patient/{id}")));
    assert!(results.contains('%'));

    let missing = browser
        .get("/portal/search?family=Ash&birthdate=1.1.1950")
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing
            .html
            .contains("Enter the date of birth as a real date")
    );
}
