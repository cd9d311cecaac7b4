//! A bounded cache of this node's access tokens whose signature has already been verified.
//!
//! Owns: the map from the SHA-256 digest of a whole token string to the claims it carried and
//! the `kid` of the key that signed it, and the bound on that map's size. Does not: decide
//! whether a hit is still good. [`crate::AuthServer`] checks expiry, that the signing key
//! still verifies and revocation on every hit, so the cache spares the ES256 signature check
//! and the JSON decoding, never a check whose answer can change over time.
//!
//! External issuers' tokens are not cached: they are verified by `external.rs` as before.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};

use crate::Claims;

/// The most tokens remembered at once. When a new token would exceed it, the whole cache is
/// cleared rather than evicting entries one by one: clearing is simple and cannot keep a stale
/// entry by mistake, and its only cost is one signature check per live token afterwards. A
/// hub with more live tokens than this simply verifies some tokens more often. Only tokens
/// that passed every check enter, so a caller cannot fill the cache with forgeries, and an
/// entry is a few hundred bytes, which keeps the bound at a few megabytes.
pub(crate) const CAPACITY: usize = 10_000;

/// The SHA-256 digest of a whole token string (header, claims and signature), so a token
/// differing in any character, the signature included, is a different key.
pub(crate) type Key = [u8; 32];

/// What a verified token carried: enough to answer again without checking its signature.
pub(crate) struct Entry {
    /// The verified claims; `claims.exp` is the expiry checked again on every hit.
    pub claims: Claims,
    /// The key that signed the token, checked on every hit to still be one this node accepts.
    pub kid: String,
}

/// The cache itself, shared by every request thread.
#[derive(Default)]
pub(crate) struct Verified {
    // Entries are behind `Arc` so a hit holds the read lock only for the lookup and a
    // reference count increment; the claims are cloned after the lock is released.
    entries: RwLock<HashMap<Key, Arc<Entry>>>,
}

/// The cache key of a token.
pub(crate) fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

impl Verified {
    pub fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Remembers a token that passed every check (never a failure).
    pub fn insert(&self, key: Key, entry: Entry) {
        let entry = Arc::new(entry);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, entry);
    }

    /// Forgets a token whose hit was refused (expired, retired key or revoked), since it can
    /// never verify again and would only take up room.
    pub fn remove(&self, key: &Key) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Forgets every token, after the key ring changed.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sub: &str) -> Entry {
        Entry {
            claims: Claims::system(sub, "system/*.rs"),
            kid: "k1".into(),
        }
    }

    #[test]
    fn keys_differ_when_any_character_differs() {
        assert_eq!(key("a.b.c"), key("a.b.c"));
        assert_ne!(key("a.b.c"), key("a.b.d"));
    }

    #[test]
    fn a_full_cache_is_cleared_before_a_new_token_enters() {
        let cache = Verified::default();
        for i in 0..CAPACITY {
            cache.insert(key(&i.to_string()), entry("s"));
        }
        assert_eq!(cache.len(), CAPACITY);
        // A token already present is replaced without clearing.
        cache.insert(key("0"), entry("again"));
        assert_eq!(cache.len(), CAPACITY);
        assert_eq!(cache.get(&key("0")).unwrap().claims.sub, "again");
        // A new one clears the rest first, so the bound holds.
        cache.insert(key("new"), entry("new"));
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&key("0")).is_none());
        assert_eq!(cache.get(&key("new")).unwrap().claims.sub, "new");
    }
}
