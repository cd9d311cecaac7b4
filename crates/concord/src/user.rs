//! `concord user add|role|disable|list` and `concord client add`: local accounts and registered
//! OAuth clients of the node's authorization server.
//!
//! Does not: take passwords or secrets on the command line (they would sit in shell history and
//! the process list); they come from an environment variable or a file. Never prints them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use concord_auth::{AuthServer, Client, ClientAuth, ClientKind, NewUser, hash_secret};

use crate::config::{Config, Overrides};
use crate::node;

/// Where the node's data is.
#[derive(Debug, Args)]
pub struct Node {
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Where a password or secret comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Secret {
    /// The environment variable holding it.
    #[arg(long)]
    password_env: Option<String>,
    /// A file holding it (the first line).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local account.
    Add {
        #[arg(long)]
        id: String,
        /// Role code (repeatable): clinician, nurse, paramedic, social-worker, receptionist,
        /// privacy-officer, data-steward, analyst, administrator, patient, proxy.
        #[arg(long, required = true)]
        role: Vec<String>,
        /// The user's organisation (ODS code or local id).
        #[arg(long)]
        org: Option<String>,
        /// For a patient: their hub Patient id.
        #[arg(long)]
        patient: Option<String>,
        /// For a proxy: a hub Patient id they act for (repeatable).
        #[arg(long)]
        proxy_for: Vec<String>,
        #[command(flatten)]
        password: Secret,
        #[command(flatten)]
        node: Node,
    },
    /// Replace an account's roles.
    Role {
        #[arg(long)]
        id: String,
        #[arg(long, required = true)]
        role: Vec<String>,
        #[command(flatten)]
        node: Node,
    },
    /// Disable an account: it can no longer sign in.
    Disable {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        node: Node,
    },
    /// One line per account.
    List {
        #[command(flatten)]
        node: Node,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an OAuth client: a SMART app (public, or confidential with a secret or a JWKS)
    /// or, with --backend, a backend service (private_key_jwt; --jwks-file required).
    Add {
        #[arg(long)]
        id: String,
        /// A display name; the id when absent.
        #[arg(long)]
        name: Option<String>,
        /// A redirect URI, matched exactly (repeatable; apps need one).
        #[arg(long)]
        redirect_uri: Vec<String>,
        /// A public client (PKCE, no client authentication).
        #[arg(long, conflicts_with_all = ["jwks_file", "secret_env"])]
        public: bool,
        /// The client's public keys (JWKS JSON) for private_key_jwt.
        #[arg(long, conflicts_with = "secret_env")]
        jwks_file: Option<PathBuf>,
        /// The environment variable holding the client secret (client_secret_basic).
        #[arg(long)]
        secret_env: Option<String>,
        /// A backend service (client credentials) rather than an app.
        #[arg(long)]
        backend: bool,
        /// Space-separated scopes the client may be granted.
        #[arg(long)]
        scope: String,
        #[command(flatten)]
        node: Node,
    },
}

fn open(node: &Node) -> anyhow::Result<AuthServer> {
    let config = Config::load(
        node.config.as_deref(),
        &Overrides {
            data_dir: node.data.clone(),
            ..Overrides::default()
        },
    )?;
    node::auth_server(&config)
}

fn read_secret(secret: &Secret) -> anyhow::Result<String> {
    if let Some(var) = &secret.password_env {
        return Config::secret(var)
            .map_err(|_| anyhow::anyhow!("the environment variable {var} is not set"));
    }
    match &secret.password_file {
        Some(path) => first_line(path),
        None => anyhow::bail!("give --password-env VAR or --password-file PATH"),
    }
}

fn first_line(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

fn fail(e: concord_fhir::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn run_user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add {
            id,
            role,
            org,
            patient,
            proxy_for,
            password,
            node,
        } => {
            let password = read_secret(&password)?;
            open(&node)?
                .add_user(&NewUser {
                    id: id.clone(),
                    roles: role,
                    org,
                    patient,
                    proxy_for,
                    password,
                })
                .map_err(fail)?;
            println!("added user {id}");
        }
        UserCommand::Role { id, role, node } => {
            open(&node)?.set_roles(&id, &role).map_err(fail)?;
            println!("user {id} now has role(s) {}", role.join(", "));
        }
        UserCommand::Disable { id, node } => {
            open(&node)?.set_disabled(&id, true).map_err(fail)?;
            println!("disabled user {id}");
        }
        UserCommand::List { node } => {
            let users = open(&node)?.users().map_err(fail)?;
            for user in &users {
                println!(
                    "{}  roles {}  org {}{}{}{}",
                    user.id,
                    user.roles.join(","),
                    user.org.as_deref().unwrap_or("-"),
                    user.patient
                        .as_deref()
                        .map(|p| format!("  patient {p}"))
                        .unwrap_or_default(),
                    if user.proxy_for.is_empty() {
                        String::new()
                    } else {
                        format!("  proxy for {}", user.proxy_for.join(","))
                    },
                    if user.disabled { "  disabled" } else { "" },
                );
            }
            println!("{} user(s)", users.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_client(command: ClientCommand) -> anyhow::Result<ExitCode> {
    let ClientCommand::Add {
        id,
        name,
        redirect_uri,
        public,
        jwks_file,
        secret_env,
        backend,
        scope,
        node,
    } = command;
    let auth = match (public, jwks_file, secret_env) {
        (_, Some(path), _) => ClientAuth::PrivateKeyJwt(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        (_, None, Some(var)) => {
            let secret = Config::secret(&var)
                .map_err(|_| anyhow::anyhow!("the environment variable {var} is not set"))?;
            if secret.chars().count() < 16 {
                anyhow::bail!("a client secret needs at least 16 characters");
            }
            ClientAuth::Secret(hash_secret(&secret).map_err(fail)?)
        }
        (true, None, None) => ClientAuth::Public,
        (false, None, None) => anyhow::bail!("give --public, --jwks-file FILE or --secret-env VAR"),
    };
    open(&node)?
        .add_client(&Client {
            client_id: id.clone(),
            name: name.unwrap_or_else(|| id.clone()),
            redirect_uris: redirect_uri,
            auth,
            scopes: scope.split_whitespace().map(str::to_string).collect(),
            kind: if backend {
                ClientKind::Backend
            } else {
                ClientKind::App
            },
        })
        .map_err(fail)?;
    println!("added client {id}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dir: &Path) -> Node {
        Node {
            data: Some(dir.to_path_buf()),
            config: None,
        }
    }

    #[test]
    fn accounts_and_clients_are_managed_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "a long enough password\n").unwrap();
        run_user(UserCommand::Add {
            id: "nina".into(),
            role: vec!["nurse".into()],
            org: Some("A81001".into()),
            patient: None,
            proxy_for: Vec::new(),
            password: Secret {
                password_env: None,
                password_file: Some(password.clone()),
            },
            node: node(dir.path()),
        })
        .unwrap();
        run_user(UserCommand::Role {
            id: "nina".into(),
            role: vec!["clinician".into()],
            node: node(dir.path()),
        })
        .unwrap();
        let auth = open(&node(dir.path())).unwrap();
        let user = auth
            .check_password("nina", "a long enough password")
            .unwrap();
        assert_eq!(user.roles, ["clinician"]);
        // An unknown role is refused with the list of known ones.
        let error = run_user(UserCommand::Role {
            id: "nina".into(),
            role: vec!["wizard".into()],
            node: node(dir.path()),
        })
        .unwrap_err();
        assert!(error.to_string().contains("privacy-officer"), "{error}");
        run_user(UserCommand::Disable {
            id: "nina".into(),
            node: node(dir.path()),
        })
        .unwrap();
        assert!(
            auth.check_password("nina", "a long enough password")
                .is_err()
        );

        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
        run_client(ClientCommand::Add {
            id: "edge".into(),
            name: None,
            redirect_uri: Vec::new(),
            public: false,
            jwks_file: Some(jwks),
            secret_env: None,
            backend: true,
            scope: "system/*.rs".into(),
            node: node(dir.path()),
        })
        .unwrap();
        let client = auth.client("edge").unwrap().unwrap();
        assert_eq!(client.kind, ClientKind::Backend);
        assert_eq!(client.scopes, ["system/*.rs"]);
        // Neither --public nor keys nor a secret: refused.
        assert!(
            run_client(ClientCommand::Add {
                id: "app".into(),
                name: None,
                redirect_uri: vec!["https://app.example/cb".into()],
                public: false,
                jwks_file: None,
                secret_env: None,
                backend: false,
                scope: "openid".into(),
                node: node(dir.path()),
            })
            .is_err()
        );
    }
}
