//! The data steward's worklist: possible matches the index could not decide, as FHIR Tasks.
//!
//! Owns opening a Task when a new record possibly matches an existing person, and resolving it:
//! `link` merges the record's person into the candidate person; `keep-apart` records that they
//! are different people so the pair is never raised again. Listing is an ordinary search
//! (`Task?code=https://concord.health/fhir/CodeSystem/mpi|possible-match&status=requested`).
//! Does not decide who may resolve (the access layer does).

use concord_fhir::primitive::format_instant;
use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_mpi::Comparison;
use concord_mpi::persons::merge;
use concord_store::{StoreTx, StoredVersion};
use serde_json::{Value, json};

use super::{
    MPI_SYSTEM, POSSIBLE_MATCH, actor_name, evidence_extension, put, read_person, record_decision,
    round4, save_person,
};
use crate::Hub;

/// A steward's decision on a possible match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Link,
    KeepApart,
}

impl Resolution {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "link" => Some(Self::Link),
            "keep-apart" => Some(Self::KeepApart),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Link => "linked",
            Self::KeepApart => "kept-apart",
        }
    }
}

/// Opens a worklist Task: `record` may be the same person as `person`.
pub(crate) fn open_task(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    record: &str,
    person: &str,
    comparison: &Comparison,
) -> Result<StoredVersion, Error> {
    let task = json!({
        "resourceType": "Task",
        "meta": {"tag": [{"system": MPI_SYSTEM, "code": "worklist", "display": "Worklist of the master patient index"}]},
        "extension": [evidence_extension(comparison)],
        "status": "requested",
        "intent": "proposal",
        "priority": if comparison.nhs_conflict { "urgent" } else { "routine" },
        "code": {"coding": [{"system": MPI_SYSTEM, "code": POSSIBLE_MATCH, "display": "Possible duplicate person for review"}]},
        "description": if comparison.nhs_conflict {
            "The same NHS number arrived with a different name and date of birth: check before linking"
        } else {
            "A new record may belong to a person the index already holds"
        },
        "focus": {"reference": format!("Patient/{record}")},
        "authoredOn": format_instant(hub.clock.now_ms()),
        "input": [
            {"type": {"text": "candidate-person"}, "valueReference": {"reference": format!("Person/{person}")}},
            {"type": {"text": "score"}, "valueDecimal": round4(comparison.probability)},
            {"type": {"text": "grade"}, "valueCode": comparison.grade.code()},
        ],
    });
    put(hub, tx, "Task", &Hub::new_id(), task)
}

/// The (record, candidate person) of a worklist Task.
fn pair(task: &Value) -> Option<(String, String)> {
    let is_ours = task
        .pointer("/code/coding")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("system").and_then(Value::as_str) == Some(MPI_SYSTEM)
                    && c.get("code").and_then(Value::as_str) == Some(POSSIBLE_MATCH)
            })
        });
    if !is_ours {
        return None;
    }
    let record = task
        .pointer("/focus/reference")?
        .as_str()?
        .strip_prefix("Patient/")?;
    let person = task
        .get("input")?
        .as_array()?
        .iter()
        .find(|i| i.pointer("/type/text").and_then(Value::as_str) == Some("candidate-person"))?
        .pointer("/valueReference/reference")?
        .as_str()?
        .strip_prefix("Person/")?;
    Some((record.to_string(), person.to_string()))
}

/// The pair a completed keep-apart Task recorded, for loading at start.
pub(crate) fn kept_apart_pair(task: &Value) -> Option<(String, String)> {
    let kept = task
        .pointer("/businessStatus/coding/0/code")
        .and_then(Value::as_str)
        == Some("kept-apart");
    if kept { pair(task) } else { None }
}

impl Hub {
    /// `POST [base]/Task/[id]/$resolve-match` with `decision` (`link` or `keep-apart`) and an
    /// optional `reason`: a data steward settles a possible match. Returns the completed Task.
    pub fn resolve_match(
        &self,
        ctx: &RequestContext,
        task_id: &str,
        decision: Resolution,
        reason: Option<&str>,
    ) -> Result<StoredVersion, Error> {
        self.authorize_identity(ctx, true)?;
        // Read before the unit for a clear 404 or 410; read again inside it, where no other
        // write interleaves, to decide.
        self.read(ctx, "Task", task_id)?;
        self.in_raw_unit(ctx, |tx| {
            let mut state = self.identity.lock_in(tx);
            let stored = tx
                .read("Task", task_id)?
                .filter(|v| v.body.is_some())
                .ok_or_else(|| Error::not_found(format!("Task/{task_id} is not known")))?;
            let mut task: Value = serde_json::from_str(stored.body.as_deref().unwrap_or("{}"))
                .map_err(|_| Error::internal())?;
            let Some((record, candidate)) = pair(&task) else {
                return Err(Error::invalid(format!(
                    "Task/{task_id} is not a possible-match task of the index"
                )));
            };
            if task.get("status").and_then(Value::as_str) != Some("requested") {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("Task/{task_id} was already resolved"),
                ));
            }
            let current = state.person_of.get(&record).cloned();
            let (target, records): (StoredVersion, Vec<String>) = match decision {
                Resolution::Link => {
                    let Some(current) = current.filter(|c| *c != candidate) else {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            format!("Patient/{record} is already linked to Person/{candidate}"),
                        ));
                    };
                    let mut survivor = read_person(tx, &candidate)?;
                    let mut merged = read_person(tx, &current)?;
                    let moved = merge(&mut survivor, &mut merged)
                        .map_err(|e| Error::new(ErrorKind::Conflict, e.to_string()))?;
                    for link in &moved.moved {
                        state
                            .person_of
                            .insert(link.record.clone(), candidate.clone());
                    }
                    save_person(self, tx, &state, &mut merged)?;
                    let version = save_person(self, tx, &state, &mut survivor)?;
                    (version, moved.moved.into_iter().map(|l| l.record).collect())
                }
                Resolution::KeepApart => {
                    state.kept_apart.insert((record.clone(), candidate.clone()));
                    (stored.clone(), vec![record.clone()])
                }
            };
            task["status"] = json!("completed");
            task["businessStatus"] =
                json!({"coding": [{"system": MPI_SYSTEM, "code": decision.code()}]});
            task["owner"] = json!({"display": actor_name(ctx)});
            task["lastModified"] = json!(format_instant(self.clock.now_ms()));
            if let Some(reason) = reason {
                task["statusReason"] = json!({"text": reason});
            }
            let activity = match decision {
                Resolution::Link => "merge",
                Resolution::KeepApart => "keep-apart",
            };
            let refs: Vec<&str> = records.iter().map(String::as_str).collect();
            record_decision(
                self,
                tx,
                ctx,
                &target,
                activity,
                &refs,
                None,
                &actor_name(ctx),
                reason,
            )?;
            put(self, tx, "Task", task_id, task.clone())
        })
    }
}
