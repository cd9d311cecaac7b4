//! `concord serve`: the HTTP server, the MLLP listener and the identity feed's announcer when
//! configured, with graceful shutdown of all of them on SIGTERM and Ctrl-C.

use std::sync::Arc;

use anyhow::Context;
use concord_rest::AppState;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::config::Config;
use crate::{announce, node};

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = node::open_store(&config)?;
    let auth = node::auth_server(&config)?;
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot start the metrics recorder")?;
    let hub = node::hub(&config, store)?;
    let state = AppState {
        hub: hub.clone(),
        auth,
        base_url: (!config.server.base_url.is_empty()).then(|| config.server.base_url.clone()),
        max_body_bytes: config.server.max_body_bytes,
        metrics: Some(Arc::new(move || prometheus.render())),
    };
    let addr = config.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.store.data_dir.display(), "concord is serving FHIR at /fhir");
    // One shutdown signal stops both listeners; each finishes what it has in hand.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // The identity feed announces this node's Patients to the hub until shutdown.
    let announcer = config.announce_settings().map(|settings| {
        let cursor = config.store.data_dir.join("announce.cursor");
        let run = announce::run(hub.clone(), settings, cursor, wait(stopped.clone()));
        tokio::spawn(async move {
            if let Err(error) = run.await {
                tracing::error!(error = %format!("{error:#}"), "the identity feed could not start");
            }
        })
    });
    let mllp = match config.mllp_addr()? {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for MLLP on {addr}"))?;
            tracing::info!(address = %listener.local_addr()?, "concord is receiving HL7 v2 over MLLP");
            let mllp_config = concord_mllp::MllpConfig {
                max_message_bytes: config.mllp.max_message_bytes,
                idle_timeout: std::time::Duration::from_secs(config.mllp.idle_timeout_seconds),
                allowed_peers: config.mllp_peers()?,
                max_connections: config.mllp.max_connections,
            };
            Some(tokio::spawn(concord_mllp::serve(
                listener,
                hub,
                mllp_config,
                wait(stopped.clone()),
            )))
        }
        None => None,
    };
    // The peer address reaches handlers so sign-in attempts are limited per client address.
    let roots = node::roots(&config.server.base_url, listener.local_addr()?);
    let app = node::app(state, &roots, Vec::new())?
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(wait(stopped))
        .await
        .context("the server failed")?;
    if let Some(mllp) = mllp {
        let _ = mllp.await;
    }
    if let Some(announcer) = announcer {
        let _ = announcer.await;
    }
    tracing::info!("concord stopped");
    Ok(())
}

pub async fn shutdown_signal() {
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
