//! Read and vread (<https://hl7.org/fhir/R4/http.html#read>, `#vread`).
//!
//! Owns: turning store lookups into the spec's outcomes: 404 for never-known, 410 for deleted.

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
        match self.store.read(ctx, resource_type, id)? {
            None => Err(Error::not_found(format!(
                "{resource_type}/{id} is not known"
            ))),
            Some(v) if v.is_deleted() => Err(Error::new(
                ErrorKind::Gone,
                format!("{resource_type}/{id} was deleted"),
            )),
            Some(v) => Ok(v),
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
            Some(v) => Ok(v),
        }
    }
}
