//! Recorded sources for the federated view benchmark: each FILE (a searchset Bundle a real source
//! once answered) is served by its own real HTTP server on a loopback port, which answers every GET
//! with that Bundle after DELAY_MS, as a source system that takes that long would. Prints
//! `ID BASE_URL` per source (ID is the file's stem), then serves until killed.
//!
//! Owns only replaying: the benchmark then measures a real `concord serve` hub over these
//! sources, so the hub's own cost is not hidden by the cost of running real sources on the same
//! two cores (tools/bench/federation.sh, docs/performance.md).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::any;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: recorded_sources DELAY_MS FILE...";
    let delay = Duration::from_millis(args.next().ok_or(usage)?.parse()?);
    let files: Vec<String> = args.collect();
    if files.is_empty() {
        return Err(usage.into());
    }
    for file in files {
        let mut bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
        // One page: a recorded `next` link would point back at the real source.
        if let Some(obj) = bundle.as_object_mut() {
            obj.remove("link");
        }
        // Shared, not copied, by every answer: the sources run on the hub's two cores, and the
        // less they take the more the figure is the hub's.
        let body = Bytes::from(serde_json::to_string(&bundle)?);
        let id = std::path::Path::new(&file)
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("a file name is not UTF-8")?
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{id} http://{}/fhir", listener.local_addr()?);
        let app = Router::new().fallback(any(move || {
            let body = body.clone();
            async move {
                tokio::time::sleep(delay).await;
                ([("content-type", "application/fhir+json")], body).into_response()
            }
        }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}
