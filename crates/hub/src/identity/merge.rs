//! Merging and unmerging: golden persons (`POST [base]/Person/$merge`, `Person/$unmerge`) and
//! source records (`Patient/$merge`, `Patient/$unmerge`, what an HL7 v2 A40 does).
//!
//! Owns moving every record of one person to another (the merged person is kept, inactive, with
//! a link to the survivor) and undoing that exactly: the merged person's version before the
//! merge is the record of what it held. A record merge retires one Patient with `Patient.link`
//! replaced-by / replaces. Each decision is a Provenance naming who and why. Does not re-point
//! the clinical data filed under a retired record; the feed that holds that data does.

use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_mpi::GoldenPerson;
use concord_mpi::persons::{PersonMerge, merge, unmerge};
use concord_store::StoredVersion;
use serde_json::Value;

use super::{actor_name, read_person, record_decision, save_person};
use crate::Hub;

fn conflict(e: impl ToString) -> Error {
    Error::new(ErrorKind::Conflict, e.to_string())
}

impl Hub {
    /// Merges `source` into `target`; returns the survivor's new version.
    pub fn merge_persons(
        &self,
        ctx: &RequestContext,
        source: &str,
        target: &str,
        reason: Option<&str>,
    ) -> Result<StoredVersion, Error> {
        self.authorize_identity(ctx, true)?;
        self.in_raw_unit(ctx, |tx| {
            let mut state = self.identity.lock_in(tx);
            let mut survivor = read_person(tx, target)?;
            let mut merged = read_person(tx, source)?;
            let moved = merge(&mut survivor, &mut merged).map_err(conflict)?;
            for link in &moved.moved {
                state
                    .person_of
                    .insert(link.record.clone(), survivor.id.clone());
            }
            save_person(self, tx, &state, &mut merged)?;
            let version = save_person(self, tx, &state, &mut survivor)?;
            let records: Vec<&str> = moved.moved.iter().map(|l| l.record.as_str()).collect();
            record_decision(
                self,
                tx,
                ctx,
                &version,
                "merge",
                &records,
                None,
                &actor_name(ctx),
                reason,
            )?;
            Ok(version)
        })
    }

    /// Undoes the merge that retired `source`: its records go back to it with their old
    /// assurance. Returns the restored person's new version.
    pub fn unmerge_person(
        &self,
        ctx: &RequestContext,
        source: &str,
        reason: Option<&str>,
    ) -> Result<StoredVersion, Error> {
        self.authorize_identity(ctx, true)?;
        let current = self.read(ctx, "Person", source)?;
        let retired = parse(&current).ok_or_else(|| {
            Error::invalid(format!(
                "Person/{source} is not a golden person of the index"
            ))
        })?;
        let Some(survivor_id) = retired.replaced_by.clone() else {
            return Err(conflict(format!(
                "Person/{source} was not merged into another person"
            )));
        };
        // The version before the merge holds exactly the links the merge moved.
        let before = (current.version_id > 1)
            .then(|| {
                self.store
                    .vread(ctx, "Person", source, current.version_id - 1)
            })
            .transpose()?
            .flatten()
            .as_ref()
            .and_then(parse)
            .ok_or_else(|| {
                conflict(format!(
                    "the history of Person/{source} does not show the merge"
                ))
            })?;
        let record = PersonMerge {
            survivor: survivor_id.clone(),
            merged: source.to_string(),
            moved: before.links.clone(),
        };
        self.in_raw_unit(ctx, |tx| {
            let mut state = self.identity.lock_in(tx);
            // The merge undone must be the person's latest change: checked in the unit, which
            // no other write can interleave with.
            if tx.read("Person", source)?.map(|v| v.version_id) != Some(current.version_id) {
                return Err(conflict(format!(
                    "Person/{source} changed while its merge was being undone; try again"
                )));
            }
            let mut survivor = read_person(tx, &survivor_id)?;
            let mut merged = read_person(tx, source)?;
            unmerge(&mut survivor, &mut merged, &record).map_err(conflict)?;
            for link in &record.moved {
                state
                    .person_of
                    .insert(link.record.clone(), source.to_string());
            }
            save_person(self, tx, &state, &mut survivor)?;
            let version = save_person(self, tx, &state, &mut merged)?;
            let records: Vec<&str> = record.moved.iter().map(|l| l.record.as_str()).collect();
            record_decision(
                self,
                tx,
                ctx,
                &version,
                "unmerge",
                &records,
                None,
                &actor_name(ctx),
                reason,
            )?;
            Ok(version)
        })
    }
}

fn parse(version: &StoredVersion) -> Option<GoldenPerson> {
    let body: Value = serde_json::from_str(version.body.as_deref()?).ok()?;
    GoldenPerson::from_fhir(&body)
}

impl Hub {
    /// `POST [base]/Patient/$merge` (`source-patient`, `target-patient`): one source system found
    /// that two of its records are one person (HL7 v2 A40). The source record is retired
    /// (`active` false, `link` replaced-by the target; the target gets `link` replaces), stops
    /// being a match candidate, and joins the target's golden person so the locator still finds
    /// data filed under it. Returns the target's new version.
    pub fn merge_patients(
        &self,
        ctx: &RequestContext,
        source: &str,
        target: &str,
        reason: Option<&str>,
    ) -> Result<StoredVersion, Error> {
        self.authorize_identity(ctx, true)?;
        if source == target {
            return Err(conflict("a record cannot be merged into itself"));
        }
        self.in_raw_unit(ctx, |tx| {
            let mut state = self.identity.lock_in(tx);
            let mut retired = current_patient(tx, source)?;
            let mut survivor = current_patient(tx, target)?;
            if replaced_by(&retired).is_some() {
                return Err(conflict(format!("Patient/{source} was already merged")));
            }
            if replaced_by(&survivor).is_some() {
                return Err(conflict(format!(
                    "Patient/{target} was itself merged into another record"
                )));
            }
            retired["active"] = Value::Bool(false);
            push_link(&mut retired, target, "replaced-by");
            push_link(&mut survivor, source, "replaces");
            super::put(self, tx, "Patient", source, retired)?;
            let version = super::put(self, tx, "Patient", target, survivor)?;
            let person = state.person_of.get(target).cloned();
            let previous = state.person_of.get(source).cloned();
            if let Some(person) = person.filter(|p| Some(p) != previous.as_ref()) {
                if let Some(previous) = &previous {
                    let mut old = read_person(tx, previous)?;
                    old.unlink(source);
                    save_person(self, tx, &state, &mut old)?;
                }
                let mut golden = read_person(tx, &person)?;
                golden.link(source, concord_mpi::Assurance::Level4);
                state.person_of.insert(source.to_string(), person.clone());
                save_person(self, tx, &state, &mut golden)?;
            }
            record_decision(
                self,
                tx,
                ctx,
                &version,
                "patient-merge",
                &[source, target],
                None,
                &actor_name(ctx),
                reason,
            )?;
            state.index.remove(source);
            Ok(version)
        })
    }

    /// `POST [base]/Patient/$unmerge` (`source-patient`): the merge was a mistake. The record is
    /// active again, both `link`s go, and the record gets a golden person of its own, kept apart
    /// from the one it was merged into so the index does not join them again by itself.
    pub fn unmerge_patient(
        &self,
        ctx: &RequestContext,
        source: &str,
        reason: Option<&str>,
    ) -> Result<StoredVersion, Error> {
        self.authorize_identity(ctx, true)?;
        self.in_raw_unit(ctx, |tx| {
            let mut state = self.identity.lock_in(tx);
            let mut retired = current_patient(tx, source)?;
            let Some(target) = replaced_by(&retired) else {
                return Err(conflict(format!(
                    "Patient/{source} was not merged into another record"
                )));
            };
            let mut survivor = current_patient(tx, &target)?;
            retired["active"] = Value::Bool(true);
            drop_link(&mut retired, &target);
            drop_link(&mut survivor, source);
            let version = super::put(self, tx, "Patient", source, retired.clone())?;
            super::put(self, tx, "Patient", &target, survivor)?;
            if let Some(person) = state.person_of.get(source).cloned() {
                let mut old = read_person(tx, &person)?;
                old.unlink(source);
                save_person(self, tx, &state, &mut old)?;
                state.kept_apart.insert((source.to_string(), person));
            }
            let mut own = GoldenPerson::new(Hub::new_id());
            own.link(source, concord_mpi::Assurance::Level4);
            state.person_of.insert(source.to_string(), own.id.clone());
            state
                .index
                .insert(source, concord_mpi::Demographics::from_patient(&retired));
            let person = save_person(self, tx, &state, &mut own)?;
            record_decision(
                self,
                tx,
                ctx,
                &person,
                "patient-unmerge",
                &[source, &target],
                None,
                &actor_name(ctx),
                reason,
            )?;
            Ok(version)
        })
    }
}

fn current_patient(tx: &mut dyn concord_store::StoreTx, id: &str) -> Result<Value, Error> {
    tx.read("Patient", id)?
        .and_then(|v| v.body)
        .and_then(|b| serde_json::from_str(&b).ok())
        .ok_or_else(|| Error::not_found(format!("Patient/{id} is not known")))
}

/// The record a merged Patient was replaced by.
fn replaced_by(patient: &Value) -> Option<String> {
    patient
        .get("link")?
        .as_array()?
        .iter()
        .filter(|l| l.get("type").and_then(Value::as_str) == Some("replaced-by"))
        .find_map(|l| {
            l.pointer("/other/reference")?
                .as_str()?
                .strip_prefix("Patient/")
        })
        .map(str::to_string)
}

fn push_link(patient: &mut Value, other: &str, link_type: &str) {
    let link =
        serde_json::json!({"other": {"reference": format!("Patient/{other}")}, "type": link_type});
    match patient.get_mut("link").and_then(Value::as_array_mut) {
        Some(links) => links.push(link),
        None => patient["link"] = Value::Array(vec![link]),
    }
}

fn drop_link(patient: &mut Value, other: &str) {
    let reference = format!("Patient/{other}");
    let Some(map) = patient.as_object_mut() else {
        return;
    };
    if let Some(links) = map.get_mut("link").and_then(Value::as_array_mut) {
        links.retain(|l| {
            l.pointer("/other/reference").and_then(Value::as_str) != Some(reference.as_str())
        });
        if links.is_empty() {
            map.remove("link");
        }
    }
}
