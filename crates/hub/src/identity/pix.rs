//! IHE PIXm: `GET [base]/Patient/$ihe-pix?sourceIdentifier=system|value[&targetSystem=...]`
//! (<https://profiles.ihe.net/ITI/PIXm/ITI-83.html>).
//!
//! Owns cross-referencing one record's identifier to the identifiers and Patient ids of every
//! record linked to the same golden person, answered as Parameters with `targetIdentifier` and
//! `targetId`. Does not search demographics (that is `$match` and PDQm's Patient search).

use concord_fhir::{Error, ErrorKind, Issue, IssueType, RequestContext};
use concord_search::parse::parse_search;
use serde_json::{Value, json};

use super::locator::identifiers;
use crate::Hub;

impl Hub {
    /// The cross-reference; `target_systems` empty means every system.
    pub fn pix(
        &self,
        ctx: &RequestContext,
        source_identifier: &str,
        target_systems: &[String],
    ) -> Result<Value, Error> {
        self.authorize_identity(ctx, false)?;
        let Some((system, value)) = source_identifier
            .split_once('|')
            .filter(|(s, v)| !s.is_empty() && !v.is_empty())
        else {
            return Err(
                Error::invalid("sourceIdentifier must be given as system|value")
                    .at("sourceIdentifier"),
            );
        };
        let params = vec![("identifier".to_string(), source_identifier.to_string())];
        let parsed = parse_search(Some("Patient"), &params)?;
        let page = self.store.search(ctx, &parsed.query)?;
        if page.matches.is_empty() {
            return Err(Error::with_issues(
                ErrorKind::NotFound,
                vec![
                    Issue::error(
                        IssueType::NotFound,
                        format!("no record carries the identifier {value} in the system {system}"),
                    )
                    .at("sourceIdentifier"),
                ],
            ));
        }
        let mut records: Vec<String> = Vec::new();
        for found in &page.matches {
            match self.person_of(&found.id) {
                Some(person) => {
                    records.extend(self.locate(ctx, &person)?.into_iter().map(|l| l.patient))
                }
                None => records.push(found.id.clone()),
            }
        }
        records.sort();
        records.dedup();
        let mut parameter = Vec::new();
        for id in &records {
            let Ok(version) = self.read(ctx, "Patient", id) else {
                continue;
            };
            let body: Value = serde_json::from_str(version.body.as_deref().unwrap_or("{}"))
                .map_err(|_| Error::internal())?;
            for (s, v) in identifiers(&body) {
                let is_source = s == system && v == value;
                let wanted = target_systems.is_empty() || target_systems.contains(&s);
                if !is_source && wanted {
                    parameter.push(json!({"name": "targetIdentifier", "valueIdentifier": {"system": s, "value": v}}));
                }
            }
            parameter.push(json!({"name": "targetId", "valueReference": {"reference": format!("Patient/{id}")}}));
        }
        Ok(json!({"resourceType": "Parameters", "parameter": parameter}))
    }
}
