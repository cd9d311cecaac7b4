//! The patient's pages, driven through the real sign-in and the node's real FHIR API: readings
//! saved as patient-entered Observations with a Provenance, refused readings storing nothing,
//! sharing choices the access rules then apply, another person's record refused, the access log,
//! and the CSRF check on every form.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Browser, PASSWORD, TestNode};
use concord_auth::Claims;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ME: &str = "pat1";
const SOMEONE_ELSE: &str = "pat2";
/// An organisation with no relationship with the person: its clinician needs break-glass.
const MENTAL_HEALTH_TRUST: &str = "R9B";

/// A node holding two people, the first with a clinician-recorded blood test, and the first
/// person's patient account `pat`.
async fn node_with_people() -> TestNode {
    let node = TestNode::new();
    for (id, family) in [(ME, "Lee"), (SOMEONE_ELSE, "Khan")] {
        let (status, body) = node
            .fhir(
                Method::PUT,
                &format!("/fhir/Patient/{id}"),
                &json!({"resourceType": "Patient", "id": id,
                    "name": [{"family": family, "given": ["Sam"]}], "birthDate": "1970-01-01"}),
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
    let (status, body) = node
        .fhir(
            Method::POST,
            "/fhir/Observation",
            &json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Haemoglobin A1c"}]},
                "subject": {"reference": format!("Patient/{ME}")},
                "effectiveDateTime": "2026-01-10",
                "valueQuantity": {"value": 48, "unit": "mmol/mol"}}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    node.add_user("pat", "patient", None, Some(ME));
    node
}

async fn signed_in(node: &TestNode) -> Browser {
    let mut browser = node.browser();
    let landed = browser.sign_in("pat", PASSWORD).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    browser
}

/// A FHIR request with a bearer token; the status and JSON body.
async fn api(
    node: &TestNode,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "portal.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/fhir+json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let response = node.app.clone().oneshot(request).await.expect("response");
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

fn entries<'a>(bundle: &'a Value, resource_type: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

/// What the node holds, read as the trusted loader.
async fn stored(node: &TestNode, query: &str) -> Value {
    let (status, body) = node.fhir(Method::GET, query, &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn clinician_token(node: &TestNode, org: &str) -> String {
    node.auth
        .mint(&Claims::user(
            "dr.mind",
            vec!["clinician".into()],
            Some(org.into()),
            "user/*.*",
        ))
        .expect("token")
}

#[tokio::test]
async fn a_blood_pressure_reading_is_stored_as_patient_entered_with_a_provenance() {
    let node = node_with_people().await;
    let mut browser = signed_in(&node).await;
    let form = browser.get("/portal/me/readings").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    assert!(form.html.contains("<label for=\"systolic\""));
    let saved = browser
        .post_form(
            "/portal/me/readings",
            &[
                ("csrf", &form.csrf()),
                ("kind", "blood-pressure"),
                ("systolic", "132"),
                ("diastolic", "84"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(saved.location(), Some("/portal/me/readings?saved=1"));
    let page = browser.get("/portal/me/readings?saved=1").await;
    assert!(page.html.contains("id=\"saved\""), "{}", page.html);
    assert!(page.html.contains("Your reading was saved"));
    assert!(page.html.contains("132/84 mmHg"), "{}", page.html);

    let found = stored(
        &node,
        &format!("/fhir/Observation?patient={ME}&code=85354-9"),
    )
    .await;
    let readings = entries(&found, "Observation");
    assert_eq!(readings.len(), 1, "{found}");
    let reading = readings[0];
    assert!(
        reading["meta"]["tag"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == "patient-entered"),
        "{reading}"
    );
    assert_eq!(
        reading["component"][0]["code"]["coding"][0]["code"],
        "8480-6"
    );
    assert_eq!(reading["component"][0]["valueQuantity"]["value"], 132);
    assert_eq!(reading["component"][1]["valueQuantity"]["code"], "mm[Hg]");
    assert_eq!(
        reading["performer"][0]["reference"],
        format!("Patient/{ME}")
    );
    let id = reading["id"].as_str().unwrap();
    let provenance = stored(&node, &format!("/fhir/Provenance?target=Observation/{id}")).await;
    let provenance = entries(&provenance, "Provenance");
    assert_eq!(provenance.len(), 1);
    assert_eq!(
        provenance[0]["agent"][0]["who"]["reference"],
        format!("Patient/{ME}")
    );

    // The results page charts it beside the clinician's result, and says who recorded each.
    let results = browser.get("/portal/me/results").await;
    assert_eq!(results.status, StatusCode::OK, "{}", results.html);
    assert!(results.html.contains("Systolic blood pressure"));
    assert!(results.html.contains("Haemoglobin A1c"));
    assert!(!results.html.contains("style="));
}

#[tokio::test]
async fn a_wrong_reading_is_refused_naming_the_field_and_nothing_is_stored() {
    let node = node_with_people().await;
    let mut browser = signed_in(&node).await;
    let csrf = browser.get("/portal/me/readings").await.csrf();
    for (form, field) in [
        (
            vec![
                ("kind", "blood-pressure"),
                ("systolic", "400"),
                ("diastolic", "80"),
            ],
            "systolic pressure",
        ),
        (
            vec![
                ("kind", "blood-pressure"),
                ("systolic", "120"),
                ("diastolic", "eighty"),
            ],
            "diastolic pressure",
        ),
        (vec![("kind", "pulse"), ("value", "72.5")], "pulse"),
        (vec![("kind", "weight"), ("value", "1")], "weight"),
        (
            vec![("kind", "blood-glucose"), ("value", "")],
            "blood glucose",
        ),
    ] {
        let mut fields = form.clone();
        fields.push(("csrf", &csrf));
        let page = browser.post_form("/portal/me/readings", &fields).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert!(
            page.html.contains("class=\"error-summary\""),
            "{}",
            page.html
        );
        assert!(page.html.contains(field), "{field}: {}", page.html);
    }
    let found = stored(&node, &format!("/fhir/Observation?patient={ME}")).await;
    assert_eq!(
        entries(&found, "Observation").len(),
        1,
        "only the blood test"
    );
    let provenance = stored(&node, "/fhir/Provenance").await;
    assert!(
        !entries(&provenance, "Provenance")
            .iter()
            .any(|p| p["agent"][0]["who"]["reference"] == format!("Patient/{ME}")),
        "{provenance}"
    );
}

#[tokio::test]
async fn what_matters_is_saved_as_the_patients_goal() {
    let node = node_with_people().await;
    let mut browser = signed_in(&node).await;
    let csrf = browser.get("/portal/me/what-matters").await.csrf();
    let empty = browser
        .post_form("/portal/me/what-matters", &[("csrf", &csrf), ("text", " ")])
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.html.contains("Enter what matters to you"));
    let saved = browser
        .post_form(
            "/portal/me/what-matters",
            &[("csrf", &csrf), ("text", "Staying at home with my cat")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let page = browser.follow("/portal/me/what-matters?saved=1").await;
    assert!(
        page.html.contains("Staying at home with my cat"),
        "{}",
        page.html
    );
    let goals = stored(&node, &format!("/fhir/Goal?patient={ME}")).await;
    assert_eq!(entries(&goals, "Goal").len(), 1);
}

#[tokio::test]
async fn blocking_an_organisation_takes_away_its_view_of_the_shared_record() {
    let node = node_with_people().await;
    // A clinician at an organisation with no relationship opens the record by break-glass
    // (not for an emergency) and sees the blood test.
    let clinician = clinician_token(&node, MENTAL_HEALTH_TRUST);
    let (status, body) = api(
        &node,
        &clinician,
        Method::POST,
        &format!("/fhir/Patient/{ME}/$break-glass"),
        Some(json!({"resourceType": "Parameters", "parameter": [
            {"name": "reason", "valueCode": "continuity-of-care"},
            {"name": "text", "valueString": "referral received"}]})),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let search = format!("/fhir/Observation?patient={ME}");
    let (status, before) = api(&node, &clinician, Method::GET, &search, None).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(entries(&before, "Observation").len(), 1);

    // The patient blocks that organisation on the sharing page.
    let mut browser = signed_in(&node).await;
    let form = browser.get("/portal/me/sharing").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    assert!(form.html.contains("<legend>"));
    let saved = browser
        .post_form(
            "/portal/me/sharing",
            &[
                ("csrf", &form.csrf()),
                ("block_org", MENTAL_HEALTH_TRUST),
                ("withhold_category", "mental-health"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(saved.location(), Some("/portal/me/sharing?saved=1"));
    let page = browser.get("/portal/me/sharing?saved=1").await;
    assert!(page.html.contains("id=\"saved\""));
    // The page shows the choice back, ticked.
    assert!(
        page.html.contains(&format!(
            "name=\"block_org\" value=\"{MENTAL_HEALTH_TRUST}\" checked"
        )),
        "{}",
        page.html
    );
    let consents = stored(&node, &format!("/fhir/Consent?patient={ME}")).await;
    let consent = entries(&consents, "Consent");
    assert_eq!(consent.len(), 1);
    assert_eq!(
        consent[0]["provision"]["provision"][0]["actor"][0]["role"]["coding"][0]["code"],
        "IRCP"
    );

    // The same clinician now sees only what their own organisation holds: nothing here.
    let (status, after) = api(&node, &clinician, Method::GET, &search, None).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert!(entries(&after, "Observation").is_empty(), "{after}");
    assert!(after.to_string().contains("suppressed"), "{after}");

    // The patient's access log lists the clinician's earlier read: organisation and role.
    let log = browser.get("/portal/me/access-log").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.html);
    assert!(log.html.contains("id=\"access-log\""));
    assert!(log.html.contains(MENTAL_HEALTH_TRUST), "{}", log.html);
    assert!(log.html.contains("clinician"));
}

#[tokio::test]
async fn a_patient_cannot_open_another_persons_record() {
    let node = node_with_people().await;
    let token = node
        .auth
        .mint(&Claims {
            patient: Some(ME.into()),
            ..Claims::user("pat", vec!["patient".into()], None, "patient/*.*")
        })
        .expect("token");
    let (status, _) = api(
        &node,
        &token,
        Method::GET,
        &format!("/fhir/Patient/{SOMEONE_ELSE}/$summary"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let mut browser = signed_in(&node).await;
    let mine = browser.get("/portal/me").await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.html);
    assert!(mine.html.contains("Haemoglobin A1c"));
    assert_eq!(mine.html.matches("<h1").count(), 1);
    let theirs = browser.get(&format!("/portal/me?for={SOMEONE_ELSE}")).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN, "{}", theirs.html);
    assert!(theirs.html.contains("You can only see your own record"));
    assert!(!theirs.html.contains("Khan"));
}

#[tokio::test]
async fn every_form_needs_the_session_csrf_token() {
    let node = node_with_people().await;
    let mut browser = signed_in(&node).await;
    for (path, fields) in [
        (
            "/portal/me/readings",
            vec![("kind", "weight"), ("value", "70")],
        ),
        ("/portal/me/what-matters", vec![("text", "My garden")]),
        ("/portal/me/sharing", vec![("opt_out", "yes")]),
    ] {
        let missing = browser.post_form(path, &fields).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN, "{path}");
        let mut forged = fields.clone();
        forged.push(("csrf", "forged"));
        let page = browser.post_form(path, &forged).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    let found = stored(&node, &format!("/fhir/Observation?patient={ME}")).await;
    assert_eq!(entries(&found, "Observation").len(), 1);
    assert!(entries(&stored(&node, "/fhir/Goal").await, "Goal").is_empty());
    assert!(entries(&stored(&node, "/fhir/Consent").await, "Consent").is_empty());
}

#[tokio::test]
async fn staff_are_sent_away_from_the_patients_pages() {
    let node = node_with_people().await;
    node.add_user("dr.jones", "clinician", Some(common::ORGANIZATION), None);
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    let page = browser.get("/portal/me/readings").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_patient_may_not_vouch_for_what_someone_else_recorded() {
    let node = node_with_people().await;
    let token = node
        .auth
        .mint(&Claims {
            patient: Some(ME.into()),
            ..Claims::user("pat", vec!["patient".into()], None, "patient/*.*")
        })
        .expect("token");
    let found = stored(&node, &format!("/fhir/Observation?patient={ME}")).await;
    let clinicians = entries(&found, "Observation")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let provenance = |target: &str, who: &str| {
        json!({"resourceType": "Provenance", "recorded": "2026-12-03T10:00:00Z",
            "target": [{"reference": target}],
            "agent": [{"who": {"reference": who}}]})
    };
    // Not their own entry: the clinician's result.
    let (status, body) = api(
        &node,
        &token,
        Method::POST,
        "/fhir/Provenance",
        Some(provenance(
            &format!("Observation/{clinicians}"),
            &format!("Patient/{ME}"),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // In a transaction, naming someone else as the agent.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "Weight"},
            "subject": {"reference": format!("Patient/{ME}")}, "valueQuantity": {"value": 70, "unit": "kg"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": provenance("urn:uuid:11111111-1111-4111-8111-111111111111",
            &format!("Patient/{SOMEONE_ELSE}")),
         "request": {"method": "POST", "url": "Provenance"}}
    ]});
    let (status, body) = api(&node, &token, Method::POST, "/fhir", Some(bundle.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The same transaction naming themselves is accepted, and both are patient-entered.
    let mut own = bundle;
    own["entry"][1]["resource"]["agent"][0]["who"]["reference"] = json!(format!("Patient/{ME}"));
    let (status, body) = api(&node, &token, Method::POST, "/fhir", Some(own)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let all = stored(&node, "/fhir/Provenance").await;
    let mine: Vec<&Value> = entries(&all, "Provenance")
        .into_iter()
        .filter(|p| p["agent"][0]["who"]["reference"] == format!("Patient/{ME}"))
        .collect();
    assert_eq!(mine.len(), 1);
    assert!(
        mine[0]["meta"]["tag"]
            .to_string()
            .contains("patient-entered")
    );
}
