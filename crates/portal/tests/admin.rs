//! The oversight pages over a real node: the privacy officer reviews a break-glass a clinician
//! made through the FHIR API and searches the audit trail; anyone else is refused by the API;
//! the data steward resolves a possible match the index raised.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{ORGANIZATION, PASSWORD, TestNode};
use concord_auth::Claims;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const POSSIBLE_MATCH_SEARCH: &str =
    "/fhir/Task?code=https://concord.health/fhir/CodeSystem/mpi|possible-match&status=requested";

fn patient(id: &str, nhs: &str, given: &str, family: &str, birth: &str) -> Value {
    json!({
        "resourceType": "Patient", "id": id,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female", "birthDate": birth,
        "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS6 2AB"}]
    })
}

/// Sends FHIR JSON with a user token of `role` at `org` (as any other SMART app would).
async fn as_user(
    node: &TestNode,
    user: &str,
    role: &str,
    org: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let token = node
        .auth
        .mint(&Claims::user(
            user,
            vec![role.into()],
            Some(org.into()),
            "user/*.*",
        ))
        .expect("token");
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "portal.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/fhir+json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = node
        .app
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_privacy_officer_sees_a_break_glass_made_through_the_api() {
    let node = TestNode::new();
    let (status, body) = node
        .fhir(
            Method::PUT,
            "/fhir/Patient/ann",
            &patient("ann", "9434765919", "Ann", "Ash", "1950-01-01"),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    node.add_user("po", "privacy-officer", Some(ORGANIZATION), None);

    // A clinician of another organisation has no relationship with Ann: refused, then breaks glass.
    let everything = "/fhir/Patient/ann/$everything";
    let (status, _) = as_user(
        &node,
        "dr-who",
        "clinician",
        "B99999",
        Method::GET,
        everything,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let glass = json!({"resourceType": "Parameters", "parameter": [
        {"name": "reason", "valueCode": "emergency-care"},
        {"name": "text", "valueString": "Unconscious in ED, no history"}]});
    let (status, body) = as_user(
        &node,
        "dr-who",
        "clinician",
        "B99999",
        Method::POST,
        "/fhir/Patient/ann/$break-glass",
        Some(&glass),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut officer = node.browser();
    let landed = officer.sign_in("po", PASSWORD).await;
    assert_eq!(landed.location(), Some("/portal/admin/break-glass"));
    let home = officer.follow("/portal/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.html);
    assert!(
        home.html.contains("<h1>Break-glass review</h1>"),
        "{}",
        home.html
    );
    assert!(
        home.html.contains("id=\"break-glass-events\""),
        "{}",
        home.html
    );
    for expected in [
        "dr-who",
        "B99999",
        "Emergency care",
        "Unconscious in ED, no history",
        "ann",
    ] {
        assert!(home.html.contains(expected), "{expected} in {}", home.html);
    }

    // The audit search finds the clinician's refusal and the access that followed the glass.
    let refused = officer
        .get("/portal/admin/audit?agent=dr-who&outcome=denied")
        .await;
    assert_eq!(refused.status, StatusCode::OK, "{}", refused.html);
    assert!(
        refused.html.contains("id=\"audit-results\""),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("Refused"), "{}", refused.html);
    let glass_only = officer
        .get("/portal/admin/audit?patient=ann&action=break-glass")
        .await;
    assert!(
        glass_only.html.contains("Break-glass"),
        "{}",
        glass_only.html
    );
    let nobody = officer.get("/portal/admin/audit?agent=nobody-at-all").await;
    assert!(
        nobody.html.contains("id=\"no-audit-results\""),
        "{}",
        nobody.html
    );

    // A malformed date is named, not sent.
    let wrong = officer.get("/portal/admin/audit?from=07%2F03%2F2026").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.html.contains("class=\"error-summary\""),
        "{}",
        wrong.html
    );
    assert!(
        wrong
            .html
            .contains("Enter the &#39;from&#39; date as year-month-day")
            || wrong
                .html
                .contains("Enter the 'from' date as year-month-day"),
        "{}",
        wrong.html
    );
}

#[tokio::test]
async fn a_clinician_cannot_open_the_oversight_pages() {
    let node = TestNode::new();
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    for path in [
        "/portal/admin/break-glass",
        "/portal/admin/audit",
        "/portal/admin/audit?agent=someone",
        "/portal/admin/matching",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.html);
        assert!(
            page.html.contains("Access refused"),
            "{path}: {}",
            page.html
        );
        assert!(!page.html.contains("id=\"break-glass-events\""));
        assert!(!page.html.contains("id=\"worklist\""));
    }
}

#[tokio::test]
async fn a_data_steward_compares_and_keeps_apart_a_possible_match() {
    let node = TestNode::new();
    // The same NHS number with a different name and date of birth always goes to the worklist.
    for resource in [
        patient("a", "9434765919", "Jane", "Smith", "1980-03-07"),
        patient("b", "9434765919", "Margaret", "Hughes", "1947-12-01"),
    ] {
        let id = resource["id"].as_str().unwrap().to_string();
        let (status, body) = node
            .fhir(Method::PUT, &format!("/fhir/Patient/{id}"), &resource)
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
    let (_, tasks) = node
        .fhir(Method::GET, POSSIBLE_MATCH_SEARCH, &Value::Null)
        .await;
    let task_id = tasks["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a worklist task: {tasks}"))
        .to_string();

    node.add_user("steward", "data-steward", None, None);
    let mut steward = node.browser();
    steward.sign_in("steward", PASSWORD).await;
    let worklist = steward.follow("/portal/").await;
    assert_eq!(worklist.status, StatusCode::OK, "{}", worklist.html);
    assert!(
        worklist.html.contains("id=\"worklist\""),
        "{}",
        worklist.html
    );
    assert!(worklist.html.contains("Urgent"), "{}", worklist.html);
    let link = format!("/portal/admin/matching/{task_id}");
    assert!(worklist.html.contains(&link), "{}", worklist.html);

    let review = steward.get(&link).await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.html);
    assert!(review.html.contains("id=\"comparison\""), "{}", review.html);
    for expected in [
        "Jane Smith",
        "Margaret Hughes",
        "943 476 5919",
        "Differs",
        "id=\"nhs-conflict\"",
    ] {
        assert!(
            review.html.contains(expected),
            "{expected} in {}",
            review.html
        );
    }

    // Without a decision or a reason the form says which is missing and nothing is resolved.
    let csrf = review.csrf();
    let incomplete = steward.post_form(&link, &[("csrf", &csrf)]).await;
    assert_eq!(
        incomplete.status,
        StatusCode::BAD_REQUEST,
        "{}",
        incomplete.html
    );
    assert!(
        incomplete
            .html
            .contains("Choose whether to link the records or keep them apart")
    );
    assert!(
        incomplete
            .html
            .contains("Enter the reason for your decision")
    );
    let forged = steward
        .post_form(
            &link,
            &[("csrf", "forged"), ("decision", "link"), ("reason", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let saved = steward
        .post_form(
            &link,
            &[
                ("csrf", &csrf),
                ("decision", "keep-apart"),
                (
                    "reason",
                    "Different people: dates of birth checked with the GP",
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(
        saved.location(),
        Some("/portal/admin/matching?resolved=keep-apart")
    );
    let after = steward
        .get("/portal/admin/matching?resolved=keep-apart")
        .await;
    assert!(after.html.contains("id=\"resolved\""), "{}", after.html);
    assert!(
        !after.html.contains(&link),
        "the task left the worklist: {}",
        after.html
    );

    // The Task is completed by the steward with the reason; a second decision is refused.
    let (_, task) = node
        .fhir(Method::GET, &format!("/fhir/Task/{task_id}"), &Value::Null)
        .await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "kept-apart");
    assert_eq!(task["owner"]["display"], "steward");
    let closed = steward.get(&link).await;
    assert!(
        closed.html.contains("id=\"already-resolved\""),
        "{}",
        closed.html
    );
    assert!(!closed.html.contains("id=\"match-decision\""));
    let again = steward
        .post_form(
            &link,
            &[
                ("csrf", &csrf),
                ("decision", "link"),
                ("reason", "second thoughts"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.html);
}

#[tokio::test]
async fn a_data_steward_links_a_possible_match() {
    let node = TestNode::new();
    for resource in [
        patient("a", "9434765919", "Jane", "Smith", "1980-03-07"),
        patient("b", "9434765919", "Margaret", "Hughes", "1947-12-01"),
    ] {
        let id = resource["id"].as_str().unwrap().to_string();
        node.fhir(Method::PUT, &format!("/fhir/Patient/{id}"), &resource)
            .await;
    }
    let (_, tasks) = node
        .fhir(Method::GET, POSSIBLE_MATCH_SEARCH, &Value::Null)
        .await;
    let task_id = tasks["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let link = format!("/portal/admin/matching/{task_id}");
    node.add_user("steward", "data-steward", None, None);
    let mut steward = node.browser();
    steward.sign_in("steward", PASSWORD).await;
    let review = steward.get(&link).await;
    let saved = steward
        .post_form(
            &link,
            &[
                ("csrf", &review.csrf()),
                ("decision", "link"),
                ("reason", "Same person: name changed on marriage"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let (_, task) = node
        .fhir(Method::GET, &format!("/fhir/Task/{task_id}"), &Value::Null)
        .await;
    assert_eq!(
        task["businessStatus"]["coding"][0]["code"], "linked",
        "{task}"
    );
    let after = steward.get("/portal/admin/matching?resolved=link").await;
    assert!(
        after.html.contains("linked as one person"),
        "{}",
        after.html
    );
}
