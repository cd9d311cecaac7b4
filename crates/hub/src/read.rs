//! Read and vread (<https://hl7.org/fhir/R4/http.html#read>, `#vread`).
//!
//! Owns: turning store lookups into the spec's outcomes: 404 for never-known, 410 for deleted,
//! 403 when access is refused or the resource is withheld (`crate::access` decides).

use concord_access::{Interaction, Verdict};
use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_store::StoredVersion;

use crate::Hub;
use crate::write::ensure_type;

impl Hub {
    /// `GET [base]/[type]/[id]`.
    pub fn read(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
    ) -> Result<StoredVersion, Error> {
        ensure_type(resource_type)?;
        match self.store.read_with_last_seq(ctx, resource_type, id)? {
            None => Err(Error::not_found(format!(
                "{resource_type}/{id} is not known"
            ))),
            Some((v, _)) if v.is_deleted() => Err(Error::new(
                ErrorKind::Gone,
                format!("{resource_type}/{id} was deleted"),
            )),
            Some((v, last_seq)) => {
                self.guard_read(ctx, Interaction::Read, &v, Some(last_seq))?;
                Ok(v)
            }
        }
    }

    /// `GET [base]/[type]/[id]/_history/[vid]`.
    pub fn vread(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        version_id: &str,
    ) -> Result<StoredVersion, Error> {
        ensure_type(resource_type)?;
        let Ok(number) = version_id.parse::<u64>() else {
            return Err(Error::not_found(format!(
                "{resource_type}/{id} has no version '{version_id}'"
            )));
        };
        match self.store.vread(ctx, resource_type, id, number)? {
            None => Err(Error::not_found(format!(
                "{resource_type}/{id} has no version {number}"
            ))),
            Some(v) if v.is_deleted() => Err(Error::new(
                ErrorKind::Gone,
                format!("version {number} of {resource_type}/{id} is a deletion"),
            )),
            Some(v) => {
                self.guard_read(ctx, Interaction::Read, &v, None)?;
                Ok(v)
            }
        }
    }

    /// Access for one stored version: decided for its person; a masked resource is refused
    /// with a reason that says something was withheld, not what. `last_seq` is the store's, read
    /// with the version when it was (see `ResourceStore::read_with_last_seq`).
    pub(crate) fn guard_read(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        version: &StoredVersion,
        last_seq: Option<i64>,
    ) -> Result<(), Error> {
        if crate::access::is_trusted_system(ctx) {
            return Ok(());
        }
        let (_, verdict) = self.authorize_stored(
            ctx,
            interaction,
            &version.resource_type,
            version.body.as_deref().unwrap_or("{}"),
            last_seq,
        )?;
        match verdict {
            Verdict::Keep => Ok(()),
            Verdict::Withhold => Err(Error::new(
                ErrorKind::Forbidden,
                "this information has been withheld: the person has limited who may see it, or your role does not include it",
            )),
        }
    }
}
