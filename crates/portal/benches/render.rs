//! How long the single view takes to render from a fetched `$summary` Bundle, and how heavy the
//! page is: `cargo bench -p concord-portal --bench render`.
//!
//! Owns: the render benchmark over `tests/fixtures/summary.json`, a real `$summary` answer saved
//! from `concord demo --people 12` (synthetic people: Patricia Wilson, the record with the most
//! sources, 520 entries from 5 organisations; `related.json` beside it is the same person's
//! `$everything?_type=Patient,RelatedPerson`, used by the tests). Does not: measure the fetch (the
//! FHIR API's own benchmarks do; the page sends both as `Server-Timing`). Targets: render p95
//! within 50 ms of the fetch, page weight at most 150 KB.

use std::hint::black_box;

use concord_portal::session::Session;
use concord_portal::view::{ViewOptions, render};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/summary.json");
    let text = std::fs::read_to_string(path).expect("the $summary fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn session() -> Session {
    Session {
        id: "bench".into(),
        csrf: "bench-csrf".into(),
        access_token: "bench-token".into(),
        user: "gp.clinician".into(),
        roles: vec!["clinician".into()],
        org: Some("Y09341".into()),
        patient: None,
        proxy_for: Vec::new(),
        expires: i64::MAX,
    }
}

fn bench_render(c: &mut Criterion) {
    let summary = fixture();
    let session = session();
    let options = ViewOptions {
        patient_id: "bench",
        today: "2026-12-03",
        urgent_first: false,
        break_glass: None,
        related: None,
    };
    let page = render(&summary, &options, Some(&session)).into_string();
    let entries = summary["entry"].as_array().map_or(0, Vec::len);
    println!(
        "single view: {entries} Bundle entries -> {} bytes of HTML ({:.1} KB; target <= 150 KB)",
        page.len(),
        page.len() as f64 / 1024.0
    );
    c.bench_function("view::render ($summary fixture)", |b| {
        b.iter(|| render(black_box(&summary), black_box(&options), Some(&session)))
    });
    let urgent = ViewOptions {
        urgent_first: true,
        ..options.clone()
    };
    c.bench_function("view::render (paramedic order)", |b| {
        b.iter(|| render(black_box(&summary), black_box(&urgent), Some(&session)))
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
