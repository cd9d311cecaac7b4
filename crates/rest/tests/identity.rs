//! The identity operations over HTTP, through the router with `oneshot` over a real SQLite store:
//! routing of type- and instance-level operations, their inputs, and the errors a client gets.

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error_outcome};
use serde_json::{Value, json};

fn patient(nhs: &str, given: &str, family: &str, birth: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [
            {"system": "https://example.org/mrn", "value": format!("{given}-{family}")},
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}
        ],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth,
        "address": [{"use": "home", "postalCode": "LS6 2AB"}],
    })
}

fn parameters(parameter: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": parameter})
}

#[tokio::test]
async fn match_is_a_post_on_the_type() {
    let app = TestApp::new();
    let id = app
        .create(&patient("9434765919", "Jane", "Smith", "1980-03-07"))
        .await;
    let probe = patient("9434765919", "Jane", "Smith", "1980-03-07");
    let reply = app
        .json(
            Method::POST,
            "/fhir/Patient/$match",
            &parameters(json!([{"name": "resource", "resource": probe}])),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["type"], "searchset");
    assert_eq!(reply.body["entry"][0]["resource"]["id"], id.as_str());
    assert_eq!(reply.body["entry"][0]["search"]["mode"], "match");

    let wrong = app
        .json(
            Method::POST,
            "/fhir/Patient/$match",
            &parameters(json!([{"name": "count", "valueInteger": 0}])),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_error_outcome(&wrong.body);
    assert_eq!(
        wrong.body["issue"][0]["expression"][0],
        "Parameters.parameter[0].valueInteger"
    );

    let get = app.get("/fhir/Patient/$match").await;
    assert_eq!(
        get.status,
        StatusCode::NOT_IMPLEMENTED,
        "$match is POST only: {}",
        get.body
    );
}

#[tokio::test]
async fn pix_and_locate() {
    let app = TestApp::new();
    let a = app
        .create(&patient("9434765919", "Jane", "Smith", "1980-03-07"))
        .await;
    let mut other = patient("9434765919", "Jane", "Smith", "1980-03-07");
    other["identifier"][0]["value"] = json!("acute-1");
    other["managingOrganization"] = json!({"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RR8"}});
    let b = app.create(&other).await;

    let reply = app
        .get("/fhir/Patient/$ihe-pix?sourceIdentifier=https://example.org/mrn%7CJane-Smith&targetSystem=https://example.org/mrn")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let params = reply.body["parameter"].as_array().unwrap();
    assert!(params.contains(&json!({"name": "targetIdentifier", "valueIdentifier": {"system": "https://example.org/mrn", "value": "acute-1"}})));
    assert!(params.contains(
        &json!({"name": "targetId", "valueReference": {"reference": format!("Patient/{b}")}})
    ));

    let missing = app.get("/fhir/Patient/$ihe-pix").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body["issue"][0]["expression"][0],
        "sourceIdentifier"
    );
    let unknown = app
        .get("/fhir/Patient/$ihe-pix?sourceIdentifier=https://example.org/mrn%7Cnobody")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let person = app.get(&format!("/fhir/Person?link=Patient/{a}")).await;
    let person_id = person.resources()[0]["id"].as_str().unwrap().to_string();
    let located = app.get(&format!("/fhir/Person/{person_id}/$locate")).await;
    assert_eq!(located.status, StatusCode::OK, "{}", located.body);
    let locations = located.body["parameter"].as_array().unwrap();
    assert_eq!(locations.len(), 2);
    assert!(locations.iter().any(|l| {
        l["part"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "organization", "valueString": "RR8"}))
    }));
}

#[tokio::test]
async fn merge_and_unmerge_persons_over_http() {
    let app = TestApp::new();
    let a = app
        .create(&patient("9434765919", "Jane", "Smith", "1980-03-07"))
        .await;
    let b = app
        .create(&patient("4010232137", "Tomasz", "Nowak", "1992-01-30"))
        .await;
    let person_of = |id: String| {
        let app = &app;
        async move {
            let found = app.get(&format!("/fhir/Person?link=Patient/{id}")).await;
            found.resources()[0]["id"].as_str().unwrap().to_string()
        }
    };
    let (pa, pb) = (person_of(a.clone()).await, person_of(b.clone()).await);
    assert_ne!(pa, pb);
    let merge = parameters(json!([
        {"name": "source-person", "valueReference": {"reference": format!("Person/{pb}")}},
        {"name": "target-person", "valueReference": {"reference": format!("Person/{pa}")}},
        {"name": "reason", "valueString": "confirmed with the patient"}
    ]));
    let merged = app.json(Method::POST, "/fhir/Person/$merge", &merge).await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.body["link"].as_array().unwrap().len(), 2);
    let again = app.json(Method::POST, "/fhir/Person/$merge", &merge).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let unmerge = parameters(
        json!([{"name": "source-person", "valueReference": {"reference": format!("Person/{pb}")}}]),
    );
    let restored = app
        .json(Method::POST, "/fhir/Person/$unmerge", &unmerge)
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(restored.body["active"], true);
    assert_eq!(person_of(b).await, pb);

    let bad = app
        .json(
            Method::POST,
            "/fhir/Person/$merge",
            &parameters(
                json!([{"name": "source-person", "valueReference": {"reference": "Patient/x"}}]),
            ),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body["issue"][0]["expression"][0],
        "Parameters.parameter[0].valueReference"
    );
}

#[tokio::test]
async fn post_on_an_instance_path_is_not_an_operation() {
    let app = TestApp::new();
    let reply = app
        .json(
            Method::POST,
            "/fhir/Patient/abc",
            &patient("9434765919", "Jane", "Smith", "1980-03-07"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_outcome(&reply.body);
}

#[tokio::test]
async fn an_invalid_nhs_number_is_refused_with_the_identifier_named() {
    let app = TestApp::new();
    let reply = app
        .json(
            Method::POST,
            "/fhir/Patient",
            &patient("9434765918", "Jane", "Smith", "1980-03-07"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.body["issue"][0]["expression"][0],
        "Patient.identifier[1].value"
    );
    assert_eq!(reply.body["issue"][0]["code"], "value");
}
