//! `concord token issue`: mints an access token with the node's signing key (its ES256 key ring).
//!
//! Every token minted is recorded in the node's audit trail (who it is for, with which roles,
//! organisation, patient and scopes, and when it expires), like any other access.
//!
//! Does not: check that the subject exists or holds the roles named; the operator vouches for
//! what the token says, as for any token minted by hand.

use concord_auth::Claims;

use crate::config::Config;
use crate::node;

pub struct TokenRequest {
    pub sub: String,
    pub roles: Vec<String>,
    pub org: Option<String>,
    pub patient: Option<String>,
    /// The hub Patient ids a proxy may act for.
    pub proxy_for: Vec<String>,
    pub scope: String,
    pub system: bool,
    pub ttl_minutes: i64,
}

pub fn issue(config: &Config, request: TokenRequest) -> anyhow::Result<String> {
    if request.ttl_minutes <= 0 || request.ttl_minutes > 60 * 24 * 30 {
        anyhow::bail!("--ttl-minutes must be between 1 and 43200 (30 days)");
    }
    let auth = node::auth_server(config)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let base = if request.system {
        Claims::system(request.sub, request.scope)
    } else {
        Claims::user(request.sub, request.roles, request.org, request.scope)
    };
    let claims = Claims {
        iat: now,
        exp: now + request.ttl_minutes * 60,
        patient: request.patient,
        proxy_for: request.proxy_for,
        ..base
    };
    let token = auth
        .mint(&claims)
        .map_err(|e| anyhow::anyhow!("cannot mint the token: {e}"))?;
    audit_issue(config, &claims, now)?;
    Ok(token)
}

/// Records the minting in the audit trail before the token is handed out.
fn audit_issue(config: &Config, claims: &Claims, now: i64) -> anyhow::Result<()> {
    let trail = node::audit_trail(config)?;
    let mut query = vec![
        format!("sub={}", claims.sub),
        format!("kind={}", claims.kind),
        format!("scope={}", claims.scope),
        format!("exp={}", claims.exp),
    ];
    if !claims.roles.is_empty() {
        query.push(format!("roles={}", claims.roles.join(",")));
    }
    if let Some(org) = &claims.org {
        query.push(format!("org={org}"));
    }
    if !claims.proxy_for.is_empty() {
        query.push(format!("proxy_for={}", claims.proxy_for.join(",")));
    }
    let record = concord_audit::AuditRecord {
        recorded_ms: now.saturating_mul(1000),
        request_id: uuid::Uuid::new_v4().to_string(),
        action: concord_audit::Action::Execute,
        interaction: "login".into(),
        operation: Some("token-issue".into()),
        outcome: concord_audit::Outcome::Success,
        status: 200,
        agent: concord_audit::Agent {
            subject: "concord-cli".into(),
            kind: "system".into(),
            ..concord_audit::Agent::default()
        },
        purpose: "HOPERAT".into(),
        patients: claims.patient.iter().cloned().collect(),
        resource_type: None,
        resource_id: None,
        query: Some(query.join("&")),
        break_glass: None,
        denied_reason: None,
        observer: trail.observer().to_string(),
    };
    trail
        .record(record)
        .map_err(|e| anyhow::anyhow!("cannot record the token in the audit trail: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    #[test]
    fn every_minted_token_is_in_the_audit_trail() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(
            None,
            &Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Overrides::default()
            },
        )
        .unwrap();
        for sub in ["alice", "bob"] {
            issue(
                &config,
                TokenRequest {
                    sub: sub.into(),
                    roles: vec!["clinician".into()],
                    org: Some("Y09341".into()),
                    patient: None,
                    proxy_for: Vec::new(),
                    scope: "user/*.rs".into(),
                    system: false,
                    ttl_minutes: 5,
                },
            )
            .unwrap();
        }
        let trail = node::audit_trail(&config).unwrap();
        let ctx = concord_fhir::RequestContext::system("test", "t");
        assert_eq!(trail.verify(&ctx).unwrap(), 2);
        let events = trail
            .search(
                &ctx,
                &concord_store::AuditQuery {
                    limit: 10,
                    ..concord_store::AuditQuery::default()
                },
            )
            .unwrap();
        let records: Vec<concord_audit::AuditRecord> = events
            .iter()
            .filter_map(concord_audit::record_from_event)
            .collect();
        assert_eq!(records.len(), 2);
        assert!(
            records
                .iter()
                .all(|r| r.operation.as_deref() == Some("token-issue"))
        );
        let queries: Vec<&str> = records.iter().filter_map(|r| r.query.as_deref()).collect();
        assert!(
            queries.iter().any(|q| q.starts_with("sub=alice&")),
            "{queries:?}"
        );
        assert!(
            queries.iter().any(|q| q.contains("org=Y09341")),
            "{queries:?}"
        );
    }
}
