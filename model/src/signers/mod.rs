//! The signer directory (签字人名录): every person who may sign hot-work permits, with the device key
//! they enrolled on the platform and the permit roles the platform gave them (applicant, site
//! checker, the approver role of a level, fire watch…). The platform publishes it signed by its
//! issuer key, like the revocation status list; devices sync it and check permits offline against
//! it, and the server checks every pushed step against the same data (docs/adr/0014).
//!
//! Whose key is trusted, and why: a permit signature counts only when its public key is an entry
//! here, the entry was valid when the step was signed, the person the step names is the entry's
//! person, and the role it claims is one of the entry's roles. The directory itself is trusted
//! because a key of the device's trust store (the platform's issuer keys) signed it.
//!
//! Payload (CBOR, small integer keys, decoded strictly): 1 sequence, 2 issued at (Unix seconds),
//! 3 entries sorted by public key, each `[public key (SEC1 compressed), person id, name,
//! [roles], device id, valid from, valid until or null]`.

use ciborium::value::Value;

use crate::codes::document::{self, DocumentType};
use crate::codes::{CodeError, TrustStore};
#[cfg(any(test, feature = "issuer"))]
use crate::codes::{IssueError, IssuerKey};

/// Longest text field of an entry (characters).
const MAX_FIELD_CHARS: usize = 200;
/// Most roles one entry may carry.
const MAX_ROLES: usize = 16;

/// One enrolled signer: a device key, whose it is, and what it may sign as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignerEntry {
    /// The device's public key, SEC1 compressed P-256 (33 bytes).
    pub public_key: Vec<u8>,
    /// The person's identifier as permits name them (certificate number, ID number or staff number).
    pub person_id: String,
    pub name: String,
    /// Permit role ids (see [`crate::permit::SignerRules`] and each level's approver).
    pub roles: Vec<String>,
    /// The platform's device id for the key.
    pub device_id: String,
    /// The key signs from this time (enrolment) and, when set, until this time (device disabled).
    pub valid_from: i64,
    pub valid_until: Option<i64>,
}

impl SignerEntry {
    /// Whether a signature made at `at` falls in the entry's validity: before the device was
    /// disabled. The time is the signer's own claim, so `valid_from` (when the key was enrolled)
    /// bounds nothing below: a device with the key could date a signature after it just as well.
    /// A disabled key is stopped by the platform at once (it checks the key is valid at its own
    /// clock); a device offline learns of it at its next sync (docs/threat-model.md).
    pub fn valid_at(&self, at: i64) -> bool {
        self.valid_until.is_none_or(|until| at < until)
    }
}

/// The platform's signer directory at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignerDirectory {
    /// Increases with every directory the platform publishes; a device never goes back.
    pub sequence: u64,
    /// When the platform produced it (Unix seconds).
    pub issued_at: i64,
    /// Sorted by public key, one entry per key.
    pub entries: Vec<SignerEntry>,
}

impl SignerDirectory {
    /// A directory of `entries` (sorted by key here; a key listed twice keeps its first entry).
    pub fn new(sequence: u64, issued_at: i64, mut entries: Vec<SignerEntry>) -> Self {
        entries.sort_by(|a, b| a.public_key.cmp(&b.public_key));
        entries.dedup_by(|a, b| a.public_key == b.public_key);
        SignerDirectory {
            sequence,
            issued_at,
            entries,
        }
    }

    /// The entry of a device key.
    pub fn entry(&self, public_key: &[u8]) -> Option<&SignerEntry> {
        self.entries
            .binary_search_by(|e| e.public_key.as_slice().cmp(public_key))
            .ok()
            .and_then(|i| self.entries.get(i))
    }
}

fn check_text(text: &str, what: &str) -> Result<(), String> {
    if text.trim().is_empty() || text.chars().count() > MAX_FIELD_CHARS {
        return Err(format!(
            "{what} is empty or longer than {MAX_FIELD_CHARS} characters"
        ));
    }
    Ok(())
}

fn check_entry(e: &SignerEntry) -> Result<(), String> {
    if e.public_key.len() != 33
        || crate::codes::check_public_key(crate::codes::IssuerAlg::ES256, &e.public_key).is_err()
    {
        return Err("public key is not a compressed P-256 point".into());
    }
    check_text(&e.person_id, "person id")?;
    check_text(&e.name, "name")?;
    check_text(&e.device_id, "device id")?;
    if e.roles.is_empty() || e.roles.len() > MAX_ROLES {
        return Err(format!("an entry has 1 to {MAX_ROLES} roles"));
    }
    for role in &e.roles {
        check_text(role, "role")?;
    }
    if e.valid_until.is_some_and(|until| until < e.valid_from) {
        return Err("valid until is before valid from".into());
    }
    Ok(())
}

fn text(value: &Value) -> Option<&str> {
    value.as_text()
}

#[cfg(any(test, feature = "issuer"))]
/// Sign the directory with the platform's issuer key.
pub fn sign_directory(key: &IssuerKey, directory: &SignerDirectory) -> Result<Vec<u8>, IssueError> {
    let sorted = SignerDirectory::new(
        directory.sequence,
        directory.issued_at,
        directory.entries.clone(),
    );
    let mut entries = Vec::with_capacity(sorted.entries.len());
    for e in &sorted.entries {
        check_entry(e).map_err(IssueError::InvalidClaims)?;
        entries.push(Value::Array(vec![
            Value::Bytes(e.public_key.clone()),
            Value::Text(e.person_id.clone()),
            Value::Text(e.name.clone()),
            Value::Array(e.roles.iter().cloned().map(Value::Text).collect()),
            Value::Text(e.device_id.clone()),
            Value::from(e.valid_from),
            e.valid_until.map_or(Value::Null, Value::from),
        ]));
    }
    let map = Value::Map(vec![
        (Value::from(1u8), Value::from(sorted.sequence)),
        (Value::from(2u8), Value::from(sorted.issued_at)),
        (Value::from(3u8), Value::Array(entries)),
    ]);
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&map, &mut payload)
        .map_err(|e| IssueError::InvalidClaims(e.to_string()))?;
    document::sign(key, DocumentType::SignerDirectory, payload)
}

/// Verify a signed directory: the signature by an issuer key of `trust` valid when the directory
/// was issued, not issued in the future (beyond `skew_secs`), entries well formed and sorted by
/// key without repeats.
pub fn verify_directory(
    bytes: &[u8],
    trust: &TrustStore,
    now: i64,
    skew_secs: i64,
) -> Result<SignerDirectory, CodeError> {
    let opened = document::open(bytes, DocumentType::SignerDirectory, trust)?;
    let directory = decode(&opened.payload)?;
    document::check_key_valid(trust, &opened.kid, directory.issued_at)?;
    if directory.issued_at > now.saturating_add(skew_secs) {
        return Err(CodeError::NotYetValid);
    }
    Ok(directory)
}

fn decode(bytes: &[u8]) -> Result<SignerDirectory, CodeError> {
    let bad = |what: &str| CodeError::malformed(format!("signer directory: {what}"));
    let mut map = document::decode_map(bytes)?;
    let sequence: u64 = document::integer(map.remove(&1), "sequence")?;
    let issued_at: i64 = document::integer(map.remove(&2), "issued at")?;
    let Some(Value::Array(items)) = map.remove(&3) else {
        return Err(bad("bad or missing entries"));
    };
    if !map.is_empty() {
        return Err(bad("unknown payload key"));
    }
    let mut entries: Vec<SignerEntry> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(fields) = item else {
            return Err(bad("an entry is not an array"));
        };
        let [
            Value::Bytes(public_key),
            person_id,
            name,
            Value::Array(roles),
            device_id,
            valid_from,
            valid_until,
        ] = fields.as_slice()
        else {
            return Err(bad("an entry does not have its seven fields"));
        };
        let texts = |v: &Value| {
            text(v)
                .map(str::to_owned)
                .ok_or_else(|| bad("a field is not text"))
        };
        let entry = SignerEntry {
            public_key: public_key.clone(),
            person_id: texts(person_id)?,
            name: texts(name)?,
            roles: roles.iter().map(texts).collect::<Result<_, _>>()?,
            device_id: texts(device_id)?,
            valid_from: document::integer(Some(valid_from.clone()), "valid from")?,
            valid_until: match valid_until {
                Value::Null => None,
                v => Some(document::integer(Some(v.clone()), "valid until")?),
            },
        };
        check_entry(&entry).map_err(|e| bad(&e))?;
        if let Some(last) = entries.last()
            && last.public_key >= entry.public_key
        {
            return Err(bad("entries not sorted by key or repeated"));
        }
        entries.push(entry);
    }
    Ok(SignerDirectory {
        sequence,
        issued_at,
        entries,
    })
}

#[cfg(test)]
mod tests;
