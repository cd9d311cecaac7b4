//! Audit (issue 6): the shape of one audit record as a FHIR AuditEvent after IHE BALP, and the
//! hash chain over the trail.
//!
//! Owns: the AuditEvent a request becomes, the chain hash of each entry and verifying a trail.
//! Does not: store anything or read the clock (the store appends, the hub passes the time).
