//! `concord token issue`: mints an access token with the node's key.

use concord_rest::auth::{Claims, ISSUER};

use crate::config::Config;
use crate::node;

pub struct TokenRequest {
    pub sub: String,
    pub roles: Vec<String>,
    pub org: Option<String>,
    pub patient: Option<String>,
    pub scope: String,
    pub system: bool,
    pub ttl_minutes: i64,
}

pub fn issue(config: &Config, request: TokenRequest) -> anyhow::Result<String> {
    if request.ttl_minutes <= 0 || request.ttl_minutes > 60 * 24 * 30 {
        anyhow::bail!("--ttl-minutes must be between 1 and 43200 (30 days)");
    }
    let key = node::node_key(&config.store.data_dir)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let claims = Claims {
        iss: ISSUER.into(),
        sub: request.sub,
        iat: now,
        exp: now + request.ttl_minutes * 60,
        scope: request.scope,
        kind: if request.system {
            "system".into()
        } else {
            "user".into()
        },
        roles: request.roles,
        org: request.org,
        patient: request.patient,
        purpose: None,
    };
    key.mint(&claims).map_err(anyhow::Error::msg)
}
