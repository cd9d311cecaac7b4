//! Access over the real API (issue 6): a patient's token reaches only their own record on every
//! route; staff need a legitimate relationship or break-glass; the person's consent masks what
//! they withheld; roles limit categories; and the audit trail holds exactly one event per request,
//! refused ones included, in an intact hash chain.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{ORGANIZATION, TestApp, mint_system, mint_user};
use serde_json::{Value, json};

/// A node run by [`ORGANIZATION`] holding two people, each with a result and a mental health
/// problem.
struct World {
    app: TestApp,
    ann: String,
    bob: String,
    ann_result: String,
    bob_result: String,
}

async fn create(app: &TestApp, token: &str, resource: Value) -> String {
    let t = resource["resourceType"].as_str().unwrap().to_string();
    let reply = app
        .send_as(
            token,
            Method::POST,
            &format!("/fhir/{t}"),
            &[("content-type", "application/fhir+json")],
            Body::from(resource.to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{t}: {}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

fn observation(patient: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
           "subject": {"reference": format!("Patient/{patient}")},
           "valueQuantity": {"value": 5.4, "unit": "mmol/L"}})
}

fn depression(patient: &str) -> Value {
    json!({"resourceType": "Condition",
           "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
           "subject": {"reference": format!("Patient/{patient}")}})
}

async fn world() -> World {
    let app = TestApp::new();
    let clerk = mint_user(&app.key, "clerk", "clinician", Some(ORGANIZATION), None);
    let ann = create(
        &app,
        &clerk,
        json!({"resourceType": "Patient", "name": [{"family": "Ash", "given": ["Ann"]}], "birthDate": "1950-01-01"}),
    )
    .await;
    let bob = create(
        &app,
        &clerk,
        json!({"resourceType": "Patient", "name": [{"family": "Birch", "given": ["Bob"]}], "birthDate": "1960-02-02"}),
    )
    .await;
    let ann_result = create(&app, &clerk, observation(&ann)).await;
    let bob_result = create(&app, &clerk, observation(&bob)).await;
    create(&app, &clerk, depression(&ann)).await;
    World {
        app,
        ann,
        bob,
        ann_result,
        bob_result,
    }
}

fn ids_of(bundle: &Value, resource_type: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] == resource_type)
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
        .collect()
}

/// Every route a patient's token could use to reach another person's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patients_token_reaches_only_their_own_record_on_every_route() {
    let w = world().await;
    let ann_token = mint_user(&w.app.key, "ann", "patient", None, Some(&w.ann));
    let (bob, bob_result) = (&w.bob, &w.bob_result);
    let refused = [
        (Method::GET, format!("/fhir/Patient/{bob}")),
        (Method::GET, format!("/fhir/Patient/{bob}/_history/1")),
        (Method::GET, format!("/fhir/Patient/{bob}/_history")),
        (Method::GET, format!("/fhir/Observation/{bob_result}")),
        (
            Method::GET,
            format!("/fhir/Observation/{bob_result}/_history/1"),
        ),
        (
            Method::GET,
            format!("/fhir/Observation/{bob_result}/_history"),
        ),
        (Method::GET, format!("/fhir/Observation?patient={bob}")),
        (
            Method::GET,
            format!("/fhir/Observation?subject=Patient/{bob}"),
        ),
        (Method::GET, format!("/fhir/Patient/{bob}/$everything")),
        (Method::GET, format!("/fhir/Patient/{bob}/$summary")),
        (Method::GET, format!("/fhir/Patient/{bob}/$access-log")),
        (Method::DELETE, format!("/fhir/Observation/{bob_result}")),
        (Method::GET, "/fhir/AuditEvent".to_string()),
    ];
    for (method, path) in &refused {
        let reply = w
            .app
            .send_as(&ann_token, method.clone(), path, &[], Body::empty())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            reply.body
        );
        assert!(!reply.body.to_string().contains("Birch"), "{path}");
    }
    // Writes about someone else are refused too.
    let reply = w
        .app
        .send_as(
            &ann_token,
            Method::POST,
            "/fhir/Observation",
            &[("content-type", "application/fhir+json")],
            Body::from(observation(bob).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let mut changed = observation(bob);
    changed["id"] = json!(bob_result);
    let reply = w
        .app
        .send_as(
            &ann_token,
            Method::PUT,
            &format!("/fhir/Observation/{bob_result}"),
            &[("content-type", "application/fhir+json")],
            Body::from(changed.to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let transaction = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Observation/{bob_result}")}}]});
    let reply = w
        .app
        .send_as(
            &ann_token,
            Method::POST,
            "/fhir",
            &[("content-type", "application/fhir+json")],
            Body::from(transaction.to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    // Nor can she feed HL7 v2 in as if she were a hospital.
    let reply = w
        .app
        .send_as(
            &ann_token,
            Method::POST,
            "/hl7v2",
            &[("content-type", "x-application/hl7-v2+er7")],
            Body::from("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5\rPID|1||X^^^Y||Birch^Bob\r"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    // Searches across people show only her own, and do not count anyone else's.
    for path in [
        "/fhir/Observation".to_string(),
        "/fhir/Patient".to_string(),
        "/fhir?_type=Observation,Patient".to_string(),
        "/fhir/Observation/_history".to_string(),
        "/fhir/_history".to_string(),
    ] {
        let reply = w.app.get_as(&ann_token, &path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        let text = reply.body.to_string();
        assert!(!text.contains(bob_result.as_str()), "{path}: {text}");
        assert!(!text.contains("Birch"), "{path}: {text}");
        assert!(reply.body.get("total").is_none(), "{path}: {text}");
    }

    // Her own record is all hers.
    for path in [
        format!("/fhir/Patient/{}", w.ann),
        format!("/fhir/Observation/{}", w.ann_result),
        format!("/fhir/Observation?patient={}", w.ann),
        format!("/fhir/Patient/{}/$everything", w.ann),
        format!("/fhir/Patient/{}/$summary", w.ann),
        format!("/fhir/Patient/{}/$access-log", w.ann),
    ] {
        let reply = w.app.get_as(&ann_token, &path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    }
    let reply = w
        .app
        .get_as(&ann_token, &format!("/fhir/Observation?patient={}", w.ann))
        .await;
    assert_eq!(
        ids_of(&reply.body, "Observation"),
        vec![w.ann_result.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_without_a_relationship_break_glass_and_it_is_audited() {
    let w = world().await;
    let stranger = mint_user(&w.app.key, "dr-who", "clinician", Some("B99999"), None);
    let path = format!("/fhir/Patient/{}/$everything", w.ann);
    let reply = w.app.get_as(&stranger, &path).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(
        reply.body.to_string().contains("$break-glass"),
        "the refusal says how to break glass: {}",
        reply.body
    );
    // Finding the person by demographics is allowed; opening the record is not.
    let reply = w.app.get_as(&stranger, "/fhir/Patient?family=Ash").await;
    assert_eq!(ids_of(&reply.body, "Patient"), vec![w.ann.clone()]);

    let break_glass = |reason: &str, text: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "reason", "valueCode": reason}, {"name": "text", "valueString": text}]})
    };
    let glass = format!("/fhir/Patient/{}/$break-glass", w.ann);
    for (body, expected) in [
        (
            break_glass("because", "unconscious in ED"),
            StatusCode::BAD_REQUEST,
        ),
        (
            break_glass("emergency-care", "   "),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = w
            .app
            .send_as(
                &stranger,
                Method::POST,
                &glass,
                &[("content-type", "application/fhir+json")],
                Body::from(body.to_string()),
            )
            .await;
        assert_eq!(reply.status, expected, "{}", reply.body);
    }
    let receptionist = mint_user(&w.app.key, "desk", "receptionist", Some("B99999"), None);
    let reply = w
        .app
        .send_as(
            &receptionist,
            Method::POST,
            &glass,
            &[("content-type", "application/fhir+json")],
            Body::from(break_glass("emergency-care", "asked to").to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    let reply = w
        .app
        .send_as(
            &stranger,
            Method::POST,
            &glass,
            &[("content-type", "application/fhir+json")],
            Body::from(break_glass("emergency-care", "unconscious in ED, no history").to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = w.app.get_as(&stranger, &path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(ids_of(&reply.body, "Observation").contains(&w.ann_result));
    // The grant is for Ann only.
    let reply = w
        .app
        .get_as(&stranger, &format!("/fhir/Patient/{}/$everything", w.bob))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    // The privacy officer finds the break-glass in the trail; Ann sees an emergency access by a
    // clinician of the other organisation, without the user's name.
    let officer = mint_user(
        &w.app.key,
        "po",
        "privacy-officer",
        Some(ORGANIZATION),
        None,
    );
    let reply = w
        .app
        .get_as(
            &officer,
            &format!(
                "/fhir/AuditEvent?patient={}&agent=dr-who&subtype=break-glass",
                w.ann
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let text = reply.body.to_string();
    assert!(text.contains("unconscious in ED, no history"), "{text}");
    let ann_token = mint_user(&w.app.key, "ann", "patient", None, Some(&w.ann));
    let reply = w
        .app
        .get_as(&ann_token, &format!("/fhir/Patient/{}/$access-log", w.ann))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let text = reply.body.to_string();
    assert!(text.contains("B99999"), "{text}");
    assert!(text.contains("\"valueBoolean\":true"), "{text}");
    assert!(
        !text.contains("dr-who"),
        "the person sees roles, not names: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_withholds_a_category_and_roles_limit_what_staff_see() {
    let w = world().await;
    let ann_token = mint_user(&w.app.key, "ann", "patient", None, Some(&w.ann));
    let choices = concord_access::ConsentChoices {
        opt_out: false,
        withheld_organizations: Default::default(),
        blocked_organizations: Default::default(),
        withheld_categories: ["mental-health".to_string()].into(),
    };
    let consent = concord_access::consent_resource(&w.ann, &choices, "2024-01-01T00:00:00Z");
    let clinician = mint_user(&w.app.key, "gp", "clinician", Some(ORGANIZATION), None);
    // Before Ann's choice the clinician sees the Condition; the decision's facts about Ann are
    // cached from here, and her consent must still take effect on the very next request.
    let before = w
        .app
        .get_as(&clinician, &format!("/fhir/Patient/{}/$everything", w.ann))
        .await;
    assert_eq!(
        ids_of(&before.body, "Condition").len(),
        1,
        "{}",
        before.body
    );
    let condition = ids_of(&before.body, "Condition")[0].clone();
    create(&w.app, &ann_token, consent).await;

    // The withheld category is a list of codes, which may be anywhere in a resource: a search
    // and a read by id decide on the whole Condition, not only the members that say whose it is.
    let reply = w
        .app
        .get_as(&clinician, &format!("/fhir/Condition?patient={}", w.ann))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        ids_of(&reply.body, "Condition").is_empty(),
        "{}",
        reply.body
    );
    let reply = w
        .app
        .get_as(&clinician, &format!("/fhir/Condition/{condition}"))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    let reply = w
        .app
        .get_as(&clinician, &format!("/fhir/Patient/{}/$everything", w.ann))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        ids_of(&reply.body, "Condition").is_empty(),
        "{}",
        reply.body
    );
    assert_eq!(
        ids_of(&reply.body, "Observation"),
        vec![w.ann_result.clone()]
    );
    assert!(
        reply.body.to_string().contains("withheld"),
        "the view says something was withheld: {}",
        reply.body
    );
    // Ann herself still sees everything.
    let reply = w
        .app
        .get_as(&ann_token, &format!("/fhir/Condition?patient={}", w.ann))
        .await;
    assert_eq!(ids_of(&reply.body, "Condition").len(), 1, "{}", reply.body);

    // A receptionist sees demographics, not results.
    let receptionist = mint_user(&w.app.key, "desk", "receptionist", Some(ORGANIZATION), None);
    let reply = w
        .app
        .get_as(
            &receptionist,
            &format!("/fhir/Observation/{}", w.ann_result),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let reply = w
        .app
        .get_as(&receptionist, &format!("/fhir/Patient/{}", w.ann))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// A seeded random walk of requests by different callers, allowed and refused: the trail ends
/// with exactly one event per request and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_has_exactly_one_event_per_request() {
    let w = world().await;
    let trail = w.app.state.hub.audit().expect("trail").clone();
    let ctx = concord_fhir::RequestContext::system("test", "count");
    let before = trail.verify(&ctx).expect("intact");
    let tokens = [
        mint_user(&w.app.key, "ann", "patient", None, Some(&w.ann)),
        mint_user(&w.app.key, "gp", "clinician", Some(ORGANIZATION), None),
        mint_user(&w.app.key, "dr-who", "clinician", Some("B99999"), None),
        mint_user(&w.app.key, "desk", "receptionist", Some(ORGANIZATION), None),
        mint_system(&w.app.key, "feed"),
        "not-a-token".to_string(),
    ];
    let paths = [
        format!("/fhir/Patient/{}", w.ann),
        format!("/fhir/Patient/{}", w.bob),
        format!("/fhir/Observation/{}", w.bob_result),
        format!("/fhir/Observation?patient={}", w.ann),
        format!("/fhir/Patient/{}/$everything", w.bob),
        "/fhir/Observation".to_string(),
        "/fhir/Patient/does-not-exist".to_string(),
    ];
    // A small linear congruential generator: the run is random but repeatable.
    let mut state: u64 = 0x5eed;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        usize::try_from(state >> 33).unwrap() % n
    };
    let requests = 60;
    let mut refused = 0;
    for _ in 0..requests {
        let token = &tokens[next(tokens.len())];
        let path = &paths[next(paths.len())];
        let reply = w
            .app
            .send_as(token, Method::GET, path, &[], Body::empty())
            .await;
        if reply.status == StatusCode::FORBIDDEN || reply.status == StatusCode::UNAUTHORIZED {
            refused += 1;
        }
    }
    assert!(refused > 0 && refused < requests, "the walk mixes outcomes");
    let after = trail.verify(&ctx).expect("intact");
    assert_eq!(after - before, requests as u64);
    let officer = mint_user(
        &w.app.key,
        "po",
        "privacy-officer",
        Some(ORGANIZATION),
        None,
    );
    let reply = w
        .app
        .get_as(&officer, "/fhir/AuditEvent?outcome=4&_count=500")
        .await;
    let denied = reply.body["entry"].as_array().map_or(0, Vec::len);
    assert_eq!(denied, refused, "every refusal is in the trail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_data_stewards_change_the_master_patient_index() {
    let w = world().await;
    let merge = json!({"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": format!("Patient/{}", w.bob)}},
        {"name": "target-patient", "valueReference": {"reference": format!("Patient/{}", w.ann)}}]});
    let clinician = mint_user(&w.app.key, "gp", "clinician", Some(ORGANIZATION), None);
    let analyst = mint_user(&w.app.key, "numbers", "analyst", Some(ORGANIZATION), None);
    let reply = w
        .app
        .send_as(
            &clinician,
            Method::POST,
            "/fhir/Patient/$merge",
            &[("content-type", "application/fhir+json")],
            Body::from(merge.to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let lookup = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource":
        {"resourceType": "Patient", "name": [{"family": "Ash", "given": ["Ann"]}], "birthDate": "1950-01-01"}}]});
    for (token, expected) in [
        (&clinician, StatusCode::OK),
        (&analyst, StatusCode::FORBIDDEN),
    ] {
        let reply = w
            .app
            .send_as(
                token,
                Method::POST,
                "/fhir/Patient/$match",
                &[("content-type", "application/fhir+json")],
                Body::from(lookup.to_string()),
            )
            .await;
        assert_eq!(reply.status, expected, "{}", reply.body);
    }
}
