//! The node's ES256 key ring: generating, storing, rotating and retiring signing keys.
//!
//! Owns: the P-256 keys in `<data>/keys/` (one PKCS#8 PEM file per key, readable by the owner
//! only, named `es256-<created unix seconds>-<kid>.pem`), the `kid` (the RFC 7638 JWK
//! thumbprint), which key signs (the newest) and which still verify (every key not yet retired:
//! a key retires `retire_days` after a newer key superseded it). Does not: know about claims or
//! HTTP; [`crate::AuthServer`] signs and verifies with what this hands out.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use concord_fhir::{Error, ErrorKind};
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::SecretKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SECONDS_PER_DAY: i64 = 86_400;

/// One signing key and what verifying with it needs.
pub(crate) struct RingKey {
    pub kid: String,
    pub created: i64,
    /// When a newer key took over signing; `None` for the current key.
    pub superseded: Option<i64>,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key as a JWK (`kty`, `crv`, `x`, `y`), for the JWKS document.
    pub x: String,
    pub y: String,
}

impl RingKey {
    fn new(secret: &SecretKey, created: i64) -> Result<RingKey, Error> {
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(internal("the signing key's public point is not usable"));
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let der = secret
            .to_pkcs8_der()
            .map_err(|_| internal("the signing key cannot be encoded"))?;
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|_| internal("the signing key's public part cannot be used"))?;
        Ok(RingKey {
            kid: thumbprint(&x, &y),
            created,
            superseded: None,
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            decoding,
            x,
            y,
        })
    }

    /// Whether this key may still verify tokens at `now`. With `retire_days` zero a superseded
    /// key retires at once (its successor's creation time may be a second ahead, see
    /// [`Ring::rotate`], so the comparison alone would not say so).
    pub fn verifies_at(&self, now: i64, retire_days: u64) -> bool {
        match self.superseded {
            None => true,
            Some(at) => retire_days > 0 && now < at.saturating_add(days(retire_days)),
        }
    }

    /// The public JWK for the JWKS document.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }
}

/// The RFC 7638 thumbprint of a P-256 public key: SHA-256 over the required members in
/// lexicographic order with no whitespace, base64url without padding.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The keys, newest last.
pub(crate) struct Ring {
    pub keys: Vec<RingKey>,
    /// Where the keys live; `None` for an in-memory ring.
    pub dir: Option<PathBuf>,
    /// The directory's modification time when last read, to notice keys another process added.
    pub seen: Option<std::time::SystemTime>,
}

impl Ring {
    /// An in-memory ring with one fresh key (tests and ephemeral servers).
    pub fn ephemeral(now: i64) -> Result<Ring, Error> {
        Ok(Ring {
            keys: vec![RingKey::new(&generate()?, now)?],
            dir: None,
            seen: None,
        })
    }

    /// Opens the ring in `dir`, creating the first key, rotating when the current key is at
    /// least `rotation_days` old and removing retired keys.
    pub fn open(dir: &Path, now: i64, rotation_days: u64, retire_days: u64) -> Result<Ring, Error> {
        create_private_dir(dir)?;
        let mut ring = Ring::load(dir)?;
        let stale = ring
            .keys
            .last()
            .is_none_or(|key| now.saturating_sub(key.created) >= days(rotation_days));
        if stale {
            ring.rotate(now)?;
        }
        ring.retire(now, retire_days)?;
        Ok(ring)
    }

    /// Reads every key file in `dir`.
    pub fn load(dir: &Path) -> Result<Ring, Error> {
        let seen = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        let entries =
            std::fs::read_dir(dir).map_err(|_| internal("the key directory cannot be read"))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|_| internal("the key directory cannot be read"))?;
            let name = entry.file_name();
            let Some(created) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path())
                .map_err(|_| internal("a signing key file cannot be read"))?;
            let secret = SecretKey::from_pkcs8_pem(&text)
                .map_err(|_| internal("a signing key file is not a P-256 PKCS#8 key"))?;
            keys.push(RingKey::new(&secret, created)?);
        }
        keys.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.kid.cmp(&b.kid)));
        // Each key was superseded when the next one was made.
        let next_created: Vec<Option<i64>> = keys
            .iter()
            .skip(1)
            .map(|k| Some(k.created))
            .chain([None])
            .collect();
        for (key, superseded) in keys.iter_mut().zip(next_created) {
            key.superseded = superseded;
        }
        Ok(Ring {
            keys,
            dir: Some(dir.to_path_buf()),
            seen,
        })
    }

    /// The key that signs.
    pub fn current(&self) -> Option<&RingKey> {
        self.keys.last()
    }

    pub fn find(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Makes a new signing key; the previous one keeps verifying until it retires.
    pub fn rotate(&mut self, now: i64) -> Result<(), Error> {
        let secret = generate()?;
        // A second rotation within the same second still makes the new key the newest.
        let created = self.keys.last().map_or(now, |k| now.max(k.created + 1));
        let key = RingKey::new(&secret, created)?;
        if let Some(dir) = &self.dir {
            let pem = secret
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|_| internal("the signing key cannot be encoded"))?;
            write_private(
                &dir.join(format!("es256-{created}-{}.pem", key.kid)),
                pem.as_bytes(),
            )?;
            self.seen = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        }
        if let Some(previous) = self.keys.last_mut() {
            previous.superseded = Some(created);
        }
        self.keys.push(key);
        Ok(())
    }

    /// Drops retired keys (and their files).
    pub fn retire(&mut self, now: i64, retire_days: u64) -> Result<(), Error> {
        let (keep, retired): (Vec<RingKey>, Vec<RingKey>) = std::mem::take(&mut self.keys)
            .into_iter()
            .partition(|k| k.verifies_at(now, retire_days));
        self.keys = keep;
        if let Some(dir) = &self.dir {
            for key in retired {
                let path = dir.join(format!("es256-{}-{}.pem", key.created, key.kid));
                std::fs::remove_file(&path)
                    .map_err(|_| internal("a retired signing key cannot be removed"))?;
            }
            self.seen = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        }
        Ok(())
    }

    /// Whether the directory changed since it was read (another process rotated the keys).
    pub fn changed_on_disk(&self) -> bool {
        match &self.dir {
            None => false,
            Some(dir) => std::fs::metadata(dir).and_then(|m| m.modified()).ok() != self.seen,
        }
    }
}

fn days(n: u64) -> i64 {
    i64::try_from(n)
        .unwrap_or(i64::MAX / SECONDS_PER_DAY)
        .saturating_mul(SECONDS_PER_DAY)
}

/// `es256-<created>-<kid>.pem` → created.
fn parse_file_name(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("es256-")?.strip_suffix(".pem")?;
    let (created, kid) = rest.split_once('-')?;
    (!kid.is_empty()).then_some(())?;
    created.parse().ok()
}

/// A fresh P-256 secret from the operating system's randomness.
fn generate() -> Result<SecretKey, Error> {
    // A random 32-byte string is a valid scalar except with negligible probability; try again
    // rather than fail in that case.
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|_| internal("no randomness is available for a signing key"))?;
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            return Ok(secret);
        }
    }
    Err(internal("no valid signing key could be generated"))
}

fn internal(reason: &str) -> Error {
    Error::new(ErrorKind::Internal, reason)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|_| internal("the key directory cannot be created"))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|_| internal("the key directory cannot be created"))
}

/// Writes a new file readable by the owner only; never overwrites.
#[cfg(unix)]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|_| internal("a signing key file cannot be created"))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|_| internal("a signing key file cannot be written"))
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|_| internal("a signing key file cannot be written"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_for_a_known_key() {
        // The P-256 example key of RFC 7517 appendix A.1; its thumbprint as the Python joserfc
        // library computes it.
        let x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
        let y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";
        assert_eq!(
            thumbprint(x, y),
            "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
        );
    }

    #[test]
    fn file_names_parse() {
        assert_eq!(
            parse_file_name("es256-1700000000-ab-c_d.pem"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_file_name("es256-x-abc.pem"), None);
        assert_eq!(parse_file_name("es256-1700000000-.pem"), None);
        assert_eq!(parse_file_name("notes.txt"), None);
    }
}
