//! `concord feed dead-letters list|show|replay`: the operator's view of HL7 v2 messages that
//! could not be applied, and replaying them once the cause is fixed.
//!
//! Owns the command line and the printed report. `list` and `show` print where a message came
//! from, its type, when, and the error; `show --raw` prints the message itself, which carries
//! patient data, so only on request. Does not map or apply (the hub does, as for a live message).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use concord_fhir::RequestContext;
use concord_fhir::primitive::format_instant;
use concord_store::LoggedMessage;

use crate::config::{Config, Overrides};
use crate::node;

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Messages kept because they could not be applied.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// One line per dead letter, oldest first.
    List {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// One dead letter in full.
    Show {
        /// Its number in the log (from `list`).
        seq: i64,
        /// Also print the raw message (it carries patient data).
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Apply a dead letter again.
    Replay {
        seq: i64,
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(command: FeedCommand) -> anyhow::Result<ExitCode> {
    let FeedCommand::DeadLetters { command } = command;
    let (data, config) = match &command {
        DeadLetterCommand::List { data, config }
        | DeadLetterCommand::Show { data, config, .. }
        | DeadLetterCommand::Replay { data, config, .. } => (data.clone(), config.clone()),
    };
    let config = Config::load(
        config.as_deref(),
        &Overrides {
            data_dir: data,
            ..Overrides::default()
        },
    )?;
    let store = node::open_store(&config)?;
    let hub = node::hub(&config, store)?;
    let ctx = RequestContext::system("concord-feed", uuid::Uuid::new_v4().to_string());
    match command {
        DeadLetterCommand::List { .. } => {
            let mut after = 0;
            let mut count = 0;
            loop {
                let page = hub.dead_letters(&ctx, after, 500)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for m in &page {
                    count += 1;
                    println!("{}", summary(m));
                }
            }
            println!("{count} dead letter(s)");
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Show { seq, raw, .. } => {
            let message = hub.logged_message(&ctx, seq)?;
            println!("{}", summary(&message));
            println!("status: {}", message.status.as_str());
            if raw {
                println!(
                    "{}",
                    String::from_utf8_lossy(&message.raw).replace('\r', "\n")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Replay { seq, .. } => {
            let message = hub.replay_message(&ctx, seq)?;
            println!("{}", summary(&message));
            println!("status: {}", message.status.as_str());
            Ok(if message.status == concord_store::MessageStatus::Applied {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn summary(m: &LoggedMessage) -> String {
    format!(
        "{}  {}  {}  from {}  control id {}  error: {}",
        m.seq,
        format_instant(m.received_at),
        m.message_type,
        m.sender,
        m.control_id,
        m.error.as_deref().unwrap_or("-")
    )
}
