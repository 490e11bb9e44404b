//! The signed directory: round trip, strict decoding, and refusals of forged or altered ones.

use super::*;
use crate::codes::signer::{DeviceSigner, SoftwareSigner};
use crate::codes::{IssuerAlg, IssuerKey, TrustStore, TrustedKey};
use crate::domain::Explain;

fn entry(key: &SoftwareSigner, id: &str, roles: &[&str]) -> SignerEntry {
    SignerEntry {
        public_key: key.public_key(),
        person_id: id.into(),
        name: format!("签字人{id}"),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        device_id: format!("dev-{id}"),
        valid_from: 1_000,
        valid_until: None,
    }
}

fn issuer() -> (IssuerKey, TrustStore) {
    let key = IssuerKey::generate(IssuerAlg::ES256).unwrap();
    let mut trust = TrustStore::new();
    trust.add(TrustedKey::for_key(&key, 0, None)).unwrap();
    (key, trust)
}

fn sample() -> SignerDirectory {
    let a = SoftwareSigner::generate().unwrap();
    let b = SoftwareSigner::generate().unwrap();
    let mut disabled = entry(&b, "S-002", &["supervisor", "fire_watch"]);
    disabled.valid_until = Some(5_000);
    SignerDirectory::new(
        7,
        10_000,
        vec![entry(&a, "S-001", &["applicant"]), disabled],
    )
}

#[test]
fn a_signed_directory_verifies_and_finds_each_key() {
    let (key, trust) = issuer();
    let directory = sample();
    let bytes = sign_directory(&key, &directory).unwrap();
    let back = verify_directory(&bytes, &trust, 10_000, 60).unwrap();
    assert_eq!(back, directory);
    for e in &directory.entries {
        assert_eq!(back.entry(&e.public_key), Some(e));
    }
    assert!(back.entry(&[2; 33]).is_none());
    let b = &back
        .entries
        .iter()
        .find(|e| e.person_id == "S-002")
        .unwrap();
    assert!(b.valid_at(4_999) && !b.valid_at(5_000));
}

#[test]
fn a_directory_signed_by_another_key_or_altered_is_refused() {
    let (key, _) = issuer();
    let (_, other_trust) = issuer();
    let bytes = sign_directory(&key, &sample()).unwrap();
    let err = verify_directory(&bytes, &other_trust, 10_000, 60).unwrap_err();
    assert_eq!(err.code(), "code.unknown_issuer", "{err}");
    let (key, trust) = issuer();
    let mut bytes = sign_directory(&key, &sample()).unwrap();
    // Flip a byte of a role name inside the payload.
    let at = bytes
        .windows(b"applicant".len())
        .position(|w| w == b"applicant")
        .unwrap();
    bytes[at] ^= 0x20;
    let err = verify_directory(&bytes, &trust, 10_000, 60).unwrap_err();
    assert_eq!(err.code(), "code.bad_signature", "{err}");
}

#[test]
fn a_status_list_does_not_pass_for_a_directory() {
    let (key, trust) = issuer();
    let list = crate::codes::StatusList {
        sequence: 1,
        issued_at: 10_000,
        entries: vec![],
    };
    let bytes = crate::codes::sign_status_list(&key, &list).unwrap();
    let err = verify_directory(&bytes, &trust, 10_000, 60).unwrap_err();
    assert_eq!(err.code(), "code.malformed", "{err}");
}

#[test]
fn a_directory_from_the_future_or_with_bad_entries_is_refused() {
    let (key, trust) = issuer();
    let bytes = sign_directory(&key, &sample()).unwrap();
    let err = verify_directory(&bytes, &trust, 9_000, 60).unwrap_err();
    assert_eq!(err.code(), "code.not_yet_valid", "{err}");
    let mut bad = sample();
    bad.entries[0].public_key = vec![9; 33];
    assert!(sign_directory(&key, &bad).is_err());
    let mut bad = sample();
    bad.entries[0].roles.clear();
    assert!(sign_directory(&key, &bad).is_err());
    let mut bad = sample();
    bad.entries[0].person_id = " ".into();
    assert!(sign_directory(&key, &bad).is_err());
}

#[test]
fn garbage_is_a_typed_error() {
    let (_, trust) = issuer();
    for bytes in [&b""[..], b"\xa0", b"\x84\x40\xa0\xf6\x40", &[0xff; 64]] {
        let err = verify_directory(bytes, &trust, 10_000, 60).unwrap_err();
        assert_eq!(err.code(), "code.malformed", "{bytes:?}: {err}");
    }
}
