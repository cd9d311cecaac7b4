//! The per-source OperationOutcome: one issue for every source consulted, saying what it did.
//!
//! Owns the mapping from a [`SourceStatus`] (and staleness, and skipped bad input) to an issue's
//! severity, code and `source-status` coding, the sentence that names the source, and the issue
//! extensions. Does not: read resources or decide statuses. Sentences name organisations and
//! configuration ids only, never patient data, so the outcome may be logged and shown anywhere.

use serde_json::{Map, Value, json};

use crate::provenance::{
    SOURCE_DATA_AGE_URL, SOURCE_ELAPSED_URL, SOURCE_ID_URL, SOURCE_ORGANIZATION_URL, data_age_secs,
    is_stale, organization_reference, quantity,
};
use crate::source::{Freshness, SourceInfo, SourceStatus};

/// The code system of the `details.coding` on each source's issue.
pub const SOURCE_STATUS_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/source-status";

/// What the merge learned about one source, for its issue.
pub(crate) struct SourceReport {
    pub info: SourceInfo,
    pub status: SourceStatus,
    pub elapsed_ms: u64,
    /// Distinct resources accepted from it (before de-duplication against other sources).
    pub accepted: usize,
    /// Values skipped because they were not resources with a valid type and id.
    pub rejected: usize,
    /// Forwarded issues that were objects, in the order received.
    pub forwarded: Vec<Value>,
    /// Forwarded issues skipped because they were not objects.
    pub rejected_forwarded: usize,
}

/// Builds the OperationOutcome: each source's issue in input order, each followed by the issues
/// it forwarded. With no source at all there is still one issue, because an OperationOutcome
/// must have one and the reader must know that nothing was asked.
pub(crate) fn build(reports: &[SourceReport], now_ms: i64) -> Value {
    let mut issues = Vec::new();
    for report in reports {
        issues.push(issue(report, now_ms));
        issues.extend(report.forwarded.iter().cloned());
    }
    if issues.is_empty() {
        let text = "No sources were consulted.";
        issues.push(json!({
            "severity": "information",
            "code": "informational",
            "details": { "text": text },
            "diagnostics": text,
        }));
    }
    // Built by moving the issues in: `json!` would copy them by serialising them.
    let mut outcome = Map::new();
    outcome.insert("resourceType".into(), Value::from("OperationOutcome"));
    outcome.insert("issue".into(), Value::Array(issues));
    Value::Object(outcome)
}

/// `"3 resources"`, `"1 resource"`, `"no resources"`.
fn count(n: usize, noun: &str) -> String {
    match n {
        0 => format!("no {noun}s"),
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// A duration for people: seconds up to two minutes, then minutes, hours, days.
fn human_duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 120 * 60 {
        format!("{} min", secs / 60)
    } else if secs < 48 * 3600 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} days", secs / 86_400)
    }
}

/// `"Riverside Medical Practice (gp-a, ODS A81001)"`.
fn describe(info: &SourceInfo) -> String {
    match info.ods_code.as_deref().filter(|c| !c.is_empty()) {
        Some(ods) => format!("{} ({}, ODS {})", info.name, info.id, ods),
        None => format!("{} ({})", info.name, info.id),
    }
}

/// A reason from the connector as a clause: it is placed mid-sentence, so its own full stop goes.
fn clause(reason: &str) -> &str {
    let reason = reason.trim().trim_end_matches('.');
    if reason.is_empty() {
        "no reason given"
    } else {
        reason
    }
}

/// The staleness sentence for a batch source, if its data is stale.
fn staleness(freshness: &Freshness, now_ms: i64) -> Option<String> {
    let Freshness::Batch {
        last_load_ms,
        max_age_ms,
    } = freshness
    else {
        return None;
    };
    if !is_stale(freshness, now_ms) {
        return None;
    }
    Some(match last_load_ms {
        Some(loaded) => format!(
            "its data was last loaded {} ago, longer than the {} allowed",
            human_duration(now_ms.saturating_sub(*loaded)),
            human_duration(*max_age_ms)
        ),
        None => "when its data was last loaded is unknown".to_string(),
    })
}

fn issue(report: &SourceReport, now_ms: i64) -> Value {
    let info = &report.info;
    let who = describe(info);
    let n = report.accepted;
    let stale = staleness(&info.freshness, now_ms);
    // Staleness only matters when the source's data is being shown.
    let stale = stale.filter(|_| report.status == SourceStatus::Ok || n > 0);
    let (mut severity, issue_code, display, mut text) = match &report.status {
        SourceStatus::Ok => match &stale {
            None => (
                "information",
                "informational",
                "Answered",
                format!(
                    "{who} answered in {} ms with {}.",
                    report.elapsed_ms,
                    count(n, "resource")
                ),
            ),
            Some(why) => (
                "warning",
                "incomplete",
                "Answered with stale data",
                format!(
                    "{who} answered in {} ms with {}, but {why}.",
                    report.elapsed_ms,
                    count(n, "resource")
                ),
            ),
        },
        SourceStatus::Timeout { after_ms } => (
            "warning",
            "timeout",
            "Timed out",
            format!("{who} did not answer within {after_ms} ms."),
        ),
        SourceStatus::Failed { reason } => (
            "warning",
            "transient",
            "Failed",
            format!("{who} could not be queried: {}.", clause(reason)),
        ),
        SourceStatus::Invalid { reason } => (
            "warning",
            "processing",
            "Invalid answer",
            format!(
                "{who} gave an answer that could not be used as it is: {}.",
                clause(reason)
            ),
        ),
        SourceStatus::BreakerOpen => (
            "warning",
            "transient",
            "Not asked: circuit breaker open",
            format!(
                "{who} was not asked because it has failed repeatedly; it will be tried again after a pause."
            ),
        ),
        SourceStatus::Skipped { reason } => (
            "information",
            "informational",
            "Not asked",
            format!("{who} was not asked: {}.", clause(reason)),
        ),
    };
    // A stale answer is still an `Ok` call: its code says the data shown is old.
    let status_code = if report.status == SourceStatus::Ok && stale.is_some() {
        "stale"
    } else {
        report.status.code()
    };
    if report.status != SourceStatus::Ok {
        // Partial data (a timeout mid-paging) is shown, so the reader is told it is partial.
        if n > 0 {
            let verb = if n == 1 { "is" } else { "are" };
            text.push_str(&format!(
                " The {} received {verb} included.",
                count(n, "resource")
            ));
        }
        if let Some(why) = &stale {
            let mut why = why.clone();
            if let Some(first) = why.get(..1) {
                why.replace_range(..1, &first.to_uppercase());
            }
            text.push_str(&format!(" {why}."));
        }
    }
    if report.rejected > 0 {
        severity = "warning";
        text.push_str(&match report.rejected {
            1 => " 1 item it sent was ignored because it was not a FHIR resource with a valid \
                  resourceType and id."
                .to_string(),
            k => format!(
                " {k} items it sent were ignored because they were not FHIR resources with a \
                 valid resourceType and id."
            ),
        });
    }
    if report.rejected_forwarded > 0 {
        severity = "warning";
        text.push_str(&match report.rejected_forwarded {
            1 => " 1 issue it forwarded was ignored because it was not a JSON object.".to_string(),
            k => {
                format!(" {k} issues it forwarded were ignored because they were not JSON objects.")
            }
        });
    }

    let mut extensions = vec![
        json!({ "url": SOURCE_ID_URL, "valueString": info.id }),
        json!({ "url": SOURCE_ORGANIZATION_URL, "valueReference": organization_reference(info) }),
        json!({
            "url": SOURCE_ELAPSED_URL,
            "valueQuantity": quantity(i64::try_from(report.elapsed_ms).unwrap_or(i64::MAX), "ms"),
        }),
    ];
    if let Some(age) = data_age_secs(&info.freshness, now_ms) {
        extensions.push(json!({ "url": SOURCE_DATA_AGE_URL, "valueQuantity": quantity(age, "s") }));
    }
    let mut issue = Map::new();
    issue.insert("extension".into(), Value::Array(extensions));
    issue.insert("severity".into(), Value::from(severity));
    issue.insert("code".into(), Value::from(issue_code));
    issue.insert(
        "details".into(),
        json!({
            "coding": [{ "system": SOURCE_STATUS_SYSTEM, "code": status_code, "display": display }],
            "text": text,
        }),
    );
    issue.insert("diagnostics".into(), Value::from(text));
    Value::Object(issue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(59_999), "59 s");
        assert_eq!(human_duration(119_000), "119 s");
        assert_eq!(human_duration(120_000), "2 min");
        assert_eq!(human_duration(3 * 3_600_000), "3 h");
        assert_eq!(human_duration(47 * 3_600_000), "47 h");
        assert_eq!(human_duration(72 * 3_600_000), "3 days");
        assert_eq!(human_duration(-5), "0 s");
    }

    #[test]
    fn counts_agree_in_number() {
        assert_eq!(count(0, "resource"), "no resources");
        assert_eq!(count(1, "resource"), "1 resource");
        assert_eq!(count(2, "resource"), "2 resources");
    }
}
