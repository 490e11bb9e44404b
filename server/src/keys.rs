//! The platform's issuer keys: the server signs machine labels, welder credentials, status lists and
//! snapshots with its current key, and publishes every key it ever used with its validity period as
//! the trust file devices verify with. Rotation starts a new key and ends the old key's validity at
//! that moment: codes the old key signed before then stay valid until they themselves expire.
//!
//! The keys sit in the server's database (secrets included): a reference server. A deployment would
//! keep them in an HSM or a KMS and sign there; the trust file and rotation rules stay the same.

use weldguard_model::codes::rotation::sign_key_endorsement;
use weldguard_model::codes::{IssuerAlg, IssuerKey, TrustFile, TrustStore, TrustedKey, to_hex};

use crate::db::{Db, DbError, StoredIssuerKey};

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("stored issuer key {0} does not load: {1}")]
    BadKey(String, String),
    #[error("the server holds no signing key")]
    NoSigningKey,
}

/// A new key, ready to install.
pub fn new_key(alg: IssuerAlg) -> Result<StoredIssuerKey, KeyStoreError> {
    let key =
        IssuerKey::generate(alg).map_err(|e| KeyStoreError::BadKey("new".into(), e.to_string()))?;
    Ok(StoredIssuerKey {
        kid: to_hex(&key.kid()),
        key_json: key.to_json(),
        valid_from_ms: 0,
        valid_until_ms: None,
    })
}

/// At first start: make a signing key when there is none.
pub fn ensure_signing_key(db: &Db, now_ms: i64) -> Result<(), KeyStoreError> {
    if db.issuer_keys()?.iter().any(|k| k.valid_until_ms.is_none()) {
        return Ok(());
    }
    db.install_issuer_key(&new_key(IssuerAlg::EdDSA)?, now_ms, true)?;
    Ok(())
}

fn load(stored: &StoredIssuerKey) -> Result<IssuerKey, KeyStoreError> {
    IssuerKey::from_json(&stored.key_json)
        .map_err(|e| KeyStoreError::BadKey(stored.kid.clone(), e.to_string()))
}

/// The current signing key.
pub fn signing_key(db: &Db) -> Result<IssuerKey, KeyStoreError> {
    let keys = db.issuer_keys()?;
    let active = keys
        .iter()
        .rev()
        .find(|k| k.valid_until_ms.is_none())
        .ok_or(KeyStoreError::NoSigningKey)?;
    load(active)
}

/// Every key with its validity period (Unix seconds, inclusive), as devices trust them.
pub fn trust_store(keys: &[StoredIssuerKey]) -> Result<TrustStore, KeyStoreError> {
    let mut trust = TrustStore::new();
    for stored in keys {
        let key = load(stored)?;
        let entry = TrustedKey::for_key(
            &key,
            stored.valid_from_ms.div_euclid(1000),
            stored.valid_until_ms.map(|ms| ms.div_euclid(1000)),
        );
        trust
            .add(entry)
            .map_err(|e| KeyStoreError::BadKey(stored.kid.clone(), e.to_string()))?;
    }
    Ok(trust)
}

/// The trust file published at `GET /v1/trust`, with the endorsement chain: each key after the
/// first signed by the key it replaced, dated at the rotation (the old key's last valid instant),
/// so a device that trusts any key of the chain comes to trust the newer ones
/// ([`weldguard_model::codes::rotation`]). A deployment would sign each endorsement once, at
/// rotation, in its HSM; the reference server signs the same bytes on request (Ed25519 and
/// RFC 6979 ECDSA signatures are deterministic).
pub fn trust_file(db: &Db) -> Result<TrustFile, KeyStoreError> {
    let keys = db.issuer_keys()?;
    let trust = trust_store(&keys)?;
    let mut file = trust.to_file();
    for pair in keys.windows(2) {
        let [old, new] = pair else { continue };
        let signer = load(old)?;
        let successor = load(new)?;
        let entry = TrustedKey::for_key(&successor, new.valid_from_ms.div_euclid(1000), None);
        let endorsement = sign_key_endorsement(&signer, &entry)
            .map_err(|e| KeyStoreError::BadKey(old.kid.clone(), e.to_string()))?;
        file.endorsements.push(to_hex(&endorsement));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weldguard_model::codes::{ReplayCache, RevocationSet, Verifier, issue_machine_label};
    use weldguard_model::domain::{MachineClass, MachineKind, MachineLabel};

    fn label(issued_at: i64) -> MachineLabel {
        MachineLabel {
            machine_id: "M-370983-00017".into(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: "91370983MA3C4X1Y2K".into(),
            region: 370983,
            issued_at,
        }
    }

    #[test]
    fn rotation_keeps_old_codes_valid_and_signs_new_ones_with_the_new_key() {
        let dir = std::env::temp_dir().join(format!("wg-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir).unwrap();
        let t0 = 1_796_000_400_000i64;
        ensure_signing_key(&db, t0).unwrap();
        ensure_signing_key(&db, t0 + 1).unwrap();
        assert_eq!(
            db.issuer_keys().unwrap().len(),
            1,
            "first start makes one key"
        );
        let old = signing_key(&db).unwrap();
        let old_code = issue_machine_label(&old, &label(t0 / 1000 + 60)).unwrap();

        let t1 = t0 + 86_400_000;
        db.install_issuer_key(&new_key(IssuerAlg::ES256).unwrap(), t1, false)
            .unwrap();
        let new = signing_key(&db).unwrap();
        assert_ne!(new.kid(), old.kid());
        let new_code = issue_machine_label(&new, &label(t1 / 1000 + 60)).unwrap();

        let trust = trust_store(&db.issuer_keys().unwrap()).unwrap();
        let revocations = RevocationSet::new();
        let verifier = Verifier::new(&trust, &revocations);
        let later = t1 / 1000 + 3600;
        let replay = &mut ReplayCache::new(16);
        assert!(
            verifier.verify(&old_code, later, replay).is_ok(),
            "old code still valid"
        );
        assert!(verifier.verify(&new_code, later, replay).is_ok());
        // The old key cannot sign anything new: a label it signs after the rotation is refused.
        let forged = issue_machine_label(&old, &label(t1 / 1000 + 60)).unwrap();
        assert!(verifier.verify(&forged, later, replay).is_err());

        // The published file carries A's endorsement of B: a device anchored on A alone comes to
        // trust B, with A ended at the rotation, exactly as the platform's own trust store says.
        let file = trust_file(&db).unwrap();
        assert_eq!(file.endorsements.len(), 1);
        let mut anchor = TrustStore::new();
        anchor
            .add(TrustedKey::for_key(&old, t0 / 1000, None))
            .unwrap();
        let update = weldguard_model::codes::rotation::extend_trust(&anchor, &file, &revocations);
        assert_eq!(update.added, vec![to_hex(&new.kid())]);
        assert!(update.refused.is_empty());
        assert_eq!(update.trust, trust);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
