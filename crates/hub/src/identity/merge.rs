//! Merging and unmerging golden persons: `POST [base]/Person/$merge` and `Person/$unmerge`.
//!
//! Owns moving every record of one person to another (the merged person is kept, inactive, with
//! a link to the survivor) and undoing that exactly: the merged person's version before the
//! merge is the record of what it held. Each decision is a Provenance naming who and why. Does
//! not merge source Patient records (an HL7 A40 within one source); that is the feed's
//! `Patient.link` replaced-by, which takes the retired record out of matching.

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
        let mut state = self.identity.lock();
        self.in_raw_unit(ctx, |tx| {
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
        let mut state = self.identity.lock();
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
