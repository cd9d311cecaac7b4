//! Bad requests, data-driven: every case must get the expected status (never 500) and an
//! OperationOutcome with an error issue that explains itself. Each OperationOutcome is
//! snapshotted (`tests/snapshots/negative__<case>.snap`) so wording changes are reviewed.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{TestApp, assert_error_outcome};
use serde_json::{Value, json};

/// One request of a case.
struct Req {
    method: Method,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Req {
    fn new(method: Method, uri: impl Into<String>) -> Req {
        Req {
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn get(uri: impl Into<String>) -> Req {
        Req::new(Method::GET, uri)
    }

    /// A FHIR JSON body (`application/fhir+json`).
    fn json(method: Method, uri: impl Into<String>, body: &Value) -> Req {
        Req::new(method, uri).text("application/fhir+json", body.to_string())
    }

    fn text(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Req {
        self.headers
            .push(("content-type", content_type.to_string()));
        self.body = body.into();
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }
}

/// Sends the request, checks the status and the OperationOutcome, and snapshots it.
async fn check(app: &TestApp, case: &str, request: Req, expected: StatusCode) -> Value {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let reply = app
        .send(
            request.method,
            &request.uri,
            &headers,
            Body::from(request.body),
        )
        .await;
    assert_ne!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{case}: 500 {}",
        reply.body
    );
    assert_eq!(reply.status, expected, "{case}: {}", reply.body);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/fhir+json")),
        "{case}: content-type {:?}",
        reply.header("content-type")
    );
    assert_error_outcome(&reply.body);
    let body = redact(&reply.body);
    insta::assert_json_snapshot!(case, body);
    reply.body
}

/// Replaces UUIDs (generated ids) in every string with `[uuid]`.
fn redact(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact_uuids(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(v))).collect())
        }
        other => other.clone(),
    }
}

fn redact_uuids(s: &str) -> String {
    let is_uuid = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push_str("[uuid]");
            i += 36;
        } else {
            let ch = s[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

async fn total(app: &TestApp, uri: &str) -> u64 {
    let reply = app.get(uri).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
    reply.body["total"].as_u64().expect("total")
}

fn patient() -> Value {
    json!({"resourceType": "Patient", "name": [{"family": "Smith"}]})
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

// ---------------------------------------------------------------------------------------------
// bodies

#[tokio::test]
async fn bodies_that_are_not_a_fhir_resource() {
    let app = TestApp::new();
    let cases: Vec<(&str, Req, StatusCode)> = vec![
        (
            "malformed_json",
            Req::new(Method::POST, "/fhir/Patient")
                .text("application/fhir+json", r#"{"resourceType": "Patient",, }"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            "truncated_json",
            Req::new(Method::POST, "/fhir/Patient").text(
                "application/fhir+json",
                r#"{"resourceType": "Patient", "name": [{"family": "Sm"#,
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "empty_body",
            Req::new(Method::POST, "/fhir/Patient").text("application/fhir+json", ""),
            StatusCode::BAD_REQUEST,
        ),
        (
            "json_array_body",
            Req::json(Method::POST, "/fhir/Patient", &json!([patient()])),
            StatusCode::BAD_REQUEST,
        ),
        (
            "json_string_body",
            Req::json(Method::POST, "/fhir/Patient", &json!("Patient")),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong_content_type",
            Req::new(Method::POST, "/fhir/Patient").text("text/plain", patient().to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "xml_content_type",
            Req::new(Method::POST, "/fhir/Patient").text(
                "application/fhir+xml",
                "<Patient xmlns=\"http://hl7.org/fhir\"/>",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "missing_content_type",
            Req {
                body: patient().to_string().into_bytes(),
                ..Req::new(Method::POST, "/fhir/Patient")
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "json_bomb",
            Req::new(Method::POST, "/fhir/Patient").text(
                "application/fhir+json",
                format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "json_bomb_in_element",
            Req::new(Method::POST, "/fhir/Patient").text(
                "application/fhir+json",
                format!(
                    r#"{{"resourceType": "Patient", "extension": {}{}}}"#,
                    "[".repeat(10_000),
                    "]".repeat(10_000)
                ),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "json_bomb_in_transaction",
            Req::new(Method::POST, "/fhir").text(
                "application/fhir+json",
                format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
            ),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (case, request, status) in cases {
        check(&app, case, request, status).await;
    }
    assert_eq!(total(&app, "/fhir/Patient").await, 0);
}

#[tokio::test]
async fn negotiation() {
    let app = TestApp::new();
    check(
        &app,
        "accept_xml",
        Req::get("/fhir/Patient").header("accept", "application/xml"),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    check(
        &app,
        "accept_fhir_xml_on_read",
        Req::get("/fhir/Patient/x").header("accept", "application/fhir+xml"),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    check(
        &app,
        "format_xml",
        Req::get("/fhir/Patient?_format=xml"),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    check(
        &app,
        "format_xml_on_create",
        Req::json(Method::POST, "/fhir/Patient?_format=xml", &patient()),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    assert_eq!(total(&app, "/fhir/Patient").await, 0);
}

#[tokio::test]
async fn resources_that_break_the_r4_structure() {
    let app = TestApp::new();
    let cases: Vec<(&str, Value, StatusCode)> = vec![
        (
            "string_for_boolean",
            with(patient(), "active", json!("true")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "number_for_string",
            with(patient(), "name", json!([{"family": 42}])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "object_for_array",
            with(patient(), "name", json!({"family": "Smith"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "array_for_object",
            with(patient(), "maritalStatus", json!([{"text": "M"}])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown_element",
            with(patient(), "favouriteColour", json!("blue")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown_nested_element",
            with(
                patient(),
                "name",
                json!([{"family": "Smith", "nickname": "Smithy"}]),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "null_value",
            with(patient(), "gender", Value::Null),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty_array",
            with(patient(), "identifier", json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "invalid_date_month_13",
            with(patient(), "birthDate", json!("2020-13-01")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "invalid_date_feb_30",
            with(patient(), "birthDate", json!("2021-02-30")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "datetime_without_zone",
            with(patient(), "deceasedDateTime", json!("2020-01-01T10:00:00")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "bad_reference_syntax",
            with(
                patient(),
                "managingOrganization",
                json!({"reference": "not a reference"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "two_choice_values",
            with(
                with(patient(), "deceasedBoolean", json!(true)),
                "deceasedDateTime",
                json!("2020-01-01"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (case, body, status) in cases {
        check(
            &app,
            case,
            Req::json(Method::POST, "/fhir/Patient", &body),
            status,
        )
        .await;
    }
    assert_eq!(total(&app, "/fhir/Patient").await, 0);
}

#[tokio::test]
async fn resource_types_and_ids() {
    let app = TestApp::new();
    check(
        &app,
        "unknown_resource_type_in_body",
        Req::json(
            Method::POST,
            "/fhir/Patient",
            &json!({"resourceType": "Pateint"}),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "missing_resource_type_in_body",
        Req::json(
            Method::POST,
            "/fhir/Patient",
            &json!({"name": [{"family": "X"}]}),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "resource_type_mismatch",
        Req::json(
            Method::POST,
            "/fhir/Patient",
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "unknown_resource_type_in_url",
        Req::json(
            Method::POST,
            "/fhir/Pateint",
            &json!({"resourceType": "Pateint"}),
        ),
        StatusCode::NOT_FOUND,
    )
    .await;
    check(
        &app,
        "unknown_resource_type_in_url_read",
        Req::get("/fhir/Pateint/1"),
        StatusCode::NOT_FOUND,
    )
    .await;
    check(
        &app,
        "unknown_resource_type_in_url_search",
        Req::get("/fhir/Pateint?name=x"),
        StatusCode::NOT_FOUND,
    )
    .await;
    check(
        &app,
        "bad_id_in_url_for_put",
        Req::json(
            Method::PUT,
            "/fhir/Patient/bad_id!",
            &with(patient(), "id", json!("bad_id!")),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let long = "a".repeat(65);
    check(
        &app,
        "too_long_id_in_url_for_put",
        Req::json(
            Method::PUT,
            format!("/fhir/Patient/{long}"),
            &with(patient(), "id", json!(long)),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "body_id_differs_from_url_id",
        Req::json(
            Method::PUT,
            "/fhir/Patient/one",
            &with(patient(), "id", json!("two")),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "missing_id_in_put_body",
        Req::json(Method::PUT, "/fhir/Patient/one", &patient()),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "numeric_id_in_put_body",
        Req::json(
            Method::PUT,
            "/fhir/Patient/1",
            &with(patient(), "id", json!(1)),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "put_on_type_without_params",
        Req::json(Method::PUT, "/fhir/Patient", &patient()),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    check(
        &app,
        "malformed_if_match",
        Req::json(
            Method::PUT,
            "/fhir/Patient/one",
            &with(patient(), "id", json!("one")),
        )
        .header("if-match", "yesterday"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(total(&app, "/fhir/Patient").await, 0);
}

// ---------------------------------------------------------------------------------------------
// reads, deletes, operations

#[tokio::test]
async fn reads_deletes_and_operations() {
    let app = TestApp::new();
    let mut known = patient();
    known["id"] = json!("known");
    let put = app.json(Method::PUT, "/fhir/Patient/known", &known).await;
    assert_eq!(put.status, StatusCode::CREATED);

    check(
        &app,
        "read_unknown_id",
        Req::get("/fhir/Patient/unknown"),
        StatusCode::NOT_FOUND,
    )
    .await;
    check(
        &app,
        "vread_unknown_version",
        Req::get("/fhir/Patient/known/_history/9"),
        StatusCode::NOT_FOUND,
    )
    .await;
    check(
        &app,
        "vread_non_numeric_version",
        Req::get("/fhir/Patient/known/_history/latest"),
        StatusCode::NOT_FOUND,
    )
    .await;
    check(
        &app,
        "delete_type_without_params",
        Req::new(Method::DELETE, "/fhir/Patient"),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    check(
        &app,
        "unknown_operation",
        Req::get("/fhir/Patient/known/$foo"),
        StatusCode::NOT_IMPLEMENTED,
    )
    .await;
    check(
        &app,
        "everything_unknown_parameter",
        Req::get("/fhir/Patient/known/$everything?colour=blue"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "everything_bad_type",
        Req::get("/fhir/Patient/known/$everything?_type=Pateint"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "history_unknown_parameter",
        Req::get("/fhir/Patient/known/_history?colour=blue"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "history_bad_since",
        Req::get("/fhir/Patient/_history?_since=yesterday"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "no_such_url",
        Req::get("/nothing/here"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let read = app.get("/fhir/Patient/known").await;
    assert_eq!(read.status, StatusCode::OK);
}

#[tokio::test]
async fn patches() {
    let app = TestApp::new();
    let mut known = patient();
    known["id"] = json!("known");
    app.json(Method::PUT, "/fhir/Patient/known", &known).await;
    let patch = |body: Value| {
        Req::new(Method::PATCH, "/fhir/Patient/known")
            .text("application/json-patch+json", body.to_string())
    };
    check(
        &app,
        "patch_not_a_json_patch",
        patch(json!({"resourceType": "Patient", "active": true})),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "patch_unknown_op",
        patch(json!([{"op": "frobnicate", "path": "/active"}])),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "patch_removes_id",
        patch(json!([{"op": "remove", "path": "/id"}])),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    check(
        &app,
        "patch_changes_resource_type",
        patch(json!([{"op": "replace", "path": "/resourceType", "value": "Group"}])),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    check(
        &app,
        "patch_path_missing",
        patch(json!([{"op": "replace", "path": "/telecom/5/value", "value": "x"}])),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    check(
        &app,
        "patch_test_fails",
        patch(json!([{"op": "test", "path": "/name/0/family", "value": "Jones"}])),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    check(
        &app,
        "patch_breaks_validation",
        patch(json!([{"op": "add", "path": "/birthDate", "value": "2020-13-01"}])),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    check(
        &app,
        "patch_with_fhir_json_content_type",
        Req::new(Method::PATCH, "/fhir/Patient/known").text("application/fhir+json", "[]"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    check(
        &app,
        "patch_unknown_resource",
        Req::new(Method::PATCH, "/fhir/Patient/unknown").text("application/json-patch+json", "[]"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let read = app.get("/fhir/Patient/known").await;
    assert_eq!(read.body["meta"]["versionId"], "1", "no patch was written");
}

// ---------------------------------------------------------------------------------------------
// search

#[tokio::test]
async fn search_parameters() {
    let app = TestApp::new();
    let cases: Vec<(&str, Req, StatusCode)> = vec![
        (
            "unknown_parameter_strict",
            Req::get("/fhir/Patient?colour=blue").header("prefer", "handling=strict"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown_modifier_strict",
            Req::get("/fhir/Patient?family:sounds-like=smith").header("prefer", "handling=strict"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_prefix",
            Req::get("/fhir/Patient?birthdate=xx2020"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_date_value",
            Req::get("/fhir/Patient?birthdate=2020-13-01"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_date_text",
            Req::get("/fhir/Patient?birthdate=yesterday"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_count_text",
            Req::get("/fhir/Patient?_count=lots"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_count_negative",
            Req::get("/fhir/Patient?_count=-1"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "sort_unknown_parameter",
            Req::get("/fhir/Patient?_sort=colour"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_quantity",
            Req::get("/fhir/Observation?value-quantity=heavy"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_summary",
            Req::get("/fhir/Patient?_summary=maybe"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_total",
            Req::get("/fhir/Patient?_total=some"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad_snapshot",
            Req::get("/fhir/Patient?_snapshot=abc"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "post_search_wrong_content_type",
            Req::new(Method::POST, "/fhir/Patient/_search").text("application/fhir+json", "{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (case, request, status) in cases {
        check(&app, case, request, status).await;
    }
}

// ---------------------------------------------------------------------------------------------
// batch and transaction

#[tokio::test]
async fn bundles() {
    let app = TestApp::new();
    let bad_transaction = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:2b7f7e3c-1c1d-4d7e-9a3b-5c6d7e8f9a0b",
             "request": {"method": "POST", "url": "Patient"},
             "resource": {"resourceType": "Patient", "name": [{"family": "Leftover"}]}},
            {"request": {"method": "POST", "url": "Patient"},
             "resource": {"resourceType": "Patient", "birthDate": "2020-13-01"}},
        ]
    });
    check(
        &app,
        "transaction_with_one_bad_entry",
        Req::json(Method::POST, "/fhir", &bad_transaction),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(total(&app, "/fhir/Patient?family=Leftover").await, 0);

    let dangling = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Patient"},
             "resource": {"resourceType": "Patient", "name": [{"family": "Leftover"}]}},
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "urn:uuid:9d9d9d9d-0000-4000-8000-000000000000"}}},
        ]
    });
    check(
        &app,
        "transaction_urn_uuid_to_no_entry",
        Req::json(Method::POST, "/fhir", &dangling),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(total(&app, "/fhir/Patient?family=Leftover").await, 0);

    let cases: Vec<(&str, Value, StatusCode)> = vec![
        (
            "bundle_wrong_type",
            json!({"resourceType": "Bundle", "type": "collection", "entry": []}),
            StatusCode::BAD_REQUEST,
        ),
        ("post_base_not_a_bundle", patient(), StatusCode::BAD_REQUEST),
        (
            "bundle_entry_without_request",
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"resource": patient()}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bundle_entry_bad_method",
            json!({"resourceType": "Bundle", "type": "batch",
                   "entry": [{"request": {"method": "TRACE", "url": "Patient"}}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "transaction_entry_unknown_type",
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"request": {"method": "POST", "url": "Pateint"},
                              "resource": {"resourceType": "Pateint"}}]}),
            StatusCode::NOT_FOUND,
        ),
        (
            "transaction_same_resource_twice",
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [
                       {"request": {"method": "PUT", "url": "Patient/a"},
                        "resource": {"resourceType": "Patient", "id": "a"}},
                       {"request": {"method": "DELETE", "url": "Patient/a"}}]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "transaction_conditional_reference_no_match",
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"request": {"method": "POST", "url": "Observation"},
                              "resource": {"resourceType": "Observation", "status": "final",
                                           "code": {"text": "x"},
                                           "subject": {"reference": "Patient?identifier=nobody"}}}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (case, body, status) in cases {
        check(&app, case, Req::json(Method::POST, "/fhir", &body), status).await;
    }
    assert_eq!(total(&app, "/fhir/_history").await, 0);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::with_limit(4096);
    let big = with(patient(), "name", json!([{"family": "x".repeat(5000)}]));
    check(
        &app,
        "oversized_body",
        Req::json(Method::POST, "/fhir/Patient", &big),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let bundle = json!({"resourceType": "Bundle", "type": "batch",
                        "entry": [{"request": {"method": "POST", "url": "Patient"}, "resource": big}]});
    check(
        &app,
        "oversized_bundle",
        Req::json(Method::POST, "/fhir", &bundle),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    // Just under the limit is fine.
    let small = with(patient(), "name", json!([{"family": "x".repeat(3000)}]));
    let reply = app.json(Method::POST, "/fhir/Patient", &small).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(total(&app, "/fhir/Patient").await, 1);
}

// ---------------------------------------------------------------------------------------------
// regressions for bugs found while writing these tests

#[tokio::test]
async fn wrong_method_on_a_known_url_is_405_with_an_outcome_and_allow() {
    let app = TestApp::new();
    let cases: Vec<(&str, Req)> = vec![
        (
            "method_post_on_instance",
            Req::json(Method::POST, "/fhir/Patient/1", &patient()),
        ),
        (
            "method_delete_on_metadata",
            Req::new(Method::DELETE, "/fhir/metadata"),
        ),
        (
            "method_patch_on_type",
            Req::new(Method::PATCH, "/fhir/Patient"),
        ),
        (
            "method_put_on_version",
            Req::json(Method::PUT, "/fhir/Patient/1/_history/1", &patient()),
        ),
    ];
    for (case, request) in cases {
        check(&app, case, request, StatusCode::METHOD_NOT_ALLOWED).await;
    }
    let reply = app
        .send(Method::POST, "/fhir/Patient/1", &[], Body::empty())
        .await;
    let allow = reply.header("allow").unwrap_or_default();
    assert!(
        allow.contains("GET") && allow.contains("PUT"),
        "allow: {allow}"
    );
}

#[tokio::test]
async fn conditions_without_criteria_never_match_everything() {
    let app = TestApp::new();
    let mut only = patient();
    only["id"] = json!("only");
    app.json(Method::PUT, "/fhir/Patient/only", &only).await;
    check(
        &app,
        "conditional_delete_only_control_params",
        Req::new(Method::DELETE, "/fhir/Patient?_count=1"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "conditional_delete_empty_value",
        Req::new(Method::DELETE, "/fhir/Patient?identifier="),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "conditional_update_only_control_params",
        Req::json(Method::PUT, "/fhir/Patient?_sort=family", &patient()),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "if_none_exist_only_control_params",
        Req::json(Method::POST, "/fhir/Patient", &patient()).header("if-none-exist", "_count=1"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        &app,
        "conditional_delete_unknown_param",
        Req::new(Method::DELETE, "/fhir/Patient?colour=blue"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let read = app.get("/fhir/Patient/only").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["meta"]["versionId"], "1");
    assert_eq!(total(&app, "/fhir/Patient").await, 1);
}

#[tokio::test]
async fn patch_and_conditional_writes_honour_accept() {
    let app = TestApp::new();
    check(
        &app,
        "patch_accept_xml",
        Req::new(Method::PATCH, "/fhir/Patient/x")
            .text("application/json-patch+json", "[]")
            .header("accept", "application/fhir+xml"),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    check(
        &app,
        "conditional_update_format_xml",
        Req::json(
            Method::PUT,
            "/fhir/Patient?identifier=1&_format=xml",
            &patient(),
        ),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    check(
        &app,
        "conditional_delete_accept_xml",
        Req::new(Method::DELETE, "/fhir/Patient?identifier=1").header("accept", "application/xml"),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
}
