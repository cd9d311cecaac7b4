//! The authorization server (issue 6): OAuth 2.0 and OpenID Connect with SMART App Launch 2.0.
//!
//! Owns: the node's ES256 signing keys and their rotation, local accounts, registered clients,
//! the OAuth endpoints, and verifying access tokens (this node's and configured external
//! issuers'). Does not: decide what a verified caller may see (concord-access and the hub do).
