//! `concord serve`: the HTTP server with graceful shutdown on SIGTERM and Ctrl-C.

use std::sync::Arc;

use anyhow::Context;
use concord_rest::{AppState, router};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::config::Config;
use crate::node;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = node::open_store(&config)?;
    let key = node::node_key(&config.store.data_dir)?;
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot start the metrics recorder")?;
    let state = AppState {
        hub: node::hub(&config, store)?,
        key,
        base_url: (!config.server.base_url.is_empty()).then(|| config.server.base_url.clone()),
        max_body_bytes: config.server.max_body_bytes,
        metrics: Some(Arc::new(move || prometheus.render())),
    };
    let addr = config.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.store.data_dir.display(), "concord is serving FHIR at /fhir");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("concord stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
