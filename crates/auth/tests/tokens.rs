//! Minting and verifying: the key ring on disk, rotation and retirement, revocation, the
//! checks `verify` makes on every request, and that a token remembered from an earlier request
//! still goes through the checks whose answer can change.

use concord_auth::{AuthConfig, AuthServer, Claims};
use concord_fhir::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

fn clinician() -> Claims {
    Claims::user(
        "alice",
        vec!["clinician".into()],
        Some("A81001".into()),
        "user/*.rs",
    )
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn config() -> AuthConfig {
    AuthConfig::for_base(Some("https://hub.example/fhir"))
}

#[test]
fn a_minted_token_verifies_with_its_claims() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    let mut claims = clinician();
    claims.patient = Some("p1".into());
    claims.proxy_for = vec!["p2".into()];
    claims.client_id = Some("portal".into());
    claims.fhir_user = Some("Practitioner/alice".into());
    let token = auth.mint(&claims).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid, auth.current_kid());
    let verified = auth.verify(&token).unwrap();
    assert_eq!(verified.iss, "https://hub.example");
    assert_eq!(verified.aud, "https://hub.example/fhir");
    assert_eq!(verified.sub, "alice");
    assert_eq!(verified.patient.as_deref(), Some("p1"));
    assert_eq!(verified.proxy_for, ["p2"]);
    assert_eq!(verified.client_id.as_deref(), Some("portal"));
    assert_eq!(verified.fhir_user.as_deref(), Some("Practitioner/alice"));
    assert!(!verified.jti.is_empty());
    assert!(verified.exp > now() && verified.exp <= now() + 3600);
    // Each token gets its own id.
    assert_ne!(
        auth.verify(&auth.mint(&claims).unwrap()).unwrap().jti,
        verified.jti
    );
}

#[test]
fn expired_foreign_misaddressed_and_garbled_tokens_are_refused() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    let other = AuthServer::ephemeral(config()).unwrap();
    let expired = auth
        .mint(&Claims {
            iat: now() - 7200,
            exp: now() - 3600,
            ..clinician()
        })
        .unwrap();
    let foreign = other.mint(&clinician()).unwrap();
    let wrong_audience = auth
        .mint(&Claims {
            aud: "https://elsewhere.example/fhir".into(),
            ..clinician()
        })
        .unwrap();
    let wrong_issuer = auth
        .mint(&Claims {
            iss: "https://elsewhere.example".into(),
            ..clinician()
        })
        .unwrap();
    // One signature byte changed (a middle character: the last one partly encodes padding).
    let good = auth.mint(&clinician()).unwrap();
    let at = good.len() - 20;
    let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);
    for (token, reason) in [
        (expired.as_str(), "expired"),
        (foreign.as_str(), "not signed by this node"),
        (wrong_audience.as_str(), "not for this server"),
        (wrong_issuer.as_str(), "not issued by this node"),
        ("not-a-jwt", "not a valid JWT"),
    ] {
        let error = auth.verify(token).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unauthenticated, "{reason}");
        assert!(error.to_string().contains(reason), "{error} / {reason}");
        assert!(
            !error.to_string().contains(token),
            "the reason quotes the token"
        );
    }
    assert_eq!(
        auth.verify(&tampered).unwrap_err().kind,
        ErrorKind::Unauthenticated
    );
}

#[test]
fn an_hs256_token_is_refused_whatever_it_claims() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    let claims = auth.verify(&auth.mint(&clinician()).unwrap()).unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = auth.current_kid();
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    let error = auth.verify(&token).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
}

#[test]
fn a_revoked_token_is_refused() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    let token = auth.mint(&clinician()).unwrap();
    let other = auth.mint(&clinician()).unwrap();
    let claims = auth.verify(&token).unwrap();
    auth.revoke(&claims.jti, claims.exp).unwrap();
    let error = auth.verify(&token).unwrap_err();
    assert!(error.to_string().contains("revoked"), "{error}");
    auth.verify(&other).unwrap();
}

#[test]
fn mint_refuses_claims_without_subject_or_kind() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    assert!(auth.mint(&Claims::system("", "system/*.rs")).is_err());
    assert!(
        auth.mint(&Claims {
            kind: "robot".into(),
            ..clinician()
        })
        .is_err()
    );
}

#[test]
fn the_ring_persists_with_private_files_and_a_thumbprint_kid() {
    let dir = tempfile::tempdir().unwrap();
    let auth = AuthServer::open(dir.path(), config()).unwrap();
    let token = auth.mint(&clinician()).unwrap();
    let kid = auth.current_kid().unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("es256-") && name.ends_with(&format!("-{kid}.pem")),
        "{name}"
    );
    let pem = std::fs::read_to_string(&files[0]).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The kid is the RFC 7638 thumbprint of the published key.
    let jwks = auth.jwks();
    let jwk = &jwks["keys"][0];
    assert_eq!(
        concord_auth::thumbprint(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap()),
        kid
    );
    // Reopened, the same key verifies the earlier token and keeps signing.
    let reopened = AuthServer::open(dir.path(), config()).unwrap();
    assert_eq!(reopened.current_kid().as_deref(), Some(kid.as_str()));
    reopened.verify(&token).unwrap();
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_retires() {
    let dir = tempfile::tempdir().unwrap();
    let auth = AuthServer::open(dir.path(), config()).unwrap();
    let before = auth.mint(&clinician()).unwrap();
    let old_kid = auth.current_kid().unwrap();
    auth.rotate().unwrap();
    let new_kid = auth.current_kid().unwrap();
    assert_ne!(old_kid, new_kid);
    let after = auth.mint(&clinician()).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid,
        Some(new_kid.clone())
    );
    auth.verify(&before).unwrap();
    auth.verify(&after).unwrap();
    // Both keys are published until the old one retires.
    let kids: Vec<String> = auth.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kids, [new_kid.clone(), old_kid.clone()]);
    // A node that retires superseded keys at once refuses the old key's tokens.
    let strict = AuthServer::open(
        dir.path(),
        AuthConfig {
            key_retire_days: 0,
            ..config()
        },
    )
    .unwrap();
    assert!(strict.verify(&before).is_err());
    strict.verify(&after).unwrap();
    assert_eq!(strict.jwks()["keys"].as_array().unwrap().len(), 1);
    // Retired keys' files are removed.
    assert_eq!(
        std::fs::read_dir(dir.path().join("keys")).unwrap().count(),
        1
    );
}

#[test]
fn open_rotates_a_key_older_than_the_rotation_period() {
    let dir = tempfile::tempdir().unwrap();
    let first = AuthServer::open(dir.path(), config()).unwrap();
    let token = first.mint(&clinician()).unwrap();
    let rotating = AuthConfig {
        key_rotation_days: 0,
        ..config()
    };
    let second = AuthServer::open(dir.path(), rotating).unwrap();
    assert_ne!(first.current_kid(), second.current_kid());
    second.verify(&token).unwrap();
}

#[test]
fn a_running_server_learns_keys_another_process_rotated_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = AuthServer::open(dir.path(), config()).unwrap();
    // `concord token issue` opens the ring separately and rotates it.
    let cli = AuthServer::open(dir.path(), config()).unwrap();
    cli.rotate().unwrap();
    let token = cli.mint(&clinician()).unwrap();
    server.verify(&token).unwrap();
}

#[test]
fn the_jwks_verifies_what_the_server_signs() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    auth.rotate().unwrap();
    let token = auth.mint(&clinician()).unwrap();
    let set: JwkSet = serde_json::from_value(auth.jwks()).unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let jwk = set.find(&kid).expect("the signing key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["https://hub.example/fhir"]);
    let data =
        jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
    assert_eq!(data.claims.sub, "alice");
}

// A token verified once is remembered, so these tests verify each token first and then check
// that the remembered token is refused when it should be.

#[test]
fn a_token_verifies_again_from_the_cache_with_equal_claims() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    let token = auth.mint(&clinician()).unwrap();
    let first = auth.verify(&token).unwrap();
    let second = auth.verify(&token).unwrap();
    assert_eq!(first, second);
    assert_eq!(second.sub, "alice");
}

#[test]
fn a_cached_token_is_refused_once_revoked() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    let token = auth.mint(&clinician()).unwrap();
    let claims = auth.verify(&token).unwrap();
    auth.verify(&token).unwrap();
    auth.revoke(&claims.jti, claims.exp).unwrap();
    let error = auth.verify(&token).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
    assert!(error.to_string().contains("revoked"), "{error}");
}

#[test]
fn a_cached_token_is_refused_once_expired() {
    // No leeway, so the token expires as soon as the clock passes its `exp`.
    let auth = AuthServer::ephemeral(AuthConfig {
        leeway_seconds: 0,
        ..config()
    })
    .unwrap();
    let exp = now() + 1;
    let token = auth.mint(&Claims { exp, ..clinician() }).unwrap();
    auth.verify(&token).unwrap();
    // At most about two seconds: until the whole second after `exp` begins.
    while now() <= exp {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let error = auth.verify(&token).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
    assert!(error.to_string().contains("expired"), "{error}");
}

#[test]
fn a_cached_token_is_refused_once_its_signing_key_retires() {
    // Superseded keys retire at once, so rotating retires the key that signed the token.
    let auth = AuthServer::ephemeral(AuthConfig {
        key_retire_days: 0,
        ..config()
    })
    .unwrap();
    let before = auth.mint(&clinician()).unwrap();
    auth.verify(&before).unwrap();
    auth.rotate().unwrap();
    let error = auth.verify(&before).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
    auth.verify(&auth.mint(&clinician()).unwrap()).unwrap();
}

#[test]
fn a_tampered_token_is_refused_though_its_original_is_cached() {
    let auth = AuthServer::ephemeral(config()).unwrap();
    let good = auth.mint(&clinician()).unwrap();
    auth.verify(&good).unwrap();
    // One signature character changed (a middle one: the last partly encodes padding).
    let at = good.len() - 20;
    let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);
    let error = auth.verify(&tampered).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
    assert!(error.to_string().contains("signature"), "{error}");
    auth.verify(&good).unwrap();
}
