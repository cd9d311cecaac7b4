//! Federated reads end to end at the REST level: a hub driven with `oneshot`, federating real
//! Concord edges and misbehaving sources, each a real HTTP server on a loopback port: fast,
//! hanging, answering 500, answering something that is not FHIR, and down (connection refused).
//! Also two hubs listing each other, to show a request never loops.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::any;
use common::{BASE, TestApp};
use concord_federation::{Freshness, SourceInfo, SourceKind};
use concord_hub::federate::{Federation, FederationConfig};
use concord_source::{Auth, BreakerConfig, FetchMode, Source, SourceConfig};
use serde_json::{Value, json};

const NHS: &str = "9990001235";
const SOURCE_SYSTEM: &str = "https://concord.health/fhir/sid/source/";

/// Serves `app` on a loopback port and returns its FHIR base.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/fhir")
}

/// A Concord edge holding one person's record, served over HTTP.
async fn edge(resources: Vec<Value>) -> (TestApp, String) {
    let app = TestApp::new();
    for resource in resources {
        let t = resource["resourceType"].as_str().unwrap().to_string();
        let id = resource["id"].as_str().unwrap().to_string();
        let reply = app
            .json(Method::PUT, &format!("/fhir/{t}/{id}"), &resource)
            .await;
        assert!(reply.status.is_success(), "{t}/{id}: {}", reply.body);
    }
    let base = serve(concord_rest::router(app.state.clone())).await;
    (app, base)
}

fn patient(id: &str, given: &str) -> Value {
    json!({
        "resourceType": "Patient", "id": id,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS}],
        "name": [{"family": "Okafor", "given": [given]}],
        "gender": "female", "birthDate": "1948-03-02",
        "address": [{"postalCode": "LS1 4AP"}]
    })
}

fn glucose(id: &str, patient: &str) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-10-01T09:30:00Z",
        "valueQuantity": {"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
    })
}

fn allergy(id: &str, patient: &str) -> Value {
    json!({
        "resourceType": "AllergyIntolerance", "id": id,
        "identifier": [{"system": "https://example.nhs.uk/allergy", "value": "PEN-1"}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": "Allergy to penicillin"}]},
        "patient": {"reference": format!("Patient/{patient}")}
    })
}

fn source(id: &str, kind: SourceKind, base: &str, token: Option<&str>, deadline_ms: u64) -> Source {
    Source::new(
        SourceConfig {
            info: SourceInfo {
                id: id.into(),
                name: format!("{id} organisation"),
                ods_code: Some(id.to_ascii_uppercase()),
                kind,
                base_url: base.into(),
                resource_types: Vec::new(),
                freshness: Freshness::Live,
            },
            auth: token.map_or(Auth::None, |t| Auth::Bearer { token: t.into() }),
            deadline: Duration::from_millis(deadline_ms),
            fetch: FetchMode::Everything,
            ca_pem: None,
        },
        BreakerConfig {
            failures: 5,
            cool_down: Duration::from_secs(30),
        },
    )
    .unwrap()
}

/// The hub's copy of a record an edge announced.
async fn announce(hub: &TestApp, source: &str, local: &str, given: &str) -> String {
    let mut record = patient("x", given);
    record.as_object_mut().unwrap().remove("id");
    record["identifier"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": format!("{SOURCE_SYSTEM}{source}"), "value": local}));
    let reply = hub.json(Method::POST, "/fhir/Patient", &record).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

struct Region {
    hub: TestApp,
    patient: String,
    _edges: Vec<TestApp>,
}

/// A hub over a GP and a hospital edge that both hold the person, and four broken sources.
async fn region() -> Region {
    let (gp, gp_base) = edge(vec![
        patient("gp-1", "Grace"),
        json!({"resourceType": "Condition", "id": "c1",
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
               "subject": {"reference": "Patient/gp-1"}, "onsetDateTime": "2015-06-01"}),
        glucose("o1", "gp-1"),
        allergy("a1", "gp-1"),
    ])
    .await;
    let (acute, acute_base) = edge(vec![
        patient("acute-7", "Grace"),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
               "subject": {"reference": "Patient/acute-7"}, "period": {"start": "2026-10-01T08:00:00Z"}}),
        glucose("lab-9", "acute-7"),
        allergy("alg-3", "acute-7"),
    ])
    .await;
    let hanging = serve(Router::new().fallback(any(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "never"
    })))
    .await;
    let failing = serve(Router::new().fallback(any(|| async {
        (StatusCode::INTERNAL_SERVER_ERROR, "boom")
    })))
    .await;
    let invalid = serve(Router::new().fallback(any(|| async {
        (
            [("content-type", "application/fhir+json")],
            "{\"resourceType\": \"Bundle\", \"entry\": [",
        )
    })))
    .await;
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}/fhir")
    };
    let mut hub = TestApp::new();
    // The edges announce their people with system tokens.
    hub.token = common::mint_system(&hub.key, "identity-feed");
    let federation = Federation::new(
        FederationConfig {
            origin: "home".into(),
            name: "Home hub".into(),
            ods_code: None,
            max_hops: 1,
        },
        vec![
            source("gp", SourceKind::Gp, &gp_base, Some(&gp.token), 2500),
            source(
                "acute",
                SourceKind::Acute,
                &acute_base,
                Some(&acute.token),
                2500,
            ),
            source("hang", SourceKind::Community, &hanging, None, 300),
            source("fail", SourceKind::MentalHealth, &failing, None, 2500),
            source("invalid", SourceKind::Ambulance, &invalid, None, 2500),
            source("down", SourceKind::SocialCare, &down, None, 2500),
        ],
    );
    let mut hub = hub;
    hub.state.hub = hub.state.hub.clone().with_federation(federation);
    let first = announce(&hub, "gp", "gp-1", "Grace").await;
    for (s, local) in [
        ("acute", "acute-7"),
        ("hang", "h1"),
        ("fail", "f1"),
        ("invalid", "i1"),
        ("down", "d1"),
    ] {
        announce(&hub, s, local, "Grace").await;
    }
    // The views are asked for by a clinician at the GP practice, which holds the person's record.
    hub.token = common::mint_user(&hub.key, "alice", "clinician", Some("GP"), None);
    Region {
        hub,
        patient: first,
        _edges: vec![gp, acute],
    }
}

fn outcome_statuses(bundle: &Value) -> Vec<(String, String)> {
    let outcome = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["search"]["mode"] == "outcome" || e["resource"]["resourceType"] == "OperationOutcome"
        })
        .expect("an OperationOutcome naming the sources")["resource"]
        .clone();
    outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let id = i["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["url"].as_str().unwrap_or_default().ends_with("source-id"))
                .and_then(|e| e["valueString"].as_str())
                .unwrap_or("?")
                .to_string();
            (
                id,
                i["details"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
        })
        .collect()
}

fn of_type<'a>(bundle: &'a Value, t: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == t)
        .map(|e| &e["resource"])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_merges_every_source_and_names_each_failure() {
    let region = region().await;
    let reply = region
        .hub
        .send(
            Method::GET,
            &format!("/fhir/Patient/{}/$everything", region.patient),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let bundle = &reply.body;
    assert_eq!(bundle["type"], "searchset");

    // Both organisations' data is there, each tagged with where it came from.
    assert_eq!(of_type(bundle, "Condition").len(), 1);
    assert_eq!(of_type(bundle, "Encounter").len(), 1);
    assert_eq!(
        of_type(bundle, "Patient").len(),
        2,
        "each source's demographics are kept"
    );
    assert!(
        of_type(bundle, "Person").is_empty(),
        "the sources' own index resources are not part of the record"
    );
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        if resource["resourceType"] == "OperationOutcome" {
            continue;
        }
        let source = resource["meta"]["source"].as_str().unwrap();
        assert!(
            entry["fullUrl"].as_str().unwrap().starts_with(source),
            "fullUrl resolves against its source: {entry}"
        );
        assert!(
            resource["meta"]["extension"]
                .to_string()
                .contains("source-organization"),
            "{resource}"
        );
    }
    // The same glucose result and the same allergy, reported by both, appear once, and say who
    // else reported them.
    let observations = of_type(bundle, "Observation");
    assert_eq!(observations.len(), 1, "{observations:?}");
    assert!(observations[0].to_string().contains("also-reported-by"));
    assert_eq!(of_type(bundle, "AllergyIntolerance").len(), 1);

    // Every source is named: the hanging one timed out, the others failed in their own way.
    let statuses = outcome_statuses(bundle);
    let status = |id: &str| {
        statuses
            .iter()
            .find(|(s, _)| s == id)
            .map(|(_, c)| c.as_str())
            .unwrap_or_else(|| panic!("{id} is not named in {statuses:?}"))
    };
    assert_eq!(status("gp"), "ok");
    assert_eq!(status("acute"), "ok");
    assert_eq!(status("hang"), "timeout");
    assert_eq!(status("fail"), "failed");
    assert_eq!(status("invalid"), "invalid");
    assert_eq!(status("down"), "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_is_an_ips_document_across_sources() {
    let region = region().await;
    let reply = region
        .hub
        .send(
            Method::GET,
            &format!("/fhir/Patient/{}/$summary", region.patient),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let bundle = &reply.body;
    assert_eq!(bundle["type"], "document");
    let composition = &bundle["entry"][0]["resource"];
    assert_eq!(composition["resourceType"], "Composition");
    let section = |loinc: &str| {
        composition["section"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["code"]["coding"][0]["code"] == loinc)
            .cloned()
            .unwrap_or_else(|| panic!("no section {loinc}"))
    };
    assert_eq!(
        section("11450-4")["entry"].as_array().unwrap().len(),
        1,
        "problems"
    );
    assert_eq!(
        section("48765-2")["entry"].as_array().unwrap().len(),
        1,
        "allergies"
    );
    assert!(
        section("10160-0")["emptyReason"].is_object(),
        "no medications anywhere"
    );
    // Every reference in the composition resolves to an entry of the document.
    let full_urls: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["fullUrl"].as_str())
        .collect();
    for s in composition["section"].as_array().unwrap() {
        for e in s["entry"].as_array().into_iter().flatten() {
            let r = e["reference"].as_str().unwrap();
            assert!(full_urls.contains(&r), "{r} is not in the document");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_scoped_search_federates_and_pages() {
    let region = region().await;
    let reply = region
        .hub
        .send(
            Method::GET,
            &format!(
                "/fhir/Observation?patient={}&code=http://loinc.org|2339-0",
                region.patient
            ),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(of_type(&reply.body, "Observation").len(), 1);
    assert_eq!(reply.body["total"], 1);

    // Paging across sources: one resource a page, the next link leads to the rest.
    let reply = region
        .hub
        .send(
            Method::GET,
            &format!("/fhir/Patient/{}/$everything?_count=2", region.patient),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    let total = reply.body["total"].as_u64().unwrap();
    assert!(total >= 6, "{}", reply.body);
    // Every page ends with the sources' OperationOutcome.
    let mut seen = reply.body["entry"].as_array().unwrap().len() - 1;
    let mut next = reply.link("next");
    while let Some(url) = next {
        let path = url.strip_prefix(BASE).map(|p| format!("/fhir{p}")).unwrap();
        let page = region
            .hub
            .send(Method::GET, &path, &[], axum::body::Body::empty())
            .await;
        assert_eq!(page.status, StatusCode::OK);
        seen += page.body["entry"].as_array().unwrap().len() - 1;
        next = page.link("next");
    }
    assert_eq!(seen as u64, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_patient_is_404() {
    let region = region().await;
    let reply = region
        .hub
        .send(
            Method::GET,
            "/fhir/Patient/no-such-person/$everything",
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["resourceType"], "OperationOutcome");
}

/// Two hubs that list each other as region sources: a view at one asks the other once, and the
/// other does not ask back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_listing_each_other_never_loop() {
    let (north_edge, north_edge_base) = edge(vec![
        patient("n-5", "Grace"),
        json!({"resourceType": "Condition", "id": "nc1",
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195967001"}]},
               "subject": {"reference": "Patient/n-5"}}),
    ])
    .await;
    let mut south = TestApp::new();
    let mut north = TestApp::new();
    // Each hub's base is known only once it listens; listen first, then give each its sources
    // by rebuilding the state the listener serves.
    let north_state = Arc::new(std::sync::Mutex::new(north.state.clone()));
    let served = north_state.clone();
    let north_base = serve(
        Router::new().fallback(any(move |request: axum::extract::Request| {
            let state = served.lock().unwrap().clone();
            async move {
                use tower::ServiceExt;
                concord_rest::router(state).oneshot(request).await.unwrap()
            }
        })),
    )
    .await;
    let south_base = serve(concord_rest::router(south.state.clone())).await;
    let _ = south_base;
    north.state.hub = north.state.hub.clone().with_federation(Federation::new(
        FederationConfig {
            origin: "north".into(),
            name: "North hub".into(),
            ods_code: None,
            max_hops: 1,
        },
        vec![
            source(
                "north-acute",
                SourceKind::Acute,
                &north_edge_base,
                Some(&north_edge.token),
                2500,
            ),
            source(
                "south",
                SourceKind::Region,
                "http://127.0.0.1:9/fhir",
                None,
                500,
            ),
        ],
    ));
    *north_state.lock().unwrap() = north.state.clone();
    announce(&north, "north-acute", "n-5", "Grace").await;

    south.state.hub = south.state.hub.clone().with_federation(Federation::new(
        FederationConfig {
            origin: "south".into(),
            name: "South hub".into(),
            ods_code: None,
            max_hops: 1,
        },
        vec![source(
            "north",
            SourceKind::Region,
            &north_base,
            Some(&common::mint_system(&north.key, "south")),
            2500,
        )],
    ));
    // The person is asked about by a system caller here: this test is about the hop guard.
    south.token = common::mint_system(&south.key, "bench");
    let southern = announce(&south, "south-gp", "s-1", "Grace").await;
    let reply = south
        .send(
            Method::GET,
            &format!("/fhir/Patient/{southern}/$everything"),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Found across the boundary by NHS number, with the northern hospital named as the holder.
    let conditions = of_type(&reply.body, "Condition");
    assert_eq!(conditions.len(), 1, "{}", reply.body);
    assert!(
        conditions[0]
            .to_string()
            .contains("north-acute organisation")
    );
    let statuses = outcome_statuses(&reply.body);
    assert!(
        statuses.contains(&("north".into(), "ok".into())),
        "{statuses:?}"
    );
    // North did not ask its own region source (south) back: hop limit.
    assert!(
        statuses.contains(&("south".into(), "skipped".into())),
        "{statuses:?}"
    );

    // A patient-scoped search crosses the boundary the same way.
    let reply = south
        .send(
            Method::GET,
            &format!("/fhir/Condition?patient={southern}"),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(of_type(&reply.body, "Condition").len(), 1, "{}", reply.body);
    assert!(outcome_statuses(&reply.body).contains(&("north".into(), "ok".into())));

    // A request that says it has already crossed hubs is not passed on again.
    let reply = south
        .send(
            Method::GET,
            &format!("/fhir/Patient/{southern}/$everything"),
            &[("x-concord-hops", "1"), ("x-concord-origin", "elsewhere")],
            axum::body::Body::empty(),
        )
        .await;
    let statuses = outcome_statuses(&reply.body);
    assert!(
        statuses.contains(&("north".into(), "skipped".into())),
        "{statuses:?}"
    );
}

/// A source that ignores the patient search parameter (as some servers do, with only a warning)
/// answers with everyone's records; the view keeps only this person's and says the source
/// misbehaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_other_patients_are_never_shown() {
    let careless = serve(Router::new().fallback(any(|| async {
        let mut entries = vec![
            json!({"resource": patient("c1", "Grace")}),
            json!({"resource": patient("someone-else", "Harriet")}),
        ];
        for (id, subject) in [("mine", "c1"), ("theirs", "someone-else")] {
            entries.push(json!({"resource": glucose(id, subject)}));
        }
        (
            [("content-type", "application/fhir+json")],
            json!({"resourceType": "Bundle", "type": "searchset", "entry": entries}).to_string(),
        )
    })))
    .await;
    let mut hub = TestApp::new();
    hub.token = common::mint_system(&hub.key, "identity-feed");
    let mut careless_source = SourceConfig::new(
        SourceInfo {
            id: "careless".into(),
            name: "careless organisation".into(),
            ods_code: Some("Y00001".into()),
            kind: SourceKind::Gp,
            base_url: careless.clone(),
            resource_types: vec!["Patient".into(), "Observation".into()],
            freshness: Freshness::Live,
        },
        Auth::None,
    );
    careless_source.fetch = FetchMode::Search;
    hub.state.hub = hub.state.hub.clone().with_federation(Federation::new(
        FederationConfig {
            origin: "home".into(),
            name: "Home hub".into(),
            ods_code: None,
            max_hops: 1,
        },
        vec![Source::new(careless_source, BreakerConfig::default()).unwrap()],
    ));
    let id = announce(&hub, "careless", "c1", "Grace").await;
    hub.token = common::mint_user(&hub.key, "alice", "clinician", Some("Y00001"), None);
    for path in [
        format!("/fhir/Patient/{id}/$everything"),
        format!("/fhir/Observation?patient={id}"),
    ] {
        let reply = hub
            .send(Method::GET, &path, &[], axum::body::Body::empty())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let observations = of_type(&reply.body, "Observation");
        assert_eq!(observations.len(), 1, "{path}: {}", reply.body);
        assert_eq!(observations[0]["id"], "mine");
        assert!(
            of_type(&reply.body, "Patient")
                .iter()
                .all(|p| p["id"] != "someone-else"),
            "{path}"
        );
        let statuses = outcome_statuses(&reply.body);
        assert!(
            statuses.contains(&("careless".into(), "invalid".into())),
            "{path}: {statuses:?}"
        );
    }
}
