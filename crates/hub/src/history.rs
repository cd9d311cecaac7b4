//! History: instance, type and system (<https://hl7.org/fhir/R4/http.html#history>).
//!
//! Owns: `_since`, `_count` and stable paging (`_offset` with the `_snapshot` of the first page)
//! for history Bundles.

use concord_access::Interaction;
use concord_fhir::{Error, RequestContext};
use concord_store::HistoryQuery;

use crate::Hub;
use crate::bundle::{Bundle, history_entry};
use crate::search::{PageParams, page_links};
use crate::write::ensure_type;

impl Hub {
    /// History of one resource (`resource_type` and `id`), a type (`id` is `None`) or the whole
    /// server (both `None`). `params` are the request's query parameters; `self_path` is the
    /// request path relative to the base (e.g. `Patient/1/_history`).
    pub fn history(
        &self,
        ctx: &RequestContext,
        resource_type: Option<&str>,
        id: Option<&str>,
        params: &[(String, String)],
        base: &str,
        self_path: &str,
    ) -> Result<Bundle, Error> {
        if let Some(t) = resource_type {
            ensure_type(t)?;
        }
        let mut since = None;
        for (name, value) in params {
            match name.as_str() {
                "_since" => since = Some(crate::search::parse_since(value)?),
                "_count" | "_offset" | "_snapshot" | "_format" | "_pretty" => {}
                "_at" | "_list" | "_sort" => {
                    return Err(Error::not_supported(format!(
                        "history parameter {name} is not supported"
                    )));
                }
                other => {
                    return Err(Error::invalid(format!(
                        "unknown history parameter '{other}'"
                    )));
                }
            }
        }
        let page =
            PageParams::from_params(params, self.config.default_count, self.config.max_count)?;
        if let (Some(t), Some(i)) = (resource_type, id) {
            match self.store.read(ctx, t, i)? {
                None => return Err(Error::not_found(format!("{t}/{i} is not known"))),
                Some(current) if !current.is_deleted() => {
                    self.guard_read(ctx, Interaction::Read, &current, None)?;
                }
                Some(_) => {}
            }
        }
        let mut result = self.store.history(
            ctx,
            &HistoryQuery {
                resource_type: resource_type.map(str::to_string),
                id: id.map(str::to_string),
                since,
                snapshot: page.snapshot,
                count: page.count,
                offset: page.offset,
            },
        )?;
        let trusted = crate::access::is_trusted_system(ctx);
        // Older versions may have belonged to someone else; each is decided on its own.
        let withheld = self.filter_versions(ctx, Interaction::Read, &mut result.versions, None);
        let mut bundle = Bundle::new("history", self.clock.now_ms());
        // The count of everyone's versions is not for a caller who may see only some of them.
        bundle.total = trusted.then_some(result.total);
        bundle.link = page_links(
            base,
            self_path,
            params,
            &page,
            result.snapshot,
            Some(result.total),
            result.versions.len(),
        );
        for version in &result.versions {
            bundle.entry.push(history_entry(base, version)?);
        }
        if withheld > 0 {
            crate::search::push_withheld(&mut bundle)?;
        }
        Ok(bundle)
    }
}
