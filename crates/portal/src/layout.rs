//! The page frame every portal page shares: the header with the service name and who is signed
//! in, the navigation for the signed-in person's role, a skip link, and the footer.
//!
//! Owns: the HTML document shell (language, title, viewport, the one stylesheet), the
//! navigation per role, and the CSRF field and check for the portal's forms. Does not: render
//! record content (the page modules do) or use any script.

use maud::{DOCTYPE, Markup, html};

use crate::error::PortalError;
use crate::session::Session;

/// The service name in the header and page titles.
pub const SERVICE: &str = "Concord Care Record";

/// A whole page. `session` chooses the navigation; `None` shows none.
pub fn page(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    shell(title, session, None, body)
}

/// A page about one person: `banner` (the patient banner) stays at the top of the content.
pub fn page_with_banner(
    title: &str,
    session: Option<&Session>,
    banner: Markup,
    body: Markup,
) -> Markup {
    shell(title, session, Some(banner), body)
}

fn shell(title: &str, session: Option<&Session>, banner: Option<Markup>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - " (SERVICE) }
                link rel="stylesheet" href="/portal/static/portal.css";
            }
            body {
                a class="skip-link" href="#main" { "Skip to main content" }
                header class="site-header" {
                    div class="container header-row" {
                        a class="service-name" href="/portal/" { (SERVICE) }
                        @if let Some(session) = session {
                            div class="signed-in" {
                                span { "Signed in as " strong { (session.user) } " (" (role_label(session)) ")" }
                                form method="post" action="/portal/logout" class="inline" {
                                    (csrf_field(session))
                                    button type="submit" class="link-button" { "Sign out" }
                                }
                            }
                        }
                    }
                    @if let Some(session) = session {
                        nav class="site-nav" aria-label="Main" {
                            ul class="container" {
                                @for (href, label) in navigation(session) {
                                    li { a href=(href) { (label) } }
                                }
                            }
                        }
                    }
                }
                @if let Some(banner) = banner {
                    (banner)
                }
                main id="main" class="container" tabindex="-1" {
                    (body)
                }
                footer class="site-footer" {
                    div class="container" {
                        p { "Information here comes live from the organisations that hold it. Every view is recorded." }
                    }
                }
            }
        }
    }
}

/// The role words shown for the signed-in person, with their organisation.
pub fn role_label(session: &Session) -> String {
    let roles: Vec<&str> = session
        .roles
        .iter()
        .map(|r| match r.as_str() {
            "clinician" => "clinician",
            "nurse" => "nurse",
            "paramedic" => "paramedic",
            "social-worker" => "social worker",
            "receptionist" => "receptionist",
            "privacy-officer" => "privacy officer",
            "data-steward" => "data steward",
            "patient" => "patient",
            "proxy" => "acting for someone",
            other => other,
        })
        .collect();
    match &session.org {
        Some(org) if !session.is_citizen() => format!("{} at {org}", roles.join(", ")),
        _ => roles.join(", "),
    }
}

/// The links in the navigation bar for the person's roles.
pub fn navigation(session: &Session) -> Vec<(&'static str, &'static str)> {
    let mut links = Vec::new();
    if session.is_citizen() {
        links.extend([
            ("/portal/me", "My record"),
            ("/portal/me/results", "Test results"),
            ("/portal/me/appointments", "Appointments"),
            ("/portal/me/readings", "Add a reading"),
            ("/portal/me/what-matters", "What matters to me"),
            ("/portal/me/sharing", "Sharing choices"),
            ("/portal/me/access-log", "Who looked at my record"),
        ]);
    }
    if [
        "clinician",
        "nurse",
        "paramedic",
        "social-worker",
        "receptionist",
    ]
    .iter()
    .any(|r| session.has_role(r))
    {
        links.push(("/portal/search", "Find a person"));
    }
    if session.has_role("privacy-officer") {
        links.push(("/portal/admin/break-glass", "Break-glass review"));
        links.push(("/portal/admin/audit", "Audit search"));
    }
    if session.has_role("data-steward") {
        links.push(("/portal/admin/matching", "Matching worklist"));
    }
    links
}

/// The hidden field every portal form carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Checks a posted form's CSRF token against the session's.
pub fn check_csrf(session: &Session, posted: Option<&str>) -> Result<(), PortalError> {
    match posted {
        Some(token) if !token.is_empty() && constant_time_eq(token, &session.csrf) => Ok(()),
        _ => Err(PortalError::Csrf),
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
