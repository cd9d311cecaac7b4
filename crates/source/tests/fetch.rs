//! The connector against real HTTP servers on loopback: fast, slow, hanging, refusing, failing,
//! retrying, garbled, paging, region-forwarding and oversized sources; `$everything` and per-type
//! search; `search` and `find_patients`; and the circuit breaker opening and recovering.
//!
//! No assertion is about time beyond "the call came back with the Timeout status".

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{Hits, bundle, config, ids, observation, outbound, patient, serve, source};
use concord_source::{
    Auth, BreakerConfig, BreakerState, FetchMode, Outbound, Source, SourceConfig, SourceStatus,
};
use serde_json::{Value, json};

fn fhir(value: Value) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
        value.to_string(),
    )
        .into_response()
}

fn with_deadline(base: &str, deadline: Duration) -> Source {
    let config = SourceConfig {
        deadline,
        ..config(base, Auth::None)
    };
    Source::new(config, BreakerConfig::default()).unwrap()
}

#[tokio::test]
async fn a_fast_source_answers_its_everything_and_receives_the_outbound_headers() {
    let seen: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
    let record = seen.clone();
    let base = serve(move |_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(move |uri: Uri, headers: HeaderMap| async move {
                record.lock().unwrap().push((uri.to_string(), headers));
                fhir(bundle(vec![patient("p1"), observation("o1")], None))
            }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, Some("2024-01-01T00:00:00Z"))
        .await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(ids(&result.resources), ["Patient/p1", "Observation/o1"]);
    assert!(result.forwarded_issues.is_empty());
    assert_eq!(result.source.id, "gp-a");
    let seen = seen.lock().unwrap();
    let (uri, headers) = &seen[0];
    assert_eq!(
        uri,
        "/fhir/Patient/p1/$everything?_count=100&_since=2024-01-01T00%3A00%3A00Z"
    );
    assert_eq!(headers["x-request-id"], "req-123");
    assert_eq!(headers["x-concord-origin"], "hub-north");
    assert_eq!(headers["x-concord-hops"], "1");
    assert_eq!(headers["accept"], "application/fhir+json");
    assert!(!headers.contains_key("authorization"));
}

#[tokio::test]
async fn a_slow_source_within_its_deadline_is_ok() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                fhir(bundle(vec![patient("p1")], None))
            }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(result.resources.len(), 1);
}

#[tokio::test]
async fn a_hanging_source_comes_back_with_timeout() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(std::future::pending::<Response>),
        )
    })
    .await;

    let result = with_deadline(&base, Duration::from_millis(300))
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(result.status, SourceStatus::Timeout { after_ms: 300 });
    assert!(result.resources.is_empty());
}

/// Operators see each source's calls by status in `/metrics`: the benchmark checks, after a load
/// run, that no call under load failed or timed out. The recorder is the exporter `concord serve`
/// installs, made local to this test's thread (the test runtime has one).
#[tokio::test]
async fn each_call_is_counted_by_source_and_status() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let base = serve(|_| {
        Router::new()
            .route(
                "/fhir/Patient/p1/$everything",
                get(|| async { fhir(bundle(vec![patient("p1")], None)) }),
            )
            .route(
                "/fhir/Patient/p2/$everything",
                get(std::future::pending::<Response>),
            )
    })
    .await;
    let source = with_deadline(&base, Duration::from_millis(200));

    let mut statuses = Vec::new();
    for patient in ["p1", "p1", "p2"] {
        let result = source.patient_data(&outbound(), patient, None, None).await;
        statuses.push(result.status);
    }
    assert_eq!(
        statuses,
        [
            SourceStatus::Ok,
            SourceStatus::Ok,
            SourceStatus::Timeout { after_ms: 200 }
        ]
    );

    let text = handle.render();
    assert!(
        text.contains(r#"concord_source_calls_total{source="gp-a",status="ok"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"concord_source_calls_total{source="gp-a",status="timeout"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"concord_source_call_duration_seconds_count{source="gp-a"} 3"#),
        "{text}"
    );
    assert!(!text.contains("p1") && !text.contains("p2"), "{text}");
}

#[tokio::test]
async fn the_deadline_counts_from_the_start_of_the_view() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(std::future::pending::<Response>),
        )
    })
    .await;
    // The hub spent 700 ms of a 1,000 ms deadline before asking: the source gets what is left,
    // so the view keeps to the deadline however long the hub took first.
    let out = Outbound {
        view_started: Some(Instant::now() - Duration::from_millis(700)),
        ..outbound()
    };
    let asked = Instant::now();
    let result = with_deadline(&base, Duration::from_millis(1000))
        .patient_data(&out, "p1", None, None)
        .await;
    assert_eq!(result.status, SourceStatus::Timeout { after_ms: 1000 });
    assert!(
        asked.elapsed() < Duration::from_millis(700),
        "the call waited {:?}, more than the 300 ms left",
        asked.elapsed()
    );
}

#[tokio::test]
async fn pages_gathered_before_the_deadline_are_kept_with_timeout() {
    let base = serve(|base| {
        Router::new()
            .route(
                "/fhir/Patient/{id}/$everything",
                get(move || async move {
                    fhir(bundle(
                        vec![patient("p1"), observation("o1")],
                        Some(format!("{base}/page2")),
                    ))
                }),
            )
            .route("/fhir/page2", get(std::future::pending::<Response>))
    })
    .await;

    let result = with_deadline(&base, Duration::from_millis(500))
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(result.status, SourceStatus::Timeout { after_ms: 500 });
    assert_eq!(ids(&result.resources), ["Patient/p1", "Observation/o1"]);
}

#[tokio::test]
async fn a_refused_connection_is_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    drop(listener);

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    let SourceStatus::Failed { reason } = &result.status else {
        panic!("expected Failed, got {:?}", result.status);
    };
    assert!(
        reason.starts_with("could not connect to the source"),
        "{reason}"
    );
    assert!(
        !reason.contains("p1") && !reason.contains("127.0.0.1"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_http_500_is_failed_and_not_retried() {
    let hits = Hits::default();
    let counter = hits.clone();
    let base = serve(move |_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(move || async move {
                counter.hit();
                (StatusCode::INTERNAL_SERVER_ERROR, "patient p1 exploded")
            }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(
        result.status,
        SourceStatus::Failed {
            reason: "the source answered HTTP 500".to_string()
        }
    );
    assert_eq!(hits.count(), 1);
}

#[tokio::test]
async fn a_503_is_retried_once() {
    let hits = Hits::default();
    let counter = hits.clone();
    let base = serve(move |_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(move || async move {
                if counter.hit() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    fhir(bundle(vec![patient("p1")], None))
                }
            }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(result.resources.len(), 1);
    assert_eq!(hits.count(), 2);
}

#[tokio::test]
async fn a_second_503_is_failed_after_one_retry() {
    let hits = Hits::default();
    let counter = hits.clone();
    let base = serve(move |_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(move || async move {
                counter.hit();
                StatusCode::SERVICE_UNAVAILABLE
            }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(
        result.status,
        SourceStatus::Failed {
            reason: "the source answered HTTP 503".to_string()
        }
    );
    assert_eq!(hits.count(), 2);
}

#[tokio::test]
async fn invalid_json_is_invalid() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async { "{\"resourceType\": \"Bundle\", \"entry\": [" }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    let SourceStatus::Invalid { reason } = &result.status else {
        panic!("expected Invalid, got {:?}", result.status);
    };
    assert!(
        reason.starts_with("the answer is not valid JSON"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_resource_that_is_not_a_bundle_is_invalid() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async { fhir(patient("p1")) }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(
        result.status,
        SourceStatus::Invalid {
            reason: "the answer is a Patient, not a Bundle".to_string()
        }
    );
}

#[tokio::test]
async fn three_pages_are_followed_by_their_next_links() {
    let base = serve(|base| {
        let first = base.clone();
        Router::new()
            .route(
                "/fhir/Patient/{id}/$everything",
                get(move || async move {
                    fhir(bundle(
                        vec![patient("p1"), observation("o1")],
                        Some(format!("{first}?_getpages=abc&_offset=2")),
                    ))
                }),
            )
            .route(
                "/fhir",
                get(move |Query(q): Query<Vec<(String, String)>>| async move {
                    let offset = q.iter().find(|(k, _)| k == "_offset").unwrap().1.clone();
                    match offset.as_str() {
                        // The second page's link is relative; it resolves against the page.
                        "2" => fhir(bundle(
                            vec![observation("o2"), observation("o3")],
                            Some("?_getpages=abc&_offset=4".to_string()),
                        )),
                        _ => fhir(bundle(vec![observation("o4")], None)),
                    }
                }),
            )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(
        ids(&result.resources),
        [
            "Patient/p1",
            "Observation/o1",
            "Observation/o2",
            "Observation/o3",
            "Observation/o4"
        ]
    );
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async {
                fhir(bundle(
                    vec![patient("p1")],
                    Some("http://127.0.0.2:9/fhir?page=2".to_string()),
                ))
            }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(
        result.status,
        SourceStatus::Invalid {
            reason: "the Bundle's next link leaves the source's origin".to_string()
        }
    );
}

#[tokio::test]
async fn a_region_hubs_outcome_entry_becomes_forwarded_issues() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async {
                fhir(json!({
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [
                        {"resource": patient("p1"), "search": {"mode": "match"}},
                        {"resource": observation("o1"), "search": {"mode": "match"}},
                        {"fullUrl": "urn:uuid:0b6f2d1e-8f5c-4f57-9c3c-5a3b3f1a2b3c",
                         "resource": {"resourceType": "OperationOutcome", "issue": [
                            {"severity": "information", "code": "informational", "diagnostics": "Acute (rx1) answered"},
                            {"severity": "warning", "code": "timeout", "diagnostics": "Hospice (hx1) did not answer"}
                         ]},
                         "search": {"mode": "outcome"}}
                    ]
                }))
            }),
        )
    })
    .await;

    let result = source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(ids(&result.resources), ["Patient/p1", "Observation/o1"]);
    assert_eq!(result.forwarded_issues.len(), 2);
    assert_eq!(result.forwarded_issues[1]["code"], "timeout");
}

#[tokio::test]
async fn an_unknown_patient_is_failed_without_tripping_the_breaker() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async { StatusCode::NOT_FOUND }),
        )
    })
    .await;
    let breaker = BreakerConfig {
        failures: 1,
        cool_down: Duration::from_secs(60),
    };
    let source = Source::new(config(&base, Auth::None), breaker).unwrap();

    for _ in 0..3 {
        let result = source.patient_data(&outbound(), "p1", None, None).await;
        assert_eq!(
            result.status,
            SourceStatus::Failed {
                reason: "the source has no record of this patient (HTTP 404)".to_string()
            }
        );
    }
    assert_eq!(source.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_invalid() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async {
                let many = (0..200).map(|i| observation(&format!("o{i}"))).collect();
                fhir(bundle(many, None))
            }),
        )
    })
    .await;

    let result = source(&base)
        .with_response_limit(4096)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(
        result.status,
        SourceStatus::Invalid {
            reason: "the answer from the source is larger than 4096 bytes".to_string()
        }
    );
}

#[tokio::test]
async fn a_streamed_answer_is_cut_off_at_the_size_limit() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(|| async {
                // No Content-Length: the limit has to hold while reading.
                let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000]));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
    })
    .await;

    let result = source(&base)
        .with_response_limit(4096)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(
        result.status,
        SourceStatus::Invalid {
            reason: "the answer from the source is larger than 4096 bytes".to_string()
        }
    );
}

#[tokio::test]
async fn requested_types_narrow_everything_to_those_the_source_serves() {
    let queries: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = queries.clone();
    let base = serve(move |_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(move |uri: Uri| async move {
                record
                    .lock()
                    .unwrap()
                    .push(uri.query().unwrap_or("").to_string());
                fhir(bundle(vec![observation("o1")], None))
            }),
        )
    })
    .await;
    let mut config = config(&base, Auth::None);
    config.info.resource_types = vec!["Patient".to_string(), "Observation".to_string()];
    let source = Source::new(config, BreakerConfig::default()).unwrap();

    let wanted = ["Observation".to_string(), "Flag".to_string()];
    let result = source
        .patient_data(&outbound(), "p1", Some(&wanted), None)
        .await;
    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(
        queries.lock().unwrap().as_slice(),
        ["_count=100&_type=Observation"]
    );

    let unserved = ["Flag".to_string()];
    let result = source
        .patient_data(&outbound(), "p1", Some(&unserved), None)
        .await;
    assert_eq!(
        result.status,
        SourceStatus::Skipped {
            reason: "the source serves none of the requested resource types".to_string()
        }
    );
    assert_eq!(
        queries.lock().unwrap().len(),
        1,
        "a skipped call sends nothing"
    );
}

/// A source without `$everything`: one search per served type, each paged.
fn search_mode_server(patient_found: bool) -> impl FnOnce(String) -> Router {
    move |base| {
        Router::new()
            .route(
                "/fhir/Patient",
                get(move |Query(q): Query<Vec<(String, String)>>| async move {
                    assert!(q.contains(&("_id".to_string(), "p1".to_string())));
                    let found = if patient_found {
                        vec![patient("p1")]
                    } else {
                        vec![]
                    };
                    fhir(bundle(found, None))
                }),
            )
            .route(
                "/fhir/Condition",
                get(|Query(q): Query<Vec<(String, String)>>| async move {
                    assert!(q.contains(&("patient".to_string(), "p1".to_string())));
                    fhir(bundle(
                        vec![json!({"resourceType": "Condition", "id": "c1"})],
                        None,
                    ))
                }),
            )
            .route(
                "/fhir/Observation",
                get(move |Query(q): Query<Vec<(String, String)>>| async move {
                    assert!(q.contains(&("patient".to_string(), "p1".to_string())));
                    if q.iter().any(|(k, _)| k == "page") {
                        fhir(bundle(vec![observation("o2")], None))
                    } else {
                        fhir(bundle(
                            vec![observation("o1")],
                            Some(format!("{base}/Observation?patient=p1&page=2")),
                        ))
                    }
                }),
            )
    }
}

fn search_mode_source(base: &str) -> Source {
    let mut config = config(base, Auth::None);
    config.fetch = FetchMode::Search;
    config.info.resource_types = ["Patient", "Condition", "Observation"]
        .map(String::from)
        .to_vec();
    Source::new(config, BreakerConfig::default()).unwrap()
}

#[tokio::test]
async fn search_mode_searches_each_served_type_and_follows_their_pages() {
    let base = serve(search_mode_server(true)).await;

    let result = search_mode_source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(
        ids(&result.resources),
        [
            "Patient/p1",
            "Condition/c1",
            "Observation/o1",
            "Observation/o2"
        ]
    );
}

#[tokio::test]
async fn search_mode_without_the_patient_is_failed() {
    let base = serve(search_mode_server(false)).await;

    let result = search_mode_source(&base)
        .patient_data(&outbound(), "p1", None, None)
        .await;

    assert_eq!(
        result.status,
        SourceStatus::Failed {
            reason: "the source has no record of this patient".to_string()
        }
    );
}

#[tokio::test]
async fn search_stops_at_its_limit_and_passes_its_parameters() {
    let queries: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = queries.clone();
    let base = serve(move |base| {
        Router::new().route(
            "/fhir/Observation",
            get(move |uri: Uri| async move {
                let query = uri.query().unwrap_or("").to_string();
                record.lock().unwrap().push(query.clone());
                let page: usize = if query.contains("page=2") { 2 } else { 1 };
                let resources = (0..3)
                    .map(|i| observation(&format!("o{page}{i}")))
                    .collect();
                fhir(bundle(
                    resources,
                    Some(format!("{base}/Observation?code=x&page={}", page + 1)),
                ))
            }),
        )
    })
    .await;
    let params = [
        ("patient".to_string(), "p1".to_string()),
        ("code".to_string(), "http://loinc.org|8867-4".to_string()),
    ];

    let result = source(&base)
        .search(&outbound(), "Observation", &params, 5)
        .await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(
        ids(&result.resources),
        [
            "Observation/o10",
            "Observation/o11",
            "Observation/o12",
            "Observation/o20",
            "Observation/o21"
        ]
    );
    let queries = queries.lock().unwrap();
    assert_eq!(queries.len(), 2, "no page is fetched past the limit");
    assert_eq!(
        queries[0],
        "patient=p1&code=http%3A%2F%2Floinc.org%7C8867-4&_count=5"
    );
}

#[tokio::test]
async fn search_of_a_type_the_source_does_not_serve_is_skipped() {
    let mut config = config("http://127.0.0.1:9/fhir", Auth::None);
    config.info.resource_types = vec!["Observation".to_string()];
    let source = Source::new(config, BreakerConfig::default()).unwrap();

    let result = source.search(&outbound(), "Flag", &[], 10).await;

    assert_eq!(
        result.status,
        SourceStatus::Skipped {
            reason: "the source does not serve Flag".to_string()
        }
    );
}

#[tokio::test]
async fn find_patients_searches_patients_by_identifier() {
    let base = serve(|_| {
        Router::new().route(
            "/fhir/Patient",
            get(
                |headers: HeaderMap, Query(q): Query<Vec<(String, String)>>| async move {
                    assert_eq!(headers["x-concord-hops"], "1");
                    let wanted = (
                        "identifier".to_string(),
                        "https://fhir.nhs.uk/Id/nhs-number|9434765919".to_string(),
                    );
                    let found = if q.contains(&wanted) {
                        vec![patient("r-77")]
                    } else {
                        vec![]
                    };
                    fhir(bundle(found, None))
                },
            ),
        )
    })
    .await;
    let params = [(
        "identifier".to_string(),
        "https://fhir.nhs.uk/Id/nhs-number|9434765919".to_string(),
    )];

    let result = source(&base).find_patients(&outbound(), &params).await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(ids(&result.resources), ["Patient/r-77"]);
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_a_trial_call_closes_it() {
    #[derive(Clone)]
    struct Flaky {
        healthy: Arc<Mutex<bool>>,
        hits: Hits,
    }
    let flaky = Flaky {
        healthy: Arc::new(Mutex::new(false)),
        hits: Hits::default(),
    };
    let state = flaky.clone();
    let base = serve(move |_| {
        Router::new()
            .route(
                "/fhir/Patient/{id}/$everything",
                get(|State(flaky): State<Flaky>| async move {
                    flaky.hits.hit();
                    if *flaky.healthy.lock().unwrap() {
                        fhir(bundle(vec![patient("p1")], None))
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                }),
            )
            .with_state(state)
    })
    .await;
    let cool_down = Duration::from_millis(300);
    let breaker = BreakerConfig {
        failures: 2,
        cool_down,
    };
    let source = Source::new(config(&base, Auth::None), breaker).unwrap();
    let out = outbound();
    let call = || source.patient_data(&out, "p1", None, None);

    assert!(matches!(call().await.status, SourceStatus::Failed { .. }));
    assert_eq!(source.breaker_state(), BreakerState::Closed);
    assert!(matches!(call().await.status, SourceStatus::Failed { .. }));
    assert_eq!(source.breaker_state(), BreakerState::Open);
    assert_eq!(call().await.status, SourceStatus::BreakerOpen);
    assert_eq!(flaky.hits.count(), 2, "an open breaker sends nothing");

    *flaky.healthy.lock().unwrap() = true;
    // Waiting out the cool-down; nothing asserts how long anything took.
    tokio::time::sleep(cool_down * 2).await;
    assert_eq!(source.breaker_state(), BreakerState::HalfOpen);
    let trial = call().await;
    assert_eq!(trial.status, SourceStatus::Ok);
    assert_eq!(source.breaker_state(), BreakerState::Closed);
    assert_eq!(call().await.status, SourceStatus::Ok);
    assert_eq!(flaky.hits.count(), 4);
}

#[tokio::test]
async fn a_failed_trial_call_reopens_the_breaker() {
    let hits = Hits::default();
    let counter = hits.clone();
    let base = serve(move |_| {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(move || async move {
                counter.hit();
                "not json"
            }),
        )
    })
    .await;
    let cool_down = Duration::from_millis(200);
    let breaker = BreakerConfig {
        failures: 1,
        cool_down,
    };
    let source = Source::new(config(&base, Auth::None), breaker).unwrap();

    let first = source.patient_data(&outbound(), "p1", None, None).await;
    assert!(matches!(first.status, SourceStatus::Invalid { .. }));
    assert_eq!(source.breaker_state(), BreakerState::Open);
    tokio::time::sleep(cool_down * 2).await;
    let trial = source.patient_data(&outbound(), "p1", None, None).await;
    assert!(matches!(trial.status, SourceStatus::Invalid { .. }));
    assert_eq!(source.breaker_state(), BreakerState::Open);
    assert_eq!(hits.count(), 2);
}

#[test]
fn calls_are_send_so_the_hub_can_spawn_them() {
    fn assert_send<T: Send>(_: &T) {}
    let source = source("http://127.0.0.1:9/fhir");
    let out = outbound();
    let types = vec!["Observation".to_string()];
    assert_send(&source.patient_data(&out, "p1", Some(&types), None));
    assert_send(&source.search(&out, "Observation", &[], 10));
    assert_send(&source.find_patients(&out, &[]));
}

#[test]
fn a_base_url_that_is_not_http_is_a_setup_error() {
    for base in ["ftp://x/fhir", "not a url", "mailto:a@b"] {
        let error = Source::new(config(base, Auth::None), BreakerConfig::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "source gp-a: the base URL is not an http or https URL"
        );
    }
}
