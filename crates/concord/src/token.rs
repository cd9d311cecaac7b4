//! `concord token issue`: mints an access token with the node's signing key (its ES256 key ring).
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
    auth.mint(&claims)
        .map_err(|e| anyhow::anyhow!("cannot mint the token: {e}"))
}
