//! The authorisation matrix over the real API (issue 6): every role × relationship × consent ×
//! break-glass, reading one person's whole record (`Patient/[id]/$everything`), with what each
//! caller sees recorded as a snapshot: the status, the resource types shown (one per data
//! category) and whether the view says something was withheld.

mod common;

use std::fmt::Write;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{ORGANIZATION, TestApp, mint_system};
use concord_auth::Claims;
use serde_json::{Value, json};

/// One resource of each data category, about `patient`; the Condition is a mental health one.
fn record(patient: &str) -> Vec<Value> {
    let subject = json!({"reference": format!("Patient/{patient}")});
    vec![
        json!({"resourceType": "Encounter", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": subject}),
        json!({"resourceType": "Appointment", "status": "booked",
               "participant": [{"actor": subject, "status": "accepted"}]}),
        json!({"resourceType": "Condition",
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
               "subject": subject}),
        json!({"resourceType": "AllergyIntolerance",
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}]},
               "patient": subject}),
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
               "medicationCodeableConcept": {"text": "amoxicillin"}, "subject": subject}),
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
               "subject": subject}),
        json!({"resourceType": "DocumentReference", "status": "current",
               "content": [{"attachment": {"contentType": "text/plain", "data": "bGV0dGVy"}}],
               "subject": subject}),
        json!({"resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": subject}),
    ]
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let reply = app
        .send_as(
            token,
            Method::POST,
            path,
            &[("content-type", "application/fhir+json")],
            Body::from(body.to_string()),
        )
        .await;
    (reply.status, reply.body)
}

/// What a view showed: the resource types, in order, and whether it said something was withheld.
fn shown(view: &Value) -> String {
    let mut types: Vec<&str> = view["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    types.sort_unstable();
    let withheld = view.to_string().contains("suppressed");
    format!(
        "{}{}",
        types.join(" "),
        if withheld { "  +withheld-notice" } else { "" }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_relationship_consent_and_break_glass() {
    let app = TestApp::new();
    let loader = mint_system(&app.key, "loader");
    let mut people = Vec::new();
    for family in ["Shares", "Withholds"] {
        let (status, body) = post(
            &app,
            &loader,
            "/fhir/Patient",
            &json!({"resourceType": "Patient", "name": [{"family": family}], "birthDate": "1950-01-01"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        for resource in record(&id) {
            let t = resource["resourceType"].as_str().unwrap().to_string();
            let (status, body) = post(&app, &loader, &format!("/fhir/{t}"), &resource).await;
            assert_eq!(status, StatusCode::CREATED, "{t}: {body}");
        }
        people.push(id);
    }
    // The second person withholds mental health, as the portal writes it.
    let choices = concord_access::ConsentChoices {
        opt_out: false,
        withheld_organizations: Default::default(),
        blocked_organizations: Default::default(),
        withheld_categories: ["mental-health".to_string()].into(),
    };
    let consent = concord_access::consent_resource(&people[1], &choices, "2024-01-01T00:00:00Z");
    let (status, body) = post(&app, &loader, "/fhir/Consent", &consent).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let mut table = String::new();
    for role in concord_access::Role::ALL {
        for related in [true, false] {
            for break_glass in [false, true] {
                let org = if related { ORGANIZATION } else { "B99999" };
                let sub = format!("{}-{org}-{break_glass}", role.code());
                let scope = if role == concord_access::Role::Patient {
                    "patient/*.*"
                } else {
                    "user/*.*"
                };
                let token = app
                    .key
                    .mint(&Claims {
                        patient: (role == concord_access::Role::Patient).then(|| people[0].clone()),
                        proxy_for: if role == concord_access::Role::Proxy {
                            vec![people[0].clone()]
                        } else {
                            Vec::new()
                        },
                        ..Claims::user(
                            sub,
                            vec![role.code().to_string()],
                            Some(org.to_string()),
                            scope,
                        )
                    })
                    .unwrap();
                for (person, consent) in people.iter().zip(["shares", "withholds"]) {
                    let mut glass = String::new();
                    if break_glass {
                        let (status, _) = post(
                            &app,
                            &token,
                            &format!("/fhir/Patient/{person}/$break-glass"),
                            &json!({"resourceType": "Parameters", "parameter": [
                                {"name": "reason", "valueCode": "emergency-care"},
                                {"name": "text", "valueString": "collapsed in clinic"}]}),
                        )
                        .await;
                        glass = format!(" glass={}", status.as_u16());
                    }
                    let reply = app
                        .get_as(&token, &format!("/fhir/Patient/{person}/$everything"))
                        .await;
                    let seen = if reply.status == StatusCode::OK {
                        shown(&reply.body)
                    } else {
                        String::new()
                    };
                    writeln!(
                        table,
                        "{:<16} {:<9} {:<9} bg={:<5}{glass:<10} -> {} {seen}",
                        role.code(),
                        if related { "related" } else { "unrelated" },
                        consent,
                        break_glass,
                        reply.status.as_u16(),
                    )
                    .unwrap();
                }
            }
        }
    }
    insta::assert_snapshot!(table);
}
