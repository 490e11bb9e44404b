//! Signed documents the platform hands to devices outside QR codes: the revocation status list (fetched
//! first at every sync, so a revoked licence is known even before the registry pull finishes) and the
//! registry snapshot manifest (chunk digests of a first sync). Each is an untagged COSE_Sign1 by an
//! issuer key, with the algorithm, the key id and a content type in its protected header; the content
//! type keeps one kind of document from passing for another, or for a QR code.
//!
//! Payloads are compact CBOR maps with small integer keys, decoded strictly (every key known, no
//! duplicates, no trailing bytes). Verification takes the trust store and the time of signing the
//! document claims; nothing in the bytes is trusted before the signature checks.

use std::collections::BTreeMap;

use ciborium::value::{Integer, Value};
use coset::{CborSerializable, CoseSign1};
#[cfg(any(test, feature = "issuer"))]
use coset::{CoseSign1Builder, HeaderBuilder};

use crate::domain::{Revocation, RevocationTarget};

use super::envelope::algorithm_of;
use super::keys::{KID_LEN, to_hex, verify_issuer_signature};
use super::trust::TrustStore;
use super::{CodeError, SignatureRole};
#[cfg(any(test, feature = "issuer"))]
use super::{IssueError, keys::IssuerKey};

/// Largest signed document accepted (bytes): a status list of a few hundred thousand entries.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Longest identifier in a status list entry (characters).
const MAX_ID_LEN: usize = 128;

/// Which document a COSE_Sign1 carries (its protected content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    StatusList,
    SnapshotManifest,
    /// The signer directory ([`crate::signers`]).
    SignerDirectory,
    /// An issuer key vouching for its successor ([`super::rotation`]).
    KeyEndorsement,
}

impl DocumentType {
    fn content_type(self) -> &'static str {
        match self {
            DocumentType::StatusList => "application/weldguard-status-list+cbor",
            DocumentType::SnapshotManifest => "application/weldguard-snapshot+cbor",
            DocumentType::SignerDirectory => "application/weldguard-signer-directory+cbor",
            DocumentType::KeyEndorsement => "application/weldguard-key-endorsement+cbor",
        }
    }
}

#[cfg(any(test, feature = "issuer"))]
/// Sign `payload` (CBOR) as a document of type `doc`.
pub(crate) fn sign(
    key: &IssuerKey,
    doc: DocumentType,
    payload: Vec<u8>,
) -> Result<Vec<u8>, IssueError> {
    let protected = HeaderBuilder::new()
        .algorithm(key.alg().cose())
        .key_id(key.kid())
        .content_type(doc.content_type().to_owned())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .try_create_signature(b"", |tbs| key.sign(tbs))
        .map_err(IssueError::Signing)?
        .build()
        .to_vec()
        .map_err(|e| IssueError::InvalidClaims(e.to_string()))
}

/// A document whose signature checked, with the key that signed it.
pub(crate) struct Opened {
    pub(crate) payload: Vec<u8>,
    pub(crate) kid: Vec<u8>,
}

/// Parse and check the signature of a document of type `doc`. The key's validity period is checked
/// by the caller against the time the payload claims.
pub(crate) fn open(
    bytes: &[u8],
    doc: DocumentType,
    trust: &TrustStore,
) -> Result<Opened, CodeError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(CodeError::malformed("document too large"));
    }
    let sign1 = CoseSign1::from_slice(bytes)
        .map_err(|e| CodeError::malformed(format!("not a COSE_Sign1: {e}")))?;
    let protected = &sign1.protected.header;
    let content_type = match &protected.content_type {
        Some(coset::ContentType::Text(t)) => t.as_str(),
        _ => return Err(CodeError::malformed("document without a content type")),
    };
    if content_type != doc.content_type() {
        return Err(CodeError::malformed(format!(
            "expected {}, found {content_type}",
            doc.content_type()
        )));
    }
    if !protected.crit.is_empty()
        || !protected.rest.is_empty()
        || !protected.iv.is_empty()
        || !protected.partial_iv.is_empty()
        || !protected.counter_signatures.is_empty()
        || !sign1.unprotected.is_empty()
    {
        return Err(CodeError::malformed("unexpected header"));
    }
    let alg = algorithm_of(protected)?;
    if protected.key_id.len() != KID_LEN {
        return Err(CodeError::malformed(
            "key id missing or of the wrong length",
        ));
    }
    let kid = protected.key_id.clone();
    let key = trust
        .get(&kid)
        .ok_or_else(|| CodeError::UnknownIssuer { kid: to_hex(&kid) })?;
    if key.alg != alg {
        return Err(CodeError::BadSignature {
            role: SignatureRole::Issuer,
        });
    }
    let tbs = sign1.tbs_data(b"");
    if !verify_issuer_signature(alg, &key.public_key, &tbs, &sign1.signature) {
        return Err(CodeError::BadSignature {
            role: SignatureRole::Issuer,
        });
    }
    let payload = sign1
        .payload
        .ok_or_else(|| CodeError::malformed("no payload"))?;
    Ok(Opened { payload, kid })
}

/// Check that the signing key was valid at `signed_at`.
pub(crate) fn check_key_valid(
    trust: &TrustStore,
    kid: &[u8],
    signed_at: i64,
) -> Result<(), CodeError> {
    match trust.get(kid) {
        Some(key) if key.valid_at(signed_at) => Ok(()),
        Some(_) => Err(CodeError::IssuerKeyNotValid { kid: to_hex(kid) }),
        None => Err(CodeError::UnknownIssuer { kid: to_hex(kid) }),
    }
}

/// The platform's revocations at one moment, signed: what a device fetches first at every sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    /// Increases with every list the platform publishes; a device never goes back to a lower one.
    pub sequence: u64,
    /// When the platform produced the list (Unix seconds): the age the device shows.
    pub issued_at: i64,
    /// Every revocation in force, sorted by (target, id) with no repeats.
    pub entries: Vec<Revocation>,
}

fn target_number(target: RevocationTarget) -> u8 {
    match target {
        RevocationTarget::Licence => 1,
        RevocationTarget::Credential => 2,
        RevocationTarget::IssuerKey => 3,
        RevocationTarget::Machine => 4,
    }
}

fn target_from(n: u8) -> Option<RevocationTarget> {
    match n {
        1 => Some(RevocationTarget::Licence),
        2 => Some(RevocationTarget::Credential),
        3 => Some(RevocationTarget::IssuerKey),
        4 => Some(RevocationTarget::Machine),
        _ => None,
    }
}

fn sort_key(r: &Revocation) -> (u8, &str) {
    (target_number(r.target), r.id.as_str())
}

#[cfg(any(test, feature = "issuer"))]
/// Sign a status list (entries are sorted and de-duplicated first). Keys: 1 sequence, 2 issued at,
/// 3 entries as `[target, id]` pairs (target 1 licence, 2 credential, 3 issuer key, 4 machine).
pub fn sign_status_list(key: &IssuerKey, list: &StatusList) -> Result<Vec<u8>, IssueError> {
    let mut entries: Vec<&Revocation> = list.entries.iter().collect();
    entries.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    entries.dedup();
    for entry in &entries {
        if entry.id.is_empty() || entry.id.chars().count() > MAX_ID_LEN {
            return Err(IssueError::InvalidClaims(format!(
                "revocation id {:?} is empty or too long",
                entry.id
            )));
        }
    }
    let map = Value::Map(vec![
        (Value::from(1u8), Value::from(list.sequence)),
        (Value::from(2u8), Value::from(list.issued_at)),
        (
            Value::from(3u8),
            Value::Array(
                entries
                    .iter()
                    .map(|e| {
                        Value::Array(vec![
                            Value::from(target_number(e.target)),
                            Value::Text(e.id.clone()),
                        ])
                    })
                    .collect(),
            ),
        ),
    ]);
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&map, &mut payload)
        .map_err(|e| IssueError::InvalidClaims(e.to_string()))?;
    sign(key, DocumentType::StatusList, payload)
}

/// Verify a status list: signature by a trusted issuer key valid when the list was issued, a list not
/// issued in the future (beyond `skew_secs`), and a strictly decoded payload.
pub fn verify_status_list(
    bytes: &[u8],
    trust: &TrustStore,
    now: i64,
    skew_secs: i64,
) -> Result<StatusList, CodeError> {
    let opened = open(bytes, DocumentType::StatusList, trust)?;
    let list = decode_status_list(&opened.payload)?;
    check_key_valid(trust, &opened.kid, list.issued_at)?;
    if list.issued_at > now.saturating_add(skew_secs) {
        return Err(CodeError::NotYetValid);
    }
    Ok(list)
}

pub(crate) fn decode_map(bytes: &[u8]) -> Result<BTreeMap<u8, Value>, CodeError> {
    let mut reader = bytes;
    let value: Value = ciborium::de::from_reader(&mut reader)
        .map_err(|e| CodeError::malformed(format!("bad CBOR: {e}")))?;
    if !reader.is_empty() {
        return Err(CodeError::malformed("trailing bytes"));
    }
    let Value::Map(pairs) = value else {
        return Err(CodeError::malformed("payload is not a map"));
    };
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        let key = k
            .as_integer()
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| CodeError::malformed("bad payload key"))?;
        if map.insert(key, v).is_some() {
            return Err(CodeError::malformed("repeated payload key"));
        }
    }
    Ok(map)
}

pub(crate) fn integer<T: TryFrom<Integer>>(
    value: Option<Value>,
    what: &str,
) -> Result<T, CodeError> {
    value
        .and_then(|v| v.as_integer())
        .and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| CodeError::malformed(format!("bad or missing {what}")))
}

fn decode_status_list(bytes: &[u8]) -> Result<StatusList, CodeError> {
    let mut map = decode_map(bytes)?;
    let sequence: u64 = integer(map.remove(&1), "sequence")?;
    let issued_at: i64 = integer(map.remove(&2), "issued at")?;
    let Some(Value::Array(items)) = map.remove(&3) else {
        return Err(CodeError::malformed("bad or missing entries"));
    };
    if !map.is_empty() {
        return Err(CodeError::malformed("unknown payload key"));
    }
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return Err(CodeError::malformed("an entry is not a pair"));
        };
        let [Value::Integer(target), Value::Text(id)] = pair.as_slice() else {
            return Err(CodeError::malformed("an entry is not [target, id]"));
        };
        let target = u8::try_from(*target)
            .ok()
            .and_then(target_from)
            .ok_or_else(|| CodeError::malformed("unknown revocation target"))?;
        if id.is_empty() || id.chars().count() > MAX_ID_LEN {
            return Err(CodeError::malformed("revocation id empty or too long"));
        }
        let entry = Revocation {
            target,
            id: id.clone(),
        };
        // Sorted without repeats, as signed: one canonical form per list.
        if let Some(last) = entries.last()
            && sort_key(last) >= sort_key(&entry)
        {
            return Err(CodeError::malformed("entries not sorted or repeated"));
        }
        entries.push(entry);
    }
    Ok(StatusList {
        sequence,
        issued_at,
        entries,
    })
}

/// Most chunks a snapshot manifest may list.
const MAX_CHUNKS: usize = 100_000;
/// Longest snapshot id or cursor (characters).
const MAX_TOKEN_LEN: usize = 256;

/// One chunk of a registry snapshot: its exact bytes are what the digest covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// Registry changes in the chunk.
    pub changes: u32,
    /// Length of the chunk's body in bytes.
    pub bytes: u64,
    /// SHA-256 of the chunk's body.
    pub sha256: [u8; 32],
}

/// A registry snapshot's manifest: the platform's whole registry at one feed position, cut into
/// chunks a device downloads (and resumes) one at a time, each checked against its digest here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotManifest {
    /// Names the snapshot in chunk requests.
    pub snapshot_id: String,
    /// The feed cursor a device holds once every chunk is applied.
    pub cursor: String,
    /// When the platform made the snapshot (Unix seconds).
    pub created_at: i64,
    pub chunks: Vec<SnapshotChunk>,
}

fn check_token(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.chars().count() > MAX_TOKEN_LEN
        || value.chars().any(char::is_control)
    {
        return Err(format!(
            "{what} is empty, too long or has control characters"
        ));
    }
    Ok(())
}

#[cfg(any(test, feature = "issuer"))]
/// Sign a snapshot manifest. Keys: 1 snapshot id, 2 cursor, 3 created at, 4 chunks as
/// `[changes, bytes, sha256]` triples.
pub fn sign_snapshot_manifest(
    key: &IssuerKey,
    manifest: &SnapshotManifest,
) -> Result<Vec<u8>, IssueError> {
    check_token("snapshot id", &manifest.snapshot_id).map_err(IssueError::InvalidClaims)?;
    check_token("cursor", &manifest.cursor).map_err(IssueError::InvalidClaims)?;
    if manifest.chunks.len() > MAX_CHUNKS {
        return Err(IssueError::InvalidClaims("too many chunks".into()));
    }
    let chunks = manifest
        .chunks
        .iter()
        .map(|c| {
            Value::Array(vec![
                Value::from(c.changes),
                Value::from(c.bytes),
                Value::Bytes(c.sha256.to_vec()),
            ])
        })
        .collect();
    let map = Value::Map(vec![
        (Value::from(1u8), Value::Text(manifest.snapshot_id.clone())),
        (Value::from(2u8), Value::Text(manifest.cursor.clone())),
        (Value::from(3u8), Value::from(manifest.created_at)),
        (Value::from(4u8), Value::Array(chunks)),
    ]);
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&map, &mut payload)
        .map_err(|e| IssueError::InvalidClaims(e.to_string()))?;
    sign(key, DocumentType::SnapshotManifest, payload)
}

/// Verify a snapshot manifest: signature by a trusted issuer key valid when it was made, not made in
/// the future (beyond `skew_secs`), strictly decoded.
pub fn verify_snapshot_manifest(
    bytes: &[u8],
    trust: &TrustStore,
    now: i64,
    skew_secs: i64,
) -> Result<SnapshotManifest, CodeError> {
    let opened = open(bytes, DocumentType::SnapshotManifest, trust)?;
    let manifest = decode_manifest(&opened.payload)?;
    check_key_valid(trust, &opened.kid, manifest.created_at)?;
    if manifest.created_at > now.saturating_add(skew_secs) {
        return Err(CodeError::NotYetValid);
    }
    Ok(manifest)
}

fn decode_manifest(bytes: &[u8]) -> Result<SnapshotManifest, CodeError> {
    let mut map = decode_map(bytes)?;
    let text = |v: Option<Value>, what: &str| -> Result<String, CodeError> {
        match v {
            Some(Value::Text(t)) => {
                check_token(what, &t).map_err(CodeError::malformed)?;
                Ok(t)
            }
            _ => Err(CodeError::malformed(format!("bad or missing {what}"))),
        }
    };
    let snapshot_id = text(map.remove(&1), "snapshot id")?;
    let cursor = text(map.remove(&2), "cursor")?;
    let created_at: i64 = integer(map.remove(&3), "created at")?;
    let Some(Value::Array(items)) = map.remove(&4) else {
        return Err(CodeError::malformed("bad or missing chunks"));
    };
    if !map.is_empty() {
        return Err(CodeError::malformed("unknown payload key"));
    }
    if items.len() > MAX_CHUNKS {
        return Err(CodeError::malformed("too many chunks"));
    }
    let mut chunks = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(triple) = item else {
            return Err(CodeError::malformed("a chunk is not a triple"));
        };
        let [
            Value::Integer(changes),
            Value::Integer(len),
            Value::Bytes(digest),
        ] = triple.as_slice()
        else {
            return Err(CodeError::malformed(
                "a chunk is not [changes, bytes, sha256]",
            ));
        };
        chunks.push(SnapshotChunk {
            changes: u32::try_from(*changes)
                .map_err(|_| CodeError::malformed("chunk change count out of range"))?,
            bytes: u64::try_from(*len)
                .map_err(|_| CodeError::malformed("chunk length out of range"))?,
            sha256: <[u8; 32]>::try_from(digest.as_slice())
                .map_err(|_| CodeError::malformed("chunk digest is not 32 bytes"))?,
        });
    }
    Ok(SnapshotManifest {
        snapshot_id,
        cursor,
        created_at,
        chunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{IssuerAlg, TrustedKey};

    const NOW: i64 = 1_764_374_400; // 2025-11-29

    fn setup(alg: IssuerAlg) -> (IssuerKey, TrustStore) {
        let key = IssuerKey::generate(alg).unwrap();
        let mut trust = TrustStore::new();
        trust
            .add(TrustedKey::for_key(&key, NOW - 86_400, Some(NOW + 86_400)))
            .unwrap();
        (key, trust)
    }

    fn list() -> StatusList {
        StatusList {
            sequence: 7,
            issued_at: NOW - 60,
            entries: vec![
                Revocation {
                    target: RevocationTarget::Machine,
                    id: "M-370983-00017".into(),
                },
                Revocation {
                    target: RevocationTarget::Licence,
                    id: "T370983199003150018".into(),
                },
                Revocation {
                    target: RevocationTarget::Licence,
                    id: "T370983199003150018".into(),
                },
            ],
        }
    }

    #[test]
    fn a_status_list_round_trips_sorted_and_deduplicated() {
        for alg in [IssuerAlg::EdDSA, IssuerAlg::ES256] {
            let (key, trust) = setup(alg);
            let bytes = sign_status_list(&key, &list()).unwrap();
            let got = verify_status_list(&bytes, &trust, NOW, 300).unwrap();
            assert_eq!(got.sequence, 7);
            assert_eq!(got.issued_at, NOW - 60);
            assert_eq!(got.entries.len(), 2);
            assert_eq!(got.entries[0].target, RevocationTarget::Licence);
            assert_eq!(got.entries[1].id, "M-370983-00017");
        }
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let (key, trust) = setup(IssuerAlg::EdDSA);
        let bytes = sign_status_list(&key, &list()).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                verify_status_list(&bad, &trust, NOW, 300).is_err(),
                "bit {i} flipped was accepted"
            );
        }
    }

    #[test]
    fn untrusted_expired_key_future_and_garbage_are_refused() {
        let (key, trust) = setup(IssuerAlg::EdDSA);
        let (other, _) = setup(IssuerAlg::EdDSA);
        let bytes = sign_status_list(&other, &list()).unwrap();
        assert!(matches!(
            verify_status_list(&bytes, &trust, NOW, 300),
            Err(CodeError::UnknownIssuer { .. })
        ));
        let mut old = list();
        old.issued_at = NOW - 3 * 86_400;
        let bytes = sign_status_list(&key, &old).unwrap();
        assert!(matches!(
            verify_status_list(&bytes, &trust, NOW, 300),
            Err(CodeError::IssuerKeyNotValid { .. })
        ));
        let mut future = list();
        future.issued_at = NOW + 3_600;
        let bytes = sign_status_list(&key, &future).unwrap();
        assert_eq!(
            verify_status_list(&bytes, &trust, NOW, 300),
            Err(CodeError::NotYetValid)
        );
        for garbage in [&b""[..], b"\xa0", b"WG1:abc", &[0xff; 64]] {
            assert!(matches!(
                verify_status_list(garbage, &trust, NOW, 300),
                Err(CodeError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn a_snapshot_manifest_cannot_pass_for_a_status_list() {
        let (key, trust) = setup(IssuerAlg::EdDSA);
        let mut payload = Vec::new();
        let empty = Value::Map(vec![
            (Value::from(1u8), Value::from(1u8)),
            (Value::from(2u8), Value::from(NOW)),
            (Value::from(3u8), Value::Array(vec![])),
        ]);
        ciborium::ser::into_writer(&empty, &mut payload).unwrap();
        let bytes = sign(&key, DocumentType::SnapshotManifest, payload).unwrap();
        assert!(matches!(
            verify_status_list(&bytes, &trust, NOW, 300),
            Err(CodeError::Malformed { .. })
        ));
    }

    #[test]
    fn a_snapshot_manifest_round_trips_and_refuses_tampering_and_confusion() {
        let (key, trust) = setup(IssuerAlg::ES256);
        let manifest = SnapshotManifest {
            snapshot_id: "s-42".into(),
            cursor: "3f2a.1000000".into(),
            created_at: NOW - 10,
            chunks: (0..3u8)
                .map(|i| SnapshotChunk {
                    changes: 50_000,
                    bytes: 9_000_000 + u64::from(i),
                    sha256: [i; 32],
                })
                .collect(),
        };
        let bytes = sign_snapshot_manifest(&key, &manifest).unwrap();
        assert_eq!(
            verify_snapshot_manifest(&bytes, &trust, NOW, 300).unwrap(),
            manifest
        );
        // A manifest is not a status list, nor the other way round.
        assert!(verify_status_list(&bytes, &trust, NOW, 300).is_err());
        let list = sign_status_list(&key, &list()).unwrap();
        assert!(verify_snapshot_manifest(&list, &trust, NOW, 300).is_err());
        // Any flipped byte is refused.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                verify_snapshot_manifest(&bad, &trust, NOW, 300).is_err(),
                "byte {i}"
            );
        }
        let mut bad = manifest.clone();
        bad.cursor = "a\nb".into();
        assert!(sign_snapshot_manifest(&key, &bad).is_err());
    }

    #[test]
    fn the_twin_signature_of_a_document_is_refused() {
        let manifest = SnapshotManifest {
            snapshot_id: "s-1".into(),
            cursor: "c".into(),
            created_at: NOW - 10,
            chunks: vec![],
        };
        for alg in [IssuerAlg::EdDSA, IssuerAlg::ES256] {
            let (key, trust) = setup(alg);
            let twin = |bytes: &[u8]| {
                let mut sign1 = CoseSign1::from_slice(bytes).unwrap();
                sign1.signature = crate::codes::tests::signature_twin(alg, &sign1.signature);
                sign1.to_vec().unwrap()
            };
            let status = sign_status_list(&key, &list()).unwrap();
            verify_status_list(&status, &trust, NOW, 300).unwrap();
            assert_eq!(
                verify_status_list(&twin(&status), &trust, NOW, 300),
                Err(CodeError::BadSignature {
                    role: SignatureRole::Issuer
                }),
                "{alg:?}"
            );
            let snapshot = sign_snapshot_manifest(&key, &manifest).unwrap();
            verify_snapshot_manifest(&snapshot, &trust, NOW, 300).unwrap();
            assert_eq!(
                verify_snapshot_manifest(&twin(&snapshot), &trust, NOW, 300),
                Err(CodeError::BadSignature {
                    role: SignatureRole::Issuer
                }),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn an_empty_id_cannot_be_signed() {
        let (key, _) = setup(IssuerAlg::EdDSA);
        let mut bad = list();
        bad.entries.push(Revocation {
            target: RevocationTarget::Credential,
            id: String::new(),
        });
        assert!(matches!(
            sign_status_list(&key, &bad),
            Err(IssueError::InvalidClaims(_))
        ));
    }
}
