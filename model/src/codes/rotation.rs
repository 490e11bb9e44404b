//! Key rotation reaching devices: the rule by which a device that trusts some issuer keys comes to
//! trust a newer one.
//!
//! The trust rule (docs/adr/0015, "Trust in the store"):
//!
//! - **The anchor** is the trust file a device receives at enrolment (over the channel the one-time
//!   enrolment code opened, TLS in production), or the one a pre-v5 shell hands to
//!   `Device::set_trust`. It is taken as it is.
//! - **Every later key needs a voucher**: a key is added only when a [`KeyEndorsement`] signed by
//!   a key the device already trusts names it (key id, algorithm, public key, start of validity).
//!   The platform signs each key's endorsement with the key it replaced, at the moment of the
//!   rotation (the old key's last valid instant), and serves the chain in the trust file
//!   ([`super::TrustFile::endorsements`]).
//! - The voucher must be the newest key held (the one with the latest start), not revoked, and
//!   valid at the new key's start; so the new key cannot start before any key held (no back-dated
//!   key can sign codes "issued" in the past) and an old key cannot vouch again after its
//!   successor (a stolen retired key adds nothing). Accepting it ends the voucher's validity at the new key's
//!   start, exactly as the platform ends it at rotation: codes the old key signed before stay
//!   valid, anything it signs later is refused.
//! - Nothing else changes trust: keys the trust file lists without an endorsement, a different
//!   public key or validity for a key held, and the issuer keys of the registry feed (unsigned
//!   pages any admin token can write, with no validity period) add nothing.
//!
//! So whoever controls the network path, holds a stolen device token (it authenticates the device,
//! not the platform) or an admin token that writes the registry cannot add a key: they would need
//! the secret of the key the device trusts now, which only the platform holds.

use ciborium::value::Value;

use super::CodeError;
use super::document::{self, DocumentType, check_key_valid, decode_map, integer};
use super::keys::{IssuerAlg, check_public_key, from_hex, kid_of, to_hex};
use super::trust::{RevocationSet, TrustFile, TrustStore, TrustedKey};
#[cfg(any(test, feature = "issuer"))]
use super::{IssueError, keys::IssuerKey};
use crate::domain::RevocationTarget;

/// One key vouching for its successor: the successor's key id, algorithm, public key and the start
/// of its validity (Unix seconds), signed by the key it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEndorsement {
    /// The key that signed (hex kid).
    pub signer_kid: String,
    /// The endorsed key, open-ended.
    pub key: TrustedKey,
}

#[cfg(any(test, feature = "issuer"))]
fn alg_name(alg: IssuerAlg) -> &'static str {
    alg.name()
}

fn alg_of(name: &str) -> Option<IssuerAlg> {
    match name {
        "EdDSA" => Some(IssuerAlg::EdDSA),
        "ES256" => Some(IssuerAlg::ES256),
        _ => None,
    }
}

#[cfg(any(test, feature = "issuer"))]
/// Sign the endorsement of `successor` (its validity start is what is vouched for) with `signer`.
/// Payload keys: 1 kid, 2 algorithm name, 3 public key, 4 valid from.
pub fn sign_key_endorsement(
    signer: &IssuerKey,
    successor: &TrustedKey,
) -> Result<Vec<u8>, IssueError> {
    let map = Value::Map(vec![
        (Value::from(1u8), Value::Bytes(successor.kid.clone())),
        (
            Value::from(2u8),
            Value::Text(alg_name(successor.alg).to_owned()),
        ),
        (Value::from(3u8), Value::Bytes(successor.public_key.clone())),
        (Value::from(4u8), Value::from(successor.valid_from)),
    ]);
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&map, &mut payload)
        .map_err(|e| IssueError::InvalidClaims(e.to_string()))?;
    document::sign(signer, DocumentType::KeyEndorsement, payload)
}

/// Verify an endorsement against `trust`: signed by a trusted key that was valid when the endorsed
/// key starts, strictly decoded, the key id matching the public key.
pub fn verify_key_endorsement(
    bytes: &[u8],
    trust: &TrustStore,
) -> Result<KeyEndorsement, CodeError> {
    let opened = document::open(bytes, DocumentType::KeyEndorsement, trust)?;
    let mut map = decode_map(&opened.payload)?;
    let bytes_of = |v: Option<Value>, what: &str| match v {
        Some(Value::Bytes(b)) => Ok(b),
        _ => Err(CodeError::malformed(format!("bad or missing {what}"))),
    };
    let kid = bytes_of(map.remove(&1), "kid")?;
    let alg = match map.remove(&2) {
        Some(Value::Text(t)) => {
            alg_of(&t).ok_or_else(|| CodeError::malformed("unknown algorithm"))?
        }
        _ => return Err(CodeError::malformed("bad or missing algorithm")),
    };
    let public_key = bytes_of(map.remove(&3), "public key")?;
    let valid_from: i64 = integer(map.remove(&4), "valid from")?;
    if !map.is_empty() {
        return Err(CodeError::malformed("unknown payload key"));
    }
    if kid_of(&public_key) != kid || check_public_key(alg, &public_key).is_err() {
        return Err(CodeError::malformed("endorsed key id or key invalid"));
    }
    check_key_valid(trust, &opened.kid, valid_from)?;
    Ok(KeyEndorsement {
        signer_kid: to_hex(&opened.kid),
        key: TrustedKey {
            kid,
            alg,
            public_key,
            valid_from,
            valid_until: None,
        },
    })
}

/// Why a key the platform offered was not added.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefusedKey {
    /// Hex kid (as offered).
    pub kid: String,
    /// `trust.not_endorsed` (no endorsement verifies under the keys held: none, forged, or its
    /// voucher was not valid when the key starts), `trust.conflicting_key`,
    /// `trust.voucher_revoked`, `trust.voucher_not_newest`.
    pub code: &'static str,
}

/// The outcome of [`extend_trust`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustUpdate {
    /// The trust after the update (the held keys, validity ends set by accepted successors, plus
    /// the accepted keys).
    pub trust: TrustStore,
    /// Keys added (hex kids, in the order accepted).
    pub added: Vec<String>,
    /// Keys offered but not added, and why (held keys offered unchanged are not listed).
    pub refused: Vec<RefusedKey>,
}

/// Apply the trust rule (see the module docs) to a trust file the platform served: `held` is what
/// the device trusts now, `revoked` its revocations (an issuer-key revocation disqualifies a
/// voucher). Pure: nothing is saved here.
pub fn extend_trust(
    held: &TrustStore,
    offered: &TrustFile,
    revoked: &RevocationSet,
) -> TrustUpdate {
    let mut keys: Vec<TrustedKey> = held.keys().to_vec();
    let mut added = Vec::new();
    let mut refused: Vec<RefusedKey> = Vec::new();
    let refuse = |refused: &mut Vec<RefusedKey>, kid: String, code: &'static str| {
        if !refused.iter().any(|r| r.kid == kid) {
            refused.push(RefusedKey { kid, code });
        }
    };
    let mut pending: Vec<Vec<u8>> = offered
        .endorsements
        .iter()
        .filter_map(|hex| from_hex(hex))
        .collect();
    // Chains arrive in any order: go round until a pass accepts nothing.
    loop {
        let trust = store_of(&keys);
        let mut progress = false;
        let mut left = Vec::new();
        for bytes in pending {
            let endorsement = match verify_key_endorsement(&bytes, &trust) {
                Ok(e) => e,
                // Its voucher may be a key a later pass adds.
                Err(CodeError::UnknownIssuer { .. }) => {
                    left.push(bytes);
                    continue;
                }
                Err(_) => continue,
            };
            let new = endorsement.key;
            let new_hex = to_hex(&new.kid);
            if let Some(have) = keys.iter().find(|k| k.kid == new.kid) {
                if have.public_key != new.public_key || have.alg != new.alg {
                    refuse(&mut refused, new_hex, "trust.conflicting_key");
                }
                continue;
            }
            if revoked.is_revoked(RevocationTarget::IssuerKey, &endorsement.signer_kid) {
                refuse(&mut refused, new_hex, "trust.voucher_revoked");
                continue;
            }
            let newest = keys.iter().map(|k| k.valid_from).max().unwrap_or(i64::MIN);
            let voucher_start = keys
                .iter()
                .find(|k| to_hex(&k.kid) == endorsement.signer_kid)
                .map_or(i64::MIN, |k| k.valid_from);
            if voucher_start < newest {
                refuse(&mut refused, new_hex, "trust.voucher_not_newest");
                continue;
            }
            for k in keys.iter_mut() {
                if to_hex(&k.kid) == endorsement.signer_kid {
                    k.valid_until = Some(
                        k.valid_until
                            .map_or(new.valid_from, |u| u.min(new.valid_from)),
                    );
                }
            }
            keys.push(new);
            added.push(new_hex);
            progress = true;
        }
        pending = left;
        if !progress || pending.is_empty() {
            break;
        }
    }
    let trust = store_of(&keys);
    for entry in &offered.keys {
        let kid = entry.kid.to_ascii_lowercase();
        match trust.keys().iter().find(|k| to_hex(&k.kid) == kid) {
            None => refuse(&mut refused, kid, "trust.not_endorsed"),
            Some(k) if to_hex(&k.public_key) != entry.public_key.to_ascii_lowercase() => {
                refuse(&mut refused, kid, "trust.conflicting_key");
            }
            Some(_) => {}
        }
    }
    TrustUpdate {
        trust,
        added,
        refused,
    }
}

/// A trust store over keys already checked (a key that does not pass [`TrustStore::add`] again is
/// left out).
fn store_of(keys: &[TrustedKey]) -> TrustStore {
    let mut trust = TrustStore::new();
    for k in keys {
        let _ = trust.add(k.clone());
    }
    trust
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(keys: &[(&IssuerKey, i64, Option<i64>)], endorsements: Vec<Vec<u8>>) -> TrustFile {
        let mut trust = TrustStore::new();
        for (k, from, until) in keys {
            trust.add(TrustedKey::for_key(k, *from, *until)).unwrap();
        }
        let mut file = trust.to_file();
        file.endorsements = endorsements.iter().map(|e| to_hex(e)).collect();
        file
    }

    fn anchor(a: &IssuerKey) -> TrustStore {
        let mut t = TrustStore::new();
        t.add(TrustedKey::for_key(a, 100, None)).unwrap();
        t
    }

    fn new_key() -> IssuerKey {
        IssuerKey::generate(IssuerAlg::EdDSA).unwrap()
    }

    #[test]
    fn a_successor_endorsed_by_the_held_key_is_added_and_ends_the_old_key() {
        let (a, b, c) = (new_key(), new_key(), new_key());
        let eb = sign_key_endorsement(&a, &TrustedKey::for_key(&b, 200, None)).unwrap();
        let ec = sign_key_endorsement(&b, &TrustedKey::for_key(&c, 300, None)).unwrap();
        // The chain in reverse order still resolves.
        let offered = file(
            &[(&a, 100, Some(200)), (&b, 200, Some(300)), (&c, 300, None)],
            vec![ec, eb],
        );
        let update = extend_trust(&anchor(&a), &offered, &RevocationSet::new());
        assert_eq!(update.added, vec![to_hex(&b.kid()), to_hex(&c.kid())]);
        assert!(update.refused.is_empty(), "{:?}", update.refused);
        let t = update.trust;
        assert_eq!(t.get(&a.kid()).unwrap().valid_until, Some(200));
        assert_eq!(t.get(&b.kid()).unwrap().valid_until, Some(300));
        assert_eq!(t.get(&c.kid()).unwrap().valid_until, None);
        // Offered again: nothing new.
        let again = extend_trust(&t, &offered, &RevocationSet::new());
        assert!(again.added.is_empty());
        assert_eq!(again.trust, t);
    }

    #[test]
    fn keys_without_a_trusted_voucher_are_refused() {
        let (a, b, x) = (new_key(), new_key(), new_key());
        // Listed with no endorsement.
        let offered = file(&[(&a, 100, Some(200)), (&x, 200, None)], vec![]);
        let update = extend_trust(&anchor(&a), &offered, &RevocationSet::new());
        assert!(update.added.is_empty());
        assert_eq!(update.refused[0].code, "trust.not_endorsed");
        assert_eq!(
            update.trust,
            anchor(&a),
            "not even the old key's end changes"
        );
        // Endorsed by itself, or by another untrusted key.
        let self_signed = sign_key_endorsement(&x, &TrustedKey::for_key(&x, 200, None)).unwrap();
        let by_b = sign_key_endorsement(&b, &TrustedKey::for_key(&x, 200, None)).unwrap();
        let offered = file(&[(&x, 200, None)], vec![self_signed, by_b]);
        let update = extend_trust(&anchor(&a), &offered, &RevocationSet::new());
        assert!(update.added.is_empty());
        assert_eq!(update.trust, anchor(&a));
        // A valid endorsement whose signature was tampered with.
        let mut bad = sign_key_endorsement(&a, &TrustedKey::for_key(&x, 200, None)).unwrap();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let update = extend_trust(
            &anchor(&a),
            &file(&[(&x, 200, None)], vec![bad]),
            &RevocationSet::new(),
        );
        assert!(update.added.is_empty());
    }

    #[test]
    fn a_back_dated_key_a_revoked_or_superseded_voucher_and_a_new_key_for_a_held_kid_are_refused() {
        let (a, b, x) = (new_key(), new_key(), new_key());
        // Back-dated: starts before the anchor key.
        let e = sign_key_endorsement(&a, &TrustedKey::for_key(&x, 50, None)).unwrap();
        let u = extend_trust(
            &anchor(&a),
            &file(&[(&x, 50, None)], vec![e]),
            &RevocationSet::new(),
        );
        assert!(u.added.is_empty());
        assert_eq!(u.refused[0].code, "trust.not_endorsed");
        // A revoked voucher.
        let e = sign_key_endorsement(&a, &TrustedKey::for_key(&x, 200, None)).unwrap();
        let mut revoked = RevocationSet::new();
        revoked.revoke(RevocationTarget::IssuerKey, to_hex(&a.kid()));
        let u = extend_trust(&anchor(&a), &file(&[(&x, 200, None)], vec![e]), &revoked);
        assert!(u.added.is_empty());
        assert_eq!(u.refused[0].code, "trust.voucher_revoked");
        // After A endorsed B, A cannot endorse another successor (a stolen old key).
        let eb = sign_key_endorsement(&a, &TrustedKey::for_key(&b, 200, None)).unwrap();
        let t = extend_trust(
            &anchor(&a),
            &file(&[(&b, 200, None)], vec![eb]),
            &RevocationSet::new(),
        )
        .trust;
        let ex = sign_key_endorsement(&a, &TrustedKey::for_key(&x, 200, None)).unwrap();
        let u = extend_trust(
            &t,
            &file(&[(&x, 200, None)], vec![ex]),
            &RevocationSet::new(),
        );
        assert!(u.added.is_empty(), "{u:?}");
        // A voucher's successor starting after the voucher's end is refused by validity.
        let ex = sign_key_endorsement(&b, &TrustedKey::for_key(&x, 400, None)).unwrap();
        let mut closed = TrustStore::new();
        closed.add(TrustedKey::for_key(&b, 100, Some(300))).unwrap();
        let u = extend_trust(
            &closed,
            &file(&[(&x, 400, None)], vec![ex]),
            &RevocationSet::new(),
        );
        assert!(u.added.is_empty());
        // A trust file offering another public key under a held kid changes nothing.
        let mut offered = file(&[(&a, 100, None)], vec![]);
        offered.keys[0].public_key = to_hex(&x.public_key());
        let u = extend_trust(&anchor(&a), &offered, &RevocationSet::new());
        assert_eq!(u.refused[0].code, "trust.conflicting_key");
        assert_eq!(u.trust, anchor(&a));
    }

    #[test]
    fn an_endorsement_is_not_another_document() {
        let (a, b) = (new_key(), new_key());
        let list = super::super::sign_status_list(
            &a,
            &super::super::StatusList {
                sequence: 1,
                issued_at: 200,
                entries: vec![],
            },
        )
        .unwrap();
        assert!(verify_key_endorsement(&list, &anchor(&a)).is_err());
        let e = sign_key_endorsement(&a, &TrustedKey::for_key(&b, 200, None)).unwrap();
        assert_eq!(
            verify_key_endorsement(&e, &anchor(&a)).unwrap().key,
            TrustedKey::for_key(&b, 200, None)
        );
    }
}
