//! Scaffolding shared by the connector's tests: real axum servers on 127.0.0.1:0, a source
//! configured against them, the outbound facts, and Bundle builders. Owns no assertions.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use concord_federation::{Freshness, SourceInfo, SourceKind};
use concord_source::{Auth, BreakerConfig, Outbound, Source, SourceConfig};
use serde_json::{Value, json};

/// Serves the router `make(base)` builds, where `base` is the FHIR base URL
/// (`http://127.0.0.1:PORT/fhir`) the server answers on, so handlers can write absolute links.
pub async fn serve(make: impl FnOnce(String) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let router = make(base.clone());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    base
}

pub fn info(base: &str) -> SourceInfo {
    SourceInfo {
        id: "gp-a".to_string(),
        name: "Riverside Medical Practice".to_string(),
        ods_code: Some("A81001".to_string()),
        kind: SourceKind::Gp,
        base_url: base.to_string(),
        resource_types: Vec::new(),
        freshness: Freshness::Live,
    }
}

/// A configuration with a generous deadline: only the timeout tests shorten it.
pub fn config(base: &str, auth: Auth) -> SourceConfig {
    SourceConfig {
        deadline: Duration::from_secs(20),
        ..SourceConfig::new(info(base), auth)
    }
}

pub fn source(base: &str) -> Source {
    Source::new(config(base, Auth::None), BreakerConfig::default()).unwrap()
}

pub fn outbound() -> Outbound {
    Outbound {
        request_id: "req-123".to_string(),
        origin: "hub-north".to_string(),
        hops: 1,
        view_started: None,
    }
}

pub fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id})
}

pub fn observation(id: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final"})
}

/// A searchset Bundle of `resources` with an optional `next` link.
pub fn bundle(resources: Vec<Value>, next: Option<String>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| json!({"resource": resource, "search": {"mode": "match"}}))
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    if let Some(next) = next {
        bundle["link"] = json!([{"relation": "next", "url": next}]);
    }
    bundle
}

/// A request counter handlers share with the test.
#[derive(Clone, Default)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn ids(resources: &[concord_federation::Resource]) -> Vec<String> {
    resources
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r.get_str("resourceType").unwrap(),
                r.get_str("id").unwrap()
            )
        })
        .collect()
}
