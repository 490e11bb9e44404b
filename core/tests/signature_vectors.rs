//! Signature test vectors: the exact bytes each kind of signature covers, fixed in committed files
//! under `core/tests/vectors/`, recomputed here and compared. A serializer or layout change that
//! would silently invalidate stored signatures fails these tests.
//!
//! The files are made ONCE by the ignored `generate_vectors` test (run it on purpose:
//! `WG_WRITE_VECTORS=1 cargo test -p weldguard-core --test signature_vectors generate_vectors --
//! --ignored`), reviewed and committed; the normal tests never rewrite them. A file for a format
//! that is in use must never be regenerated: `permit_steps_v1.json` was made by the code before
//! format `weldguard/permit-sig/2` existed and stands for every stored /1 signature.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};
use weldguard_core::codes::{
    DeviceSigner, SignerError, SoftwareSigner, from_hex, present_with_nonce, to_hex, verify_es256,
};
use weldguard_core::inspect::{Inspection, InspectionBody};
use weldguard_core::permit::Permit;

/// A signer that remembers every message it was asked to sign.
struct Capturing {
    key: SoftwareSigner,
    seen: Mutex<Vec<Vec<u8>>>,
    /// What a permit step signed through it records about presence (`None`: format /1).
    claim: Option<bool>,
}

impl Capturing {
    fn new(secret: u8) -> Self {
        Self::claiming(secret, Some(false))
    }

    fn claiming(secret: u8, claim: Option<bool>) -> Self {
        Self {
            key: SoftwareSigner::from_secret(&[secret; 32]).unwrap(),
            seen: Mutex::new(Vec::new()),
            claim,
        }
    }

    fn last(&self) -> Vec<u8> {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

impl DeviceSigner for Capturing {
    fn public_key(&self) -> Vec<u8> {
        self.key.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.seen.lock().unwrap().push(message.to_vec());
        self.key.sign(message)
    }

    fn presence_claim(&self) -> Option<bool> {
        self.claim
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex(v: &Value, key: &str) -> Vec<u8> {
    from_hex(v[key].as_str().unwrap()).unwrap()
}

/// A permit file: every signature's message recomputed from the stored permit, compared with
/// the committed bytes, and the committed signature verified over them; the permit verifies as
/// a whole and its digest is unchanged.
fn check_permit_file(name: &str) {
    let v = read(name);
    let permit: Permit = serde_json::from_value(v["permit"].clone()).unwrap();
    weldguard_core::permit::verify(&permit).unwrap();
    assert_eq!(
        to_hex(&weldguard_core::permit::digest(&permit).unwrap()),
        v["digest_hex"].as_str().unwrap(),
        "{name}: the permit's digest changed"
    );
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), permit.signatures.len());
    for (index, s) in sigs.iter().enumerate() {
        let message = weldguard_core::permit::sign::step_message(&permit, index).unwrap();
        assert_eq!(
            to_hex(&message),
            s["message_hex"].as_str().unwrap(),
            "{name}: the bytes signature {index} covers changed"
        );
        let stored = &permit.signatures[index];
        assert_eq!(stored.signature, hex(s, "signature_hex"));
        assert_eq!(stored.public_key, hex(s, "public_key_hex"));
        assert!(verify_es256(
            &hex(s, "public_key_hex"),
            &message,
            &hex(s, "signature_hex")
        ));
    }
}

#[test]
fn permit_step_messages_format_1() {
    check_permit_file("permit_steps_v1.json");
}

#[test]
fn permit_step_messages_format_2() {
    let v = read("permit_steps_v2.json");
    check_permit_file("permit_steps_v2.json");
    // Format /2 records presence: the approval with, the other steps without.
    let permit: Permit = serde_json::from_value(v["permit"].clone()).unwrap();
    let present: Vec<_> = permit.signatures.iter().map(|s| s.user_present).collect();
    assert_eq!(present, [Some(false), Some(false), Some(true), Some(false)]);
}

/// Walking the same permit again with the same keys (ES256 with RFC 6979 nonces is
/// deterministic) makes exactly the committed permits, in both formats: what the code signs today
/// is what the files fix.
#[test]
fn the_fixed_walk_signs_exactly_the_committed_permits() {
    for (name, walked) in [
        ("permit_steps_v1.json", generate::walk_v1()),
        ("permit_steps_v2.json", generate::walk_v2()),
    ] {
        let v = read(name);
        assert_eq!(
            serde_json::to_value(&walked).unwrap(),
            v["permit"],
            "{name}: the walk no longer makes the committed permit"
        );
    }
}

#[test]
fn inspection_seal_bytes() {
    let v = read("inspection_seal.json");
    let body: InspectionBody = serde_json::from_value(v["body"].clone()).unwrap();
    let signer = Capturing::new(v["secret_byte"].as_u64().unwrap() as u8);
    let mut inspection = Inspection {
        body,
        signature: None,
    };
    inspection.sign(&signer).unwrap();
    assert_eq!(to_hex(&signer.last()), v["message_hex"].as_str().unwrap());
    let sig = inspection.signature.clone().unwrap();
    assert_eq!(sig.public_key, hex(&v, "public_key_hex"));
    // ES256 with RFC 6979 nonces: the committed signature comes out again, and verifies.
    assert_eq!(sig.signature, hex(&v, "signature_hex"));
    assert!(verify_es256(
        &hex(&v, "public_key_hex"),
        &hex(&v, "message_hex"),
        &hex(&v, "signature_hex")
    ));
    inspection.verify().unwrap();
}

#[test]
fn credential_presentation_bytes() {
    let v = read("presentation.json");
    let signer = Capturing::new(v["secret_byte"].as_u64().unwrap() as u8);
    let text = present_with_nonce(
        v["credential_code"].as_str().unwrap(),
        &signer,
        v["presented_at"].as_i64().unwrap(),
        &hex(&v, "nonce_hex"),
    )
    .unwrap();
    assert_eq!(to_hex(&signer.last()), v["message_hex"].as_str().unwrap());
    assert_eq!(text, v["presentation_code"].as_str().unwrap());
    assert!(verify_es256(
        &hex(&v, "public_key_hex"),
        &hex(&v, "message_hex"),
        &hex(&v, "signature_hex")
    ));
}

// ---- generation (one-off, ignored) ----

mod generate {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use weldguard_core::codes::{IssuerAlg, IssuerKey, issue_credential};
    use weldguard_core::domain::{OperationCategory, WelderCredential};
    use weldguard_core::inspect::{Observation, Outcome, ScanOutcome};
    use weldguard_core::permit::{
        Action, Actor, Catalog, GasReading, GeoPoint, NightHours, PermitContent, PermitLevel,
        Person, ProfileSet, RuleContext, SampleEvidence, Section, Site, WorkCalendar,
        WorkConditions, sample_answers,
    };

    /// 2026-11-30 (a Monday), China time.
    pub fn t(h: u32, m: u32) -> i64 {
        chrono::FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 30, h, m, 0)
            .unwrap()
            .timestamp()
    }

    fn actor(name: &str, id: &str, role: &str) -> Actor {
        Actor {
            name: name.into(),
            id: id.into(),
            role: role.into(),
        }
    }

    /// The fixed walk: drafted, submitted, checked, approved, gas, started, completed, closed,
    /// each signed step by its own fixed key (secret bytes 0x11, 0x22, 0x33, 0x44).
    pub fn walk(
        applicant: &dyn DeviceSigner,
        checker: &dyn DeviceSigner,
        approver: &dyn DeviceSigner,
        closer: &dyn DeviceSigner,
    ) -> Permit {
        let profiles = ProfileSet::builtin().unwrap();
        let profile = profiles
            .select("gb30871", NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
            .unwrap()
            .clone();
        let catalog = Catalog::builtin().unwrap();
        let location = GeoPoint::from_degrees(36.182, 116.772);
        let content = PermitContent {
            permit_id: "0193a1b2-0000-7000-8000-00000000f001".into(),
            site: Site {
                site_id: "site-370983-001".into(),
                name: "肥城某化工厂三车间".into(),
                profile_id: profile.id.clone(),
                location,
                utc_offset_secs: 8 * 3600,
                night: NightHours {
                    start: chrono::NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
                    end: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
                },
                approval_radius_m: None,
            },
            profile_id: profile.id.clone(),
            profile_version: profile.version.clone(),
            catalog_version: catalog.version.clone(),
            work_description: "更换3号储罐出口管线法兰".into(),
            hot_work_point: "3号储罐东侧管廊".into(),
            hot_work_points: 1,
            location,
            conditions: WorkConditions::default(),
            requested_level: PermitLevel::Level2,
            valid_from: t(8, 0),
            valid_until: t(17, 0),
            applicant: Person {
                name: "张三".into(),
                id: "S-001".into(),
            },
            welders: vec![Person {
                name: "李四".into(),
                id: "T370983199001011234".into(),
            }],
            machines: vec!["M-370983-0001".into()],
            fire_watch: vec![Person {
                name: "王五".into(),
                id: "S-002".into(),
            }],
        };
        let ctx = RuleContext {
            profile: &profile,
            catalog: &catalog,
        };
        let approver_role = profile
            .level(PermitLevel::Level2)
            .unwrap()
            .approver
            .id
            .clone();
        let calendar = WorkCalendar::default();
        let mut p = Permit::draft(
            content,
            &ctx,
            &actor("张三", "S-001", "applicant"),
            t(6, 40),
        )
        .unwrap();
        let answers = sample_answers(
            &catalog,
            &[Section::Prohibition, Section::Must],
            &SampleEvidence::crew(t(7, 15)),
        );
        let post_work = weldguard_core::permit::fixtures::post_work_answers();
        let actions = vec![
            Action::Submit {
                by: actor("张三", "S-001", "applicant"),
                signer: applicant,
                calendar: &calendar,
                at: t(7, 0),
                location: None,
            },
            Action::SiteCheck {
                by: actor("孙七", "S-003", "supervisor"),
                signer: checker,
                answers,
                at: t(7, 20),
                location: Some(location),
            },
            Action::Approve {
                by: actor("周八", "S-004", &approver_role),
                signer: approver,
                at: t(7, 40),
                location: Some(location),
            },
            Action::RecordGas {
                reading: GasReading {
                    taken_at: t(8, 55),
                    lel_centi_pct: 500,
                    concentration_centi_pct: 10,
                    point: "动火点".into(),
                    analyst: "赵六".into(),
                },
                by: Some("赵六".into()),
            },
            Action::Start {
                at: t(9, 0),
                continuous_monitoring: false,
                by: Some("T370983199001011234".into()),
            },
            Action::Complete { at: t(12, 0) },
            Action::Close {
                by: actor("王五", "S-002", "supervisor"),
                signer: closer,
                post_work,
                at: t(12, 30),
                location: Some(location),
            },
        ];
        for a in actions {
            p.apply(&ctx, a).unwrap();
        }
        p
    }

    /// The walk signed in the legacy format /1 (the committed permit of `permit_steps_v1.json`).
    pub fn walk_v1() -> Permit {
        walk(
            &Capturing::claiming(0x11, None),
            &Capturing::claiming(0x22, None),
            &Capturing::claiming(0x33, None),
            &Capturing::claiming(0x44, None),
        )
    }

    /// The walk signed in format /2, the approver present.
    pub fn walk_v2() -> Permit {
        walk(
            &Capturing::new(0x11),
            &Capturing::new(0x22),
            &Capturing::claiming(0x33, Some(true)),
            &Capturing::new(0x44),
        )
    }

    pub fn permit_file(permit: &Permit, note: &str) -> Value {
        let signatures: Vec<Value> = (0..permit.signatures.len())
            .map(|i| {
                let s = &permit.signatures[i];
                json!({
                    "index": i,
                    "step": s.step,
                    "public_key_hex": to_hex(&s.public_key),
                    "message_hex": to_hex(
                        &weldguard_core::permit::sign::step_message(permit, i).unwrap()
                    ),
                    "signature_hex": to_hex(&s.signature),
                })
            })
            .collect();
        json!({
            "note": note,
            "digest_hex": to_hex(&weldguard_core::permit::digest(permit).unwrap()),
            "signatures": signatures,
            "permit": permit,
        })
    }

    pub fn inspection_file() -> Value {
        let body = InspectionBody {
            inspection_id: "0193a1b2-0000-7000-8000-00000000e001".into(),
            inspector: actor("钱九", "I-009", "inspector"),
            site_id: "site-370983-001".into(),
            location: Some(GeoPoint::from_degrees(36.182, 116.772)),
            at: t(10, 30),
            catalog_version: Catalog::builtin().unwrap().version,
            welder: ScanOutcome::NotScanned,
            machine: ScanOutcome::Failed {
                code: "code.bad_signature".into(),
                message_zh: "签名无效".into(),
                message_en: "the signature is not valid".into(),
            },
            permit: None,
            observations: vec![Observation {
                item_id: "must.01".into(),
                outcome: Outcome::Compliant,
                note: "现场已清理".into(),
                photos: vec![vec![9; 32]],
            }],
            violations: Vec::new(),
            photos: vec![vec![8; 32]],
            notes: "抽查".into(),
            report_required: false,
        };
        let signer = Capturing::new(0x55);
        let mut inspection = Inspection {
            body: body.clone(),
            signature: None,
        };
        inspection.sign(&signer).unwrap();
        let sig = inspection.signature.unwrap();
        json!({
            "note": "weldguard/inspection-sig/1: the CBOR of {format, body, public_key}",
            "secret_byte": 0x55,
            "body": body,
            "public_key_hex": to_hex(&sig.public_key),
            "message_hex": to_hex(&signer.last()),
            "signature_hex": to_hex(&sig.signature),
        })
    }

    pub fn presentation_file() -> Value {
        let device = Capturing::new(0x66);
        let issuer = IssuerKey::from_secret(IssuerAlg::EdDSA, &[0x77; 32]).unwrap();
        let credential = WelderCredential {
            certificate_no: "T370983199001011233".into(),
            id_number: "370983199001011233".into(),
            name: "欧阳建国".into(),
            categories: OperationCategory::ALL.to_vec(),
            issued_on: NaiveDate::from_ymd_opt(2023, 5, 10).unwrap(),
            expires_on: NaiveDate::from_ymd_opt(2029, 5, 9).unwrap(),
            next_review_on: NaiveDate::from_ymd_opt(2026, 5, 9).unwrap(),
            photo_digest: vec![0xa5; 32],
            device_key: device.public_key(),
        };
        let code = issue_credential(&issuer, &credential, t(6, 0), t(6, 0)).unwrap();
        let nonce = [7u8; 16];
        let text = present_with_nonce(&code, &device, t(9, 5), &nonce).unwrap();
        let message = device.last();
        let signature = device.key.sign(&message).unwrap();
        json!({
            "note": "a live presentation: COSE_Sign1 Sig_structure over the presentation claims, the credential's COSE bytes as external data",
            "secret_byte": 0x66,
            "credential_code": code,
            "presented_at": t(9, 5),
            "nonce_hex": to_hex(&nonce),
            "public_key_hex": to_hex(&device.public_key()),
            "message_hex": to_hex(&message),
            "signature_hex": to_hex(&signature),
            "presentation_code": text,
        })
    }
}

/// Writes the vector files (`WG_WRITE_VECTORS=1`) or prints them. A one-off: never part of the
/// normal run. Files already committed for a format in use are not rewritten unless named in
/// `WG_WRITE_VECTORS` (a comma list of file names, or `new` for only files that do not exist).
#[test]
#[ignore = "one-off generation of the committed vector files"]
fn generate_vectors() {
    let files: Vec<(&str, Value)> = vec![
        (
            "permit_steps_v1.json",
            generate::permit_file(
                &generate::walk_v1(),
                "weldguard/permit-sig/1, made before format /2 existed; never regenerate",
            ),
        ),
        (
            "permit_steps_v2.json",
            generate::permit_file(
                &generate::walk_v2(),
                "weldguard/permit-sig/2: user_present covered; the approval made with the approver present",
            ),
        ),
        ("inspection_seal.json", generate::inspection_file()),
        ("presentation.json", generate::presentation_file()),
    ];
    let write = std::env::var("WG_WRITE_VECTORS").unwrap_or_default();
    for (name, value) in files {
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let path = dir().join(name);
        let chosen = write.split(',').any(|w| w == name)
            || (write == "new" && !path.exists())
            || write == "all";
        if chosen {
            std::fs::create_dir_all(dir()).unwrap();
            std::fs::write(&path, text).unwrap();
            eprintln!("wrote {}", path.display());
        } else {
            println!("{name}:\n{text}");
        }
    }
}
