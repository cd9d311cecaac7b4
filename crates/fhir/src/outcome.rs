//! OperationOutcome construction (<https://hl7.org/fhir/R4/operationoutcome.html>).
//!
//! Owns: turning [`Error`]s and [`Issue`]s into OperationOutcome JSON. Does not: decide statuses
//! (see [`crate::error`]) or log anything.

use serde_json::{Map, Value, json};

use crate::error::{Error, Issue};

/// Builds an OperationOutcome resource from issues.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues.iter().map(issue_json).collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

/// The OperationOutcome for an error.
pub fn from_error(error: &Error) -> Value {
    operation_outcome(&error.issues)
}

/// An OperationOutcome saying all went well, for `Prefer: return=OperationOutcome`.
pub fn all_ok(diagnostics: &str) -> Value {
    operation_outcome(&[Issue::information(
        crate::IssueType::Informational,
        diagnostics,
    )])
}

fn issue_json(issue: &Issue) -> Value {
    let mut map = Map::new();
    map.insert("severity".into(), Value::from(issue.severity.code()));
    map.insert("code".into(), Value::from(issue.code.code()));
    if !issue.diagnostics.is_empty() {
        map.insert("diagnostics".into(), Value::from(issue.diagnostics.clone()));
    }
    if !issue.expression.is_empty() {
        map.insert("expression".into(), Value::from(issue.expression.clone()));
    }
    Value::Object(map)
}
