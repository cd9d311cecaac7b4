//! `Patient/[id]/$everything` (<https://hl7.org/fhir/R4/patient-operation-everything.html>).
//!
//! Owns: the patient plus every resource in the patient's compartment (as the R4
//! CompartmentDefinition for Patient defines it), with `_since`, `_type` and paging. Does not:
//! follow references out of the compartment (Medication, Practitioner, ...), which a later
//! revision may add as includes.

use concord_fhir::resource::is_resource_type;
use concord_fhir::{Error, RequestContext};
use concord_search::registry::{compartment_types, patient_compartment_params};
use concord_store::CompartmentQuery;

use crate::Hub;
use crate::bundle::{Bundle, search_entry};
use crate::search::{PageParams, page_links};
use concord_access::Interaction;

impl Hub {
    pub fn patient_everything(
        &self,
        ctx: &RequestContext,
        id: &str,
        params: &[(String, String)],
        base: &str,
    ) -> Result<Bundle, Error> {
        let patient = self.read(&ctx.internal(), "Patient", id)?;
        let grant = self.authorize(ctx, "Patient", Interaction::Read, Some(id))?;
        let mut since = None;
        let mut types: Option<Vec<String>> = None;
        for (name, value) in params {
            match name.as_str() {
                "_since" => since = Some(crate::search::parse_since(value)?),
                "_type" => {
                    let list: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect();
                    if let Some(bad) = list.iter().find(|t| !is_resource_type(t)) {
                        return Err(Error::invalid(format!(
                            "_type: '{bad}' is not a FHIR R4 resource type"
                        )));
                    }
                    types.get_or_insert_with(Vec::new).extend(list);
                }
                "_count" | "_offset" | "_snapshot" | "_format" | "_pretty" => {}
                "start" | "end" => {
                    return Err(Error::not_supported(format!(
                        "$everything parameter {name} is not supported; use _since"
                    )));
                }
                other => {
                    return Err(Error::invalid(format!(
                        "unknown $everything parameter '{other}'"
                    )));
                }
            }
        }
        let page =
            PageParams::from_params(params, self.config.default_count, self.config.max_count)?;
        let wanted = |t: &str| {
            types
                .as_ref()
                .is_none_or(|list| list.iter().any(|w| w == t))
        };
        let members: Vec<(String, Vec<String>)> = compartment_types()
            .filter(|t| *t != "Patient" && wanted(t))
            .map(|t| {
                (
                    t.to_string(),
                    patient_compartment_params(t)
                        .iter()
                        .map(|p| (*p).to_string())
                        .collect(),
                )
            })
            .filter(|(_, p): &(String, Vec<String>)| !p.is_empty())
            .collect();
        let include_patient = wanted("Patient") && since.is_none_or(|s| patient.last_updated >= s);
        // The patient is the first entry of the first page; members follow from position 1.
        let (member_offset, member_count) = if include_patient {
            if page.offset == 0 {
                (0, page.count.saturating_sub(1))
            } else {
                (page.offset - 1, page.count)
            }
        } else {
            (page.offset, page.count)
        };
        let mut result = self.store.compartment(
            ctx,
            &CompartmentQuery {
                owner_type: "Patient".into(),
                owner_id: id.to_string(),
                members,
                since,
                count: member_count,
                offset: member_offset,
                snapshot: page.snapshot,
            },
        )?;
        let before = result.matches.len();
        if !grant.filter.is_everything() {
            result.matches.retain(|version| {
                version
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                    .is_some_and(|resource| {
                        self.mask_local(&grant, &version.resource_type, &resource)
                            == concord_access::Verdict::Keep
                    })
            });
        }
        let withheld = before - result.matches.len();
        let total = result.total.unwrap_or(0) + u64::from(include_patient);
        let mut bundle = Bundle::new("searchset", self.clock.now_ms());
        bundle.total = Some(total);
        bundle.link = page_links(
            base,
            &format!("Patient/{id}/$everything"),
            params,
            &page,
            result.snapshot,
            Some(total),
            result.matches.len(),
        );
        if !grant.filter.is_everything() {
            // The whole record's count would tell how much is withheld.
            bundle.total = None;
        }
        if include_patient && page.offset == 0 && page.count > 0 {
            bundle
                .entry
                .push(search_entry(base, &patient, "match", None)?);
        }
        for version in &result.matches {
            bundle
                .entry
                .push(search_entry(base, version, "match", None)?);
        }
        if withheld > 0 {
            // Pages still step through the whole record, so they line up; what is withheld is
            // said, not what it was or how much.
            crate::search::push_withheld(&mut bundle)?;
        }
        Ok(bundle)
    }
}
