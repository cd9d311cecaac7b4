//! REST-level behaviour users rely on, driven through the router with `oneshot` over a real
//! SQLite store.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error_outcome, entries, mint};
use serde_json::{Value, json};

fn patient(family: &str, given: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
    })
}

fn patient_with(family: &str, identifier: &str, birth_date: &str, gender: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://example.org/mrn", "value": identifier}],
        "name": [{"family": family, "given": ["Test"]}],
        "birthDate": birth_date,
        "gender": gender,
    })
}

fn observation(subject: &str, code: &str, value: f64, effective: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
        "effectiveDateTime": effective,
        "valueQuantity": {
            "value": value,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg"
        },
    })
}

async fn count(app: &TestApp, uri: &str) -> u64 {
    let reply = app.get(uri).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
    reply.body["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("{uri}: no total in {}", reply.body))
}

// ---------------------------------------------------------------------------------------------
// create, read, vread, update, delete

#[tokio::test]
async fn create_returns_201_with_location_etag_last_modified_and_version_1() {
    let app = TestApp::new();
    let reply = app
        .json(Method::POST, "/fhir/Patient", &patient("Smith", "Ann"))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("server assigned an id");
    assert_eq!(reply.body["meta"]["versionId"], "1");
    // The stepping clock's second reading: the first is the audit record's.
    assert_eq!(
        reply.body["meta"]["lastUpdated"],
        "2024-01-01T00:00:01.000Z"
    );
    assert_eq!(
        reply.header("location"),
        Some(format!("{}/Patient/{id}/_history/1", common::BASE).as_str())
    );
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert_eq!(
        reply.header("last-modified"),
        Some("Mon, 01 Jan 2024 00:00:01 GMT")
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/fhir+json"))
    );
}

#[tokio::test]
async fn create_ignores_a_client_supplied_id() {
    let app = TestApp::new();
    let mut body = patient("Smith", "Ann");
    body["id"] = json!("chosen-by-client");
    let reply = app.json(Method::POST, "/fhir/Patient", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_ne!(reply.body["id"], "chosen-by-client");
}

#[tokio::test]
async fn read_returns_the_current_version_with_etag() {
    let app = TestApp::new();
    let id = app.create(&patient("Smith", "Ann")).await;
    let reply = app.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["id"], id.as_str());
    assert_eq!(reply.body["name"][0]["family"], "Smith");
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert!(reply.header("last-modified").is_some());
}

#[tokio::test]
async fn update_makes_version_2_and_vread_still_returns_version_1() {
    let app = TestApp::new();
    let id = app.create(&patient("Smith", "Ann")).await;
    let mut body = patient("Jones", "Ann");
    body["id"] = json!(id);
    let reply = app
        .json(Method::PUT, &format!("/fhir/Patient/{id}"), &body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["meta"]["versionId"], "2");
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
    assert!(
        reply
            .header("location")
            .is_some_and(|l| l.ends_with(&format!("Patient/{id}/_history/2")))
    );

    let old = app.get(&format!("/fhir/Patient/{id}/_history/1")).await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(old.body["name"][0]["family"], "Smith");
    assert_eq!(old.body["meta"]["versionId"], "1");
    assert_eq!(old.header("etag"), Some("W/\"1\""));

    let current = app.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(current.body["name"][0]["family"], "Jones");
}

#[tokio::test]
async fn update_as_create_keeps_the_clients_id() {
    let app = TestApp::new();
    let mut body = patient("Smith", "Ann");
    body["id"] = json!("client-id-1");
    let reply = app
        .json(Method::PUT, "/fhir/Patient/client-id-1", &body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["id"], "client-id-1");
    assert_eq!(reply.body["meta"]["versionId"], "1");
    let read = app.get("/fhir/Patient/client-id-1").await;
    assert_eq!(read.status, StatusCode::OK);
}

#[tokio::test]
async fn if_match_with_a_stale_etag_is_412_and_writes_nothing() {
    let app = TestApp::new();
    let id = app.create(&patient("Smith", "Ann")).await;
    let mut body = patient("Jones", "Ann");
    body["id"] = json!(id);
    let uri = format!("/fhir/Patient/{id}");
    let ok = app
        .json_with(Method::PUT, &uri, &[("if-match", "W/\"1\"")], &body)
        .await;
    assert_eq!(ok.status, StatusCode::OK);

    body["name"][0]["family"] = json!("Brown");
    let stale = app
        .json_with(Method::PUT, &uri, &[("if-match", "W/\"1\"")], &body)
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_error_outcome(&stale.body);

    let current = app.get(&uri).await;
    assert_eq!(current.body["meta"]["versionId"], "2");
    assert_eq!(current.body["name"][0]["family"], "Jones");
    let history = app.get(&format!("{uri}/_history")).await;
    assert_eq!(history.body["total"], 2);
}

#[tokio::test]
async fn delete_with_a_stale_if_match_is_412_and_keeps_the_resource() {
    let app = TestApp::new();
    let id = app.create(&patient("Smith", "Ann")).await;
    let mut body = patient("Jones", "Ann");
    body["id"] = json!(id);
    let uri = format!("/fhir/Patient/{id}");
    assert_eq!(
        app.json(Method::PUT, &uri, &body).await.status,
        StatusCode::OK
    );

    let stale = app
        .send(Method::DELETE, &uri, &[("if-match", "W/\"1\"")], "")
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_error_outcome(&stale.body);
    assert_eq!(
        app.get(&uri).await.status,
        StatusCode::OK,
        "a refused delete leaves the resource"
    );

    let current = app
        .send(Method::DELETE, &uri, &[("if-match", "W/\"2\"")], "")
        .await;
    assert_eq!(current.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&uri).await.status, StatusCode::GONE);
}

#[tokio::test]
async fn prefer_return_minimal_has_an_empty_body_and_headers() {
    let app = TestApp::new();
    let reply = app
        .json_with(
            Method::POST,
            "/fhir/Patient",
            &[("prefer", "return=minimal")],
            &patient("Smith", "Ann"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body, Value::Null);
    assert!(reply.header("location").is_some());
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
}

#[tokio::test]
async fn prefer_return_operation_outcome() {
    let app = TestApp::new();
    let reply = app
        .json_with(
            Method::POST,
            "/fhir/Patient",
            &[("prefer", "return=OperationOutcome")],
            &patient("Smith", "Ann"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["resourceType"], "OperationOutcome");
    assert_eq!(reply.body["issue"][0]["severity"], "information");
    assert!(reply.header("location").is_some());
}

#[tokio::test]
async fn conditional_create_none_one_and_many_matches() {
    let app = TestApp::new();
    let condition = [("if-none-exist", "identifier=https://example.org/mrn|111")];
    let body = patient_with("Smith", "111", "1970-01-01", "female");

    let first = app
        .json_with(Method::POST, "/fhir/Patient", &condition, &body)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let id = first.body["id"].as_str().expect("id").to_string();

    let second = app
        .json_with(Method::POST, "/fhir/Patient", &condition, &body)
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["id"], id.as_str());
    assert_eq!(second.body["meta"]["versionId"], "1");
    assert_eq!(count(&app, "/fhir/Patient?identifier=111").await, 1);

    // A second patient with the same identifier: the condition now matches two.
    app.create(&body).await;
    let third = app
        .json_with(Method::POST, "/fhir/Patient", &condition, &body)
        .await;
    assert_eq!(third.status, StatusCode::PRECONDITION_FAILED);
    assert_error_outcome(&third.body);
    assert_eq!(count(&app, "/fhir/Patient?identifier=111").await, 2);
}

#[tokio::test]
async fn conditional_update_creates_then_updates_then_refuses_many() {
    let app = TestApp::new();
    let uri = "/fhir/Patient?identifier=https://example.org/mrn|222";
    let body = patient_with("Smith", "222", "1970-01-01", "female");
    let created = app.json(Method::PUT, uri, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();

    let mut changed = body.clone();
    changed["name"][0]["family"] = json!("Jones");
    let updated = app.json(Method::PUT, uri, &changed).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["id"], id.as_str());
    assert_eq!(updated.body["meta"]["versionId"], "2");

    app.create(&body).await;
    let many = app.json(Method::PUT, uri, &changed).await;
    assert_eq!(many.status, StatusCode::PRECONDITION_FAILED);
    assert_error_outcome(&many.body);
}

#[tokio::test]
async fn conditional_delete_deletes_the_one_match() {
    let app = TestApp::new();
    let id = app
        .create(&patient_with("Smith", "333", "1970-01-01", "female"))
        .await;
    let other = app
        .create(&patient_with("Smith", "334", "1970-01-01", "female"))
        .await;
    let reply = app
        .send(
            Method::DELETE,
            "/fhir/Patient?identifier=333",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        app.get(&format!("/fhir/Patient/{id}")).await.status,
        StatusCode::GONE
    );
    assert_eq!(
        app.get(&format!("/fhir/Patient/{other}")).await.status,
        StatusCode::OK
    );

    // Two matches: refused, nothing deleted.
    app.create(&patient_with("Smith", "334", "1970-01-01", "female"))
        .await;
    let many = app
        .send(
            Method::DELETE,
            "/fhir/Patient?identifier=334",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(many.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(count(&app, "/fhir/Patient?identifier=334").await, 2);
}

#[tokio::test]
async fn json_patch_applies_and_a_patch_that_breaks_validation_is_422() {
    let app = TestApp::new();
    let id = app.create(&patient("Smith", "Ann")).await;
    let uri = format!("/fhir/Patient/{id}");
    let ok = app
        .send(
            Method::PATCH,
            &uri,
            &[("content-type", "application/json-patch+json")],
            json!([
                {"op": "replace", "path": "/name/0/family", "value": "Jones"},
                {"op": "add", "path": "/gender", "value": "female"}
            ])
            .to_string(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["name"][0]["family"], "Jones");
    assert_eq!(ok.body["gender"], "female");
    assert_eq!(ok.body["meta"]["versionId"], "2");

    let bad = app
        .send(
            Method::PATCH,
            &uri,
            &[("content-type", "application/json-patch+json")],
            json!([{"op": "replace", "path": "/gender", "value": 42}]).to_string(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_error_outcome(&bad.body);
    let current = app.get(&uri).await;
    assert_eq!(current.body["meta"]["versionId"], "2");
    assert_eq!(current.body["gender"], "female");
}

#[tokio::test]
async fn delete_then_read_is_410_and_history_shows_the_deletion() {
    let app = TestApp::new();
    let id = app.create(&patient("Smith", "Ann")).await;
    let uri = format!("/fhir/Patient/{id}");
    let reply = app.send(Method::DELETE, &uri, &[], Body::empty()).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let gone = app.get(&uri).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert_error_outcome(&gone.body);

    let history = app.get(&format!("{uri}/_history")).await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["type"], "history");
    assert_eq!(history.body["total"], 2);
    let list = entries(&history.body);
    assert_eq!(list[0]["request"]["method"], "DELETE");
    assert!(list[0].get("resource").is_none());
    assert_eq!(list[0]["response"]["etag"], "W/\"2\"");
    assert_eq!(list[1]["request"]["method"], "POST");
    assert_eq!(list[1]["resource"]["meta"]["versionId"], "1");

    // Deleting again is fine; update after delete recreates.
    let again = app.send(Method::DELETE, &uri, &[], Body::empty()).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let mut body = patient("Smith", "Ann");
    body["id"] = json!(id);
    let recreated = app.json(Method::PUT, &uri, &body).await;
    assert_eq!(recreated.status, StatusCode::CREATED);
    assert_eq!(recreated.body["meta"]["versionId"], "3");
}

// ---------------------------------------------------------------------------------------------
// history

fn versions_of(bundle: &Value) -> Vec<String> {
    entries(bundle)
        .iter()
        .map(|e| {
            e["resource"]["meta"]["versionId"]
                .as_str()
                .or_else(|| e["response"]["etag"].as_str())
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn instance_type_and_system_history_newest_first_with_since_count_and_next() {
    let app = TestApp::new();
    // Clock: every write takes one second; the first is at 00:00:00.
    let id = app.create(&patient("Smith", "Ann")).await; // 00:00:00
    let uri = format!("/fhir/Patient/{id}");
    for family in ["Jones", "Brown", "Green"] {
        let mut body = patient(family, "Ann");
        body["id"] = json!(id);
        let reply = app.json(Method::PUT, &uri, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let obs = app
        .create(&observation(
            &format!("Patient/{id}"),
            "29463-7",
            70.0,
            "2024-01-01",
        ))
        .await;

    let instance = app.get(&format!("{uri}/_history")).await;
    assert_eq!(instance.status, StatusCode::OK);
    assert_eq!(versions_of(&instance.body), vec!["4", "3", "2", "1"]);

    let paged = app.get(&format!("{uri}/_history?_count=2")).await;
    assert_eq!(entries(&paged.body).len(), 2);
    let next = paged.link("next").expect("next link");
    let page2 = app.follow(&next).await;
    assert_eq!(page2.status, StatusCode::OK, "{}", page2.body);
    assert_eq!(versions_of(&page2.body), vec!["2", "1"]);
    assert!(page2.link("next").is_none());

    // `_since` the third version's time (the index's own writes also step the clock).
    let third = app.get(&format!("{uri}/_history/3")).await;
    let since_instant = third.body["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_string();
    let since = app
        .get(&format!(
            "{uri}/_history?_since={}",
            since_instant.replace('+', "%2B")
        ))
        .await;
    assert_eq!(since.status, StatusCode::OK, "{}", since.body);
    assert_eq!(versions_of(&since.body), vec!["4", "3"]);

    let by_type = app.get("/fhir/Patient/_history").await;
    assert_eq!(by_type.body["total"], 4);
    assert!(
        entries(&by_type.body)
            .iter()
            .all(|e| e["resource"]["resourceType"] == "Patient")
    );

    // System history also holds the master patient index's Person and Provenance versions.
    let system = app.get("/fhir/_history").await;
    let written: Vec<String> = entries(&system.body)
        .iter()
        .filter(|e| {
            matches!(
                e["resource"]["resourceType"].as_str(),
                Some("Patient" | "Observation")
            )
        })
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["meta"]["versionId"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        written,
        [
            "Observation/1",
            "Patient/4",
            "Patient/3",
            "Patient/2",
            "Patient/1"
        ]
    );
    let first = &entries(&system.body)[0];
    assert_eq!(first["resource"]["resourceType"], "Observation");
    assert_eq!(first["resource"]["id"], obs.as_str());
    let system_page = app.get("/fhir/_history?_count=1").await;
    assert_eq!(entries(&system_page.body).len(), 1);
    assert!(system_page.link("next").is_some());
}

#[tokio::test]
async fn history_of_an_unknown_resource_is_404() {
    let app = TestApp::new();
    let reply = app.get("/fhir/Patient/nope/_history").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_error_outcome(&reply.body);
}

// ---------------------------------------------------------------------------------------------
// capability, probes and authentication

#[tokio::test]
async fn metadata_is_public_and_lists_patient_search_params() {
    let app = TestApp::new();
    let reply = app
        .send_raw(Method::GET, "/fhir/metadata", &[], Body::empty())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["resourceType"], "CapabilityStatement");
    assert_eq!(reply.body["fhirVersion"], "4.0.1");
    let resources = reply.body["rest"][0]["resource"]
        .as_array()
        .expect("resources");
    let patient = resources
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient listed");
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .expect("searchParam")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in ["family", "identifier", "birthdate", "name", "gender"] {
        assert!(
            params.contains(&name),
            "Patient.{name} missing from {params:?}"
        );
    }
    let phonetic = patient["searchParam"]
        .as_array()
        .expect("searchParam")
        .iter()
        .find(|p| p["name"] == "phonetic")
        .expect("Patient.phonetic listed");
    assert!(
        phonetic["documentation"]
            .as_str()
            .is_some_and(|d| d.contains("Soundex")),
        "the CapabilityStatement says how phonetic matches: {phonetic}"
    );
}

#[tokio::test]
async fn health_probes_are_public() {
    let app = TestApp::new();
    for uri in ["/healthz", "/readyz"] {
        let reply = app.send_raw(Method::GET, uri, &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn endpoints_without_a_token_are_401_with_www_authenticate() {
    let app = TestApp::new();
    for (method, uri) in [
        (Method::GET, "/fhir/Patient"),
        (Method::GET, "/fhir/Patient/1"),
        (Method::POST, "/fhir/Patient"),
        (Method::GET, "/fhir/_history"),
        (Method::POST, "/fhir"),
        (Method::GET, "/fhir/Patient/1/$everything"),
        (Method::GET, "/nowhere"),
    ] {
        let reply = app.send_raw(method.clone(), uri, &[], Body::empty()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{method} {uri}"
        );
        assert_error_outcome(&reply.body);
    }
}

#[tokio::test]
async fn bad_and_expired_tokens_are_401() {
    let app = TestApp::new();
    let expired = mint(&app.key, -3600);
    let other_key =
        concord_auth::AuthServer::ephemeral(concord_auth::AuthConfig::for_base(Some(common::BASE)))
            .expect("key");
    let foreign = mint(&other_key, 3600);
    for token in ["not-a-jwt", expired.as_str(), foreign.as_str()] {
        let auth = format!("Bearer {token}");
        let reply = app
            .send_raw(
                Method::GET,
                "/fhir/Patient",
                &[("authorization", &auth)],
                Body::empty(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(reply.header("www-authenticate").is_some());
        assert_error_outcome(&reply.body);
    }
    let basic = app
        .send_raw(
            Method::GET,
            "/fhir/Patient",
            &[("authorization", "Basic YWxpY2U6c2VjcmV0")],
            Body::empty(),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// search

/// Three patients and their observations, for the search tests.
struct Seed {
    smith: String,
    jones: String,
    brown: String,
    org: String,
}

async fn seed(app: &TestApp) -> Seed {
    let org = app
        .create(&json!({"resourceType": "Organization", "name": "Riverside GP"}))
        .await;
    let mut smith = patient_with("Smith", "1001", "1970-05-01", "female");
    smith["managingOrganization"] = json!({"reference": format!("Organization/{org}")});
    let smith = app.create(&smith).await;
    let jones = app
        .create(&patient_with("Jones", "1002", "1985-07-15", "male"))
        .await;
    let brown = app
        .create(&patient_with("Brown", "1003", "2001-12-31", "female"))
        .await;
    app.create(&observation(
        &format!("Patient/{smith}"),
        "29463-7",
        55.0,
        "2024-01-02",
    ))
    .await;
    app.create(&observation(
        &format!("Patient/{smith}"),
        "29463-7",
        82.5,
        "2024-02-02",
    ))
    .await;
    app.create(&observation(
        &format!("Patient/{jones}"),
        "8302-2",
        180.0,
        "2024-03-02",
    ))
    .await;
    Seed {
        smith,
        jones,
        brown,
        org,
    }
}

fn ids(reply: &common::Reply) -> Vec<String> {
    reply
        .refs("match")
        .into_iter()
        .map(|r| r.split_once('/').map(|(_, id)| id.to_string()).unwrap_or(r))
        .collect()
}

#[tokio::test]
async fn search_by_string_token_date_reference_quantity_and_composite() {
    let app = TestApp::new();
    let s = seed(&app).await;

    let family = app.get("/fhir/Patient?family=smi").await;
    assert_eq!(family.status, StatusCode::OK);
    assert_eq!(family.body["type"], "searchset");
    assert_eq!(ids(&family), vec![s.smith.clone()]);
    assert_eq!(count(&app, "/fhir/Patient?family:exact=smith").await, 0);
    assert_eq!(count(&app, "/fhir/Patient?family:exact=Smith").await, 1);
    // `phonetic` matches names by sound (Soundex), whole names only, not by prefix.
    let phonetic = app.get("/fhir/Patient?phonetic=Smyth").await;
    assert_eq!(ids(&phonetic), vec![s.smith.clone()]);
    assert_eq!(count(&app, "/fhir/Patient?phonetic=SMITH,Jonas").await, 2);
    assert_eq!(count(&app, "/fhir/Patient?phonetic=Smi").await, 0);
    assert_eq!(count(&app, "/fhir/Patient?phonetic=Smithson").await, 0);
    assert_eq!(count(&app, "/fhir/Patient?phonetic=123").await, 0);
    assert_eq!(
        count(&app, "/fhir/Observation?subject:Patient.phonetic=Smyth").await,
        2,
        "a chain codes the value by the target's parameter"
    );

    assert_eq!(count(&app, "/fhir/Patient?gender=female").await, 2);
    assert_eq!(
        count(
            &app,
            "/fhir/Patient?identifier=https://example.org/mrn|1002"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "/fhir/Patient?identifier=other-system|1002").await,
        0
    );

    let born = app
        .get("/fhir/Patient?birthdate=ge1980-01-01&birthdate=lt2000")
        .await;
    assert_eq!(ids(&born), vec![s.jones.clone()]);
    assert_eq!(count(&app, "/fhir/Patient?birthdate=1970-05").await, 1);

    let subject = format!("/fhir/Observation?subject=Patient/{}", s.smith);
    assert_eq!(count(&app, &subject).await, 2);
    assert_eq!(
        count(&app, &format!("/fhir/Observation?patient={}", s.jones)).await,
        1
    );

    assert_eq!(
        count(&app, "/fhir/Observation?value-quantity=gt60").await,
        2
    );
    assert_eq!(
        count(
            &app,
            "/fhir/Observation?value-quantity=lt100|http://unitsofmeasure.org|kg"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &app,
            "/fhir/Observation?code-value-quantity=http://loinc.org|29463-7$gt60"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "/fhir/Observation?code-value-quantity=29463-7$gt100").await,
        0
    );
    assert_eq!(count(&app, "/fhir/Observation?date=ge2024-02-01").await, 2);
    let _ = (&s.brown, &s.org);
}

#[tokio::test]
async fn token_text_matches_a_codings_display_or_its_concepts_text() {
    let app = TestApp::new();
    let mut weighed = observation("Patient/p1", "29463-7", 70.0, "2024-01-02");
    weighed["code"] = json!({"text": "Body Wéight", "coding": [
        {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight measure"},
        {"system": "http://snomed.info/sct", "code": "27113001"}]});
    let weighed = app.create(&weighed).await;
    let mut low_mood = observation("Patient/p1", "x", 1.0, "2024-01-02");
    low_mood["code"] = json!({"text": "Feeling low"});
    let low_mood = app.create(&low_mood).await;

    // The concept's text, accents and case aside, and the coding's display both match.
    let by_text = app.get("/fhir/Observation?code:text=BODY%20WEIGHT").await;
    assert_eq!(ids(&by_text), vec![weighed.clone()]);
    let by_display = app
        .get("/fhir/Observation?code:text=weight%20measure")
        .await;
    assert_eq!(ids(&by_display), vec![weighed.clone()]);
    // A concept with text and no coding is found too.
    let text_only = app.get("/fhir/Observation?code:text=feeling").await;
    assert_eq!(ids(&text_only), vec![low_mood]);
    // A phrase running from the display into the concept's text is not in either.
    assert_eq!(
        count(&app, "/fhir/Observation?code:text=measure%20body").await,
        0
    );
    // The coding without a display still matches by code, and the composite pairs it with the value.
    assert_eq!(
        count(
            &app,
            "/fhir/Observation?code=http://snomed.info/sct|27113001"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "/fhir/Observation?code-value-quantity=http://snomed.info/sct|27113001$70"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn search_sort_ascending_and_descending() {
    let app = TestApp::new();
    let s = seed(&app).await;
    let up = app.get("/fhir/Patient?_sort=family").await;
    assert_eq!(
        ids(&up),
        vec![s.brown.clone(), s.jones.clone(), s.smith.clone()]
    );
    let down = app.get("/fhir/Patient?_sort=-birthdate").await;
    assert_eq!(
        ids(&down),
        vec![s.brown.clone(), s.jones.clone(), s.smith.clone()]
    );
    let by_date = app.get("/fhir/Patient?_sort=birthdate").await;
    assert_eq!(ids(&by_date), vec![s.smith, s.jones, s.brown]);
}

#[tokio::test]
async fn paging_next_link_stays_correct_after_a_write_between_pages() {
    let app = TestApp::new();
    let mut created = Vec::new();
    for family in ["Baker", "Carter", "Davis", "Evans", "Foster"] {
        created.push((family, app.create(&patient(family, "X")).await));
    }
    let first = app.get("/fhir/Patient?_sort=family&_count=2").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["total"], 5);
    assert_eq!(
        ids(&first),
        vec![created[0].1.clone(), created[1].1.clone()]
    );
    let next = first.link("next").expect("next link");
    assert!(next.contains("_sort=family"), "{next}");
    assert!(first.link("previous").is_none());

    // Somebody else writes a patient that sorts first, and deletes one on page 2.
    app.create(&patient("Abbott", "X")).await;
    let deleted = app
        .send(
            Method::DELETE,
            &format!("/fhir/Patient/{}", created[2].1),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let second = app.follow(&next).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(
        ids(&second),
        vec![created[2].1.clone(), created[3].1.clone()]
    );
    assert_eq!(second.body["total"], 5);
    assert!(second.link("previous").is_some());
    let third = app.follow(&second.link("next").expect("next")).await;
    assert_eq!(ids(&third), vec![created[4].1.clone()]);
    assert!(third.link("next").is_none());

    // A fresh search sees the new state.
    let fresh = app.get("/fhir/Patient?_sort=family&_count=2").await;
    assert_eq!(fresh.body["total"], 5);
    assert_eq!(fresh.resources()[0]["name"][0]["family"], "Abbott");
}

#[tokio::test]
async fn count_zero_and_summary_count_have_no_next_link() {
    let app = TestApp::new();
    seed(&app).await;
    // Regression: `_count=0` used to link `next` to the same page (a client loops forever), and
    // `_summary=count` linked to pages of nothing.
    for uri in [
        "/fhir/Patient?_count=0",
        "/fhir/Patient?_summary=count&_count=1",
        "/fhir/Patient/_history?_count=0",
    ] {
        let reply = app.get(uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.body["total"], 3, "{uri}");
        assert!(reply.refs("match").is_empty(), "{uri}");
        assert!(
            reply.link("next").is_none(),
            "{uri}: {}",
            reply.body["link"]
        );
    }
    let no_total = app.get("/fhir/Patient?_total=none&_count=2").await;
    let next = no_total.link("next").expect("next without a total");
    let page2 = app.follow(&next).await;
    assert_eq!(page2.refs("match").len(), 1);
}

#[tokio::test]
async fn include_revinclude_and_iterate() {
    let app = TestApp::new();
    let s = seed(&app).await;

    let inc = app
        .get(&format!(
            "/fhir/Observation?subject=Patient/{}&_include=Observation:subject",
            s.smith
        ))
        .await;
    assert_eq!(inc.refs("match").len(), 2);
    assert_eq!(inc.refs("include"), vec![format!("Patient/{}", s.smith)]);
    assert_eq!(inc.body["total"], 2, "includes do not count");

    let rev = app
        .get(&format!(
            "/fhir/Patient?_id={}&_revinclude=Observation:subject",
            s.smith
        ))
        .await;
    assert_eq!(rev.refs("match"), vec![format!("Patient/{}", s.smith)]);
    assert_eq!(rev.refs("include").len(), 2);

    let without_iterate = app
        .get("/fhir/Observation?code=29463-7&_include=Observation:subject&_include=Patient:organization")
        .await;
    assert!(
        !without_iterate
            .refs("include")
            .contains(&format!("Organization/{}", s.org)),
        "Patient:organization applies to matches only without :iterate"
    );
    let iterate = app
        .get("/fhir/Observation?code=29463-7&_include=Observation:subject&_include:iterate=Patient:organization")
        .await;
    assert_eq!(iterate.status, StatusCode::OK, "{}", iterate.body);
    let mut included = iterate.refs("include");
    included.sort();
    let mut expected = vec![
        format!("Organization/{}", s.org),
        format!("Patient/{}", s.smith),
    ];
    expected.sort();
    assert_eq!(included, expected);
}

#[tokio::test]
async fn summary_count_true_elements_and_total_none() {
    let app = TestApp::new();
    let s = seed(&app).await;
    let mut rich = patient_with("Taylor", "1004", "1990-01-01", "other");
    rich["maritalStatus"] = json!({"text": "Married"});
    rich["contact"] = json!([{"name": {"family": "Taylor"}}]);
    let rich = app.create(&rich).await;

    let counted = app.get("/fhir/Patient?_summary=count").await;
    assert_eq!(counted.status, StatusCode::OK);
    assert_eq!(counted.body["total"], 4);
    assert!(entries(&counted.body).is_empty());

    let summary = app
        .get(&format!("/fhir/Patient?_id={rich}&_summary=true"))
        .await;
    let resource = &summary.resources()[0];
    assert!(resource.get("contact").is_none(), "{resource}");
    assert!(resource.get("maritalStatus").is_none(), "{resource}");
    assert_eq!(resource["name"][0]["family"], "Taylor");
    assert_eq!(resource["birthDate"], "1990-01-01");
    assert!(
        resource["meta"]["tag"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t["code"] == "SUBSETTED")),
        "{resource}"
    );
    // The stored resource is untouched.
    let read = app.get(&format!("/fhir/Patient/{rich}")).await;
    assert!(read.body.get("contact").is_some());
    assert!(read.body["meta"].get("tag").is_none());

    let elements = app
        .get(&format!(
            "/fhir/Patient?_id={}&_elements=birthDate",
            s.smith
        ))
        .await;
    let resource = &elements.resources()[0];
    assert_eq!(resource["birthDate"], "1970-05-01");
    assert!(resource.get("name").is_none(), "{resource}");
    assert!(resource.get("identifier").is_none(), "{resource}");
    assert_eq!(resource["id"], s.smith.as_str());
    assert!(
        resource["meta"]["tag"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t["code"] == "SUBSETTED"))
    );

    let no_total = app.get("/fhir/Patient?_total=none").await;
    assert_eq!(no_total.status, StatusCode::OK);
    assert!(no_total.body.get("total").is_none(), "{}", no_total.body);
    assert_eq!(no_total.refs("match").len(), 4);
}

#[tokio::test]
async fn post_search_with_a_form_body() {
    let app = TestApp::new();
    let s = seed(&app).await;
    let reply = app
        .send(
            Method::POST,
            "/fhir/Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            "family=Jones&gender=male",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(ids(&reply), vec![s.jones]);

    // URL and form parameters combine.
    let combined = app
        .send(
            Method::POST,
            "/fhir/Patient/_search?gender=female",
            &[("content-type", "application/x-www-form-urlencoded")],
            "family=Smith",
        )
        .await;
    assert_eq!(ids(&combined), vec![s.smith]);
}

#[tokio::test]
async fn unknown_parameter_is_reported_leniently_and_rejected_strictly() {
    let app = TestApp::new();
    seed(&app).await;
    let lenient = app.get("/fhir/Patient?family=Smith&nonsense=1").await;
    assert_eq!(lenient.status, StatusCode::OK);
    assert_eq!(lenient.refs("match").len(), 1);
    let outcome = entries(&lenient.body)
        .into_iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert_eq!(outcome["resource"]["resourceType"], "OperationOutcome");
    assert!(
        outcome["resource"].to_string().contains("nonsense"),
        "{outcome}"
    );

    let strict = app
        .send(
            Method::GET,
            "/fhir/Patient?family=Smith&nonsense=1",
            &[("prefer", "handling=strict")],
            Body::empty(),
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    assert_error_outcome(&strict.body);
}

#[tokio::test]
async fn chained_search_and_has() {
    let app = TestApp::new();
    let s = seed(&app).await;
    assert_eq!(
        count(&app, "/fhir/Observation?subject:Patient.family=Smith").await,
        2
    );
    assert_eq!(
        count(&app, "/fhir/Observation?subject.family=Jones").await,
        1
    );
    assert_eq!(
        count(&app, "/fhir/Observation?subject:Patient.family=Brown").await,
        0
    );

    let has = app
        .get("/fhir/Patient?_has:Observation:subject:code=http://loinc.org|8302-2")
        .await;
    assert_eq!(has.status, StatusCode::OK, "{}", has.body);
    assert_eq!(ids(&has), vec![s.jones.clone()]);
    let has_any = app
        .get("/fhir/Patient?_has:Observation:patient:code=29463-7,8302-2&_sort=family")
        .await;
    assert_eq!(ids(&has_any), vec![s.jones, s.smith]);
}

#[tokio::test]
async fn system_search_by_id_and_type() {
    let app = TestApp::new();
    let s = seed(&app).await;
    let reply = app.get(&format!("/fhir?_id={}", s.smith)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.refs("match"), vec![format!("Patient/{}", s.smith)]);
    let typed = app.get("/fhir?_type=Organization").await;
    assert_eq!(typed.status, StatusCode::OK, "{}", typed.body);
    assert_eq!(typed.refs("match"), vec![format!("Organization/{}", s.org)]);
}

// ---------------------------------------------------------------------------------------------
// batch and transaction

#[tokio::test]
async fn batch_entries_are_independent() {
    let app = TestApp::new();
    let existing = app.create(&patient("Smith", "Ann")).await;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "POST", "url": "Patient"}, "resource": patient("Good", "One")},
            {"request": {"method": "POST", "url": "Patient"},
             "resource": {"resourceType": "Patient", "birthDate": "1980-13-45"}},
            {"request": {"method": "GET", "url": format!("Patient/{existing}")}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ]
    });
    let reply = app.json(Method::POST, "/fhir", &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["type"], "batch-response");
    let list = entries(&reply.body);
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["response"]["status"], "201 Created");
    assert!(
        list[1]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("4")),
        "{}",
        list[1]
    );
    assert_error_outcome(&list[1]["response"]["outcome"]);
    assert_eq!(list[2]["response"]["status"], "200 OK");
    assert_eq!(list[2]["resource"]["id"], existing.as_str());
    assert!(
        list[3]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("404"))
    );
    assert_eq!(count(&app, "/fhir/Patient?family=Good").await, 1);
}

#[tokio::test]
async fn transaction_resolves_urn_uuid_and_conditional_references() {
    let app = TestApp::new();
    let gp = app
        .create(&json!({
            "resourceType": "Organization",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}],
            "name": "Riverside GP"
        }))
        .await;
    let patient_url = "urn:uuid:7f1c2d6e-3a7b-4b8e-9a51-0d2f7c1e9b11";
    let mut new_patient = patient_with("Urn", "5001", "1999-09-09", "male");
    new_patient["managingOrganization"] = json!({"reference": "Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|A81001"});
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0b9d3a52-7c6e-4f0a-8f3e-2a1b5c9d8e77",
             "request": {"method": "POST", "url": "Observation"},
             "resource": observation(patient_url, "29463-7", 70.0, "2024-04-04")},
            {"fullUrl": patient_url,
             "request": {"method": "POST", "url": "Patient"},
             "resource": new_patient},
        ]
    });
    let reply = app.json(Method::POST, "/fhir", &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["type"], "transaction-response");
    let list = entries(&reply.body);
    // Response entries come in request order.
    assert!(
        list[0]["response"]["location"]
            .as_str()
            .unwrap_or("")
            .starts_with("Observation/")
    );
    assert!(
        list[1]["response"]["location"]
            .as_str()
            .unwrap_or("")
            .starts_with("Patient/")
    );
    let patient_id = list[1]["response"]["location"]
        .as_str()
        .and_then(|l| l.split('/').nth(1))
        .expect("patient id")
        .to_string();
    let obs_id = list[0]["response"]["location"]
        .as_str()
        .and_then(|l| l.split('/').nth(1))
        .expect("observation id")
        .to_string();

    let obs = app.get(&format!("/fhir/Observation/{obs_id}")).await;
    assert_eq!(
        obs.body["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    let patient = app.get(&format!("/fhir/Patient/{patient_id}")).await;
    assert_eq!(
        patient.body["managingOrganization"]["reference"],
        format!("Organization/{gp}")
    );
    assert_eq!(
        count(
            &app,
            &format!("/fhir/Observation?subject=Patient/{patient_id}")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn transaction_processes_delete_post_put_get_and_answers_in_request_order() {
    let app = TestApp::new();
    let mut kept = patient("Before", "Kim");
    kept["id"] = json!("kept");
    assert_eq!(
        app.json(Method::PUT, "/fhir/Patient/kept", &kept)
            .await
            .status,
        StatusCode::CREATED
    );
    let doomed = app.create(&patient("Doomed", "Dan")).await;
    let mut after = patient("After", "Kim");
    after["id"] = json!("kept");
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/kept"}},
            {"request": {"method": "PUT", "url": "Patient/kept"}, "resource": after},
            {"request": {"method": "POST", "url": "Patient"}, "resource": patient("Posted", "Pat")},
            {"request": {"method": "DELETE", "url": format!("Patient/{doomed}")}},
        ]
    });
    let reply = app.json(Method::POST, "/fhir", &bundle).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let list = entries(&reply.body);
    assert_eq!(list.len(), 4);
    // In request order; the GET ran after the PUT, so it sees version 2.
    assert_eq!(list[0]["response"]["status"], "200 OK");
    assert_eq!(list[0]["resource"]["name"][0]["family"], "After");
    assert_eq!(list[0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(list[1]["response"]["status"], "200 OK");
    assert_eq!(list[1]["response"]["etag"], "W/\"2\"");
    assert_eq!(list[2]["response"]["status"], "201 Created");
    assert_eq!(list[3]["response"]["status"], "204 No Content");

    // The stepping clock shows the execution order: DELETE, then POST, then PUT.
    let history = app.get("/fhir/Patient/_history?_count=3").await;
    let methods: Vec<String> = entries(&history.body)
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(methods, vec!["PUT", "POST", "DELETE"]);
    assert_eq!(
        app.get(&format!("/fhir/Patient/{doomed}")).await.status,
        StatusCode::GONE
    );
}

#[tokio::test]
async fn transaction_with_one_bad_entry_leaves_nothing_behind() {
    let app = TestApp::new();
    let existing = app.create(&patient("Stay", "Same")).await;
    let mut changed = patient("Changed", "Same");
    changed["id"] = json!(existing);
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
             "request": {"method": "POST", "url": "Patient"},
             "resource": patient_with("Ghost", "9999", "1980-01-01", "male")},
            {"request": {"method": "PUT", "url": format!("Patient/{existing}")}, "resource": changed},
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final", "issued": "yesterday",
                          "code": {"text": "x"},
                          "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}}},
        ]
    });
    let reply = app.json(Method::POST, "/fhir", &bundle).await;
    assert!(
        reply.status.is_client_error(),
        "{}: {}",
        reply.status,
        reply.body
    );
    assert_error_outcome(&reply.body);
    assert!(
        reply.body.to_string().contains("Bundle.entry[2]"),
        "{}",
        reply.body
    );

    assert_eq!(count(&app, "/fhir/Patient?identifier=9999").await, 0);
    assert_eq!(count(&app, "/fhir/Patient?family=Ghost").await, 0);
    assert_eq!(count(&app, "/fhir/Observation").await, 0);
    let read = app.get(&format!("/fhir/Patient/{existing}")).await;
    assert_eq!(read.body["name"][0]["family"], "Stay");
    assert_eq!(read.body["meta"]["versionId"], "1");
    assert_eq!(count(&app, "/fhir/Patient/_history").await, 1);
}

// ---------------------------------------------------------------------------------------------
// $everything

#[tokio::test]
async fn patient_everything_with_type_and_paging() {
    let app = TestApp::new();
    let s = seed(&app).await;
    app.create(&json!({
        "resourceType": "Condition",
        "subject": {"reference": format!("Patient/{}", s.smith)},
        "code": {"text": "Asthma"}
    }))
    .await;

    let all = app
        .get(&format!("/fhir/Patient/{}/$everything", s.smith))
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    // The patient, two Observations, the Condition, and the golden Person that links the record.
    assert_eq!(all.body["total"], 5);
    let refs = all.refs("match");
    assert_eq!(refs[0], format!("Patient/{}", s.smith));
    assert_eq!(refs.iter().filter(|r| r.starts_with("Person/")).count(), 1);
    assert_eq!(
        refs.iter()
            .filter(|r| r.starts_with("Observation/"))
            .count(),
        2
    );
    assert_eq!(
        refs.iter().filter(|r| r.starts_with("Condition/")).count(),
        1
    );

    let typed = app
        .get(&format!(
            "/fhir/Patient/{}/$everything?_type=Observation",
            s.smith
        ))
        .await;
    assert_eq!(typed.status, StatusCode::OK);
    let refs = typed.refs("match");
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert!(refs.iter().all(|r| r.starts_with("Observation/")));

    let page1 = app
        .get(&format!("/fhir/Patient/{}/$everything?_count=3", s.smith))
        .await;
    let mut seen = page1.refs("match");
    assert_eq!(seen.len(), 3);
    let page2 = app.follow(&page1.link("next").expect("next")).await;
    assert_eq!(page2.status, StatusCode::OK, "{}", page2.body);
    seen.extend(page2.refs("match"));
    assert!(page2.link("next").is_none());
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "{seen:?}");

    let jones = app
        .get(&format!("/fhir/Patient/{}/$everything", s.jones))
        .await;
    assert_eq!(jones.body["total"], 3);
    let missing = app.get("/fhir/Patient/nobody/$everything").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A node's own `$summary` reads the person's record page by page: a record longer than the
/// largest page is summarised whole, not cut off at the page without a word.
#[tokio::test]
async fn summary_holds_a_record_longer_than_one_page() {
    let app = TestApp::with_config(|config| {
        config.default_count = 2;
        config.max_count = 2;
    });
    let patient = app
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Long"}]}))
        .await;
    for day in 1..=5 {
        app.create(&json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": format!("2025-01-0{day}"),
            "valueQuantity": {"value": 40 + day, "unit": "mmol/mol"}
        }))
        .await;
    }

    let summary = app.get(&format!("/fhir/Patient/{patient}/$summary")).await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    let observations = summary
        .resources()
        .into_iter()
        .filter(|r| r["resourceType"] == "Observation")
        .count();
    assert_eq!(observations, 5, "{}", summary.body);
}

// ---------------------------------------------------------------------------------------------
// regressions for bugs found while writing these tests

#[tokio::test]
async fn transaction_references_to_a_conditional_update_resolve() {
    let app = TestApp::new();
    let urn = "urn:uuid:aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    let bundle = |family: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": urn,
             "request": {"method": "PUT", "url": "Patient?identifier=https://example.org/mrn|7001"},
             "resource": patient_with(family, "7001", "1960-06-06", "male")},
            {"request": {"method": "POST", "url": "Observation"},
             "resource": observation(urn, "29463-7", 90.0, "2024-05-05")},
        ]})
    };
    // First time the condition matches nothing: the patient is created and referenced.
    let first = app.json(Method::POST, "/fhir", &bundle("Cond")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let list = entries(&first.body);
    assert_eq!(list[0]["response"]["status"], "201 Created");
    let patient_ref = list[0]["response"]["location"]
        .as_str()
        .and_then(|l| l.split("/_history").next())
        .expect("location")
        .to_string();
    assert_eq!(
        count(&app, &format!("/fhir/Observation?subject={patient_ref}")).await,
        1
    );
    // Second time it matches the patient: updated in place and referenced again.
    let second = app.json(Method::POST, "/fhir", &bundle("Cond2")).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let list = entries(&second.body);
    assert_eq!(list[0]["response"]["status"], "200 OK");
    assert!(
        list[0]["response"]["location"]
            .as_str()
            .is_some_and(|l| l.starts_with(&format!("{patient_ref}/_history/2")))
    );
    assert_eq!(
        count(&app, &format!("/fhir/Observation?subject={patient_ref}")).await,
        2
    );
    assert_eq!(count(&app, "/fhir/Patient").await, 1);
}

/// PUT entries are checked and indexed before the store's writer is taken, all but their
/// references, which are indexed once the transaction has rewritten them (`write::precheck`).
/// Both halves must land: the rewritten references and everything else.
#[tokio::test]
async fn transaction_put_entries_are_indexed_with_their_rewritten_references() {
    let app = TestApp::new();
    let urn = "urn:uuid:bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
    let bundle = |family: &str, birth_date: &str| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": urn,
             "request": {"method": "PUT", "url": "Patient?identifier=https://example.org/mrn|7002"},
             "resource": patient_with(family, "7002", birth_date, "female")},
            {"request": {"method": "PUT", "url": "Encounter?identifier=https://example.org/visit|V1"},
             "resource": {"resourceType": "Encounter", "status": "finished",
                          "identifier": [{"system": "https://example.org/visit", "value": "V1"}],
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                          "subject": {"reference": urn},
                          "period": {"start": "2024-05-05T10:00:00Z", "end": "2024-05-05T11:00:00Z"}}},
        ]})
    };
    for (family, status) in [("Precheck", "201 Created"), ("Prechecked", "200 OK")] {
        let reply = app
            .json(Method::POST, "/fhir", &bundle(family, "1970-01-02"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let list = entries(&reply.body);
        assert_eq!(list[1]["response"]["status"], status);
        let patient_ref = list[0]["response"]["location"]
            .as_str()
            .and_then(|l| l.split("/_history").next())
            .expect("location")
            .to_string();
        let patient_id = patient_ref.trim_start_matches("Patient/");
        for search in [
            format!("/fhir/Encounter?subject={patient_ref}"),
            format!("/fhir/Encounter?patient={patient_id}"),
            format!("/fhir/Encounter?subject:Patient.family={family}"),
            "/fhir/Encounter?identifier=https://example.org/visit|V1&date=2024-05-05".to_string(),
            format!("/fhir/Patient?family={family}&birthdate=1970-01-02"),
        ] {
            assert_eq!(count(&app, &search).await, 1, "{search}");
        }
        // The version before is no longer found by what it said.
        assert_eq!(
            count(&app, "/fhir/Patient?family:exact=Precheck").await,
            u64::from(family == "Precheck")
        );
    }
    // A PUT entry that fails validation is refused as before, naming the element.
    let reply = app
        .json(Method::POST, "/fhir", &bundle("Bad", "1970-13-40"))
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.body);
    assert!(
        reply.body["issue"][0]["expression"][0] == "Bundle.entry[0].resource.birthDate",
        "{}",
        reply.body
    );
    assert_eq!(count(&app, "/fhir/Patient?family=Bad").await, 0);
}

/// A conditional PUT with a fullUrl is searched when the ids are assigned, before any entry is
/// written; the update reuses that answer only while it cannot have changed. Here an earlier
/// entry writes what the condition reads, once of the same type and once through a chain, so
/// the condition must be searched again at its turn: it then matches the written resource, which
/// the entry's pre-assigned id contradicts, and the transaction is refused rather than
/// creating a second record of the same thing.
#[tokio::test]
async fn a_conditional_put_sees_what_earlier_entries_wrote() {
    let app = TestApp::new();
    let urn = "urn:uuid:cccccccc-cccc-4ccc-8ccc-cccccccccccc";
    let same_type = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "Patient/first"},
         "resource": {"resourceType": "Patient", "id": "first",
                      "identifier": [{"system": "https://example.org/mrn", "value": "7100"}]}},
        {"fullUrl": urn,
         "request": {"method": "PUT", "url": "Patient?identifier=https://example.org/mrn|7100"},
         "resource": patient_with("Second", "7100", "1970-01-02", "female")},
    ]});
    let reply = app.json(Method::POST, "/fhir", &same_type).await;
    assert!(reply.status.is_client_error(), "{}", reply.body);
    assert_eq!(
        count(
            &app,
            "/fhir/Patient?identifier=https://example.org/mrn|7100"
        )
        .await,
        0
    );

    let patient = |mrn: &str| {
        json!({"resourceType": "Patient", "id": "chained",
               "identifier": [{"system": "https://example.org/mrn", "value": mrn}]})
    };
    let encounter = json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/chained"}});
    let reply = app
        .json(Method::PUT, "/fhir/Patient/chained", &patient("7200"))
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let reply = app
        .json(Method::PUT, "/fhir/Encounter/chained-visit", &{
            let mut e = encounter.clone();
            e["id"] = json!("chained-visit");
            e
        })
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let chained = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "Patient/chained"}, "resource": patient("7300")},
        {"fullUrl": urn,
         "request": {"method": "PUT",
                     "url": "Encounter?subject:Patient.identifier=https://example.org/mrn|7300"},
         "resource": encounter},
    ]});
    let reply = app.json(Method::POST, "/fhir", &chained).await;
    assert!(reply.status.is_client_error(), "{}", reply.body);
    assert_eq!(
        count(&app, "/fhir/Encounter?subject=Patient/chained").await,
        1
    );
    assert_eq!(
        count(
            &app,
            "/fhir/Patient?identifier=https://example.org/mrn|7200"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {}", app.token);
        let reply = app
            .send_raw(
                Method::GET,
                "/fhir/Patient",
                &[("authorization", &auth)],
                Body::empty(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}");
    }
}
