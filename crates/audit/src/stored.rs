//! The stored form of an audit trail entry: the [`AuditRecord`] itself, as compact JSON, from which
//! the AuditEvent is built when someone reads the trail.
//!
//! Owns the encoding ([`stored_body`]) and reading an entry's body back, in this form or in the
//! earlier one, where the body was the whole AuditEvent ([`record_of_body`], [`event_of_body`]).
//! Does not hash (the chain covers whatever the body is) or store anything.
//!
//! Why not store the AuditEvent: every audited request is committed to the trail before it is
//! answered, so the entry's size is paid on the busiest path of the server. The AuditEvent of a
//! read is about 2 KB of JSON, most of it fixed code systems and displays; the record it is built
//! from is about 300 bytes, and [`audit_event`] rebuilds the same AuditEvent from it whenever it is
//! read. A privacy officer's search reads a page of entries; every request writes one.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Action, Agent, AuditRecord, Outcome, audit_event, record_from_event};

/// The version of the stored form, the first member of every body written in it. An AuditEvent
/// (the earlier form) starts with `resourceType` instead.
const FORM: u8 = 1;

/// One record, with short member names: the trail holds one per request for years.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    form: u8,
    at: i64,
    req: Cow<'a, str>,
    act: Cow<'a, str>,
    int: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    op: Option<Cow<'a, str>>,
    out: Cow<'a, str>,
    st: u16,
    who: Cow<'a, str>,
    kind: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<Cow<'a, str>>,
    pou: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pat: Vec<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rt: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rid: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    btg: Option<(Cow<'a, str>, Cow<'a, str>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    why: Option<Cow<'a, str>>,
    node: Cow<'a, str>,
}

fn borrowed(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(Cow::Borrowed)
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// The body of a new trail entry for a record.
pub fn stored_body(record: &AuditRecord) -> String {
    let stored = Stored {
        form: FORM,
        at: record.recorded_ms,
        req: Cow::Borrowed(&record.request_id),
        act: Cow::Borrowed(record.action.code()),
        int: Cow::Borrowed(&record.interaction),
        op: borrowed(&record.operation),
        out: Cow::Borrowed(record.outcome.as_str()),
        st: record.status,
        who: Cow::Borrowed(&record.agent.subject),
        kind: Cow::Borrowed(&record.agent.kind),
        role: borrowed(&record.agent.role),
        org: borrowed(&record.agent.organization),
        app: borrowed(&record.agent.client_id),
        pou: Cow::Borrowed(&record.purpose),
        pat: record
            .patients
            .iter()
            .map(|p| Cow::Borrowed(&**p))
            .collect(),
        rt: borrowed(&record.resource_type),
        rid: borrowed(&record.resource_id),
        q: borrowed(&record.query),
        btg: record
            .break_glass
            .as_ref()
            .map(|(reason, text)| (Cow::Borrowed(&**reason), Cow::Borrowed(&**text))),
        why: borrowed(&record.denied_reason),
        node: Cow::Borrowed(&record.observer),
    };
    // Serialising plain strings and numbers into a String cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

fn decode(body: &str) -> Option<AuditRecord> {
    let s: Stored<'_> = serde_json::from_str(body).ok()?;
    if s.form != FORM {
        return None;
    }
    Some(AuditRecord {
        recorded_ms: s.at,
        request_id: s.req.into_owned(),
        action: Action::parse(&s.act)?,
        interaction: s.int.into_owned(),
        operation: owned(s.op),
        outcome: Outcome::parse(&s.out)?,
        status: s.st,
        agent: Agent {
            subject: s.who.into_owned(),
            kind: s.kind.into_owned(),
            role: owned(s.role),
            organization: owned(s.org),
            client_id: owned(s.app),
        },
        purpose: s.pou.into_owned(),
        patients: s.pat.into_iter().map(Cow::into_owned).collect(),
        resource_type: owned(s.rt),
        resource_id: owned(s.rid),
        query: owned(s.q),
        break_glass: s.btg.map(|(r, t)| (r.into_owned(), t.into_owned())),
        denied_reason: owned(s.why),
        observer: s.node.into_owned(),
    })
}

/// Whether a body is a whole AuditEvent, as trails written before the compact form hold.
fn is_event(body: &str) -> bool {
    body.trim_start()
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim_start().starts_with("\"resourceType\""))
}

/// The record an entry's body holds, in either form; `None` when the body is neither.
pub fn record_of_body(body: &str) -> Option<AuditRecord> {
    if is_event(body) {
        let event: Value = serde_json::from_str(body).ok()?;
        return record_from_event(&event);
    }
    decode(body)
}

/// The AuditEvent of entry `seq`: built from the record, with the entry's number as its id, or, for
/// an entry written as a whole AuditEvent, that event as it was written. `None` when the body is
/// neither.
pub fn event_of_body(seq: u64, body: &str) -> Option<Value> {
    if is_event(body) {
        let event: Value = serde_json::from_str(body).ok()?;
        return (event.get("resourceType")? == "AuditEvent").then_some(event);
    }
    decode(body).map(|record| audit_event(&record, &seq.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::{records, summary_read};
    use proptest::prelude::*;

    #[test]
    fn a_record_is_stored_compactly_and_read_back_as_its_audit_event() {
        let record = summary_read();
        let body = stored_body(&record);
        let event = audit_event(&record, "17");
        assert!(
            body.len() * 3 < event.to_string().len(),
            "the stored form ({} bytes) is the point of this module",
            body.len()
        );
        assert_eq!(record_of_body(&body), Some(record));
        assert_eq!(event_of_body(17, &body), Some(event));
    }

    #[test]
    fn an_entry_written_as_a_whole_audit_event_reads_as_it_was_written() {
        let record = summary_read();
        let event = audit_event(&record, "7d2c9c1e-5b1a-4c55-9a43-54c6b8c0a0b1");
        let body = event.to_string();
        assert_eq!(event_of_body(3, &body), Some(event));
        assert_eq!(record_of_body(&body), Some(record));
    }

    #[test]
    fn a_body_in_neither_form_is_not_read() {
        for body in [
            "",
            "null",
            "[]",
            "{\"form\":2,\"at\":1}",
            "{\"resourceType\":\"Patient\"}",
            "{\"form\":1,\"at\":1,\"req\":\"r\",\"act\":\"X\",\"int\":\"read\",\"out\":\"success\",\"st\":200,\"who\":\"a\",\"kind\":\"user\",\"pou\":\"TREAT\",\"node\":\"n\"}",
            "{\"form\":1,\"at\":\"yesterday\"}",
        ] {
            assert_eq!(record_of_body(body), None, "{body}");
            assert_eq!(event_of_body(1, body), None, "{body}");
        }
    }

    proptest! {
        #[test]
        fn every_record_reads_back_unchanged(record in records()) {
            let body = stored_body(&record);
            prop_assert_eq!(record_of_body(&body), Some(record.clone()));
            prop_assert_eq!(event_of_body(9, &body), Some(audit_event(&record, "9")));
        }
    }
}
