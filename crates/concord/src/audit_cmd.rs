//! `concord audit verify|search`: the operator's and privacy officer's view of the audit trail
//! (`<data>/audit.db`).
//!
//! Owns the command line and the printed report. `verify` reads the whole trail and checks its
//! hash chain, exiting non-zero with the first break; `search` prints one line per AuditEvent,
//! newest first. The trail holds patient ids and users by design, and this command prints them
//! because reading the trail is its purpose. Does not write to the trail or decide what is audited
//! (the hub does).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use concord_fhir::RequestContext;
use concord_hub::audit::AuditTrail;
use concord_store::AuditQuery;
use concord_store_sqlite::SqliteAuditLog;
use serde_json::Value;

use crate::config::{Config, Overrides};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that no audit entry was edited or removed (the hash chain is intact).
    Verify {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// One line per audit event, newest first: time, agent, role, organisation, interaction,
    /// outcome, patients.
    Search {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Events that touched this hub Patient id.
        #[arg(long)]
        patient: Option<String>,
        /// Events by this user or system (subject).
        #[arg(long)]
        agent: Option<String>,
        /// Events by this organisation (ODS code).
        #[arg(long)]
        org: Option<String>,
        /// success, denied or failed.
        #[arg(long)]
        outcome: Option<String>,
        /// Events at or after this date or dateTime (e.g. 2026-12-01).
        #[arg(long)]
        since: Option<String>,
        /// Events before this date or dateTime.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// Where a node keeps its audit trail.
pub fn audit_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.db")
}

pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    let (data, config) = match &command {
        AuditCommand::Verify { data, config } | AuditCommand::Search { data, config, .. } => {
            (data.clone(), config.clone())
        }
    };
    let config = Config::load(
        config.as_deref(),
        &Overrides {
            data_dir: data,
            ..Overrides::default()
        },
    )?;
    let path = audit_path(&config.store.data_dir);
    match command {
        AuditCommand::Verify { .. } => {
            let (intact, report) = verify_report(&path)?;
            println!("{report}");
            Ok(if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Search {
            patient,
            agent,
            org,
            outcome,
            since,
            until,
            limit,
            ..
        } => {
            let query = AuditQuery {
                patient,
                agent,
                organization: org,
                outcome,
                since_ms: since
                    .as_deref()
                    .map(|s| date_low(s, "--since"))
                    .transpose()?,
                until_ms: until
                    .as_deref()
                    .map(|s| date_low(s, "--until"))
                    .transpose()?,
                limit,
                ..AuditQuery::default()
            };
            let lines = search_lines(&path, &query)?;
            for line in &lines {
                println!("{line}");
            }
            println!("{} event(s)", lines.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn date_low(text: &str, flag: &str) -> anyhow::Result<i64> {
    concord_fhir::primitive::search_date_range(text)
        .map(|r| r.low)
        .with_context(|| format!("{flag} takes a date or dateTime, e.g. 2026-12-01"))
}

fn open_trail(path: &Path) -> anyhow::Result<AuditTrail> {
    // Opening would create an empty trail; a missing file is reported instead, since an empty
    // trail that verifies would hide that the real one is elsewhere or gone.
    anyhow::ensure!(path.exists(), "no audit trail at {}", path.display());
    let log = SqliteAuditLog::open(path)?;
    AuditTrail::open(Arc::new(log), "concord-cli")
        .map_err(|e| anyhow::anyhow!("cannot open the audit trail: {e}"))
}

fn ctx() -> RequestContext {
    RequestContext::system("concord-audit", uuid::Uuid::new_v4().to_string())
}

/// Verifies the trail at `path`: whether it is intact, and the line to print.
pub fn verify_report(path: &Path) -> anyhow::Result<(bool, String)> {
    let trail = open_trail(path)?;
    Ok(match trail.verify(&ctx()) {
        Ok(n) => (true, format!("{n} entries, chain intact")),
        Err(e) => (false, e.to_string()),
    })
}

/// The trail's events matching `query`, one printed line each, newest first.
pub fn search_lines(path: &Path, query: &AuditQuery) -> anyhow::Result<Vec<String>> {
    let trail = open_trail(path)?;
    let events = trail
        .search(&ctx(), query)
        .map_err(|e| anyhow::anyhow!("cannot search the audit trail: {e}"))?;
    Ok(events.iter().map(line).collect())
}

fn line(event: &Value) -> String {
    let Some(r) = concord_audit::record_from_event(event) else {
        let id = event.get("id").and_then(Value::as_str).unwrap_or("?");
        return format!("AuditEvent {id}: not in the shape this build writes");
    };
    let what = match &r.operation {
        Some(op) => format!("{} {op}", r.interaction),
        None => r.interaction.clone(),
    };
    let on = match (&r.resource_type, &r.resource_id) {
        (Some(t), Some(i)) => format!(" {t}/{i}"),
        (Some(t), None) => format!(" {t}"),
        _ => String::new(),
    };
    let glass = if r.break_glass.is_some() {
        " break-glass"
    } else {
        ""
    };
    format!(
        "{}  {}  {}  {}  {what}{on}  {} {}{glass}  purpose {}  patients: {}",
        concord_audit::format_instant(r.recorded_ms),
        r.agent.subject,
        r.agent.role.as_deref().unwrap_or("-"),
        r.agent.organization.as_deref().unwrap_or("-"),
        r.outcome.as_str(),
        r.status,
        r.purpose,
        if r.patients.is_empty() {
            "-".to_string()
        } else {
            r.patients.join(",")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_audit::{Action, Agent, AuditRecord, Outcome};

    fn record(n: i64) -> AuditRecord {
        AuditRecord {
            recorded_ms: 1_764_756_000_000 + n,
            request_id: format!("req-{n}"),
            action: Action::Read,
            interaction: "search-type".into(),
            operation: None,
            outcome: Outcome::Success,
            status: 200,
            agent: Agent {
                subject: "dr-a".into(),
                kind: "user".into(),
                role: Some("clinician".into()),
                organization: Some("RX1".into()),
                client_id: None,
            },
            purpose: "TREAT".into(),
            patients: vec!["p1".into(), "p2".into()],
            resource_type: Some("Observation".into()),
            resource_id: None,
            query: Some("code=1234-5".into()),
            break_glass: None,
            denied_reason: None,
            observer: "hub-test".into(),
        }
    }

    fn trail_of_three(path: &Path) {
        let trail =
            AuditTrail::open(Arc::new(SqliteAuditLog::open(path).unwrap()), "hub-test").unwrap();
        for n in 1..=3 {
            trail.record(record(n)).unwrap();
        }
    }

    #[test]
    fn verify_passes_an_intact_trail_and_names_the_edited_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = audit_path(dir.path());
        trail_of_three(&path);
        assert_eq!(
            verify_report(&path).unwrap(),
            (true, "3 entries, chain intact".to_string())
        );
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute(
            "UPDATE audit_entry SET body = replace(body, 'dr-a', 'dr-b') WHERE seq = 2",
            [],
        )
        .unwrap();
        let (intact, report) = verify_report(&path).unwrap();
        assert!(!intact);
        assert!(report.contains("entry 2 was edited"), "{report}");
    }

    #[test]
    fn verify_names_a_removed_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = audit_path(dir.path());
        trail_of_three(&path);
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("DELETE FROM audit_entry WHERE seq = 1", [])
            .unwrap();
        let (intact, report) = verify_report(&path).unwrap();
        assert!(!intact);
        assert!(report.contains("entry 1 is missing"), "{report}");
    }

    #[test]
    fn a_missing_trail_is_an_error_not_an_empty_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = audit_path(dir.path());
        assert!(verify_report(&path).is_err());
        assert!(!path.exists(), "verify does not create a trail");
    }

    #[test]
    fn search_prints_one_line_per_event_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = audit_path(dir.path());
        trail_of_three(&path);
        let lines = search_lines(
            &path,
            &AuditQuery {
                patient: Some("p2".into()),
                limit: 2,
                ..AuditQuery::default()
            },
        )
        .unwrap();
        assert_eq!(
            lines,
            [
                "2025-12-03T10:00:00.003Z  dr-a  clinician  RX1  search-type Observation  success 200  purpose TREAT  patients: p1,p2",
                "2025-12-03T10:00:00.002Z  dr-a  clinician  RX1  search-type Observation  success 200  purpose TREAT  patients: p1,p2",
            ]
        );
        assert_eq!(
            date_low("2025-12-03", "--since").unwrap(),
            1_764_720_000_000
        );
        assert!(date_low("yesterday", "--since").is_err());
    }
}
