//! What a verifier trusts and what it refuses: the issuer keys with their validity periods (the public
//! "trust file" the CLI, the server and the devices load) and the platform's revocation set.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Revocation, RevocationTarget};

use super::KeyError;
#[cfg(any(test, feature = "issuer"))]
use super::keys::IssuerKey;
use super::keys::{IssuerAlg, check_public_key, from_hex, kid_of, to_hex};

/// One trusted issuer key. Codes it signed between `valid_from` and `valid_until` (Unix seconds,
/// inclusive; `None` = open-ended) are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub kid: Vec<u8>,
    pub alg: IssuerAlg,
    pub public_key: Vec<u8>,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
}

impl TrustedKey {
    #[cfg(any(test, feature = "issuer"))]
    /// The trust entry for an issuer key.
    pub fn for_key(key: &IssuerKey, valid_from: i64, valid_until: Option<i64>) -> Self {
        Self {
            kid: key.kid(),
            alg: key.alg(),
            public_key: key.public_key(),
            valid_from,
            valid_until,
        }
    }

    /// Whether a code signed at `signed_at` falls inside the key's validity period.
    pub fn valid_at(&self, signed_at: i64) -> bool {
        signed_at >= self.valid_from && self.valid_until.is_none_or(|until| signed_at <= until)
    }
}

/// One entry of the trust file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustFileKey {
    /// Hex key id.
    pub kid: String,
    pub alg: IssuerAlg,
    /// Hex public key (32-byte Ed25519, or SEC1 P-256).
    pub public_key: String,
    pub valid_from: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
}

/// The public trust file: `{"format":"weldguard-trust","version":1,"keys":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustFile {
    pub format: String,
    pub version: u32,
    pub keys: Vec<TrustFileKey>,
    /// Hex COSE_Sign1 key endorsements: each key after the first signed by its predecessor
    /// ([`super::rotation`]); how a device that trusts an older key comes to trust a newer one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endorsements: Vec<String>,
}

const TRUST_FILE_FORMAT: &str = "weldguard-trust";

/// The issuer keys a verifier trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a key; refused when the kid does not match the public key, the key is invalid, the period
    /// ends before it starts, or the kid is already present.
    pub fn add(&mut self, key: TrustedKey) -> Result<(), KeyError> {
        check_public_key(key.alg, &key.public_key)?;
        if kid_of(&key.public_key) != key.kid {
            return Err(KeyError::Inconsistent(format!(
                "kid {} does not match its public key",
                to_hex(&key.kid)
            )));
        }
        if key.valid_until.is_some_and(|until| until < key.valid_from) {
            return Err(KeyError::Inconsistent(format!(
                "key {} is valid until before it is valid from",
                to_hex(&key.kid)
            )));
        }
        if self.get(&key.kid).is_some() {
            return Err(KeyError::Inconsistent(format!(
                "key {} listed twice",
                to_hex(&key.kid)
            )));
        }
        self.keys.push(key);
        Ok(())
    }

    /// The key with this kid.
    pub fn get(&self, kid: &[u8]) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The trust file for these keys.
    pub fn to_file(&self) -> TrustFile {
        TrustFile {
            format: TRUST_FILE_FORMAT.into(),
            version: 1,
            keys: self
                .keys
                .iter()
                .map(|k| TrustFileKey {
                    kid: to_hex(&k.kid),
                    alg: k.alg,
                    public_key: to_hex(&k.public_key),
                    valid_from: DateTime::from_timestamp(k.valid_from, 0).unwrap_or_default(),
                    valid_until: k
                        .valid_until
                        .map(|t| DateTime::from_timestamp(t, 0).unwrap_or_default()),
                })
                .collect(),
            endorsements: Vec::new(),
        }
    }

    /// The trust file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_file()).unwrap_or_default()
    }

    /// Load a trust file, checking every entry (see [`TrustStore::add`]).
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let file: TrustFile =
            serde_json::from_str(text).map_err(|e| KeyError::Format(e.to_string()))?;
        Self::from_file(file)
    }

    /// The keys of a parsed trust file, checking every entry (see [`TrustStore::add`]); its
    /// endorsements are not looked at (see [`super::rotation`]).
    pub fn from_file(file: TrustFile) -> Result<Self, KeyError> {
        if file.format != TRUST_FILE_FORMAT || file.version != 1 {
            return Err(KeyError::Format(format!(
                "not a {TRUST_FILE_FORMAT} version 1 file"
            )));
        }
        let mut store = Self::new();
        for entry in file.keys {
            let hex = |field: &str, text: &str| {
                from_hex(text).ok_or_else(|| KeyError::Format(format!("{field} is not hex")))
            };
            store.add(TrustedKey {
                kid: hex("kid", &entry.kid)?,
                alg: entry.alg,
                public_key: hex("public_key", &entry.public_key)?,
                valid_from: entry.valid_from.timestamp(),
                valid_until: entry.valid_until.map(|t| t.timestamp()),
            })?;
        }
        Ok(store)
    }
}

/// The platform's revocations: issuer keys (hex kid), credentials (credential id), licences
/// (certificate number) and machine labels (machine id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationSet {
    entries: HashSet<Revocation>,
}

impl RevocationSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn revoke(&mut self, target: RevocationTarget, id: impl Into<String>) {
        self.entries.insert(Revocation {
            target,
            id: id.into(),
        });
    }

    pub fn is_revoked(&self, target: RevocationTarget, id: &str) -> bool {
        self.entries.contains(&Revocation {
            target,
            id: id.to_owned(),
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add every revocation of `other`.
    pub fn merge(&mut self, other: RevocationSet) {
        self.entries.extend(other.entries);
    }

    /// Load a revocation file: a JSON array of `{"target": "licence"|"credential"|"issuer_key"|
    /// "machine", "id": "…"}`.
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let list: Vec<Revocation> =
            serde_json::from_str(text).map_err(|e| KeyError::Format(e.to_string()))?;
        Ok(list.into_iter().collect())
    }
}

impl FromIterator<Revocation> for RevocationSet {
    fn from_iter<I: IntoIterator<Item = Revocation>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_file_round_trips_and_checks_entries() {
        let a = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        let b = IssuerKey::generate(IssuerAlg::ES256).unwrap();
        let mut store = TrustStore::new();
        store
            .add(TrustedKey::for_key(&a, 1_700_000_000, Some(1_900_000_000)))
            .unwrap();
        store
            .add(TrustedKey::for_key(&b, 1_700_000_000, None))
            .unwrap();
        let loaded = TrustStore::from_json(&store.to_json()).unwrap();
        assert_eq!(loaded, store);

        assert!(matches!(
            store.add(TrustedKey::for_key(&a, 0, None)),
            Err(KeyError::Inconsistent(_))
        ));
        let mut bad =
            TrustedKey::for_key(&IssuerKey::generate(IssuerAlg::EdDSA).unwrap(), 10, Some(5));
        assert!(TrustStore::new().add(bad.clone()).is_err());
        bad.valid_until = None;
        bad.kid = vec![0; 8];
        assert!(TrustStore::new().add(bad).is_err());
        assert!(TrustStore::from_json("[]").is_err());
    }

    #[test]
    fn validity_edges_are_inclusive() {
        let key = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        let trusted = TrustedKey::for_key(&key, 100, Some(200));
        assert!(!trusted.valid_at(99));
        assert!(trusted.valid_at(100));
        assert!(trusted.valid_at(200));
        assert!(!trusted.valid_at(201));
        assert!(TrustedKey::for_key(&key, 100, None).valid_at(i64::MAX));
    }

    #[test]
    fn revocation_file_loads() {
        let set = RevocationSet::from_json(
            r#"[{"target":"licence","id":"T370983199001011234"},{"target":"machine","id":"M1"}]"#,
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.is_revoked(RevocationTarget::Licence, "T370983199001011234"));
        assert!(!set.is_revoked(RevocationTarget::Machine, "T370983199001011234"));
        assert!(RevocationSet::from_json("{}").is_err());
    }
}
