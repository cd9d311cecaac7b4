//! The audit trail over a real SQLite audit file: concurrent recording keeps one unbroken chain
//! with exactly one entry per record, tampering with the file (an edited or a removed row) is found
//! and named, a reopened trail continues the chain, and a person's access log shows organisation,
//! role, purpose and interaction but not the user, and a trail written in the earlier stored form
//! (whole AuditEvents) is still read and continued.

use std::collections::BTreeSet;
use std::sync::Arc;

use concord_audit::{Action, Agent, AuditRecord, ChainBreak, Outcome};
use concord_fhir::RequestContext;
use concord_hub::audit::{AuditTrail, ChainBreakError};
use concord_store::{AuditLog, AuditQuery};
use concord_store_sqlite::SqliteAuditLog;

fn ctx() -> RequestContext {
    RequestContext::system("audit-test", "req-test")
}

fn record(n: usize, subject: &str, org: &str, patients: &[&str]) -> AuditRecord {
    AuditRecord {
        recorded_ms: 1_764_756_000_000 + i64::try_from(n).unwrap(),
        request_id: format!("req-{n}"),
        action: Action::Read,
        interaction: "read".into(),
        operation: None,
        outcome: Outcome::Success,
        status: 200,
        agent: Agent {
            subject: subject.into(),
            kind: "user".into(),
            role: Some("clinician".into()),
            organization: Some(org.into()),
            client_id: None,
        },
        purpose: "TREAT".into(),
        patients: patients.iter().map(|p| (*p).to_string()).collect(),
        resource_type: Some("Observation".into()),
        resource_id: Some(format!("obs-{n}")),
        query: None,
        break_glass: None,
        denied_reason: None,
        observer: "hub-test".into(),
    }
}

fn open(path: &std::path::Path) -> AuditTrail {
    let log = Arc::new(SqliteAuditLog::open(path).unwrap());
    AuditTrail::open(log, "hub-test").unwrap()
}

#[test]
fn concurrent_records_make_one_unbroken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let trail = open(&dir.path().join("audit.db"));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let trail = trail.clone();
            std::thread::spawn(move || {
                (0..150)
                    .map(|i| {
                        trail
                            .record(record(t * 1000 + i, &format!("user-{t}"), "RX1", &["p1"]))
                            .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in threads {
        seqs.extend(t.join().unwrap());
    }
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(seqs.len(), 1200);
    assert_eq!(
        unique,
        (1..=1200).collect(),
        "every record has its own seq, no gaps"
    );
    assert_eq!(trail.verify(&ctx()), Ok(1200));
    // Each thread's records are in the trail under its user.
    let of_user_3 = trail
        .search(
            &ctx(),
            &AuditQuery {
                agent: Some("user-3".into()),
                limit: 1000,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(of_user_3.len(), 150);
}

fn tampered(sql: &str) -> ChainBreakError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let trail = open(&path);
    for n in 1..=10 {
        assert_eq!(
            trail.record(record(n, "dr-a", "RX1", &["p1"])).unwrap(),
            n as u64
        );
    }
    assert_eq!(trail.verify(&ctx()), Ok(10));
    let raw = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        raw.execute(sql, []).unwrap(),
        1,
        "the tampering changed one row"
    );
    drop(raw);
    trail.verify(&ctx()).unwrap_err()
}

#[test]
fn an_edited_entry_is_named() {
    let err = tampered(
        "UPDATE audit_entry SET body = replace(body, '\"TREAT\"', '\"HOPERAT\"') WHERE seq = 4",
    );
    assert_eq!(err, ChainBreakError::Broken(ChainBreak::Edited { seq: 4 }));
    assert!(err.to_string().contains("entry 4 was edited"), "{err}");
}

#[test]
fn a_removed_entry_is_named() {
    let err = tampered("DELETE FROM audit_entry WHERE seq = 5");
    assert_eq!(
        err,
        ChainBreakError::Broken(ChainBreak::Missing {
            after_seq: 4,
            found_seq: 6
        })
    );
    assert!(err.to_string().contains("entry 5 is missing"), "{err}");
}

#[test]
fn a_replaced_entry_is_named() {
    // Replacing an entry with a self-consistent one (hash recomputed) breaks the next link.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let trail = open(&path);
    for n in 1..=3 {
        trail.record(record(n, "dr-a", "RX1", &["p1"])).unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    let (prev, body): (String, String) = raw
        .query_row(
            "SELECT prev_hash, body FROM audit_entry WHERE seq = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let body = body.replace("dr-a", "dr-z");
    let hash = concord_audit::chain_hash(&prev, 2, &body);
    raw.execute(
        "UPDATE audit_entry SET body = ?1, hash = ?2 WHERE seq = 2",
        [&body, &hash],
    )
    .unwrap();
    assert_eq!(
        trail.verify(&ctx()),
        Err(ChainBreakError::Broken(ChainBreak::BadLink { seq: 3 }))
    );
}

#[test]
fn a_reopened_trail_continues_the_chain_and_a_second_writer_cannot_fork_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    {
        let trail = open(&path);
        trail.record(record(1, "dr-a", "RX1", &["p1"])).unwrap();
        trail.record(record(2, "dr-a", "RX1", &["p1"])).unwrap();
    }
    let first = open(&path);
    assert_eq!(first.record(record(3, "dr-a", "RX1", &["p1"])).unwrap(), 3);
    // A second trail over the same file (another process) chains after what the first wrote.
    let second = open(&path);
    assert_eq!(second.record(record(4, "dr-b", "RX2", &[])).unwrap(), 4);
    assert_eq!(first.record(record(5, "dr-a", "RX1", &[])).unwrap(), 5);
    assert_eq!(second.record(record(6, "dr-b", "RX2", &[])).unwrap(), 6);
    assert_eq!(first.verify(&ctx()), Ok(6));
}

#[test]
fn a_person_sees_who_looked_by_organisation_role_and_purpose_not_by_user() {
    let dir = tempfile::tempdir().unwrap();
    let trail = open(&dir.path().join("audit.db"));
    trail.record(record(1, "dr-a", "RX1", &["p1"])).unwrap();
    trail.record(record(2, "dr-b", "RX2", &["p2"])).unwrap();
    trail.record(record(3, "dr-c", "RX3", &["p9"])).unwrap();
    let mut emergency = record(4, "para-d", "AMB1", &["p1", "p2"]);
    emergency.agent.role = Some("paramedic".into());
    emergency.purpose = "ETREAT".into();
    emergency.interaction = "break-glass".into();
    emergency.break_glass = Some(("emergency".into(), "unconscious".into()));
    trail.record(emergency).unwrap();
    let mut denied = record(5, "rec-e", "RX4", &["p1"]);
    denied.outcome = Outcome::Denied;
    denied.status = 403;
    denied.agent.role = Some("receptionist".into());
    trail.record(denied).unwrap();

    // p1 and p2 are the same person's two hub Patient ids.
    let log = trail
        .access_log(&ctx(), &["p1".into(), "p2".into()], 10)
        .unwrap();
    type Line<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        &'a str,
        Outcome,
        bool,
    );
    let seen: Vec<Line<'_>> = log
        .iter()
        .map(|e| {
            (
                e.organization.as_deref(),
                e.role.as_deref(),
                e.purpose.as_str(),
                e.interaction.as_str(),
                e.outcome,
                e.break_glass,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                Some("RX4"),
                Some("receptionist"),
                "TREAT",
                "read",
                Outcome::Denied,
                false
            ),
            (
                Some("AMB1"),
                Some("paramedic"),
                "ETREAT",
                "break-glass",
                Outcome::Success,
                true
            ),
            (
                Some("RX2"),
                Some("clinician"),
                "TREAT",
                "read",
                Outcome::Success,
                false
            ),
            (
                Some("RX1"),
                Some("clinician"),
                "TREAT",
                "read",
                Outcome::Success,
                false
            ),
        ],
        "newest first, the entry touching both ids once, p9's access not shown"
    );
    assert_eq!(log[3].recorded_ms, 1_764_756_000_001);
    let printed = format!("{log:?}");
    assert!(
        !printed.contains("dr-a") && !printed.contains("para-d"),
        "no user ids"
    );
    assert_eq!(
        trail.access_log(&ctx(), &["p1".into()], 2).unwrap().len(),
        2
    );

    // A privacy officer's search returns the AuditEvents themselves.
    let events = trail
        .search(
            &ctx(),
            &AuditQuery {
                patient: Some("p1".into()),
                outcome: Some("denied".into()),
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["resourceType"], "AuditEvent");
    assert_eq!(events[0]["outcome"], "4");
    assert_eq!(events[0]["agent"][0]["who"]["identifier"]["value"], "rec-e");
}

#[test]
fn a_trail_whose_older_entries_hold_whole_audit_events_is_still_read_and_continued() {
    // Before the compact stored form, each entry's body was the AuditEvent itself, with a random
    // id. Such a trail must still verify, be searched and show a person's access log, and new
    // entries chain on after it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = Arc::new(SqliteAuditLog::open(&path).unwrap());
    let mut prev = concord_audit::GENESIS.to_string();
    let mut older = Vec::new();
    for seq in 1..=2u64 {
        let record = record(seq as usize, "dr-old", "RX9", &["p1"]);
        let event = concord_audit::audit_event(&record, &format!("old-event-{seq}"));
        let link = concord_audit::ChainedEntry::new(&prev, seq, event.to_string());
        prev.clone_from(&link.hash);
        older.push(concord_store::AuditEntry {
            seq,
            recorded_ms: record.recorded_ms,
            patients: record.patients.clone(),
            agent: record.agent.subject.clone(),
            organization: record.agent.organization.clone(),
            action: record.action.code().into(),
            interaction: record.interaction.clone(),
            outcome: record.outcome.as_str().into(),
            prev_hash: link.prev_hash,
            hash: link.hash,
            body: link.body,
        });
    }
    log.append(&ctx(), &older).unwrap();
    let trail = AuditTrail::open(log, "hub-test").unwrap();
    assert_eq!(
        trail.record(record(3, "dr-new", "RX1", &["p1"])).unwrap(),
        3
    );
    assert_eq!(trail.verify(&ctx()), Ok(3));

    let events = trail
        .search(
            &ctx(),
            &AuditQuery {
                patient: Some("p1".into()),
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, ["3", "old-event-2", "old-event-1"], "newest first");
    let agents: Vec<&str> = events
        .iter()
        .filter_map(|e| e["agent"][0]["who"]["identifier"]["value"].as_str())
        .collect();
    assert_eq!(agents, ["dr-new", "dr-old", "dr-old"]);
    // The new entry's event is built from its stored record: the same AuditEvent as before.
    assert_eq!(
        events[0],
        concord_audit::audit_event(&record(3, "dr-new", "RX1", &["p1"]), "3")
    );

    let organisations: Vec<Option<String>> = trail
        .access_log(&ctx(), &["p1".into()], 10)
        .unwrap()
        .into_iter()
        .map(|e| e.organization)
        .collect();
    assert_eq!(
        organisations,
        [Some("RX1".into()), Some("RX9".into()), Some("RX9".into())]
    );
}
