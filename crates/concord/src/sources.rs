//! Building the hub's federation from the source registry in the configuration: one
//! `concord_source::Source` per `[[sources]]` entry, with its secrets read from the environment
//! variables and files the entry names.
//!
//! Owns: turning checked configuration into connectors. Does not: check the values (config.rs
//! does, at start) or talk to any source (connectors do, per request).

use std::time::Duration;

use anyhow::Context;
use concord_federation::{Freshness, SourceInfo, SourceKind};
use concord_hub::federate::{Federation, FederationConfig};
use concord_source::{Auth, BreakerConfig, FetchMode, Source, SourceConfig};

use crate::config::{Config, SourceAuth, SourceEntry};

/// The federation of a hub; `None` when no sources are configured (an edge).
pub fn federation(config: &Config) -> anyhow::Result<Option<Federation>> {
    if config.sources.is_empty() {
        return Ok(None);
    }
    let breaker = BreakerConfig {
        failures: config.federation.breaker_failures,
        cool_down: Duration::from_millis(config.federation.breaker_cool_down_ms),
    };
    let mut sources = Vec::new();
    for entry in &config.sources {
        let source = Source::new(source_config(entry)?, breaker)
            .with_context(|| format!("source {:?} cannot be set up", entry.id))?;
        sources.push(source);
    }
    Ok(Some(Federation::new(
        FederationConfig {
            origin: config.federation.origin.clone(),
            name: config.federation.name.clone(),
            ods_code: Some(config.federation.ods_code.clone()).filter(|c| !c.is_empty()),
            max_hops: config.federation.max_hops,
        },
        sources,
    )))
}

/// One registry entry as a connector's configuration.
pub fn source_config(entry: &SourceEntry) -> anyhow::Result<SourceConfig> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("source {:?}: cannot read {}", entry.id, path.display()))
    };
    let auth = match &entry.auth {
        SourceAuth::None => Auth::None,
        SourceAuth::Bearer { token_env } => Auth::Bearer {
            token: Config::secret(token_env)?,
        },
        SourceAuth::ClientCredentials {
            token_url,
            client_id,
            client_secret_env,
            scope,
        } => Auth::ClientCredentials {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            client_secret: Config::secret(client_secret_env)?,
            scope: scope.clone(),
        },
        SourceAuth::PrivateKeyJwt {
            token_url,
            client_id,
            key_file,
            algorithm,
            kid,
            scope,
        } => Auth::PrivateKeyJwt {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            key_pem: read(key_file)?,
            algorithm: algorithm.clone(),
            kid: kid.clone(),
            scope: scope.clone(),
        },
        SourceAuth::MutualTls {
            cert_file,
            key_file,
        } => Auth::MutualTls {
            cert_pem: read(cert_file)?,
            key_pem: read(key_file)?,
        },
    };
    let freshness = if entry.freshness == "batch" {
        Freshness::Batch {
            last_load_ms: entry
                .last_load
                .as_deref()
                .and_then(concord_fhir::primitive::date_range)
                .map(|r| r.low),
            max_age_ms: i64::try_from(entry.max_age_hours)
                .unwrap_or(i64::MAX / 3_600_000)
                .saturating_mul(3_600_000),
        }
    } else {
        Freshness::Live
    };
    Ok(SourceConfig {
        info: SourceInfo {
            id: entry.id.clone(),
            name: entry.name.clone(),
            ods_code: entry.ods_code.clone().filter(|c| !c.is_empty()),
            kind: SourceKind::parse(&entry.kind).context("checked at load")?,
            base_url: entry.base_url.trim_end_matches('/').to_string(),
            resource_types: entry.resource_types.clone(),
            freshness,
        },
        auth,
        deadline: Duration::from_millis(entry.deadline_ms),
        fetch: if entry.fetch == "everything" {
            FetchMode::Everything
        } else {
            FetchMode::Search
        },
        ca_pem: None,
    })
}
