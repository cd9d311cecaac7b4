//! The `concord` binary: command-line interface, configuration and wiring.
//!
//! Owns: parsing the command line (clap), loading the configuration, opening the store and the
//! node key, and running a command. Does not: contain FHIR logic (the service layer does) or
//! HTTP handling (the REST crate does).

mod announce;
mod audit_cmd;
mod config;
mod demo;
mod feed;
mod import;
mod import_csv;
mod mpi;
mod node;
mod serve;
mod sources;
mod token;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

/// mimalloc instead of the system allocator: the request and import paths allocate many small
/// JSON values, and glibc malloc showed up as a fifth of CPU time in profiles
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "concord",
    version,
    about = "Concord: a federated shared care record for health and social care"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the FHIR server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
        /// Data directory [default: ./concord-data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also listen for HL7 v2 over MLLP on this address, e.g. 127.0.0.1:2575.
        #[arg(long)]
        mllp: Option<String>,
    },
    /// A whole region in one process: a hub, six organisations, a neighbouring region's hub, and
    /// synthetic people whose records are split between them.
    Demo {
        /// Address of the hub [default: 127.0.0.1:8080].
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Data directory; the people are generated on the first run only.
        #[arg(long, default_value = "./concord-demo")]
        data: PathBuf,
        /// SOURCE=MS: that organisation answers this many milliseconds late (repeatable).
        #[arg(long)]
        slow: Vec<String>,
        /// SOURCE: that organisation's server is down (repeatable).
        #[arg(long)]
        down: Vec<String>,
        /// The Synthea R4 bundles the clinical content comes from.
        #[arg(long, default_value = "../shared/testdata/synthea")]
        synthea: PathBuf,
        /// People generated on the first run.
        #[arg(long, default_value_t = 62)]
        people: usize,
        /// Deadline the hub gives each source, in milliseconds.
        #[arg(long, default_value_t = 2500)]
        deadline_ms: u64,
    },
    /// Load FHIR Bundles (transaction, batch, collection) and NDJSON files or folders.
    Import {
        /// Files or folders to load.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Import a CSV extract (e.g. adult social care) through a declarative column-to-FHIR mapping.
    ImportCsv {
        /// The mapping file (TOML), e.g. examples/social-care/mapping.toml.
        #[arg(long)]
        mapping: PathBuf,
        /// The CSV extract.
        file: PathBuf,
        /// End (status finished) the open EpisodeOfCare of people an earlier import of the same
        /// source stored but this extract no longer lists; nothing is deleted.
        #[arg(long)]
        end_missing: bool,
        /// The date the extract was taken (dd/mm/yyyy or yyyy-mm-dd), the end of the episodes
        /// --end-missing ends; today when absent.
        #[arg(long)]
        extract_date: Option<String>,
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Identity matching on CSV files: batch record linkage and its benchmarks.
    Mpi {
        #[command(subcommand)]
        command: mpi::MpiCommand,
    },
    /// Inbound feeds: the HL7 v2 message log.
    Feed {
        #[command(subcommand)]
        command: feed::FeedCommand,
    },
    /// Local accounts of the authorization server.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// OAuth clients (SMART apps and backend services) of the authorization server.
    Client {
        #[command(subcommand)]
        command: user::ClientCommand,
    },
    /// The audit trail: verify its hash chain, search it.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint an access token signed with this node's key, for scripts and operators.
    Issue {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Subject: the user or system the token is for.
        #[arg(long)]
        sub: String,
        /// Role (repeatable), e.g. clinician.
        #[arg(long)]
        role: Vec<String>,
        /// The subject's organisation (ODS code).
        #[arg(long)]
        org: Option<String>,
        /// The patient in context, for patient-facing tokens.
        #[arg(long)]
        patient: Option<String>,
        /// For a proxy: a hub Patient id they may act for (repeatable).
        #[arg(long)]
        proxy_for: Vec<String>,
        /// Space-separated SMART scopes.
        #[arg(long, default_value = "user/*.*")]
        scope: String,
        /// Mint a system (backend service) token instead of a user token.
        #[arg(long)]
        system: bool,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        ttl_minutes: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("concord: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            listen,
            data,
            config,
            mllp,
        } => {
            let config = Config::load(
                config.as_deref(),
                &Overrides {
                    listen,
                    mllp,
                    data_dir: data,
                },
            )?;
            node::init_logging(&config)?;
            let runtime = node::runtime(&config)?;
            runtime.block_on(serve::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            listen,
            data,
            slow,
            down,
            synthea,
            people,
            deadline_ms,
        } => {
            let config = Config::load(None, &Overrides::default())?;
            node::init_logging(&config)?;
            let runtime = node::runtime(&config)?;
            runtime.block_on(demo::run(demo::DemoOptions {
                listen,
                data,
                slow,
                down,
                synthea,
                people,
                deadline_ms,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            paths,
            data,
            config,
            quiet,
        } => {
            let config = Config::load(
                config.as_deref(),
                &Overrides {
                    data_dir: data,
                    ..Overrides::default()
                },
            )?;
            let report = import::import(&config, &paths, !quiet)?;
            Ok(if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::ImportCsv {
            mapping,
            file,
            end_missing,
            extract_date,
            data,
            config,
        } => {
            let config = Config::load(
                config.as_deref(),
                &Overrides {
                    data_dir: data,
                    ..Overrides::default()
                },
            )?;
            let options = import_csv::Options {
                end_missing,
                extract_date,
            };
            let summary = import_csv::import(&config, &mapping, &file, &options)?;
            Ok(if summary.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    data,
                    config,
                    sub,
                    role,
                    org,
                    patient,
                    proxy_for,
                    scope,
                    system,
                    ttl_minutes,
                },
        } => {
            let config = Config::load(
                config.as_deref(),
                &Overrides {
                    data_dir: data,
                    ..Overrides::default()
                },
            )?;
            let token = token::issue(
                &config,
                token::TokenRequest {
                    sub,
                    roles: role,
                    org,
                    patient,
                    proxy_for,
                    scope,
                    system,
                    ttl_minutes,
                },
            )?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Mpi { command } => mpi::run(command),
        Command::Feed { command } => feed::run(command),
        Command::Audit { command } => audit_cmd::run(command),
        Command::User { command } => user::run_user(command),
        Command::Client { command } => user::run_client(command),
    }
}
