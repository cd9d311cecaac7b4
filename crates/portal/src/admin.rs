//! (being written)

use axum::Router;

use crate::PortalState;

pub fn routes() -> Router<PortalState> {
    Router::new()
}
