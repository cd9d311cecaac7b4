//! The access decision (issue 6): who may see which part of whose record, and what the person's
//! consent withholds.
//!
//! Owns: roles, data categories, SMART scopes, the role permission matrix, the legitimate
//! relationship rule, break-glass grants, consent read from FHIR Consent resources, the decision
//! and the mask applied after it. Does not: read a store, a clock or a token (the hub gathers the
//! facts and passes the time in), or write audit (the hub does, with the decision's basis).
