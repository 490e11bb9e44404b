//! Whole-envelope tests of `core::codes`: round trips, single-bit tampering, every refusal reason,
//! key validity edges, revocation, presentation window and replay, and QR sizes.

use chrono::NaiveDate;
use proptest::prelude::*;

use crate::domain::{
    Explain, MachineClass, MachineKind, MachineLabel, OperationCategory, RevocationTarget,
    WelderCredential,
};

use super::claims::{CredentialClaims, Payload};
use super::envelope::{self, BuildError};
use super::issue::sign_presentation;
use super::*;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
const DAY: i64 = 86_400;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

struct Fixture {
    ed: IssuerKey,
    es: IssuerKey,
    device: SoftwareSigner,
    trust: TrustStore,
}

/// Issuer keys valid for one year before T0 until two years after.
fn fixture() -> Fixture {
    let ed = IssuerKey::from_secret(IssuerAlg::EdDSA, &[11; 32]).unwrap();
    let es = IssuerKey::from_secret(IssuerAlg::ES256, &[12; 32]).unwrap();
    let device = SoftwareSigner::from_secret(&[13; 32]).unwrap();
    let mut trust = TrustStore::new();
    for key in [&ed, &es] {
        trust
            .add(TrustedKey::for_key(
                key,
                T0 - 365 * DAY,
                Some(T0 + 730 * DAY),
            ))
            .unwrap();
    }
    Fixture {
        ed,
        es,
        device,
        trust,
    }
}

fn label() -> MachineLabel {
    MachineLabel {
        machine_id: "370983-DH-2024-000123".into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C4X1Y2K".into(),
        region: 370983,
        issued_at: T0,
    }
}

fn credential(device: &SoftwareSigner) -> WelderCredential {
    WelderCredential {
        certificate_no: "T370983199001011233".into(),
        id_number: "370983199001011233".into(),
        name: "欧阳建国".into(),
        categories: OperationCategory::ALL.to_vec(),
        issued_on: date(2023, 5, 10),
        expires_on: date(2029, 5, 9),
        next_review_on: date(2026, 5, 9),
        photo_digest: vec![0xa5; 32],
        device_key: device.public_key(),
    }
}

fn verifier<'a>(trust: &'a TrustStore, revocations: &'a RevocationSet) -> Verifier<'a> {
    Verifier::new(trust, revocations)
}

fn check(f: &Fixture, text: &str, now: i64) -> Result<VerifiedCode, CodeError> {
    let none = RevocationSet::new();
    verifier(&f.trust, &none).verify(text, now, &mut ReplayCache::default())
}

/// One code of each kind and issuer algorithm.
fn samples(f: &Fixture) -> Vec<(&'static str, String)> {
    let cred = issue_credential(&f.ed, &credential(&f.device), T0, T0).unwrap();
    let presentation = present_with_nonce(&cred, &f.device, T0 + 10, &[7; NONCE_BYTES]).unwrap();
    vec![
        (
            "machine/EdDSA",
            issue_machine_label(&f.ed, &label()).unwrap(),
        ),
        (
            "machine/ES256",
            issue_machine_label(&f.es, &label()).unwrap(),
        ),
        ("credential/EdDSA", cred),
        (
            "credential/ES256",
            issue_credential(&f.es, &credential(&f.device), T0, T0).unwrap(),
        ),
        ("presentation", presentation),
    ]
}

#[test]
fn every_kind_verifies_with_its_claims() {
    let f = fixture();
    let now = T0 + 10;
    let m = check(&f, &issue_machine_label(&f.ed, &label()).unwrap(), now).unwrap();
    assert_eq!(m.kind, CodeKind::MachineLabel);
    assert_eq!(m.kid, to_hex(&f.ed.kid()));
    assert_eq!(m.alg, IssuerAlg::EdDSA);
    assert_eq!(m.claims, VerifiedClaims::MachineLabel(label()));
    assert_eq!(m.credential_id, None);

    let cred_text = issue_credential(&f.es, &credential(&f.device), T0, T0).unwrap();
    let c = check(&f, &cred_text, now).unwrap();
    assert_eq!(c.kind, CodeKind::WelderCredential);
    assert_eq!(c.alg, IssuerAlg::ES256);
    let id = credential_id(&from_text(&cred_text).unwrap());
    assert_eq!(c.credential_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        c.claims,
        VerifiedClaims::WelderCredential(CredentialClaims {
            credential: credential(&f.device),
            signed_at: T0
        })
    );

    let p_text = present(&cred_text, &f.device, now).unwrap();
    let p = check(&f, &p_text, now).unwrap();
    assert_eq!(p.kind, CodeKind::Presentation);
    assert_eq!(p.kid, to_hex(&f.es.kid()));
    assert_eq!(p.credential_id, Some(id));
    let VerifiedClaims::Presentation {
        credential: cc,
        presentation,
    } = p.claims
    else {
        panic!("not a presentation");
    };
    assert_eq!(cc.credential, credential(&f.device));
    assert_eq!(presentation.presented_at, now);
    assert_eq!(presentation.nonce.len(), NONCE_BYTES);
}

#[test]
fn qr_sizes_fit_the_printed_and_shown_budgets() {
    use qrcode::{EcLevel, QrCode, Version};
    let f = fixture();
    for key in [&f.ed, &f.es] {
        let text = issue_machine_label(key, &label()).unwrap();
        let qr = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q).unwrap();
        let Version::Normal(v) = qr.version() else {
            panic!("micro QR")
        };
        eprintln!(
            "machine label {:?}: {} chars, version {v}-Q",
            key.alg(),
            text.len()
        );
        assert!(
            v <= 10,
            "machine label {:?} needs version {v} at Q ({} chars)",
            key.alg(),
            text.len()
        );

        let text = issue_credential(key, &credential(&f.device), T0, T0).unwrap();
        let qr = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
        let Version::Normal(v) = qr.version() else {
            panic!("micro QR")
        };
        eprintln!(
            "credential {:?}: {} chars, version {v}-M",
            key.alg(),
            text.len()
        );
        assert!(
            v <= 12,
            "credential {:?} needs version {v} at M ({} chars)",
            key.alg(),
            text.len()
        );
    }
}

#[test]
fn flipping_any_bit_of_the_cose_bytes_is_rejected() {
    let f = fixture();
    let none = RevocationSet::new();
    let v = verifier(&f.trust, &none);
    for (name, text) in samples(&f) {
        let cose = from_text(&text).unwrap();
        assert!(
            v.verify_cose(&cose, None, T0 + 10, &mut ReplayCache::default())
                .is_ok()
        );
        for bit in 0..cose.len() * 8 {
            let mut bad = cose.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let r = v.verify_cose(&bad, None, T0 + 10, &mut ReplayCache::default());
            assert!(r.is_err(), "{name}: bit {bit} flipped was accepted");
        }
    }
}

#[test]
fn flipping_any_bit_of_the_text_is_rejected() {
    let f = fixture();
    let none = RevocationSet::new();
    let v = verifier(&f.trust, &none);
    for (name, text) in samples(&f) {
        let bytes = text.as_bytes();
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            // Non-UTF-8 results cannot be a scanned text; they are rejected by the type system.
            let Ok(bad) = String::from_utf8(bad) else {
                continue;
            };
            let r = v.verify(&bad, T0 + 10, &mut ReplayCache::default());
            assert!(r.is_err(), "{name}: text bit {bit} flipped was accepted");
        }
    }
}

#[test]
fn malformed_and_unsupported_inputs() {
    let f = fixture();
    for text in ["", "WG1:", "WG1:!!!", "WG1:00", "hello", "WG1:ABC"] {
        assert!(
            matches!(check(&f, text, T0), Err(CodeError::Malformed { .. })),
            "{text}"
        );
    }
    // Truncations of a valid code are malformed or badly signed, never accepted.
    let good = issue_machine_label(&f.ed, &label()).unwrap();
    for end in 0..good.len() {
        assert!(check(&f, &good[..end], T0).is_err());
    }
    assert!(matches!(
        check(&f, &good.replacen("WG1:", "WG2:", 1), T0),
        Err(CodeError::UnsupportedVersion { .. })
    ));
    // A COSE_Sign1 with an algorithm this version does not know (ES384).
    let payload = super::claims::encode(&Payload::Machine(label())).unwrap();
    let sign1 = coset::CoseSign1Builder::new()
        .protected(
            coset::HeaderBuilder::new()
                .algorithm(coset::iana::Algorithm::ES384)
                .key_id(f.ed.kid())
                .build(),
        )
        .payload(payload)
        .signature(vec![0; 64])
        .build();
    let cose = coset::CborSerializable::to_vec(sign1).unwrap();
    assert!(matches!(
        check(&f, &to_text(&cose), T0),
        Err(CodeError::UnsupportedVersion { .. })
    ));
}

#[test]
fn unknown_issuer_and_forged_signatures() {
    let f = fixture();
    let stranger = IssuerKey::from_secret(IssuerAlg::EdDSA, &[99; 32]).unwrap();
    let code = issue_machine_label(&stranger, &label()).unwrap();
    assert_eq!(
        check(&f, &code, T0),
        Err(CodeError::UnknownIssuer {
            kid: to_hex(&stranger.kid())
        })
    );
    // Signed by the stranger under a trusted kid.
    for trusted in [&f.ed, &f.es] {
        let cose = envelope::build(
            trusted.alg(),
            &trusted.kid(),
            &Payload::Machine(label()),
            None,
            |tbs| stranger.sign(tbs),
        )
        .unwrap_or_else(|_: BuildError<String>| panic!("build"));
        assert_eq!(
            check(&f, &to_text(&cose), T0),
            Err(CodeError::BadSignature {
                role: SignatureRole::Issuer
            })
        );
    }
    // The right key's signature but the algorithm label of the other algorithm.
    let cose = envelope::build(
        IssuerAlg::ES256,
        &f.ed.kid(),
        &Payload::Machine(label()),
        None,
        |tbs| f.ed.sign(tbs),
    )
    .unwrap_or_else(|_: BuildError<String>| panic!("build"));
    assert_eq!(
        check(&f, &to_text(&cose), T0),
        Err(CodeError::BadSignature {
            role: SignatureRole::Issuer
        })
    );
}

#[test]
fn key_validity_edges() {
    let f = fixture();
    let from = T0 - 365 * DAY;
    let until = T0 + 730 * DAY;
    let at = |issued_at: i64| {
        let mut l = label();
        l.issued_at = issued_at;
        check(&f, &issue_machine_label(&f.ed, &l).unwrap(), until + DAY)
    };
    let not_valid = Err(CodeError::IssuerKeyNotValid {
        kid: to_hex(&f.ed.kid()),
    });
    assert_eq!(at(from - 1), not_valid);
    assert!(at(from).is_ok());
    assert!(at(until).is_ok());
    assert_eq!(at(until + 1), not_valid);
    // A code signed inside the period stays valid after the key's period ends.
    assert!(at(T0).is_ok());
}

#[test]
fn future_codes_are_not_yet_valid() {
    let f = fixture();
    let skew = VerifyPolicy::default().clock_skew_secs;
    let code = issue_machine_label(&f.ed, &label()).unwrap();
    assert!(check(&f, &code, T0 - skew).is_ok());
    assert_eq!(check(&f, &code, T0 - skew - 1), Err(CodeError::NotYetValid));
    // A licence that starts after today (China time).
    let mut c = credential(&f.device);
    c.issued_on = date(2026, 1, 2);
    let code = issue_credential(&f.ed, &c, T0, T0).unwrap();
    // 2026-01-01T15:59:59Z is still 1 January in China; 16:00Z is 2 January.
    assert_eq!(
        check(&f, &code, T0 + 16 * 3600 - 1),
        Err(CodeError::NotYetValid)
    );
    assert!(check(&f, &code, T0 + 16 * 3600).is_ok());
}

#[test]
fn expired_credentials() {
    let f = fixture();
    let mut c = credential(&f.device);
    c.expires_on = date(2026, 1, 31);
    let code = issue_credential(&f.es, &c, T0, T0).unwrap();
    // Valid through 31 January, China time (ends 2026-01-31T16:00Z).
    let end = T0 + 30 * DAY + 16 * 3600;
    assert!(check(&f, &code, end - 1).is_ok());
    assert_eq!(check(&f, &code, end), Err(CodeError::Expired));
    let p = present(&code, &f.device, end).unwrap();
    assert_eq!(check(&f, &p, end), Err(CodeError::Expired));
}

#[test]
fn revocations_of_every_target() {
    let f = fixture();
    let machine = issue_machine_label(&f.ed, &label()).unwrap();
    let cred = issue_credential(&f.es, &credential(&f.device), T0, T0).unwrap();
    let pres = present(&cred, &f.device, T0).unwrap();
    let cred_id = credential_id(&from_text(&cred).unwrap());
    let cases = [
        (RevocationTarget::IssuerKey, to_hex(&f.ed.kid()), &machine),
        (RevocationTarget::Machine, label().machine_id, &machine),
        (RevocationTarget::Credential, cred_id.clone(), &cred),
        (
            RevocationTarget::Licence,
            "T370983199001011233".to_owned(),
            &cred,
        ),
        (RevocationTarget::Credential, cred_id, &pres),
        (RevocationTarget::IssuerKey, to_hex(&f.es.kid()), &pres),
    ];
    for (target, id, code) in cases {
        let mut revoked = RevocationSet::new();
        revoked.revoke(target, id.clone());
        let v = verifier(&f.trust, &revoked);
        assert_eq!(
            v.verify(code, T0, &mut ReplayCache::default()),
            Err(CodeError::Revoked { target, id })
        );
        // Other codes are unaffected by revocations that do not name them.
        let unrelated = RevocationSet::from_iter([crate::domain::Revocation {
            target,
            id: "something-else".into(),
        }]);
        assert!(
            verifier(&f.trust, &unrelated)
                .verify(code, T0, &mut ReplayCache::default())
                .is_ok()
        );
    }
}

#[test]
fn wrong_kind_is_refused_before_anything_else() {
    let f = fixture();
    let none = RevocationSet::new();
    let v = verifier(&f.trust, &none);
    let machine = issue_machine_label(&f.ed, &label()).unwrap();
    assert_eq!(
        v.verify_expecting(
            &machine,
            CodeKind::Presentation,
            T0,
            &mut ReplayCache::default()
        ),
        Err(CodeError::WrongKind {
            expected: CodeKind::Presentation,
            found: CodeKind::MachineLabel
        })
    );
    assert!(
        v.verify_expecting(
            &machine,
            CodeKind::MachineLabel,
            T0,
            &mut ReplayCache::default()
        )
        .is_ok()
    );
    // A presentation of a machine label cannot even be made.
    assert!(matches!(
        present(&machine, &f.device, T0),
        Err(IssueError::BadCredential(CodeError::WrongKind { .. }))
    ));
}

#[test]
fn presentation_window_replay_and_device_key() {
    let f = fixture();
    let none = RevocationSet::new();
    let v = verifier(&f.trust, &none);
    let window = v.policy.presentation_window_secs;
    let cred = issue_credential(&f.ed, &credential(&f.device), T0, T0).unwrap();
    let p = present(&cred, &f.device, T0).unwrap();

    // Window edges.
    assert!(
        v.verify(&p, T0 + window, &mut ReplayCache::default())
            .is_ok()
    );
    assert_eq!(
        v.verify(&p, T0 + window + 1, &mut ReplayCache::default()),
        Err(CodeError::StalePresentation {
            age_secs: window + 1,
            window_secs: window
        })
    );
    let skew = v.policy.clock_skew_secs;
    assert_eq!(
        v.verify(&p, T0 - skew - 1, &mut ReplayCache::default()),
        Err(CodeError::NotYetValid)
    );

    // Replay: the same presentation twice with one cache.
    let mut cache = ReplayCache::default();
    assert!(v.verify(&p, T0 + 1, &mut cache).is_ok());
    assert_eq!(v.verify(&p, T0 + 2, &mut cache), Err(CodeError::Replayed));
    // A fresh presentation (new nonce) is fine.
    let p2 = present(&cred, &f.device, T0 + 2).unwrap();
    assert!(v.verify(&p2, T0 + 3, &mut cache).is_ok());
    assert_eq!(cache.len(), 2);

    // A rejected presentation does not poison the cache.
    let mut cache = ReplayCache::default();
    assert!(v.verify(&p, T0 + window + 1, &mut cache).is_err());
    assert!(cache.is_empty());

    // Signed by another device key than the credential names.
    let thief = SoftwareSigner::from_secret(&[42; 32]).unwrap();
    assert_eq!(
        present(&cred, &thief, T0),
        Err(IssueError::DeviceKeyMismatch)
    );
    let forged =
        sign_presentation(&from_text(&cred).unwrap(), &thief, T0, &[1; NONCE_BYTES]).unwrap();
    assert_eq!(
        v.verify(&forged, T0, &mut ReplayCache::default()),
        Err(CodeError::BadSignature {
            role: SignatureRole::Device
        })
    );
    // The thief's own credential is unknown to the trust store, so swapping it in fails as well.
    let stranger = IssuerKey::from_secret(IssuerAlg::EdDSA, &[98; 32]).unwrap();
    let thief_cred = issue_credential(&stranger, &credential(&thief), T0, T0).unwrap();
    let p3 = present(&thief_cred, &thief, T0).unwrap();
    assert!(matches!(
        v.verify(&p3, T0, &mut ReplayCache::default()),
        Err(CodeError::UnknownIssuer { .. })
    ));
}

#[test]
fn replay_cache_forgets_old_entries_when_full() {
    let f = fixture();
    let none = RevocationSet::new();
    let v = verifier(&f.trust, &none);
    let cred = issue_credential(&f.ed, &credential(&f.device), T0, T0).unwrap();
    let mut cache = ReplayCache::new(2);
    for i in 0..5u8 {
        let p = present_with_nonce(&cred, &f.device, T0 + i64::from(i) * 100, &[i; 12]).unwrap();
        assert!(v.verify(&p, T0 + i64::from(i) * 100, &mut cache).is_ok());
        assert!(cache.len() <= 2);
    }
}

#[test]
fn issuing_refuses_bad_claims() {
    let f = fixture();
    let mut l = label();
    l.machine_id = String::new();
    assert!(matches!(
        issue_machine_label(&f.ed, &l),
        Err(IssueError::InvalidClaims(_))
    ));
    let mut c = credential(&f.device);
    c.categories = vec![OperationCategory::Brazing, OperationCategory::Brazing];
    assert!(issue_credential(&f.ed, &c, T0, T0).is_err());
    let mut c = credential(&f.device);
    c.device_key = vec![5; 33];
    assert!(issue_credential(&f.ed, &c, T0, T0).is_err());
    let mut c = credential(&f.device);
    c.name = "x".repeat(65);
    assert!(issue_credential(&f.ed, &c, T0, T0).is_err());
    assert!(
        present_with_nonce(
            &issue_credential(&f.ed, &credential(&f.device), T0, T0).unwrap(),
            &f.device,
            T0,
            &[0; 4]
        )
        .is_err()
    );
}

#[test]
fn every_reason_has_a_distinct_stable_code_and_two_messages() {
    let reasons = [
        CodeError::malformed("x"),
        CodeError::UnsupportedVersion { detail: "2".into() },
        CodeError::UnknownIssuer { kid: "ab".into() },
        CodeError::BadSignature {
            role: SignatureRole::Issuer,
        },
        CodeError::BadSignature {
            role: SignatureRole::Device,
        },
        CodeError::IssuerKeyNotValid { kid: "ab".into() },
        CodeError::WrongKind {
            expected: CodeKind::MachineLabel,
            found: CodeKind::Presentation,
        },
        CodeError::Expired,
        CodeError::NotYetValid,
        CodeError::Revoked {
            target: RevocationTarget::Licence,
            id: "T1".into(),
        },
        CodeError::Replayed,
        CodeError::StalePresentation {
            age_secs: 90,
            window_secs: 60,
        },
    ];
    let mut codes: Vec<&str> = reasons.iter().map(|r| r.code()).collect();
    for r in &reasons {
        assert!(r.code().starts_with("code."));
        assert!(!r.message_en().is_empty());
        assert!(
            r.message_zh().chars().any(|c| c > '\u{4e00}'),
            "{}",
            r.code()
        );
    }
    codes.dedup();
    assert_eq!(
        codes.len(),
        reasons.len() - 1,
        "only the two BadSignature roles share a code"
    );
}

fn machine_strategy() -> impl Strategy<Value = MachineLabel> {
    (
        "[0-9A-Z][0-9A-Z-]{0,39}",
        0..MachineKind::ALL.len(),
        0..3usize,
        "[0-9A-Z]{18}",
        any::<u32>(),
        (T0 - 365 * DAY)..(T0 + 730 * DAY),
    )
        .prop_map(
            |(machine_id, kind, class, owner_org, region, issued_at)| MachineLabel {
                machine_id,
                kind: MachineKind::ALL[kind],
                class: [
                    MachineClass::Mobile,
                    MachineClass::FixedStation,
                    MachineClass::LegacyRegistered,
                ][class],
                owner_org,
                region,
                issued_at,
            },
        )
}

fn credential_strategy() -> impl Strategy<Value = (WelderCredential, u8)> {
    (
        "T[0-9]{17}[0-9X]",
        // A valid resident ID number: region, a birth date in 1950-2005, sequence, check character.
        ("(11|37|44|65)0[0-9]{3}", 0u32..20_000, "[0-9]{3}"),
        "[\u{4e00}-\u{9fa5}]{2,4}|[A-Za-z ·]{1,20}",
        proptest::sample::subsequence(OperationCategory::ALL.to_vec(), 1..=3),
        0i64..4000,
        0i64..4000,
        proptest::collection::vec(any::<u8>(), 0..=32),
        1u8..=250,
    )
        .prop_map(
            |(cert, (region, born, seq), name, categories, back, forward, photo, seed)| {
                let birth = date(1950, 1, 1) + chrono::Days::new(u64::from(born));
                let first17 = format!("{region}{}{seq}", birth.format("%Y%m%d"));
                let check = crate::rules::id_number::check_character(first17.as_bytes()).unwrap();
                let id = format!("{first17}{check}");
                let device = SoftwareSigner::from_secret(&[seed; 32]).unwrap();
                let today = date(2026, 1, 1);
                let credential = WelderCredential {
                    certificate_no: cert,
                    id_number: id,
                    name,
                    categories,
                    issued_on: today - chrono::Days::new(back as u64),
                    expires_on: today + chrono::Days::new(forward as u64),
                    next_review_on: today + chrono::Days::new((forward / 2) as u64),
                    photo_digest: photo,
                    device_key: device.public_key(),
                };
                (credential, seed)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn machine_labels_round_trip(l in machine_strategy(), es in any::<bool>()) {
        let f = fixture();
        let key = if es { &f.es } else { &f.ed };
        let code = issue_machine_label(key, &l).unwrap();
        let v = check(&f, &code, l.issued_at).unwrap();
        prop_assert_eq!(v.claims, VerifiedClaims::MachineLabel(l));
    }

    #[test]
    fn credentials_and_presentations_round_trip(
        (c, seed) in credential_strategy(),
        es in any::<bool>(),
        nonce in proptest::collection::vec(any::<u8>(), 8..=32),
        delay in 0i64..60,
    ) {
        let f = fixture();
        let key = if es { &f.es } else { &f.ed };
        let code = issue_credential(key, &c, T0, T0).unwrap();
        let claims = CredentialClaims { credential: c.clone(), signed_at: T0 };
        let v = check(&f, &code, T0).unwrap();
        prop_assert_eq!(v.claims, VerifiedClaims::WelderCredential(claims.clone()));

        let device = SoftwareSigner::from_secret(&[seed; 32]).unwrap();
        let p = present_with_nonce(&code, &device, T0, &nonce).unwrap();
        let v = check(&f, &p, T0 + delay).unwrap();
        let VerifiedClaims::Presentation { credential, presentation } = v.claims else {
            panic!("not a presentation");
        };
        prop_assert_eq!(credential, claims);
        prop_assert_eq!(presentation.nonce, nonce);
        prop_assert_eq!(presentation.presented_at, T0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let trust = fuzzing::fuzz_trust();
        prop_assert_eq!(fuzzing::exercise_decoder(&data, &trust, T0), 0);
    }
}

/// A device whose key store refuses to sign (user cancelled, key wiped).
struct RefusingDevice(Vec<u8>);

impl DeviceSigner for RefusingDevice {
    fn public_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Err(SignerError("user cancelled".into()))
    }
}

#[test]
fn a_device_that_cannot_sign_gives_a_typed_error() {
    let f = fixture();
    let cred = issue_credential(&f.ed, &credential(&f.device), T0, T0).unwrap();
    let refusing = RefusingDevice(f.device.public_key());
    let e = present(&cred, &refusing, T0).unwrap_err();
    assert_eq!(e, IssueError::Signing("user cancelled".into()));
    assert_eq!(e.code(), "issue.signing_failed");
    assert!(e.message_zh().contains("签名失败"));
}

#[test]
fn a_rendered_label_scans_back_and_verifies() {
    use qrcode::{Color, EcLevel, QrCode};
    let f = fixture();
    let text = issue_machine_label(&f.es, &label()).unwrap();
    let qr = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q).unwrap();
    let (width, colors) = (qr.width(), qr.to_colors());
    let (scale, quiet) = (4, 4);
    let size = (width + 2 * quiet) * scale;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(size, size, |x, y| {
        let (mx, my) = (x / scale, y / scale);
        let inside = (quiet..width + quiet).contains(&mx) && (quiet..width + quiet).contains(&my);
        match inside.then(|| colors[(my - quiet) * width + (mx - quiet)]) {
            Some(Color::Dark) => 0,
            _ => 255,
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, text);
    assert!(check(&f, &content, T0).is_ok());
}

/// The group order L of Ed25519, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The other form of a signature that the bare equation accepts: `(r, n − s)` for ES256, and
/// `(R, s + L)` (a non-canonical S) for Ed25519.
pub(crate) fn signature_twin(alg: IssuerAlg, signature: &[u8]) -> Vec<u8> {
    match alg {
        IssuerAlg::ES256 => es256_twin(signature).unwrap(),
        IssuerAlg::EdDSA => {
            let mut out = signature.to_vec();
            let mut carry = 0u16;
            for (byte, l) in out[32..].iter_mut().zip(ED25519_L) {
                let sum = u16::from(*byte) + u16::from(l) + carry;
                *byte = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
            assert_eq!(carry, 0);
            out
        }
    }
}

/// A `WG1:` text with its outer signature replaced by its twin.
fn code_twin(alg: IssuerAlg, text: &str) -> String {
    use coset::CborSerializable;
    let mut sign1 = coset::CoseSign1::from_slice(&from_text(text).unwrap()).unwrap();
    sign1.signature = signature_twin(alg, &sign1.signature);
    to_text(&sign1.to_vec().unwrap())
}

#[test]
fn the_twin_of_an_issuer_signature_is_refused() {
    let f = fixture();
    for key in [&f.ed, &f.es] {
        let codes = [
            issue_machine_label(key, &label()).unwrap(),
            issue_credential(key, &credential(&f.device), T0, T0).unwrap(),
        ];
        for text in codes {
            assert!(check(&f, &text, T0).is_ok());
            assert_eq!(
                check(&f, &code_twin(key.alg(), &text), T0),
                Err(CodeError::BadSignature {
                    role: SignatureRole::Issuer
                }),
                "{:?}",
                key.alg()
            );
        }
    }
}

#[test]
fn the_high_s_twin_of_a_presentation_is_refused_and_a_high_s_phone_still_presents() {
    let f = fixture();
    let phone = signer::HighSSigner(SoftwareSigner::from_secret(&[13; 32]).unwrap());
    for key in [&f.ed, &f.es] {
        let cred = issue_credential(key, &credential(&f.device), T0, T0).unwrap();
        let p = present_with_nonce(&cred, &phone, T0, &[7; 12]).unwrap();
        assert!(check(&f, &p, T0 + 5).is_ok());
        assert_eq!(
            check(&f, &code_twin(IssuerAlg::ES256, &p), T0 + 5),
            Err(CodeError::BadSignature {
                role: SignatureRole::Device
            })
        );
    }
}

#[test]
fn ed25519_refuses_a_non_canonical_s() {
    let key = IssuerKey::from_secret(IssuerAlg::EdDSA, &[21; 32]).unwrap();
    for i in 0..16u8 {
        let sig = key.sign(&[i]).unwrap();
        assert!(verify_issuer_signature(
            IssuerAlg::EdDSA,
            &key.public_key(),
            &[i],
            &sig
        ));
        let twin = signature_twin(IssuerAlg::EdDSA, &sig);
        assert!(!verify_issuer_signature(
            IssuerAlg::EdDSA,
            &key.public_key(),
            &[i],
            &twin
        ));
    }
}

#[test]
fn credentials_with_a_bad_id_number_or_already_expired_are_not_issued() {
    let f = fixture();
    // 370983199001011233 is valid; its last character changed fails the check character.
    let mut c = credential(&f.device);
    c.id_number = "370983199001011234".into();
    let err = issue_credential(&f.es, &c, T0, T0).unwrap_err();
    assert_eq!(err.code(), "issue.bad_id_number");
    match &err {
        IssueError::BadIdNumber { problems, .. } => assert!(
            problems
                .iter()
                .any(|p| p.code() == "id.check_character_mismatch"),
            "{problems:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(err.message_zh().contains("370983199001011234"));
    assert!(err.message_en().contains("GB 11643-1999"));
    // A legacy 15-digit number, a made-up one: refused too.
    for id in ["370983900101123", "12345", "990983199001011233"] {
        c.id_number = id.into();
        assert_eq!(
            issue_credential(&f.ed, &c, T0, T0).unwrap_err().code(),
            "issue.bad_id_number",
            "{id}"
        );
    }
    // Expired the day before issuing (China time): refused; expiring on the day: issued.
    let today = date(2026, 1, 1);
    let mut c = credential(&f.device);
    c.issued_on = date(2020, 1, 1);
    c.expires_on = today.pred_opt().unwrap();
    let err = issue_credential(&f.ed, &c, T0, T0).unwrap_err();
    assert_eq!(
        err,
        IssueError::CredentialExpired {
            expires_on: c.expires_on,
            today
        }
    );
    assert_eq!(err.code(), "issue.credential_expired");
    assert!(err.message_zh().contains("已过期"));
    c.expires_on = today;
    issue_credential(&f.ed, &c, T0, T0).unwrap();
    // Signed "at" an earlier time does not get past the issuer's clock.
    assert_eq!(
        issue_credential(&f.ed, &c, T0, T0 + DAY)
            .unwrap_err()
            .code(),
        "issue.credential_expired"
    );
    assert_eq!(
        issue_credential(&f.ed, &c, T0 + DAY, T0)
            .unwrap_err()
            .code(),
        "issue.credential_expired"
    );
    assert_eq!(
        check_issuable(&credential(&f.device), T0),
        Ok(()),
        "the fixture's credential is issuable"
    );
}
