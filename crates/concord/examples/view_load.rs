//! The federated view benchmark's load generator: `concurrency` clients ask a hub for one
//! person's view (`$summary` by default) for `seconds`, and it reports views per second, the
//! latency, and the hub's overhead: each view's time minus its slowest source's time, read from
//! the view's own per-source OperationOutcome (`source-elapsed`). Used by
//! `tools/bench/federation.sh`; see docs/performance.md. The load runs for two seconds before the
//! measured window opens (`WARM_UP`).
//!
//! Owns only measuring; it checks every answer is a 200 with the expected shape in which no
//! source failed, timed out, was cut off by its breaker or answered unusably, and counts the rest
//! as errors, so a fast wrong answer never looks like a good figure. It prints how many resources
//! a view held, so an empty view cannot pass for a fast one either.

use std::time::{Duration, Instant};

use serde::Deserialize;

#[derive(Deserialize)]
struct View {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    resource: Option<Resource>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    issue: Vec<Issue>,
}

#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    extension: Vec<Extension>,
    details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    coding: Vec<Coding>,
}

#[derive(Deserialize)]
struct Coding {
    code: Option<String>,
}

/// Source statuses that make a view wrong for the benchmark (`skipped`, a region that does not
/// know the person, and `stale` are what the region really holds).
const FAILED_STATUSES: [&str; 4] = ["failed", "timeout", "breaker-open", "invalid"];

#[derive(Deserialize)]
struct Extension {
    url: String,
    #[serde(rename = "valueQuantity")]
    value_quantity: Option<Quantity>,
}

#[derive(Deserialize)]
struct Quantity {
    value: Option<f64>,
}

/// How long the full load runs before the measured window opens.
const WARM_UP: Duration = Duration::from_secs(2);

const ELAPSED: &str = "https://concord.health/fhir/StructureDefinition/source-elapsed";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: view_load URL TOKEN [CONCURRENCY=16] [SECONDS=10]";
    let url = args.next().ok_or(usage)?;
    let token = args.next().ok_or(usage)?;
    let concurrency: usize = args.next().map_or(Ok(16), |s| s.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |s| s.parse())?;
    // Plain HTTP to a local hub; TLS is configured only because this reqwest build brings no
    // crypto provider of its own.
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(concurrency)
        .build()?;

    // One view first, so a hub that cannot answer fails the run at once.
    view(&client, &url, &token)
        .await
        .map_err(|e| format!("the first view failed: {e}"))?;
    // Then the full load for WARM_UP before anything is measured, as criterion warms up: the
    // connections, the hub's pools, its allocator's heap and a fresh store's first pages are
    // made then, and a view that started before the measured window is not counted. An error
    // is counted whenever it happens.
    let measured_from = Instant::now() + WARM_UP;
    let end = measured_from + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let (mut errors, mut warm_up) = (0u64, 0u64);
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                match view(&client, &url, &token).await {
                    Ok(sample) if started >= measured_from => samples.push(sample),
                    Ok(_) => warm_up += 1,
                    Err(_) => errors += 1,
                }
            }
            (samples, errors, warm_up)
        }));
    }
    let mut samples = Vec::new();
    // The first view counts as warm-up.
    let (mut errors, mut warm_up) = (0, 1);
    for worker in workers {
        let (s, e, w) = worker.await?;
        samples.extend(s);
        errors += e;
        warm_up += w;
    }
    let wall = measured_from.elapsed().as_secs_f64().max(seconds as f64);
    if samples.is_empty() {
        return Err("no view succeeded".into());
    }
    let mut latency: Vec<f64> = samples.iter().map(|s| s.0).collect();
    let mut overhead: Vec<f64> = samples.iter().map(|s| (s.0 - s.1).max(0.0)).collect();
    let mut slowest: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let (fewest, most) = samples
        .iter()
        .fold((usize::MAX, 0), |(lo, hi), s| (lo.min(s.2), hi.max(s.2)));
    println!(
        "views: {}  errors: {errors}  concurrency: {concurrency}  views/s: {:.0}  resources a view: {fewest}..{most}",
        samples.len(),
        samples.len() as f64 / wall
    );
    // What a whole-process count (tools/bench/instructions.sh) divides by.
    println!(
        "views answered in all, warm-up included: {}",
        samples.len() as u64 + warm_up
    );
    println!(
        "latency ms      p50 {:6.2}  p99 {:6.2}  max {:6.2}",
        pct(&mut latency, 0.50),
        pct(&mut latency, 0.99),
        pct(&mut latency, 1.0)
    );
    println!(
        "slowest source  p50 {:6.2}  p99 {:6.2}",
        pct(&mut slowest, 0.50),
        pct(&mut slowest, 0.99)
    );
    println!(
        "hub overhead    p50 {:6.2}  p99 {:6.2}  (view time minus its slowest source)",
        pct(&mut overhead, 0.50),
        pct(&mut overhead, 0.99)
    );
    Ok(())
}

/// One view: (latency ms, slowest source ms, resources in it).
async fn view(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<(f64, f64, usize), Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    let response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    let latency = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        return Err(format!("HTTP {status}").into());
    }
    // Read only what is measured; the rest is checked to be well-formed JSON but not built, so
    // the load generator's own CPU (on the same machine) stays small.
    let view: View = serde_json::from_slice(&body)?;
    let mut slowest: f64 = 0.0;
    let mut outcomes = 0;
    let mut resources = 0;
    for entry in view.entry {
        let Some(resource) = entry.resource else {
            continue;
        };
        if resource.resource_type != "OperationOutcome" {
            resources += 1;
            continue;
        }
        outcomes += 1;
        for issue in resource.issue {
            let codes = issue.details.iter().flat_map(|d| &d.coding);
            if let Some(code) = codes
                .filter_map(|c| c.code.as_deref())
                .find(|code| FAILED_STATUSES.contains(code))
            {
                return Err(format!("a source's status is {code}").into());
            }
            for ext in issue.extension {
                if ext.url == ELAPSED
                    && let Some(ms) = ext.value_quantity.and_then(|q| q.value)
                {
                    slowest = slowest.max(ms);
                }
            }
        }
    }
    if outcomes == 0 {
        return Err("the view names no sources".into());
    }
    Ok((latency, slowest, resources))
}

fn pct(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i.min(values.len() - 1)]
}
