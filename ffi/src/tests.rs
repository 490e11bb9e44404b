//! The FFI surface as a shell uses it: a real database file, real codes, a foreign key that fails.

use std::sync::Arc;

use chrono::NaiveDate;

use super::background::block_on;
use super::functions::{DeviceKey, check_id_number, present_credential, verify_code};
use super::types::{CodeKind, Lang, RuleSet, Severity};
use super::{Device, WeldGuardError};
use weldguard_core::codes::{
    DeviceSigner, IssuerAlg, IssuerKey, SoftwareSigner, TrustStore, TrustedKey, issue_credential,
    issue_machine_label,
};
use weldguard_core::domain::{
    Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel, MachineStatus,
    OperationCategory, WelderCredential,
};
use weldguard_core::store::test_support::TempDir;
use weldguard_core::store::{RegistryChange, Store};

/// 2026-11-30 09:00 China time.
const NOW: i64 = 1_796_000_400;
const ORG: &str = "91370983MA3C4X1Y2K";

/// A software key standing in for the phone's hardware key store.
struct PhoneKey(SoftwareSigner);

impl DeviceKey for PhoneKey {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError> {
        Ok(self.0.sign(&message)?)
    }
}

/// The same key as the person's signer (it cannot verify presence).
impl crate::signing::PersonSigner for PhoneKey {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }
    fn sign(
        &self,
        request: crate::signing::SignRequest,
    ) -> Result<crate::signing::SignedBytes, WeldGuardError> {
        Ok(crate::signing::SignedBytes {
            signature: self.0.sign(&request.message)?,
            user_present: false,
        })
    }
}

/// A key store that refuses (the user cancelled the biometric prompt).
struct CancelledKey(Vec<u8>);

impl DeviceKey for CancelledKey {
    fn public_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, _message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError> {
        Err(WeldGuardError::Signing {
            code: "signer.cancelled".into(),
            message_zh: "用户取消".into(),
            message_en: "cancelled by the user".into(),
        })
    }
}

struct Fixture {
    _dir: TempDir,
    db: String,
    issuer: IssuerKey,
    trust_json: String,
    phone: Arc<PhoneKey>,
}

fn credential(device_key: Vec<u8>) -> WelderCredential {
    WelderCredential {
        certificate_no: "T11010519491231002X".into(),
        id_number: "11010519491231002X".into(),
        name: "赵六".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2030, 2, 28).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
        photo_digest: vec![1; 16],
        device_key,
    }
}

fn label() -> MachineLabel {
    MachineLabel {
        machine_id: "370983-DH-2024-000123".into(),
        kind: MachineKind::Arc,
        class: MachineClass::FixedStation,
        owner_org: ORG.into(),
        region: 370983,
        issued_at: NOW - 86_400,
    }
}

fn fixture() -> Fixture {
    let dir = TempDir::new();
    let db = dir.path().join("profile.db").display().to_string();
    let issuer = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
    let mut trust = TrustStore::new();
    trust.add(TrustedKey::for_key(&issuer, 0, None)).unwrap();
    let phone = Arc::new(PhoneKey(SoftwareSigner::generate().unwrap()));
    let c = credential(phone.public_key());
    let l = label();
    let store = Store::open(&db).unwrap();
    store
        .apply_registry_changes(
            [
                RegistryChange::UpsertLicence(Licence {
                    certificate_no: c.certificate_no.clone(),
                    id_number: c.id_number.clone(),
                    name: c.name.clone(),
                    categories: c.categories.clone(),
                    issued_on: c.issued_on,
                    expires_on: c.expires_on,
                    next_review_on: c.next_review_on,
                    review_extended: false,
                    status: LicenceStatus::Valid,
                    employer_org: Some(ORG.into()),
                }),
                RegistryChange::UpsertMachine(Machine {
                    machine_id: l.machine_id,
                    kind: l.kind,
                    class: l.class,
                    owner_org: l.owner_org,
                    region: l.region,
                    status: MachineStatus::Active,
                }),
            ],
            None,
            0,
        )
        .unwrap();
    Fixture {
        _dir: dir,
        db,
        issuer,
        trust_json: trust.to_json(),
        phone,
    }
}

#[test]
fn id_numbers_are_checked_on_the_day_passed_in() {
    let ok = check_id_number("11010519491231002x".into(), NOW);
    assert!(ok.valid);
    assert_eq!(ok.normalized, "11010519491231002X");
    assert_eq!(ok.birth_date.as_deref(), Some("1949-12-31"));
    let bad = check_id_number("110105194912310021".into(), NOW);
    assert!(!bad.valid);
    assert!(bad.reasons.iter().all(|r| r.severity == Severity::Deny));
    assert!(!bad.reasons.is_empty());
}

#[test]
fn a_presentation_made_through_the_phone_key_verifies_once() {
    let f = fixture();
    let code = issue_credential(
        &f.issuer,
        &credential(f.phone.public_key()),
        NOW - 86_400,
        NOW - 86_400,
    )
    .unwrap();
    let presentation = present_credential(code, f.phone.clone(), NOW).unwrap();
    let check = verify_code(presentation.clone(), f.trust_json.clone(), NOW + 5).unwrap();
    assert!(check.valid, "{:?}", check.reason);
    assert_eq!(check.kind, Some(CodeKind::Presentation));
    assert!(check.live);
    assert_eq!(check.welder.unwrap().name, "赵六");

    let device = Device::open(f.db.clone()).unwrap();
    device
        .set_trust(f.trust_json.clone(), 1_764_000_000)
        .unwrap();
    assert!(device.verify_code(presentation.clone(), NOW + 5).valid);
    let again = device.verify_code(presentation, NOW + 6);
    assert!(!again.valid);
    assert_eq!(again.reason.unwrap().code, "code.replayed");
}

#[test]
fn a_refusing_key_store_is_a_typed_signing_error() {
    let f = fixture();
    let cancelled = Arc::new(CancelledKey(f.phone.public_key()));
    let code = issue_credential(
        &f.issuer,
        &credential(f.phone.public_key()),
        NOW - 86_400,
        NOW - 86_400,
    )
    .unwrap();
    let err = present_credential(code, cancelled, NOW).unwrap_err();
    assert!(matches!(err, WeldGuardError::Signing { .. }), "{err:?}");
}

#[test]
fn scan_to_start_is_decided_offline_and_recorded_with_its_outbox_entry() {
    let f = fixture();
    let device = Device::open(f.db.clone()).unwrap();
    device
        .set_trust(f.trust_json.clone(), 1_764_000_000)
        .unwrap();
    let credential_code = issue_credential(
        &f.issuer,
        &credential(f.phone.public_key()),
        NOW - 86_400,
        NOW - 86_400,
    )
    .unwrap();
    let presentation = present_credential(credential_code, f.phone.clone(), NOW).unwrap();
    let label_code = issue_machine_label(&f.issuer, &label()).unwrap();

    let result = device
        .start_work(
            label_code.clone(),
            presentation,
            "site-1".into(),
            NOW,
            None,
            Lang::En,
        )
        .unwrap();
    assert!(result.allowed, "{:?}", result.reasons);
    assert!(result.scan_exempt, "a fixed station under process control");
    assert_eq!(
        result.rule_set,
        RuleSet::MemOrder19,
        "2026-11-30 is after 2026-06-01"
    );
    let session = result.session_id.expect("recorded");
    assert_eq!(device.outbox_summary().unwrap().pending, 1);
    // The history lists it, newest first, with where its upload stands.
    let page = device.work_sessions(None, 10).unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].id, session);
    assert_eq!(page.sessions[0].started_at, NOW);
    assert!(page.sessions[0].allowed);
    assert_eq!(
        page.sessions[0].outbox_state,
        super::history::OutboxState::Pending
    );
    assert_eq!(page.next_cursor, None);

    // A forged welder code: denied, recorded? No: nothing identifies the welder, so nothing to record.
    let denied = device
        .start_work(
            label_code,
            "WG1:NOT-A-CODE".into(),
            "site-1".into(),
            NOW,
            None,
            Lang::Zh,
        )
        .unwrap();
    assert!(!denied.allowed);
    let malformed = denied
        .reasons
        .iter()
        .find(|r| r.code == "code.malformed")
        .unwrap();
    assert_eq!(malformed.text, malformed.zh, "asked in Chinese");
    assert_ne!(malformed.zh, malformed.en);
    assert_eq!(denied.session_id, None);
    assert_eq!(device.outbox_summary().unwrap().pending, 1);

    // The record survives a reopen.
    drop(device);
    let store = Store::open(&f.db).unwrap();
    assert_eq!(store.outbox_counts().unwrap().pending, 1);
    assert!(store.outbox_entry(&session).unwrap().is_some());
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let f = fixture();
    let device = Device::open(f.db.clone()).unwrap();
    device
        .set_trust(f.trust_json.clone(), 1_764_000_000)
        .unwrap();
    let err = device
        .set_trust("{not json".into(), 1_764_000_000)
        .unwrap_err();
    assert!(matches!(err, WeldGuardError::InvalidInput { .. }));
    // The old trust still holds.
    let label_code = issue_machine_label(&f.issuer, &label()).unwrap();
    assert!(device.verify_code(label_code, NOW).valid);
    assert!(verify_code("WG1:x".into(), "[]x".into(), NOW).is_err());
    assert!(
        device
            .start_work("a".into(), "b".into(), "s".into(), i64::MAX, None, Lang::Zh)
            .is_err()
    );
    // A position out of range: a typed input error, nothing recorded.
    let far = super::types::DevicePosition {
        latitude: 95.0,
        longitude: 116.7,
        accuracy_m: 10.0,
    };
    let label_code = issue_machine_label(&f.issuer, &label()).unwrap();
    let err = device
        .start_work(
            label_code,
            "T11010519491231002X".into(),
            "s".into(),
            NOW,
            Some(far),
            Lang::Zh,
        )
        .unwrap_err();
    assert!(
        matches!(&err, WeldGuardError::InvalidInput { code, .. } if code == "input.position"),
        "{err:?}"
    );
    assert_eq!(device.outbox_summary().unwrap().pending, 0);

    let garbage = TempDir::new();
    let path = garbage.path().join("not-a-db");
    std::fs::write(&path, b"this is not a database, it is a shopping list").unwrap();
    let err = Device::open(path.display().to_string()).err().unwrap();
    assert!(matches!(err, WeldGuardError::Storage { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"this is not a database, it is a shopping list"
    );
}

#[test]
fn a_signed_status_list_revokes_offline_and_its_age_is_shown() {
    use weldguard_core::codes::{StatusList, sign_status_list, verify_status_list};
    use weldguard_core::domain::{Revocation, RevocationTarget};
    let f = fixture();
    let device = Device::open(f.db.clone()).unwrap();
    device
        .set_trust(f.trust_json.clone(), 1_764_000_000)
        .unwrap();
    assert_eq!(device.revocation_status(NOW).unwrap(), None);
    let code = issue_credential(
        &f.issuer,
        &credential(f.phone.public_key()),
        NOW - 86_400,
        NOW - 86_400,
    )
    .unwrap();
    assert!(device.verify_code(code.clone(), NOW).valid);

    // What a sync does: verify the platform's list, keep it, reload.
    let list = StatusList {
        sequence: 3,
        issued_at: NOW - 3 * 3600,
        entries: vec![Revocation {
            target: RevocationTarget::Licence,
            id: "T11010519491231002X".into(),
        }],
    };
    let document = sign_status_list(&f.issuer, &list).unwrap();
    let trust = TrustStore::from_json(&f.trust_json).unwrap();
    let verified = verify_status_list(&document, &trust, NOW, 600).unwrap();
    let store = Store::open(&f.db).unwrap();
    store
        .save_status_list(&verified, "kid", &document, NOW * 1000)
        .unwrap();
    device.reload_revocations().unwrap();

    let check = device.verify_code(code, NOW);
    assert!(!check.valid);
    assert_eq!(check.reason.unwrap().code, "code.revoked");
    let status = device.revocation_status(NOW).unwrap().unwrap();
    assert_eq!((status.sequence, status.entries), (3, 1));
    assert_eq!(status.age_secs, 3 * 3600);
}

/// `text` as a QR code with `module` px per module and a quiet zone of 4 modules, drawn into a
/// luma plane whose rows are `pad` bytes longer than its width (as CameraX and AVFoundation hand
/// them over); the padding holds noise that must not be read as pixels.
fn camera_frame(text: &str, module: usize, pad: usize) -> (Vec<u8>, u32, u32, u32) {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let n = code.width();
    let colors = code.to_colors();
    let side = (n + 8) * module;
    let stride = side + pad;
    let mut luma = vec![0u8; stride * side];
    for y in 0..side {
        for x in 0..stride {
            let (mx, my) = (x / module, y / module);
            let dark = x < side
                && (4..n + 4).contains(&mx)
                && (4..n + 4).contains(&my)
                && colors[(my - 4) * n + (mx - 4)] == qrcode::Color::Dark;
            luma[y * stride + x] = if x >= side {
                ((x * 31 + y * 17) % 256) as u8
            } else if dark {
                30
            } else {
                225
            };
        }
    }
    (luma, side as u32, side as u32, stride as u32)
}

#[test]
fn a_machine_label_scanned_from_a_camera_frame_verifies() {
    use super::scan::{QrEccLevel, ScanMode, scan_frame};
    let f = fixture();
    let label_code = issue_machine_label(&f.issuer, &label()).unwrap();
    let module = 4;
    let (mut luma, w, h, stride) = camera_frame(&label_code, module, 24);
    // The last row stops at the width, as a camera buffer's may.
    luma.truncate(luma.len() - 24);
    for mode in [ScanMode::Live, ScanMode::Photo] {
        let codes = scan_frame(luma.clone(), w, h, stride, mode).unwrap();
        assert_eq!(codes.len(), 1, "{mode:?}");
        let code = &codes[0];
        assert_eq!(code.text.as_deref(), Some(label_code.as_str()));
        assert_eq!(code.bytes, label_code.as_bytes());
        assert!(code.version.is_some_and(|v| (1..=40).contains(&v)));
        assert!(matches!(
            code.ecc_level,
            Some(QrEccLevel::L | QrEccLevel::M | QrEccLevel::Q | QrEccLevel::H)
        ));
        // The corners are the code's, in frame pixels: the symbol starts 4 modules in.
        assert_eq!(code.corners.len(), 4);
        let (lo, hi) = ((4 * module) as f32, (w as usize - 4 * module) as f32);
        let expected = [(lo, lo), (hi, lo), (hi, hi), (lo, hi)];
        for (corner, (x, y)) in code.corners.iter().zip(expected) {
            assert!(
                (corner.x - x).abs() <= 2.0 * module as f32
                    && (corner.y - y).abs() <= 2.0 * module as f32,
                "{corner:?} is not near ({x}, {y})"
            );
        }
        let check = verify_code(code.text.clone().unwrap(), f.trust_json.clone(), NOW).unwrap();
        assert!(check.valid, "{:?}", check.reason);
        assert_eq!(check.kind, Some(CodeKind::MachineLabel));
    }
}

#[test]
fn a_photo_file_is_scanned_from_its_bytes() {
    use super::scan::{ScanMode, scan_image};
    let f = fixture();
    let label_code = issue_machine_label(&f.issuer, &label()).unwrap();
    let (luma, w, h, stride) = camera_frame(&label_code, 4, 0);
    assert_eq!(w, stride);
    let image = image::GrayImage::from_raw(w, h, luma).unwrap();
    for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        let codes = block_on(scan_image(bytes.into_inner(), ScanMode::Photo)).unwrap();
        let texts: Vec<_> = codes.iter().map(|c| c.text.as_deref()).collect();
        assert_eq!(texts, vec![Some(label_code.as_str())], "{format:?}");
    }
}

#[test]
fn frames_and_files_that_cannot_be_scanned_are_typed_errors() {
    use super::scan::{ScanMode, scan_frame, scan_image};
    let expect =
        |result: Result<Vec<super::scan::ScannedQr>, WeldGuardError>, code: &str| match result {
            Err(WeldGuardError::InvalidInput {
                code: got,
                message_zh,
                message_en,
            }) => {
                assert_eq!(got, code);
                assert!(
                    message_zh
                        .chars()
                        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
                );
                assert!(!message_en.is_empty());
            }
            other => panic!("expected {code}, got {other:?}"),
        };
    expect(
        scan_frame(vec![], 0, 0, 0, ScanMode::Live),
        "scan.empty_frame",
    );
    expect(
        scan_frame(vec![0; 100], 10, 10, 9, ScanMode::Live),
        "scan.stride_too_small",
    );
    expect(
        scan_frame(vec![0; 99], 10, 10, 10, ScanMode::Live),
        "scan.buffer_too_short",
    );
    // A 20000×20000 claim over a small buffer: refused before any allocation for it.
    expect(
        scan_frame(vec![0; 64], 20_000, 20_000, 20_000, ScanMode::Photo),
        "scan.too_large",
    );
    expect(
        block_on(scan_image(
            b"a shopping list, not a photo".to_vec(),
            ScanMode::Photo,
        )),
        "scan.unsupported_format",
    );
    let (luma, w, h, _) = camera_frame("WG1:truncated", 4, 0);
    let mut png = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_raw(w, h, luma)
        .unwrap()
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let mut truncated = png.into_inner();
    truncated.truncate(truncated.len() / 2);
    expect(
        block_on(scan_image(truncated, ScanMode::Photo)),
        "scan.image_decode",
    );

    // A frame without a code is an answer, not an error.
    let blank = vec![128u8; 640 * 480];
    assert_eq!(
        scan_frame(blank, 640, 480, 640, ScanMode::Live).unwrap(),
        vec![]
    );
}

#[test]
fn scan_settings_choose_one_code_or_all_and_the_viewfinder_region() {
    use super::scan::{
        ExpectedCodes, ScanMode, ScanRegion, ScanSettings, scan_frame_buffer, scan_frame_with,
        scan_image_with,
    };
    let f = fixture();
    let label_code = issue_machine_label(&f.issuer, &label()).unwrap();
    let module = 4;
    let (luma, w, h, stride) = camera_frame(&label_code, module, 8);
    let settings = |mode, expected, region| ScanSettings {
        mode,
        expected,
        region,
    };
    let whole = scan_frame_with(
        luma.clone(),
        w,
        h,
        stride,
        settings(ScanMode::Photo, ExpectedCodes::All, None),
    )
    .unwrap();
    assert_eq!(whole.len(), 1);
    // The camera's own buffer, borrowed (no copy): the same code at the same corners.
    let borrowed = scan_frame_buffer(
        &luma,
        w,
        h,
        stride,
        settings(ScanMode::Photo, ExpectedCodes::All, None),
    )
    .unwrap();
    assert_eq!(borrowed, whole);
    // The viewfinder: the frame without a band on the left and the top; the corners stay the
    // frame's.
    let finder = ScanRegion {
        x: 5,
        y: 3,
        width: w - 5,
        height: h - 3,
    };
    for mode in [ScanMode::Live, ScanMode::Photo] {
        let codes = scan_frame_with(
            luma.clone(),
            w,
            h,
            stride,
            settings(mode, ExpectedCodes::One, Some(finder)),
        )
        .unwrap();
        assert_eq!(codes.len(), 1, "{mode:?}");
        assert_eq!(codes[0].text.as_deref(), Some(label_code.as_str()));
        for (a, b) in codes[0].corners.iter().zip(&whole[0].corners) {
            assert!(
                (a.x - b.x).abs() <= 2.0 && (a.y - b.y).abs() <= 2.0,
                "{a:?} {b:?}"
            );
        }
    }
    // A region in the quiet zone holds no code.
    let corner = ScanRegion {
        x: 0,
        y: 0,
        width: 3 * module as u32,
        height: 3 * module as u32,
    };
    assert!(
        scan_frame_with(
            luma.clone(),
            w,
            h,
            stride,
            settings(ScanMode::Live, ExpectedCodes::One, Some(corner)),
        )
        .unwrap()
        .is_empty()
    );
    // Regions outside the frame or empty are typed errors, for frames and for files.
    let outside = ScanRegion {
        x: 1,
        y: 0,
        width: w,
        height: h,
    };
    let empty = ScanRegion {
        x: 0,
        y: 0,
        width: 0,
        height: h,
    };
    let (tight, ..) = camera_frame(&label_code, module, 0);
    let mut png = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_raw(w, h, tight)
        .unwrap()
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    for (region, code) in [
        (outside, "scan.region_outside"),
        (empty, "scan.empty_region"),
    ] {
        let s = settings(ScanMode::Photo, ExpectedCodes::All, Some(region));
        for result in [
            scan_frame_with(luma.clone(), w, h, stride, s),
            block_on(scan_image_with(png.clone(), s)),
        ] {
            match result {
                Err(WeldGuardError::InvalidInput { code: got, .. }) => assert_eq!(got, code),
                other => panic!("expected {code}, got {other:?}"),
            }
        }
    }
    let codes = block_on(scan_image_with(
        png,
        settings(ScanMode::Photo, ExpectedCodes::All, Some(finder)),
    ))
    .unwrap();
    assert_eq!(codes.len(), 1);
}

#[test]
fn the_inspector_checks_a_welder_records_an_inspection_and_the_history_shows_it() {
    use super::history::{OutboxFilter, OutboxState};
    use super::inspection::{
        FindingOutcome, InspectionFinding, InspectionInput, LicenceSource, LicenceState,
        ScannedWelderCode,
    };
    let f = fixture();
    let device = Device::open(f.db.clone()).unwrap();
    device
        .set_trust(f.trust_json.clone(), 1_764_000_000)
        .unwrap();
    let credential_code = issue_credential(
        &f.issuer,
        &credential(f.phone.public_key()),
        NOW - 86_400,
        NOW - 86_400,
    )
    .unwrap();
    let presentation = present_credential(credential_code.clone(), f.phone.clone(), NOW).unwrap();

    let check = device
        .check_welder(presentation.clone(), NOW, Lang::En)
        .unwrap();
    assert_eq!(check.scanned, ScannedWelderCode::Presentation);
    assert!(check.code_verified && check.live);
    assert_eq!(check.state, LicenceState::Valid, "{:?}", check.reasons);
    let licence = check.licence.unwrap();
    assert_eq!(licence.source, LicenceSource::Registry);
    assert_eq!(licence.id_number_masked, "1101**********002X");
    assert_eq!(licence.expires_on, "2030-02-28");
    assert_eq!(licence.categories[0].name, licence.categories[0].en);
    // The same presentation again is a replay: not verified, the state unknown, the reason in
    // English.
    let again = device.check_welder(presentation, NOW, Lang::En).unwrap();
    assert_eq!(again.scanned, ScannedWelderCode::Unverified);
    assert_eq!(again.state, LicenceState::Unknown);
    assert!(again.reasons.iter().all(|r| r.text == r.en));
    // A credential shown without a presentation: a warning, in Chinese.
    let shown = device.check_welder(credential_code, NOW, Lang::Zh).unwrap();
    assert_eq!(shown.scanned, ScannedWelderCode::Credential);
    assert!(
        shown
            .reasons
            .iter()
            .any(|r| r.text == r.zh && r.severity == Severity::Warn)
    );
    // A machine label is no welder's code.
    let label_code = issue_machine_label(&f.issuer, &label()).unwrap();
    let err = device
        .check_welder(label_code.clone(), NOW, Lang::Zh)
        .unwrap_err();
    assert_eq!(err.code(), "code.not_a_welder_code");

    let input = InspectionInput {
        site_id: "site-1".into(),
        inspector_name: "孙检".into(),
        inspector_id: "I-1".into(),
        welder_text: None,
        machine_text: Some(label_code),
        permit: None,
        findings: vec![InspectionFinding {
            item_id: "bogus-item".into(),
            outcome: FindingOutcome::NotCompliant,
            note: String::new(),
            photos: vec![],
        }],
        photos: vec![vec![7; 32]],
        location: None,
        notes: "巡查".into(),
    };
    // An unknown checklist item: refused, nothing saved.
    let err = device
        .record_inspection(input.clone(), f.phone.clone(), NOW, Lang::Zh)
        .unwrap_err();
    assert!(
        matches!(err, WeldGuardError::InvalidInput { .. }),
        "{err:?}"
    );
    assert_eq!(device.outbox_summary().unwrap().pending, 0);

    let input = InspectionInput {
        findings: vec![],
        ..input
    };
    let recorded = device
        .record_inspection(input, f.phone.clone(), NOW, Lang::En)
        .unwrap();
    assert!(!recorded.seal.user_present, "the device key cannot tell");
    assert_eq!(recorded.photos, 1);
    let no_licence = recorded
        .violations
        .iter()
        .find(|v| v.code == "inspect.no_licence")
        .expect("no credential was shown");
    assert_eq!(no_licence.text, no_licence.en);
    assert!(recorded.report_required);

    let listed = device.inspections(10, Lang::Zh).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].inspection_id, recorded.inspection_id);
    assert_eq!(listed[0].violations.len(), recorded.violations.len());
    let outbox = device.outbox_entries(OutboxFilter::All, 10).unwrap();
    assert_eq!(outbox.entries.len(), 1);
    assert_eq!(outbox.entries[0].idempotency_key, recorded.inspection_id);
    assert_eq!(outbox.entries[0].state, OutboxState::Pending);
    assert_eq!(outbox.entries[0].refusal, None);
    assert_eq!(outbox.counts.pending, 1);
    assert!(device.work_sessions(None, 10).unwrap().sessions.is_empty());
    assert_eq!(
        device.work_sessions(None, 0).unwrap_err().code(),
        "input.limit"
    );
}
