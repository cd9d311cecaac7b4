//! Local accounts and clients in `auth.db`: validation, sign-in checks and lockout, and what
//! survives reopening.

use concord_auth::{
    AuthConfig, AuthServer, Claims, Client, ClientAuth, ClientKind, LOCKOUT_FAILURES, NewUser,
    hash_secret,
};
use concord_fhir::ErrorKind;

const PASSWORD: &str = "correct horse battery";

fn nurse(id: &str) -> NewUser {
    NewUser {
        id: id.into(),
        roles: vec!["nurse".into()],
        org: Some("A81001".into()),
        password: PASSWORD.into(),
        ..NewUser::default()
    }
}

fn server() -> AuthServer {
    AuthServer::ephemeral(AuthConfig::default()).unwrap()
}

#[test]
fn accounts_are_validated_when_added() {
    let auth = server();
    auth.add_user(&nurse("nina")).unwrap();
    assert_eq!(
        auth.add_user(&nurse("nina")).unwrap_err().kind,
        ErrorKind::Conflict
    );
    let bad = [
        NewUser {
            roles: vec!["wizard".into()],
            ..nurse("a")
        },
        NewUser {
            roles: Vec::new(),
            ..nurse("b")
        },
        NewUser {
            password: "short".into(),
            ..nurse("c")
        },
        NewUser {
            id: "has space".into(),
            ..nurse("d")
        },
        NewUser {
            roles: vec!["patient".into()],
            ..nurse("e")
        },
        NewUser {
            roles: vec!["proxy".into()],
            ..nurse("f")
        },
    ];
    for user in bad {
        let error = auth.add_user(&user).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Invalid, "{}", user.id);
        assert!(!error.to_string().contains(PASSWORD));
    }
    auth.add_user(&NewUser {
        roles: vec!["patient".into()],
        patient: Some("p-1".into()),
        ..nurse("pat")
    })
    .unwrap();
    let users = auth.users().unwrap();
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["nina", "pat"]);
    assert_eq!(users[1].patient.as_deref(), Some("p-1"));
}

#[test]
fn sign_in_checks_the_password_and_locks_after_repeated_failures() {
    let auth = server();
    auth.add_user(&nurse("nina")).unwrap();
    let user = auth.check_password("nina", PASSWORD).unwrap();
    assert_eq!(user.roles, ["nurse"]);
    // Unknown accounts and wrong passwords are refused alike.
    let unknown = auth.check_password("nobody", PASSWORD).unwrap_err();
    let wrong = auth.check_password("nina", "not the password").unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::Unauthenticated);
    assert_eq!(unknown.to_string(), wrong.to_string());
    // A success resets the count: four more failures do not lock.
    auth.check_password("nina", PASSWORD).unwrap();
    for _ in 1..LOCKOUT_FAILURES {
        auth.check_password("nina", "wrong").unwrap_err();
    }
    auth.check_password("nina", PASSWORD).unwrap();
    for _ in 0..LOCKOUT_FAILURES {
        assert_eq!(
            auth.check_password("nina", "wrong").unwrap_err().kind,
            ErrorKind::Unauthenticated
        );
    }
    // Locked: even the right password is refused.
    let locked = auth.check_password("nina", PASSWORD).unwrap_err();
    assert_eq!(locked.kind, ErrorKind::TooManyRequests);
    assert!(auth.user("nina").unwrap().unwrap().locked_until.is_some());
}

#[test]
fn disabled_accounts_cannot_sign_in_and_roles_can_change() {
    let auth = server();
    auth.add_user(&nurse("nina")).unwrap();
    auth.set_roles("nina", &["clinician".into(), "analyst".into()])
        .unwrap();
    assert_eq!(
        auth.user("nina").unwrap().unwrap().roles,
        ["clinician", "analyst"]
    );
    assert_eq!(
        auth.set_roles("nina", &["wizard".into()]).unwrap_err().kind,
        ErrorKind::Invalid
    );
    auth.set_disabled("nina", true).unwrap();
    assert!(auth.check_password("nina", PASSWORD).is_err());
    assert_eq!(
        auth.set_disabled("nobody", true).unwrap_err().kind,
        ErrorKind::NotFound
    );
}

#[test]
fn clients_are_validated_and_read_back() {
    let auth = server();
    let portal = Client {
        client_id: "portal".into(),
        name: "Patient portal".into(),
        redirect_uris: vec!["https://portal.example/callback".into()],
        auth: ClientAuth::Public,
        scopes: vec![
            "openid".into(),
            "launch/patient".into(),
            "patient/*.rs".into(),
        ],
        kind: ClientKind::App,
    };
    auth.add_client(&portal).unwrap();
    assert_eq!(auth.client("portal").unwrap(), Some(portal.clone()));
    assert_eq!(
        auth.add_client(&portal).unwrap_err().kind,
        ErrorKind::Conflict
    );
    let secret = hash_secret("s3cret-s3cret").unwrap();
    assert!(!secret.contains("s3cret-s3cret"));
    auth.add_client(&Client {
        client_id: "ehr".into(),
        auth: ClientAuth::Secret(secret.clone()),
        ..portal.clone()
    })
    .unwrap();
    assert_eq!(
        auth.client("ehr").unwrap().unwrap().auth,
        ClientAuth::Secret(secret)
    );
    let bad = [
        Client {
            client_id: "a".into(),
            redirect_uris: Vec::new(),
            ..portal.clone()
        },
        Client {
            client_id: "b".into(),
            redirect_uris: vec!["/relative".into()],
            ..portal.clone()
        },
        Client {
            client_id: "c".into(),
            redirect_uris: vec!["https://x.example/#frag".into()],
            ..portal.clone()
        },
        Client {
            client_id: "d".into(),
            kind: ClientKind::Backend,
            ..portal.clone()
        },
        Client {
            client_id: "e".into(),
            auth: ClientAuth::PrivateKeyJwt("not json".into()),
            ..portal.clone()
        },
    ];
    for client in bad {
        assert_eq!(
            auth.add_client(&client).unwrap_err().kind,
            ErrorKind::Invalid,
            "{}",
            client.client_id
        );
    }
    auth.add_client(&Client {
        client_id: "edge".into(),
        redirect_uris: Vec::new(),
        auth: ClientAuth::PrivateKeyJwt(r#"{"keys":[]}"#.into()),
        kind: ClientKind::Backend,
        ..portal
    })
    .unwrap();
    assert_eq!(auth.client("nobody").unwrap(), None);
}

#[test]
fn accounts_and_revocations_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let auth = AuthServer::open(dir.path(), AuthConfig::default()).unwrap();
    auth.add_user(&nurse("nina")).unwrap();
    let token = auth.mint(&Claims::system("edge", "system/*.rs")).unwrap();
    let claims = auth.verify(&token).unwrap();
    auth.revoke(&claims.jti, claims.exp).unwrap();
    drop(auth);
    let reopened = AuthServer::open(dir.path(), AuthConfig::default()).unwrap();
    reopened.check_password("nina", PASSWORD).unwrap();
    assert!(
        reopened
            .verify(&token)
            .unwrap_err()
            .to_string()
            .contains("revoked")
    );
    // The password is stored hashed.
    let raw = std::fs::read(dir.path().join("auth.db")).unwrap();
    assert!(
        !raw.windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
    );
}
