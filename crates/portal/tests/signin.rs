//! Signing in to the portal through the node's authorization server, and what a session allows.

mod common;

use axum::http::StatusCode;
use common::{ORGANIZATION, PASSWORD, TestNode};

#[tokio::test]
async fn a_page_needing_sign_in_sends_the_browser_to_sign_in_and_back() {
    let node = TestNode::new();
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let mut browser = node.browser();

    let page = browser.get("/portal/search?family=Smith").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        Some("/portal/login?return_to=%2Fportal%2Fsearch%3Ffamily%3DSmith")
    );

    let landed = browser
        .sign_in_to("/portal/search?family=Smith", "dr.jones", PASSWORD)
        .await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    assert_eq!(landed.location(), Some("/portal/search?family=Smith"));
    let cookie = landed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("concord_portal="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    // The front page now sends a clinician to patient search.
    let front = browser.get("/portal/").await;
    assert_eq!(front.location(), Some("/portal/search"));
}

#[tokio::test]
async fn a_wrong_password_starts_no_session() {
    let node = TestNode::new();
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let mut browser = node.browser();
    let page = browser.get("/portal/login").await;
    let authorize = page.location().unwrap().to_string();
    let form = browser.get(&authorize).await;
    let query = authorize.split_once('?').unwrap().1;
    let mut fields: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    fields.push(("csrf".into(), form.csrf()));
    fields.push(("username".into(), "dr.jones".into()));
    fields.push(("password".into(), "wrong".into()));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let again = browser.post_form("/oauth/authorize", &pairs).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.html);
    assert_eq!(browser.get("/portal/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_callback_not_started_in_this_browser_is_refused() {
    let node = TestNode::new();
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let mut attacker = node.browser();
    let page = attacker.get("/portal/login").await;
    let authorize = page.location().unwrap().to_string();
    let state = form_urlencoded::parse(authorize.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    // A victim's browser is sent to the callback with the attacker's state and some code.
    let mut victim = node.browser();
    let landed = victim
        .get(&format!("/portal/callback?code=x&state={state}"))
        .await;
    assert_eq!(landed.status, StatusCode::BAD_REQUEST);
    assert!(landed.html.contains("not started in this browser"));
}

#[tokio::test]
async fn signing_out_ends_the_session_and_needs_the_form_token() {
    let node = TestNode::new();
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    let front = browser.follow("/portal/").await;
    assert_eq!(front.status, StatusCode::OK, "{}", front.html);

    let forged = browser
        .post_form("/portal/logout", &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let csrf = front.csrf();
    let out = browser
        .post_form("/portal/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(out.html.contains("You have signed out"));
    assert_eq!(
        browser.get("/portal/search").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn pages_forbid_scripts_framing_and_caching() {
    let node = TestNode::new();
    let mut browser = node.browser();
    let page = browser.get("/portal/").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.html.contains("<html lang=\"en\">"));
}

/// SMART EHR launch: a host system that holds `system/launch` asks for a launch for one of its
/// users and a patient, and opens the portal with it; the user lands on that person's record
/// without signing in again.
#[tokio::test]
async fn an_ehr_launch_opens_the_patient_with_no_second_sign_in() {
    use axum::http::Method;
    use serde_json::json;

    let node = TestNode::new();
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let host = node
        .auth
        .mint(&concord_auth::Claims::system("gp-system", "system/launch"))
        .unwrap();
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/oauth/launch")
        .header("host", "portal.test")
        .header("authorization", format!("Bearer {host}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"patient": "p1", "user": "dr.jones"}).to_string(),
        ))
        .unwrap();
    let response = tower::ServiceExt::oneshot(node.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let launch = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["launch"]
        .as_str()
        .unwrap()
        .to_string();

    let mut browser = node.browser();
    // A launch for another server is refused before anything is asked of the user.
    let foreign = browser
        .get(&format!(
            "/portal/launch?iss=https://evil.example/fhir&launch={launch}"
        ))
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);

    let mut page = browser
        .get(&format!(
            "/portal/launch?iss=http://portal.test/fhir&launch={launch}"
        ))
        .await;
    // Through the authorization server (no form) and the callback, to the record.
    for _ in 0..3 {
        let location = page.location().expect("a redirect").to_string();
        if location.starts_with("/portal/patient/") {
            break;
        }
        page = browser.get(&location).await;
    }
    assert_eq!(page.location(), Some("/portal/patient/p1"), "{}", page.html);
    // The same launch cannot be used twice.
    let mut again = node.browser();
    let replay = again
        .get(&format!(
            "/portal/launch?iss=http://portal.test/fhir&launch={launch}"
        ))
        .await;
    let authorize = again.get(replay.location().unwrap()).await;
    assert_ne!(
        authorize.location().map(|l| l.contains("code=")),
        Some(true),
        "a used launch must not sign anyone in"
    );
}
