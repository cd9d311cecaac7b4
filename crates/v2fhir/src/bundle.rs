//! The transaction Bundle a message becomes: one conditional write per resource, keyed by a
//! business identifier, with `urn:uuid:` fullUrls that stay the same for the same key.
//!
//! Owns: [`Key`] (an identifier system and value), the conditional URL (`Type?identifier=s|v`,
//! with FHIR search escaping and percent-encoding), the deterministic UUIDs, derived keys for
//! segments that carry no identifier of their own, and a small base64 encoder.
//!
//! Does not: decide which identifier a resource is keyed by (the segment maps do), or resolve
//! anything against a store: the hub resolves the conditions and the `urn:uuid:` references when
//! it applies the transaction.

use serde_json::{Map, Value, json};

/// A business identifier that names one resource: `system|value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub system: String,
    pub value: String,
}

impl Key {
    pub(crate) fn new(system: impl Into<String>, value: impl Into<String>) -> Self {
        Key {
            system: system.into(),
            value: value.into(),
        }
    }

    /// `system|value`, the form [`crate::Mapped::patient_key`] reports.
    pub(crate) fn token(&self) -> String {
        format!("{}|{}", self.system, self.value)
    }

    /// The search condition `identifier=system|value`, escaped and percent-encoded.
    pub(crate) fn condition(&self) -> String {
        let token = format!(
            "{}|{}",
            escape_search(&self.system),
            escape_search(&self.value)
        );
        format!("identifier={}", percent_encode(&token))
    }

    /// The Identifier datatype for this key.
    pub(crate) fn identifier(&self) -> Value {
        json!({"system": self.system, "value": self.value})
    }

    /// A key derived from others plus a few parts, for segments without an identifier of their
    /// own (AL1, NK1, DG1 without DG1-20, ...). Deterministic, so the same message gives the same
    /// key; the value is a hash, so it carries no patient data.
    pub(crate) fn derived(system: String, parts: &[&str]) -> Key {
        let mut text = String::new();
        for p in parts {
            text.push_str(p);
            text.push('\u{1f}');
        }
        Key::new(system, format!("{:032x}", fnv1a_128(text.as_bytes())))
    }
}

/// How an entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// `PUT Type?identifier=...`: create, or replace the one match.
    Upsert,
    /// `POST Type` with `ifNoneExist`: create only when nothing matches (a stub for a record
    /// another feed owns, e.g. the Patient of a lab result).
    CreateIfAbsent,
}

struct Entry {
    full_url: String,
    resource_type: String,
    key: Key,
    write: Write,
    resource: Value,
}

/// The entries of one message's transaction, in the order they were added.
#[derive(Default)]
pub(crate) struct Builder {
    entries: Vec<Entry>,
}

impl Builder {
    /// Adds (or, for a key already present, replaces) a resource; returns its `urn:uuid:`
    /// fullUrl for references and whether an entry with the same key was already there.
    pub(crate) fn add(&mut self, key: &Key, write: Write, resource: Value) -> (String, bool) {
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let full_url = urn(&resource_type, key);
        if let Some(existing) = self.entries.iter_mut().find(|e| e.full_url == full_url) {
            existing.resource = resource;
            // An upsert of the same record wins over a stub.
            if write == Write::Upsert {
                existing.write = Write::Upsert;
            }
            return (full_url, true);
        }
        self.entries.push(Entry {
            full_url: full_url.clone(),
            resource_type,
            key: key.clone(),
            write,
            resource,
        });
        (full_url, false)
    }

    /// The resource added under `full_url`, for a later segment to extend (e.g. DG1 adding a
    /// diagnosis to the Encounter).
    pub(crate) fn resource_mut(&mut self, full_url: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|e| e.full_url == full_url)
            .map(|e| &mut e.resource)
    }

    /// The transaction Bundle.
    pub(crate) fn finish(self, timestamp: Option<&str>) -> Value {
        let entries: Vec<Value> = self
            .entries
            .into_iter()
            .map(|e| {
                let condition = e.key.condition();
                let request = match e.write {
                    Write::Upsert => json!({
                        "method": "PUT",
                        "url": format!("{}?{condition}", e.resource_type),
                    }),
                    Write::CreateIfAbsent => json!({
                        "method": "POST",
                        "url": e.resource_type,
                        "ifNoneExist": condition,
                    }),
                };
                // Built as a map so the resource is moved in: `json!` would serialise it into a
                // copy, which was a twentieth of a feed message's instructions.
                let mut entry = Map::with_capacity(3);
                entry.insert("fullUrl".into(), Value::String(e.full_url));
                entry.insert("resource".into(), e.resource);
                entry.insert("request".into(), request);
                Value::Object(entry)
            })
            .collect();
        let mut bundle = json!({"resourceType": "Bundle", "type": "transaction"});
        if let Some(ts) = timestamp {
            bundle["timestamp"] = json!(ts);
        }
        bundle["entry"] = Value::Array(entries);
        bundle
    }
}

/// `urn:uuid:` of a resource type and key: a name-based UUID (version 8, from a 128-bit FNV-1a
/// hash), the same every time the same record is written.
pub(crate) fn urn(resource_type: &str, key: &Key) -> String {
    let h = fnv1a_128(format!("{resource_type}\u{1f}{}\u{1f}{}", key.system, key.value).as_bytes());
    let mut b = h.to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// FHIR search escaping of a token part: `\`, `|`, `,` and `$` get a backslash.
fn escape_search(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '|' | ',' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Percent-encodes everything but unreserved characters and `:/|`, so that the hub's
/// `application/x-www-form-urlencoded` reading (where `+` is a space) gets the text back.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'|')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// True when `s` is base64 as FHIR's `base64Binary` accepts it (groups of four, padding last).
pub(crate) fn is_base64(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.is_empty() || !compact.len().is_multiple_of(4) {
        return false;
    }
    let pad = compact.iter().rev().take_while(|b| **b == b'=').count();
    pad <= 2
        && compact[..compact.len() - pad]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_escape_and_encode() {
        let k = Key::new("urn:oid:1.2.3", "A|B, C+D&E");
        assert_eq!(
            k.condition(),
            "identifier=urn:oid:1.2.3|A%5C|B%5C%2C%20C%2BD%26E"
        );
    }

    #[test]
    fn urns_are_stable_uuids() {
        let k = Key::new("s", "v");
        let a = urn("Patient", &k);
        assert_eq!(a, urn("Patient", &k));
        assert_ne!(a, urn("Encounter", &k));
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "8");
    }

    #[test]
    fn base64_round_numbers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"This is a Base64 string"),
            "VGhpcyBpcyBhIEJhc2U2NCBzdHJpbmc="
        );
        assert!(is_base64("VGhpcyBpcyBhIEJhc2U2NCBzdHJpbmc="));
        assert!(!is_base64("not base64!"));
        assert!(!is_base64("abc"));
    }

    #[test]
    fn replacing_an_entry_keeps_one() {
        let mut b = Builder::default();
        let k = Key::new("s", "v");
        let (u1, dup1) = b.add(
            &k,
            Write::CreateIfAbsent,
            json!({"resourceType": "Patient"}),
        );
        let (u2, dup2) = b.add(
            &k,
            Write::Upsert,
            json!({"resourceType": "Patient", "active": true}),
        );
        assert_eq!((u1 == u2, dup1, dup2), (true, false, true));
        let bundle = b.finish(None);
        assert_eq!(bundle["entry"].as_array().unwrap().len(), 1);
        assert_eq!(bundle["entry"][0]["request"]["method"], "PUT");
    }
}
