//! Finding a person (being written: the clinician helper replaces this placeholder).

use axum::Router;
use axum::routing::get;
use maud::{Markup, html};

use crate::error::PortalError;
use crate::signin::SignedIn;
use crate::{PortalState, layout};

pub fn routes() -> Router<PortalState> {
    Router::new().route("/portal/search", get(search))
}

async fn search(signed_in: SignedIn) -> Result<Markup, PortalError> {
    Ok(layout::page(
        "Find a person",
        Some(&signed_in.session),
        html! { h1 { "Find a person" } },
    ))
}
