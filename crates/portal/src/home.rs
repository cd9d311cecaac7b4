//! The portal's front page: where a signed-in person starts, and for everyone else the sign-in
//! button (and, on a demo node, the demo's accounts).
//!
//! Owns `GET /portal/`. Does not: sign anyone in (`signin` does).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::signin::home_of;
use crate::{PortalState, layout};

/// `GET /portal/`.
pub async fn landing(State(state): State<PortalState>, headers: HeaderMap) -> Response {
    if let Some(session) = state.sessions.find(&headers) {
        return Redirect::to(home_of(&session)).into_response();
    }
    let demo = &state.config.demo_sign_ins;
    let body = html! {
        h1 { "Concord Care Record" }
        p class="lead" {
            "One up-to-date view of a person's health and care record, brought together live from their GP practice, hospitals, mental health and community services, ambulance service and council social care."
        }
        p { a class="button" href="/portal/login" { "Sign in" } }
        @if !demo.is_empty() {
            section aria-labelledby="demo-heading" class="card" {
                h2 id="demo-heading" { "Demo sign-ins" }
                p { "This is a demonstration with made-up people. Sign in with any of these accounts:" }
                table class="data-table" {
                    caption class="visually-hidden" { "Demo accounts" }
                    thead { tr { th scope="col" { "Who" } th scope="col" { "User id" } th scope="col" { "Password" } } }
                    tbody {
                        @for account in demo {
                            tr {
                                td { (account.label) }
                                td { code { (account.user) } }
                                td { code { (account.password) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Welcome", None, body).into_response()
}
