//! Every function and method the phone library exports, called with hostile input: empty and huge
//! (several MB) strings, malformed JSON, trust files and codes, control and odd Unicode characters,
//! `i64::MIN`/`i64::MAX` times, NaN and infinite positions, zero and huge frame shapes and strides,
//! junk and unreachable (loopback) server addresses, key stores that refuse or answer garbage. Each
//! call must answer with a typed [`WeldGuardError`] (or a typed refused answer) and never panic:
//! each is wrapped in `catch_unwind`, and a panic fails the test with the export's name.
//!
//! [`COVERED`] names every export this test calls, as the UniFFI scaffolding names its symbols
//! (`uniffi_weldguard_ffi_fn_<NAME>`); the test checks that it called exactly those, and
//! `cargo xtask bindings` checks that every exported symbol in the generated C header is listed, so
//! a new export without a hostile test breaks the build.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weldguard_core::codes::{
    DeviceSigner, IssuerAlg, IssuerKey, SoftwareSigner, TrustStore, TrustedKey,
};
use weldguard_core::store::test_support::TempDir;
use weldguard_ffi::functions::{DeviceKey, check_id_number, present_credential, verify_code};
use weldguard_ffi::history::OutboxFilter;
use weldguard_ffi::inspection::{
    FindingOutcome, InspectionFinding, InspectionInput, InspectionLocation, PermitShown,
};
use weldguard_ffi::permits::{
    ChecklistAnswerInput, ChecklistEvidence, ChecklistEvidenceRequirement, ChecklistGasReading,
    ChecklistPersonRole, ChecklistSection, PermitActorInput, PermitConditions, PermitDetail,
    PermitDraftInput, PermitGasInput, PermitLevel, PermitLocation, PermitPerson, PermitState,
    permit_checklist,
};
use weldguard_ffi::scan::{ScanMode, scan_frame, scan_image};
use weldguard_ffi::signing::{
    PersonSigner, SignPurpose, SignRequest, SignedBytes, sign_purpose_requires_presence,
};
use weldguard_ffi::types::DevicePosition;
use weldguard_ffi::{Device, Lang, SyncListener, SyncStage, SyncTask, WeldGuardError};

/// The exports this test calls: `func_*` functions, `constructor_<object>_*` and
/// `method_<object>_*` (the names in the generated header after `uniffi_weldguard_ffi_fn_`).
/// Methods of the traits the shells implement (DeviceKey, PersonSigner, SyncListener) are not
/// exports to attack.
const COVERED: &[&str] = &[
    "func_check_id_number",
    "func_permit_checklist",
    "func_present_credential",
    "func_scan_frame",
    "func_scan_image",
    "func_scan_frame_with",
    "func_scan_frame_buffer",
    "func_scan_image_with",
    "func_sign_purpose_requires_presence",
    "func_verify_code",
    "constructor_device_open",
    "constructor_synctask_new",
    "method_device_check_drift",
    "method_device_check_welder",
    "method_device_due",
    "method_device_due_within",
    "method_device_enrol",
    "method_device_inspections",
    "method_device_outbox_entries",
    "method_device_outbox_summary",
    "method_device_permit_approve",
    "method_device_permit_cancel",
    "method_device_permit_close",
    "method_device_permit_complete",
    "method_device_permit_draft",
    "method_device_permit_expire",
    "method_device_permit_list",
    "method_device_permit_preview_answers",
    "method_device_permit_record_gas",
    "method_device_permit_reject",
    "method_device_permit_resume",
    "method_device_permit_scan_code",
    "method_device_permit_show",
    "method_device_permit_site_check",
    "method_device_permit_site_code",
    "method_device_permit_start",
    "method_device_permit_submit",
    "method_device_permit_suspend",
    "method_device_permit_verify",
    "method_device_record_inspection",
    "method_device_reload_revocations",
    "method_device_revocation_status",
    "method_device_set_trust",
    "method_device_start_work",
    "method_device_sync",
    "method_device_sync_with_key",
    "method_device_verify_code",
    "method_device_work_sessions",
    "method_synctask_cancel",
    "method_synctask_is_cancelled",
];

/// 2026-11-30 09:00 China time.
const NOW: i64 = 1_796_000_400;
const TIMES: [i64; 5] = [i64::MIN, -1, 0, NOW, i64::MAX];

/// The exports called so far.
static CALLED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// Call one export; a panic fails the test, naming the export.
fn call<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    assert!(COVERED.contains(&name), "{name} is not listed in COVERED");
    CALLED.lock().unwrap().insert(name);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(answer) => answer,
        Err(_) => panic!("{name} panicked on hostile input"),
    }
}

/// A typed error, with its code and both texts.
fn refused<T: Debug>(name: &'static str, f: impl FnOnce() -> Result<T, WeldGuardError>) -> String {
    match call(name, f) {
        Ok(answer) => panic!("{name} accepted hostile input: {answer:?}"),
        Err(e) => {
            let (code, zh, en) = parts(&e);
            assert!(!code.is_empty(), "{name}: {e:?}");
            assert!(!zh.is_empty() && !en.is_empty(), "{name}: {e:?}");
            code.to_owned()
        }
    }
}

/// Either answer is acceptable; only a panic is not.
fn survives<T>(name: &'static str, f: impl FnOnce() -> Result<T, WeldGuardError>) {
    if let Err(e) = call(name, f) {
        let (code, _, _) = parts(&e);
        assert!(!code.is_empty(), "{name}: {e:?}");
    }
}

fn parts(e: &WeldGuardError) -> (&str, &str, &str) {
    match e {
        WeldGuardError::InvalidInput {
            code,
            message_zh,
            message_en,
        }
        | WeldGuardError::Storage {
            code,
            message_zh,
            message_en,
        }
        | WeldGuardError::Sync {
            code,
            message_zh,
            message_en,
            ..
        }
        | WeldGuardError::Signing {
            code,
            message_zh,
            message_en,
        } => (code, message_zh, message_en),
    }
}

/// Drive a future to its end on this thread (a waker that unparks it).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Several MB of text.
fn huge(unit: &str) -> String {
    unit.repeat((4 << 20) / unit.len().max(1))
}

/// Strings nobody should send: empty, blank, huge, control characters, odd Unicode, nearly-codes.
fn hostile_texts() -> Vec<String> {
    vec![
        String::new(),
        " \t\r\n".into(),
        "\0\0\0".into(),
        "\u{202e}\u{feff}\u{fffd}\u{10ffff}🔥焊".into(),
        "WG1:".into(),
        "WG1:!!!!".into(),
        "WG1:AAAA.BBBB.CCCC".into(),
        format!("WG1:{}", huge("A")),
        huge("焊"),
        huge("\u{0}\u{1}\u{7f}"),
        "T".into(),
        "https://example.invalid/?cert=T1".into(),
    ]
}

/// Trust files that are not trust files.
fn hostile_trust() -> Vec<String> {
    vec![
        String::new(),
        "{".into(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        r#"{"keys":[{"kid":"zz","alg":"nope","public_key":"!!"}]}"#.into(),
        r#"{"keys":[{"kid":"00","alg":"EdDSA","public_key":"","valid_from":-9223372036854775808}]}"#
            .into(),
        "[".repeat(1 << 20),
        format!("{{\"keys\":\"{}\"}}", huge("x")),
    ]
}

/// A key store that answers garbage: an empty public key and a three-byte signature.
struct GarbageKey;

impl DeviceKey for GarbageKey {
    fn public_key(&self) -> Vec<u8> {
        Vec::new()
    }
    fn sign(&self, _message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError> {
        Ok(vec![1, 2, 3])
    }
}

/// A key store that refuses (the user cancelled the prompt).
struct RefusingKey(Vec<u8>);

impl DeviceKey for RefusingKey {
    fn public_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, _message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError> {
        Err(WeldGuardError::Signing {
            code: "signer.cancelled".into(),
            message_zh: "用户取消".into(),
            message_en: "cancelled".into(),
        })
    }
}

/// A person's key store that refuses (the user cancelled the prompt).
impl PersonSigner for RefusingKey {
    fn public_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, _request: SignRequest) -> Result<SignedBytes, WeldGuardError> {
        Err(WeldGuardError::Signing {
            code: "signer.cancelled".into(),
            message_zh: "用户取消".into(),
            message_en: "cancelled".into(),
        })
    }
}

/// A person's key store that answers garbage: a three-byte signature, "present".
struct GarbageSigner(Vec<u8>);

impl PersonSigner for GarbageSigner {
    fn public_key(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn sign(&self, _request: SignRequest) -> Result<SignedBytes, WeldGuardError> {
        Ok(SignedBytes {
            signature: vec![1, 2, 3],
            user_present: true,
        })
    }
}

/// A real software key (ES256) in the person's key store; `present`: what it claims about the
/// person's presence. `public_key` may be overridden with one of the wrong length.
struct GoodKey {
    key: SoftwareSigner,
    present: bool,
    public_key: Option<Vec<u8>>,
}

impl GoodKey {
    fn new(present: bool) -> Arc<Self> {
        Arc::new(Self {
            key: SoftwareSigner::generate().unwrap(),
            present,
            public_key: None,
        })
    }

    /// A good signature under a public key of the wrong length.
    fn with_public_key(public_key: Vec<u8>) -> Arc<Self> {
        Arc::new(Self {
            key: SoftwareSigner::generate().unwrap(),
            present: true,
            public_key: Some(public_key),
        })
    }
}

impl PersonSigner for GoodKey {
    fn public_key(&self) -> Vec<u8> {
        self.public_key
            .clone()
            .unwrap_or_else(|| self.key.public_key())
    }
    fn sign(&self, request: SignRequest) -> Result<SignedBytes, WeldGuardError> {
        let signature = self
            .key
            .sign(&request.message)
            .map_err(|e| WeldGuardError::Signing {
                code: "signer.failed".into(),
                message_zh: e.0.clone(),
                message_en: e.0,
            })?;
        Ok(SignedBytes {
            signature,
            user_present: self.present,
        })
    }
}

struct Quiet;

impl SyncListener for Quiet {
    fn on_progress(&self, _stage: SyncStage, _done: u64, _total: Option<u64>) {}
    fn on_token(&self, _token: String, _expires_at_ms: Option<i64>) {}
}

/// A loopback "platform" that answers every request with a 404 and a junk body.
fn junk_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            // Read the whole request (headers, then the body they announce) before answering.
            let mut request = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let body = "{\"code\":\u{0} ]]]";
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn unreachable_code(code: &str) -> bool {
    code == "sync.cancelled"
}

/// A loopback port nobody listens on.
fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn junk_urls() -> Vec<String> {
    vec![
        String::new(),
        "junk".into(),
        "ftp://127.0.0.1/".into(),
        "http://[::1".into(),
        "http://".into(),
        huge("a"),
    ]
}

/// A task cancelled shortly after the call starts (unreachable platforms retry with backoff).
fn cancel_soon() -> Arc<SyncTask> {
    let task = SyncTask::new();
    let t = task.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        t.cancel();
    });
    task
}

struct Profile {
    _dir: TempDir,
    device: Arc<Device>,
    trust_json: String,
    issuer: IssuerKey,
}

fn profile() -> Profile {
    let dir = TempDir::new();
    let device = Device::open(dir.path().join("p.sqlite").display().to_string()).unwrap();
    let issuer = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
    let mut trust = TrustStore::new();
    trust.add(TrustedKey::for_key(&issuer, 0, None)).unwrap();
    let trust_json = trust.to_json();
    device.set_trust(trust_json.clone(), NOW).unwrap();
    Profile {
        _dir: dir,
        device,
        trust_json,
        issuer,
    }
}

fn stateless_functions(p: &Profile) {
    for text in hostile_texts() {
        for now in TIMES {
            let _ = call("func_check_id_number", || {
                check_id_number(text.clone(), now)
            });
            let check = call("func_verify_code", || {
                verify_code(text.clone(), p.trust_json.clone(), now)
            })
            .unwrap();
            assert!(!check.valid && check.reason.is_some(), "{text:.40}");
            refused("func_present_credential", || {
                present_credential(text.clone(), Arc::new(GarbageKey), now)
            });
        }
    }
    for trust in hostile_trust() {
        refused("func_verify_code", || {
            verify_code("WG1:x".into(), trust.clone(), NOW)
        });
    }
    // A genuine credential, presented with key stores that refuse or answer garbage.
    let credential = weldguard_core::codes::issue_credential(
        &p.issuer,
        &weldguard_core::domain::WelderCredential {
            certificate_no: "T11010519491231002X".into(),
            id_number: "11010519491231002X".into(),
            name: "赵六".into(),
            categories: vec![weldguard_core::domain::OperationCategory::FusionWeldingAndCutting],
            issued_on: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            expires_on: chrono::NaiveDate::from_ymd_opt(2030, 2, 28).unwrap(),
            next_review_on: chrono::NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
            photo_digest: vec![1; 16],
            device_key: SoftwareSigner::generate().unwrap().public_key(),
        },
        NOW - 86_400,
        NOW - 86_400,
    )
    .unwrap();
    for now in TIMES {
        refused("func_present_credential", || {
            present_credential(credential.clone(), Arc::new(GarbageKey), now)
        });
        refused("func_present_credential", || {
            present_credential(credential.clone(), Arc::new(RefusingKey(vec![2; 33])), now)
        });
    }
}

fn scanning() {
    let frames: Vec<(Vec<u8>, u32, u32, u32)> = vec![
        (vec![], 0, 0, 0),
        (vec![0; 100], 0, 10, 10),
        (vec![0; 100], 10, 0, 10),
        (vec![0; 100], 10, 10, 0),
        (vec![0; 100], 10, 10, 9),
        (vec![0; 99], 10, 10, 10),
        (vec![0; 10], u32::MAX, u32::MAX, u32::MAX),
        (vec![0; 100], 10, 10, u32::MAX),
        (vec![0; 64], 20_000, 20_000, 20_000),
        (vec![0x80; 6 << 20], 1, 6 << 20, 1),
        (vec![0x80; 6 << 20], 6 << 20, 1, 6 << 20),
    ];
    for (luma, w, h, stride) in frames {
        for mode in [ScanMode::Live, ScanMode::Photo] {
            refused("func_scan_frame", || {
                scan_frame(luma.clone(), w, h, stride, mode)
            });
        }
    }
    // Shapes that fit: noise and flat frames are answers (no code), not errors.
    let noise: Vec<u8> = (0..640u32 * 480)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for (luma, w, h, stride) in [(vec![0u8; 1], 1, 1, 1), (noise, 640, 480, 640)] {
        let codes = call("func_scan_frame", || {
            scan_frame(luma.clone(), w, h, stride, ScanMode::Live)
        })
        .unwrap();
        assert!(codes.is_empty());
    }
    let png_signature = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut png_huge_header = png_signature.clone();
    png_huge_header.extend_from_slice(&[0, 0, 0, 13]);
    png_huge_header.extend_from_slice(b"IHDR");
    png_huge_header.extend_from_slice(&[
        0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 8, 0, 0, 0, 0,
    ]);
    png_huge_header.extend_from_slice(&[0, 0, 0, 0]);
    let files: Vec<Vec<u8>> = vec![
        vec![],
        b"not a photo".to_vec(),
        png_signature,
        png_huge_header,
        b"\xff\xd8\xff".to_vec(),
        vec![0xff; 5 << 20],
        huge("\u{0}").into_bytes(),
    ];
    for file in files {
        for mode in [ScanMode::Live, ScanMode::Photo] {
            refused("func_scan_image", || {
                block_on(scan_image(file.clone(), mode))
            });
        }
    }
}

fn profile_calls(p: &Profile) {
    let d = &p.device;
    // Opening what is not a profile database.
    let dir = TempDir::new();
    let junk_file = dir.path().join("junk.sqlite");
    std::fs::write(&junk_file, huge("not a database ")).unwrap();
    for path in [
        String::new(),
        dir.path().display().to_string(),
        junk_file.display().to_string(),
        "/nonexistent/dir/profile.sqlite".into(),
        "p\0.sqlite".into(),
        format!("{}/{}", dir.path().display(), huge("a")),
    ] {
        refused("constructor_device_open", || {
            Device::open(path.clone()).map(|_| ())
        });
    }

    for trust in hostile_trust() {
        for now in TIMES {
            refused("method_device_set_trust", || {
                d.set_trust(trust.clone(), now)
            });
        }
    }
    // A good file at absurd times is accepted or refused, never a panic; the profile still works.
    for now in TIMES {
        survives("method_device_set_trust", || {
            d.set_trust(p.trust_json.clone(), now)
        });
    }
    survives("method_device_reload_revocations", || {
        d.reload_revocations()
    });
    for now in TIMES {
        survives("method_device_revocation_status", || {
            d.revocation_status(now)
        });
    }
    survives("method_device_outbox_summary", || d.outbox_summary());

    let positions = [
        None,
        Some((f64::NAN, 0.0, 1.0)),
        Some((0.0, f64::INFINITY, 1.0)),
        Some((f64::NEG_INFINITY, 0.0, 1.0)),
        Some((0.0, 0.0, f64::NAN)),
        Some((0.0, 0.0, -1.0)),
        Some((0.0, 0.0, f64::MAX)),
        Some((90.000_001, 180.0, 1.0)),
        Some((-1e308, 1e308, 1.0)),
    ];
    for text in hostile_texts() {
        for now in TIMES {
            let check = call("method_device_verify_code", || {
                d.verify_code(text.clone(), now)
            });
            assert!(!check.valid);
            for lang in [Lang::Zh, Lang::En] {
                survives("method_device_check_welder", || {
                    d.check_welder(text.clone(), now, lang)
                });
            }
        }
        // Huge texts once, without a position; the positions with the short texts.
        let tried = if text.len() > 1000 {
            1
        } else {
            positions.len()
        };
        for (i, position) in positions.iter().take(tried).enumerate() {
            let position = position.map(|(latitude, longitude, accuracy_m)| DevicePosition {
                latitude,
                longitude,
                accuracy_m,
            });
            for now in TIMES {
                let answer = call("method_device_start_work", || {
                    d.start_work(
                        text.clone(),
                        text.clone(),
                        text.clone(),
                        now,
                        position,
                        Lang::En,
                    )
                });
                match answer {
                    Ok(result) => {
                        assert!(!result.allowed, "hostile scans never allow work");
                        assert!(i == 0 && now != i64::MIN && now != i64::MAX);
                    }
                    Err(e) => assert!(!parts(&e).0.is_empty()),
                }
            }
        }
    }
    // Out-of-range times and positions are refused outright.
    for now in [i64::MIN, i64::MAX] {
        refused("method_device_start_work", || {
            d.start_work("M".into(), "T".into(), "s".into(), now, None, Lang::Zh)
        });
        refused("method_device_check_welder", || {
            d.check_welder("T11010519491231002X".into(), now, Lang::Zh)
        });
    }
    for (latitude, longitude, accuracy_m) in positions.iter().skip(1).flatten() {
        refused("method_device_start_work", || {
            d.start_work(
                "M".into(),
                "T".into(),
                "s".into(),
                NOW,
                Some(DevicePosition {
                    latitude: *latitude,
                    longitude: *longitude,
                    accuracy_m: *accuracy_m,
                }),
                Lang::Zh,
            )
        });
    }
}

fn inspections(p: &Profile) {
    let d = &p.device;
    let key = GoodKey::new(true);
    let base = InspectionInput {
        site_id: "site".into(),
        inspector_name: "孙检".into(),
        inspector_id: "I-1".into(),
        welder_text: None,
        machine_text: None,
        permit: None,
        findings: vec![],
        photos: vec![],
        location: None,
        notes: String::new(),
    };
    let pending = d.outbox_summary().unwrap().pending;
    let bad: Vec<InspectionInput> = vec![
        InspectionInput {
            findings: vec![InspectionFinding {
                item_id: "no-such-item".into(),
                outcome: FindingOutcome::NotCompliant,
                note: huge("x"),
                photos: vec![],
            }],
            ..base.clone()
        },
        InspectionInput {
            photos: vec![vec![0; 31]],
            ..base.clone()
        },
        InspectionInput {
            photos: vec![vec![0; 4 << 20]],
            ..base.clone()
        },
        InspectionInput {
            location: Some(InspectionLocation {
                latitude: f64::NAN,
                longitude: 0.0,
            }),
            ..base.clone()
        },
        InspectionInput {
            location: Some(InspectionLocation {
                latitude: 0.0,
                longitude: f64::INFINITY,
            }),
            ..base.clone()
        },
        InspectionInput {
            permit: Some(PermitShown::Id {
                permit_id: huge("P"),
            }),
            ..base.clone()
        },
        InspectionInput {
            permit: Some(PermitShown::Id {
                permit_id: String::new(),
            }),
            ..base.clone()
        },
    ];
    for input in bad {
        for lang in [Lang::Zh, Lang::En] {
            refused("method_device_record_inspection", || {
                d.record_inspection(input.clone(), key.clone(), NOW, lang)
            });
        }
    }
    for now in [i64::MIN, i64::MAX] {
        refused("method_device_record_inspection", || {
            d.record_inspection(base.clone(), key.clone(), now, Lang::Zh)
        });
    }
    // Key stores that refuse or answer garbage: a typed signing error, nothing saved.
    for signer in [
        Arc::new(GarbageSigner(key.public_key())) as Arc<dyn PersonSigner>,
        Arc::new(GarbageSigner(Vec::new())),
        Arc::new(RefusingKey(key.public_key())),
        GoodKey::with_public_key(vec![2; 5]),
        GoodKey::with_public_key(vec![4; 65]),
    ] {
        refused("method_device_record_inspection", || {
            d.record_inspection(base.clone(), signer.clone(), NOW, Lang::Zh)
        });
    }
    assert_eq!(
        d.outbox_summary().unwrap().pending,
        pending,
        "nothing saved"
    );
    // Hostile scans and texts are recorded as what they proved (or refused), never a panic.
    for text in hostile_texts() {
        survives("method_device_record_inspection", || {
            d.record_inspection(
                InspectionInput {
                    site_id: text.clone(),
                    inspector_name: text.clone(),
                    inspector_id: text.clone(),
                    welder_text: Some(text.clone()),
                    machine_text: Some(text.clone()),
                    permit: Some(PermitShown::Code { text: text.clone() }),
                    notes: text.clone(),
                    ..base.clone()
                },
                key.clone(),
                NOW,
                Lang::En,
            )
        });
    }

    // History pages.
    for limit in [0, 10_001, u32::MAX] {
        refused("method_device_work_sessions", || {
            d.work_sessions(None, limit)
        });
        refused("method_device_inspections", || {
            d.inspections(limit, Lang::Zh)
        });
        for filter in [OutboxFilter::All, OutboxFilter::Rejected] {
            refused("method_device_outbox_entries", || {
                d.outbox_entries(filter, limit)
            });
        }
    }
    for before in [None, Some(i64::MIN), Some(-1), Some(0), Some(i64::MAX)] {
        call("method_device_work_sessions", || {
            d.work_sessions(before, 10_000)
        })
        .unwrap();
    }
    for filter in [
        OutboxFilter::Unresolved,
        OutboxFilter::Pending,
        OutboxFilter::Sent,
        OutboxFilter::Applied,
        OutboxFilter::Rejected,
        OutboxFilter::All,
    ] {
        call("method_device_outbox_entries", || {
            d.outbox_entries(filter, 1)
        })
        .unwrap();
    }
    for lang in [Lang::Zh, Lang::En] {
        call("method_device_inspections", || d.inspections(1, lang)).unwrap();
    }
}

fn platform_calls(p: &Profile) {
    let d = &p.device;
    let junk = junk_server();
    let key: Arc<dyn DeviceKey> = Arc::new(GarbageKey);
    let listener: Arc<dyn SyncListener> = Arc::new(Quiet);

    let task = call("constructor_synctask_new", SyncTask::new);
    assert!(!call("method_synctask_is_cancelled", || task.is_cancelled()));
    call("method_synctask_cancel", || task.cancel());
    call("method_synctask_cancel", || task.cancel());
    assert!(call("method_synctask_is_cancelled", || task.is_cancelled()));

    let mut urls = junk_urls();
    urls.push(junk.clone());
    for url in &urls {
        for now in [i64::MIN, 0, i64::MAX] {
            refused("method_device_sync", || {
                block_on(d.clone().sync(
                    url.clone(),
                    if *url == junk {
                        "\u{0}t".into()
                    } else {
                        huge("t")
                    },
                    listener.clone(),
                    SyncTask::new(),
                    now,
                ))
            });
            refused("method_device_sync_with_key", || {
                block_on(d.clone().sync_with_key(
                    url.clone(),
                    String::new(),
                    "\u{0}".into(),
                    key.clone(),
                    listener.clone(),
                    SyncTask::new(),
                    now,
                ))
            });
            refused("method_device_enrol", || {
                block_on(d.clone().enrol(
                    url.clone(),
                    "CODE-\u{202e}".into(),
                    vec![0xff; 1 << 20],
                    huge("n"),
                    SyncTask::new(),
                    now,
                ))
            });
        }
        refused("method_device_check_drift", || {
            block_on(d.clone().check_drift(
                url.clone(),
                String::new(),
                listener.clone(),
                SyncTask::new(),
            ))
        });
    }
    // A token that cannot be a header and an address that is no URL are refused at once, not
    // retried as network failures.
    let code = refused("method_device_sync", || {
        block_on(d.clone().sync(
            junk.clone(),
            "\u{0}t".into(),
            listener.clone(),
            SyncTask::new(),
            NOW,
        ))
    });
    assert_eq!(code, "sync.unauthorized");
    let code = refused("method_device_check_drift", || {
        block_on(d.clone().check_drift(
            "http://[::1".into(),
            "t".into(),
            listener.clone(),
            SyncTask::new(),
        ))
    });
    assert_eq!(code, "sync.invalid_address");
    // An empty enrolment code is refused before anything is sent.
    let code = refused("method_device_enrol", || {
        block_on(d.clone().enrol(
            junk.clone(),
            " ".into(),
            vec![],
            String::new(),
            SyncTask::new(),
            NOW,
        ))
    });
    assert_eq!(code, "enrol.no_code");

    // An unreachable loopback platform: the calls back off and retry until the task is cancelled.
    let unreachable = unreachable_url();
    let code = refused("method_device_sync", || {
        block_on(d.clone().sync(
            unreachable.clone(),
            "token".into(),
            listener.clone(),
            cancel_soon(),
            NOW,
        ))
    });
    assert!(unreachable_code(&code), "{code}");
    let code = refused("method_device_sync_with_key", || {
        block_on(d.clone().sync_with_key(
            unreachable.clone(),
            "token".into(),
            "device".into(),
            key.clone(),
            listener.clone(),
            cancel_soon(),
            NOW,
        ))
    });
    assert!(unreachable_code(&code), "{code}");
    let code = refused("method_device_check_drift", || {
        block_on(d.clone().check_drift(
            unreachable.clone(),
            "token".into(),
            listener.clone(),
            cancel_soon(),
        ))
    });
    assert!(unreachable_code(&code), "{code}");
    let cancelled = SyncTask::new();
    cancelled.cancel();
    let code = refused("method_device_enrol", || {
        block_on(d.clone().enrol(
            unreachable.clone(),
            "CODE".into(),
            vec![2; 33],
            "phone".into(),
            cancelled,
            NOW,
        ))
    });
    assert_eq!(code, "sync.cancelled");

    // Dropping the call (the coroutine was cancelled) raises its task's flag.
    let task = SyncTask::new();
    {
        let future = d.clone().sync(
            unreachable.clone(),
            "token".into(),
            listener.clone(),
            task.clone(),
            NOW,
        );
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    assert!(task.is_cancelled());
    // The profile is still usable after all of it.
    assert!(d.outbox_summary().is_ok());
}

#[test]
fn every_export_answers_hostile_input_with_a_typed_error_and_never_panics() {
    let p = profile();
    stateless_functions(&p);
    scanning();
    scanning_with_settings();
    profile_calls(&p);
    inspections(&p);
    permits();
    platform_calls(&p);
    let called = CALLED.lock().unwrap().clone();
    let listed: BTreeSet<&str> = COVERED.iter().copied().collect();
    assert_eq!(listed.len(), COVERED.len(), "COVERED lists a name twice");
    let missing: Vec<_> = listed.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "COVERED lists exports the test never calls: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Permits and what is due
// ---------------------------------------------------------------------------------------------

const PERMIT: &str = "0193a1b2-0000-7000-8000-00000000f3f3";
const MIN: i64 = 60;
/// Times no step can be taken at: out of range, before 1970.
const BAD_TIMES: [i64; 3] = [i64::MIN, -1, i64::MAX];

fn person(name: &str, id: &str) -> PermitPerson {
    PermitPerson {
        name: name.into(),
        id: id.into(),
    }
}

fn by(name: &str, id: &str) -> PermitActorInput {
    PermitActorInput {
        name: name.into(),
        id: id.into(),
        role: None,
    }
}

fn site() -> PermitLocation {
    PermitLocation {
        latitude: 36.182,
        longitude: 116.772,
    }
}

/// NOW is 09:00 China time; the permit is drafted at 06:40 and valid 08:00–17:00.
fn at(minutes_from_now: i64) -> i64 {
    NOW + minutes_from_now * MIN
}

fn draft_input() -> PermitDraftInput {
    PermitDraftInput {
        site_id: "site-370983-001".into(),
        site_name: "肥城某化工厂三车间".into(),
        rules: "gb30871".into(),
        site_location: site(),
        night: None,
        approval_radius_m: None,
        work: "更换3号储罐出口管线法兰".into(),
        hot_work_point: "3号储罐东侧管廊".into(),
        hot_work_points: 1,
        level: PermitLevel::Level2,
        valid_from: at(-60),
        valid_until: at(8 * 60),
        applicant: person("张三", "S-001"),
        welders: vec![person("李四", "T370983199001011234")],
        machines: vec!["M-370983-0001".into()],
        fire_watch: vec![person("王五", "S-002")],
        conditions: PermitConditions::default(),
        permit_id: Some(PERMIT.into()),
    }
}

/// Every item of `sections` answered from what the checklist export asks for, as a shell would.
fn answers(sections: &[ChecklistSection], gas_at: i64) -> Vec<ChecklistAnswerInput> {
    let checklist = permit_checklist(Lang::En).unwrap();
    let ChecklistEvidenceRequirement::Number {
        key: distance_key, ..
    } = checklist.machine_distance.clone()
    else {
        panic!("the machine distance is a number");
    };
    let mut answers: Vec<ChecklistAnswerInput> = checklist
        .items
        .into_iter()
        .filter(|i| sections.contains(&i.section))
        .map(|item| ChecklistAnswerInput {
            item_id: item.id,
            not_applicable_reason: None,
            evidence: item
                .evidence
                .into_iter()
                .map(|req| match req {
                    ChecklistEvidenceRequirement::Photo => ChecklistEvidence::Photo {
                        sha256: vec![9; 32],
                    },
                    ChecklistEvidenceRequirement::Number { key, min, max, .. } => {
                        let value = min.unwrap_or(0) + 1;
                        ChecklistEvidence::Number {
                            key,
                            value: max.map_or(value, |m| value.min(m)),
                        }
                    }
                    ChecklistEvidenceRequirement::Person { role } => {
                        let (name, id) = if role == ChecklistPersonRole::Welder {
                            ("李四", "T370983199001011234")
                        } else {
                            ("王五", "S-002")
                        };
                        ChecklistEvidence::Person {
                            role,
                            name: name.into(),
                            id: id.into(),
                        }
                    }
                    ChecklistEvidenceRequirement::GasAnalysis => ChecklistEvidence::GasAnalysis {
                        reading: gas_reading(gas_at),
                    },
                })
                .collect(),
        })
        .collect();
    if let Some(first) = answers.iter_mut().find(|a| a.item_id == "must.01") {
        first.evidence.push(ChecklistEvidence::Number {
            key: distance_key,
            value: 6,
        });
    }
    answers
}

fn gas_reading(taken_at: i64) -> ChecklistGasReading {
    ChecklistGasReading {
        taken_at,
        lel_centi_pct: 500,
        concentration_centi_pct: 10,
        point: "动火点".into(),
        analyst: "赵六".into(),
    }
}

fn site_check_answers() -> Vec<ChecklistAnswerInput> {
    answers(
        &[ChecklistSection::Prohibition, ChecklistSection::Must],
        at(-110),
    )
}

fn gas() -> PermitGasInput {
    PermitGasInput {
        lel_centi_pct: 500,
        concentration_centi_pct: 10,
        point: "动火点".into(),
        analyst: "赵六".into(),
        taken_at: None,
    }
}

/// A fresh profile with the permit walked (with good keys, at sane times) up to `state`.
struct PermitFx {
    _dir: TempDir,
    d: Arc<Device>,
    /// The approver's key (signs the site code).
    approver: Arc<GoodKey>,
}

impl PermitFx {
    fn at_state(state: PermitState) -> PermitFx {
        let dir = TempDir::new();
        let d = Device::open(dir.path().join("permits.sqlite").display().to_string()).unwrap();
        use PermitState as S;
        let order = [
            S::Draft,
            S::Submitted,
            S::Checked,
            S::Approved,
            S::Active,
            S::Suspended,
            S::Completed,
            S::Closed,
        ];
        let upto = order.iter().position(|s| *s == state).unwrap();
        let approver = GoodKey::new(true);
        for (i, step) in order.iter().enumerate().take(upto + 1) {
            let v = match step {
                S::Draft => d.permit_draft(draft_input(), at(-140), Lang::En),
                S::Submitted => d.permit_submit(
                    PERMIT.into(),
                    by("张三", "S-001"),
                    None,
                    GoodKey::new(false),
                    at(-120),
                    Lang::En,
                ),
                S::Checked => d.permit_site_check(
                    PERMIT.into(),
                    by("孙七", "S-003"),
                    site_check_answers(),
                    Some(site()),
                    GoodKey::new(false),
                    at(-100),
                    Lang::En,
                ),
                S::Approved => d.permit_approve(
                    PERMIT.into(),
                    by("周八", "S-004"),
                    Some(site()),
                    approver.clone(),
                    at(-80),
                    Lang::En,
                ),
                S::Active => {
                    d.permit_record_gas(PERMIT.into(), gas(), at(-5), Lang::En)
                        .unwrap();
                    d.permit_start(PERMIT.into(), false, None, NOW, Lang::En)
                }
                // Suspended and resumed for the states after it.
                S::Suspended => d.permit_suspend(PERMIT.into(), "午休".into(), at(60), Lang::En),
                S::Completed => {
                    d.permit_resume(PERMIT.into(), at(70), Lang::En).unwrap();
                    d.permit_complete(PERMIT.into(), at(180), Lang::En)
                }
                _ => d.permit_close(
                    PERMIT.into(),
                    by("王五", "S-002"),
                    answers(&[ChecklistSection::PostWork], at(210)),
                    Some(site()),
                    GoodKey::new(false),
                    at(210),
                    Lang::En,
                ),
            };
            let v = v.unwrap_or_else(|e| panic!("walking to {step:?} (step {i}): {e:?}"));
            assert_eq!(v.state, *step);
        }
        PermitFx {
            _dir: dir,
            d,
            approver,
        }
    }

    /// The permit as stored and the outbox counts (every saved step, of any permit, is an
    /// outbox entry).
    fn stored(&self) -> (Option<PermitDetail>, String) {
        let detail = self.d.permit_show(PERMIT.into(), NOW, Lang::En).ok();
        let outbox = format!("{:?}", self.d.outbox_summary().unwrap());
        (detail, outbox)
    }

    /// `f` is refused with a typed error of `kind` and nothing is saved.
    fn refuses<T: Debug>(
        &self,
        name: &'static str,
        kind: Kind,
        f: impl FnOnce(&Device) -> Result<T, WeldGuardError>,
    ) -> String {
        let before = self.stored();
        let answer = call(name, || f(&self.d));
        let code = match answer {
            Ok(v) => panic!("{name} accepted hostile input: {v:?}"),
            Err(e) => {
                let (code, zh, en) = parts(&e);
                assert!(
                    !code.is_empty() && !zh.is_empty() && !en.is_empty(),
                    "{e:?}"
                );
                assert_eq!(Kind::of(&e), kind, "{name}: {e:?}");
                code.to_owned()
            }
        };
        assert!(self.stored() == before, "{name} saved something ({code})");
        code
    }

    /// Any answer but a panic; a refusal saves nothing.
    fn survives<T>(
        &self,
        name: &'static str,
        f: impl FnOnce(&Device) -> Result<T, WeldGuardError>,
    ) -> bool {
        let before = self.stored();
        match call(name, || f(&self.d)) {
            Ok(_) => true,
            Err(e) => {
                assert!(!parts(&e).0.is_empty(), "{name}: {e:?}");
                assert!(self.stored() == before, "{name} saved something: {e:?}");
                false
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Input,
    Signing,
    /// Either.
    Any,
}

impl Kind {
    fn of(e: &WeldGuardError) -> Option<Kind> {
        match e {
            WeldGuardError::InvalidInput { .. } => Some(Kind::Input),
            WeldGuardError::Signing { .. } => Some(Kind::Signing),
            _ => None,
        }
    }
}

impl PartialEq<Kind> for Option<Kind> {
    fn eq(&self, other: &Kind) -> bool {
        self.is_some_and(|k| k == *other || *other == Kind::Any)
    }
}

/// Every step that moves a permit, taken with good keys and sane inputs at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Submit,
    SiteCheck,
    Approve,
    Reject,
    RecordGas,
    Start,
    Suspend,
    Resume,
    Complete,
    Close,
    Cancel,
    Expire,
}

const STEPS: [Step; 12] = [
    Step::Submit,
    Step::SiteCheck,
    Step::Approve,
    Step::Reject,
    Step::RecordGas,
    Step::Start,
    Step::Suspend,
    Step::Resume,
    Step::Complete,
    Step::Close,
    Step::Cancel,
    Step::Expire,
];

fn take(
    d: &Device,
    step: Step,
    id: &str,
    now: i64,
) -> (
    &'static str,
    Result<weldguard_ffi::permits::PermitView, WeldGuardError>,
) {
    let id = id.to_owned();
    match step {
        Step::Submit => (
            "method_device_permit_submit",
            d.permit_submit(
                id,
                by("张三", "S-001"),
                None,
                GoodKey::new(true),
                now,
                Lang::En,
            ),
        ),
        Step::SiteCheck => (
            "method_device_permit_site_check",
            d.permit_site_check(
                id,
                by("孙七", "S-003"),
                site_check_answers(),
                Some(site()),
                GoodKey::new(true),
                now,
                Lang::En,
            ),
        ),
        Step::Approve => (
            "method_device_permit_approve",
            d.permit_approve(
                id,
                by("周八", "S-004"),
                Some(site()),
                GoodKey::new(true),
                now,
                Lang::Zh,
            ),
        ),
        Step::Reject => (
            "method_device_permit_reject",
            d.permit_reject(id, by("周八", "S-004"), "不合格".into(), now, Lang::En),
        ),
        Step::RecordGas => (
            "method_device_permit_record_gas",
            d.permit_record_gas(id, gas(), now, Lang::En),
        ),
        Step::Start => (
            "method_device_permit_start",
            d.permit_start(id, false, None, now, Lang::En),
        ),
        Step::Suspend => (
            "method_device_permit_suspend",
            d.permit_suspend(id, "午休".into(), now, Lang::En),
        ),
        Step::Resume => (
            "method_device_permit_resume",
            d.permit_resume(id, now, Lang::En),
        ),
        Step::Complete => (
            "method_device_permit_complete",
            d.permit_complete(id, now, Lang::En),
        ),
        Step::Close => (
            "method_device_permit_close",
            d.permit_close(
                id,
                by("王五", "S-002"),
                answers(&[ChecklistSection::PostWork], now),
                Some(site()),
                GoodKey::new(false),
                now,
                Lang::En,
            ),
        ),
        Step::Cancel => (
            "method_device_permit_cancel",
            d.permit_cancel(id, by("张三", "S-001"), "取消".into(), now, Lang::En),
        ),
        Step::Expire => (
            "method_device_permit_expire",
            d.permit_expire(id, now, Lang::En),
        ),
    }
}

fn export_of(step: Step) -> &'static str {
    match step {
        Step::Submit => "method_device_permit_submit",
        Step::SiteCheck => "method_device_permit_site_check",
        Step::Approve => "method_device_permit_approve",
        Step::Reject => "method_device_permit_reject",
        Step::RecordGas => "method_device_permit_record_gas",
        Step::Start => "method_device_permit_start",
        Step::Suspend => "method_device_permit_suspend",
        Step::Resume => "method_device_permit_resume",
        Step::Complete => "method_device_permit_complete",
        Step::Close => "method_device_permit_close",
        Step::Cancel => "method_device_permit_cancel",
        Step::Expire => "method_device_permit_expire",
    }
}

/// Steps out of order in every state: a typed input error, nothing saved.
fn permits_out_of_order() {
    use PermitState as S;
    let refused_in: [(PermitState, &[Step]); 8] = [
        (
            S::Draft,
            &[
                Step::SiteCheck,
                Step::Approve,
                Step::Reject,
                Step::Start,
                Step::Suspend,
                Step::Resume,
                Step::Complete,
                Step::Close,
                Step::Expire,
            ],
        ),
        (
            S::Submitted,
            &[
                Step::Submit,
                Step::Approve,
                Step::Start,
                Step::Suspend,
                Step::Resume,
                Step::Complete,
                Step::Close,
            ],
        ),
        (
            S::Checked,
            &[
                Step::Submit,
                Step::SiteCheck,
                Step::Start,
                Step::Resume,
                Step::Complete,
                Step::Close,
            ],
        ),
        (
            S::Approved,
            &[
                Step::Submit,
                Step::SiteCheck,
                Step::Approve,
                Step::Reject,
                Step::Suspend,
                Step::Resume,
                Step::Complete,
                Step::Close,
            ],
        ),
        (
            S::Active,
            &[
                Step::Submit,
                Step::SiteCheck,
                Step::Approve,
                Step::Reject,
                Step::Start,
                Step::Resume,
                Step::Close,
            ],
        ),
        (
            S::Suspended,
            &[
                Step::Submit,
                Step::Approve,
                Step::Start,
                Step::Suspend,
                Step::Close,
            ],
        ),
        (
            S::Completed,
            &[
                Step::Submit,
                Step::Approve,
                Step::Start,
                Step::Suspend,
                Step::Resume,
                Step::Complete,
                Step::Cancel,
            ],
        ),
        (S::Closed, &STEPS),
    ];
    for (state, steps) in refused_in {
        let f = PermitFx::at_state(state);
        for step in steps {
            // The time the step would be sane at, if the permit were ready for it.
            let now = match step {
                Step::Close => at(210),
                Step::Expire => at(9 * 60),
                _ => at(90),
            };
            let code = f.refuses(export_of(*step), Kind::Input, |d| {
                take(d, *step, PERMIT, now).1
            });
            assert!(code.starts_with("permit."), "{step:?} in {state:?}: {code}");
        }
        // Every step on a permit that is not stored.
        let mut ids = vec![
            "no-such-permit".to_owned(),
            String::new(),
            "\0\u{202e}".into(),
        ];
        if state == S::Draft {
            ids.push(huge("P"));
        }
        for id in ids {
            for step in STEPS {
                f.refuses(export_of(step), Kind::Input, |d| {
                    take(d, step, &id, at(90)).1
                });
            }
        }
    }
}

/// Each step at times no step can be taken at; and the views at absurd times.
fn permits_at_bad_times() {
    use PermitState as S;
    for (state, step) in [
        (S::Draft, Step::Submit),
        (S::Submitted, Step::SiteCheck),
        (S::Checked, Step::Approve),
        (S::Checked, Step::Reject),
        (S::Approved, Step::RecordGas),
        (S::Approved, Step::Start),
        (S::Active, Step::Suspend),
        (S::Suspended, Step::Resume),
        (S::Active, Step::Complete),
        (S::Completed, Step::Close),
        (S::Approved, Step::Cancel),
        (S::Approved, Step::Expire),
    ] {
        let f = PermitFx::at_state(state);
        for now in BAD_TIMES {
            f.refuses(export_of(step), Kind::Input, |d| {
                take(d, step, PERMIT, now).1
            });
        }
    }
    let f = PermitFx::at_state(S::Suspended);
    for now in TIMES {
        for lang in [Lang::Zh, Lang::En] {
            f.survives("method_device_permit_show", |d| {
                d.permit_show(PERMIT.into(), now, lang)
            });
            f.survives("method_device_permit_list", |d| {
                d.permit_list(None, now, lang)
            });
            f.survives("method_device_due", |d| d.due(now, lang));
            for days in [0, 30, u32::MAX] {
                f.survives("method_device_due_within", |d| {
                    d.due_within(now, days, lang)
                });
            }
            f.survives("method_device_permit_preview_answers", |d| {
                d.permit_preview_answers(PERMIT.into(), site_check_answers(), now, lang)
            });
        }
        for state in [None, Some(S::Suspended), Some(S::Closed)] {
            f.survives("method_device_permit_list", |d| {
                d.permit_list(state, now, Lang::Zh)
            });
        }
    }
    for lang in [Lang::Zh, Lang::En] {
        let due = call("method_device_due", || f.d.due(NOW, lang)).unwrap();
        assert!(!due.is_empty(), "a suspended permit has something due");
    }
}

/// Drafts with hostile texts, times, places and crews.
fn permit_drafts() {
    let f = PermitFx::at_state(PermitState::Draft);
    let mut bad: Vec<PermitDraftInput> = Vec::new();
    for edit in [
        |i: &mut PermitDraftInput| i.site_id = String::new(),
        |i: &mut PermitDraftInput| i.site_name = " \t".into(),
        |i: &mut PermitDraftInput| i.work = String::new(),
        |i: &mut PermitDraftInput| i.hot_work_point = "\r\n".into(),
        |i: &mut PermitDraftInput| i.rules = "no-such-rules".into(),
        |i: &mut PermitDraftInput| i.rules = huge("r"),
        |i: &mut PermitDraftInput| i.permit_id = Some(String::new()),
        |i: &mut PermitDraftInput| i.permit_id = Some(PERMIT.into()),
        |i: &mut PermitDraftInput| i.night = Some("25:00-06:00".into()),
        |i: &mut PermitDraftInput| i.night = Some(huge(":")),
        |i: &mut PermitDraftInput| i.valid_until = i.valid_from,
        |i: &mut PermitDraftInput| {
            i.valid_from = i64::MAX;
            i.valid_until = i64::MIN;
        },
        |i: &mut PermitDraftInput| i.site_location.latitude = f64::NAN,
        |i: &mut PermitDraftInput| i.site_location.longitude = f64::INFINITY,
        |i: &mut PermitDraftInput| i.site_location.latitude = f64::NEG_INFINITY,
        |i: &mut PermitDraftInput| i.site_location.latitude = 90.000_001,
        |i: &mut PermitDraftInput| i.site_location.longitude = -1e308,
    ] {
        let mut input = draft_input();
        edit(&mut input);
        bad.push(input);
    }
    for input in bad {
        f.refuses("method_device_permit_draft", Kind::Input, |d| {
            d.permit_draft(input.clone(), NOW, Lang::Zh)
        });
    }
    for now in [i64::MIN, i64::MAX] {
        let mut input = draft_input();
        input.permit_id = None;
        f.refuses("method_device_permit_draft", Kind::Input, |d| {
            d.permit_draft(input.clone(), now, Lang::En)
        });
    }
    // Hostile texts in every text field, a new permit each: refused, or saved as written.
    for text in hostile_texts() {
        for (n, edit) in [
            |i: &mut PermitDraftInput, t: &str| i.site_id = t.into(),
            |i: &mut PermitDraftInput, t: &str| i.site_name = t.into(),
            |i: &mut PermitDraftInput, t: &str| i.work = t.into(),
            |i: &mut PermitDraftInput, t: &str| i.hot_work_point = t.into(),
            |i: &mut PermitDraftInput, t: &str| i.applicant = person(t, t),
            |i: &mut PermitDraftInput, t: &str| i.welders = vec![person(t, t)],
            |i: &mut PermitDraftInput, t: &str| i.machines = vec![t.into()],
            |i: &mut PermitDraftInput, t: &str| i.fire_watch = vec![person(t, t)],
            |i: &mut PermitDraftInput, t: &str| i.night = Some(t.into()),
            |i: &mut PermitDraftInput, t: &str| i.permit_id = Some(t.into()),
        ]
        .into_iter()
        .enumerate()
        {
            // Huge texts once (in the permit id), the short ones everywhere.
            if text.len() > 1000 && n != 9 {
                continue;
            }
            let mut input = draft_input();
            input.permit_id = None;
            edit(&mut input, &text);
            f.survives("method_device_permit_draft", |d| {
                d.permit_draft(input, NOW, Lang::En)
            });
        }
    }
    // Crews of thousands, and a hostile count of hot-work points.
    let mut input = draft_input();
    input.permit_id = None;
    input.welders = vec![person("李四", "T370983199001011234"); 1_000];
    input.machines = vec!["M".into(); 1_000];
    input.hot_work_points = u32::MAX;
    input.approval_radius_m = Some(u32::MAX);
    input.conditions.wind_force = Some(u8::MAX);
    f.survives("method_device_permit_draft", |d| {
        d.permit_draft(input, NOW, Lang::En)
    });
}

/// Answers that cannot be right, previewed (an answer or a typed error) and in the site check
/// and closing (refused, nothing saved).
fn permit_answers() {
    let good = site_check_answers();
    let mut hostile: Vec<Vec<ChecklistAnswerInput>> = Vec::new();
    // Duplicates of every answer.
    hostile.push(good.iter().chain(good.iter()).cloned().collect());
    // Answers for items nobody knows.
    for id in [
        "no.such.item".to_owned(),
        String::new(),
        huge("i"),
        "\0".into(),
    ] {
        let mut a = good.clone();
        a.push(ChecklistAnswerInput {
            item_id: id,
            not_applicable_reason: None,
            evidence: vec![],
        });
        hostile.push(a);
    }
    // A huge list.
    hostile.push(
        (0..2_000)
            .map(|i| ChecklistAnswerInput {
                item_id: format!("ban.{i:02}"),
                not_applicable_reason: Some("x".into()),
                evidence: vec![],
            })
            .collect(),
    );
    // Evidence with digests of the wrong length, absurd numbers, gas readings at absurd times,
    // empty and huge reasons.
    type Edit = Box<dyn Fn(&mut ChecklistAnswerInput)>;
    let edits: Vec<Edit> = vec![
        Box::new(|a| a.evidence = vec![ChecklistEvidence::Photo { sha256: vec![] }]),
        Box::new(|a| {
            a.evidence = vec![ChecklistEvidence::Photo {
                sha256: vec![9; 31],
            }]
        }),
        Box::new(|a| {
            a.evidence = vec![ChecklistEvidence::Photo {
                sha256: vec![9; 33],
            }]
        }),
        Box::new(|a| {
            for e in &mut a.evidence {
                match e {
                    ChecklistEvidence::Photo { sha256 } => sha256.truncate(16),
                    ChecklistEvidence::Number { value, .. } => *value = i64::MIN,
                    ChecklistEvidence::GasAnalysis { reading } => reading.taken_at = i64::MAX,
                    ChecklistEvidence::Person { name, .. } => name.clear(),
                }
            }
        }),
        Box::new(|a| {
            for e in &mut a.evidence {
                match e {
                    ChecklistEvidence::Number { value, .. } => *value = i64::MAX,
                    ChecklistEvidence::GasAnalysis { reading } => {
                        reading.taken_at = i64::MIN;
                        reading.lel_centi_pct = 0;
                        reading.concentration_centi_pct = u32::MAX;
                    }
                    ChecklistEvidence::Person { id, .. } => *id = "\u{0}".repeat(100),
                    _ => {}
                }
            }
        }),
        Box::new(|a| a.not_applicable_reason = Some(String::new())),
        Box::new(|a| a.evidence.clear()),
    ];
    for edit in &edits {
        let mut every = good.clone();
        every.iter_mut().for_each(edit);
        hostile.push(every);
    }
    // One answer of several MB: a photo digest, a reason.
    let mut one = good.clone();
    one[0].evidence = vec![ChecklistEvidence::Photo {
        sha256: vec![9; 4 << 20],
    }];
    hostile.push(one);
    let mut one = good.clone();
    one[0].not_applicable_reason = Some(huge("原因"));
    hostile.push(one);
    let f = PermitFx::at_state(PermitState::Submitted);
    for answers in &hostile {
        // A preview saves nothing: an answer or a typed error, at any time.
        for now in [at(-100), i64::MIN] {
            f.survives("method_device_permit_preview_answers", |d| {
                d.permit_preview_answers(PERMIT.into(), answers.clone(), now, Lang::En)
            });
        }
        f.refuses("method_device_permit_site_check", Kind::Input, |d| {
            d.permit_site_check(
                PERMIT.into(),
                by("孙七", "S-003"),
                answers.clone(),
                Some(site()),
                GoodKey::new(false),
                at(-100),
                Lang::En,
            )
        });
    }
    // Unknown permits for the preview.
    for id in ["no-such-permit".to_owned(), huge("P")] {
        f.refuses("method_device_permit_preview_answers", Kind::Input, |d| {
            d.permit_preview_answers(id.clone(), good.clone(), at(-100), Lang::En)
        });
    }
    // Closing with hostile post-work answers.
    let f = PermitFx::at_state(PermitState::Completed);
    let post = answers(&[ChecklistSection::PostWork], at(210));
    let mut closing: Vec<Vec<ChecklistAnswerInput>> = vec![
        vec![],
        post.iter().chain(post.iter()).cloned().collect(),
        good.clone(),
    ];
    for edit in &edits {
        let mut every = post.clone();
        every.iter_mut().for_each(edit);
        if every != post {
            closing.push(every);
        }
    }
    for answers in closing {
        f.refuses("method_device_permit_close", Kind::Input, |d| {
            d.permit_close(
                PERMIT.into(),
                by("王五", "S-002"),
                answers.clone(),
                Some(site()),
                GoodKey::new(false),
                at(210),
                Lang::En,
            )
        });
    }
}

/// People, places, reasons and gas readings that cannot be right.
fn permit_inputs() {
    let bad_places = [
        PermitLocation {
            latitude: f64::NAN,
            longitude: 0.0,
        },
        PermitLocation {
            latitude: 0.0,
            longitude: f64::INFINITY,
        },
        PermitLocation {
            latitude: f64::NEG_INFINITY,
            longitude: f64::NAN,
        },
        PermitLocation {
            latitude: -90.5,
            longitude: 180.5,
        },
        PermitLocation {
            latitude: f64::MAX,
            longitude: f64::MIN,
        },
    ];
    let bad_people = [by("", ""), by(" ", "S-001"), by("张三", "\t\r\n")];
    use PermitState as S;
    let f = PermitFx::at_state(S::Draft);
    for place in bad_places {
        let code = f.refuses("method_device_permit_submit", Kind::Input, |d| {
            d.permit_submit(
                PERMIT.into(),
                by("张三", "S-001"),
                Some(place),
                GoodKey::new(false),
                at(-120),
                Lang::En,
            )
        });
        assert_eq!(code, "input.location");
    }
    for who in &bad_people {
        f.refuses("method_device_permit_submit", Kind::Input, |d| {
            d.permit_submit(
                PERMIT.into(),
                who.clone(),
                None,
                GoodKey::new(false),
                at(-120),
                Lang::En,
            )
        });
        f.refuses("method_device_permit_cancel", Kind::Input, |d| {
            d.permit_cancel(PERMIT.into(), who.clone(), "x".into(), at(-120), Lang::En)
        });
    }
    // Hostile names and reasons: refused or taken as written, never a panic (one huge text).
    for text in hostile_texts()
        .into_iter()
        .filter(|t| t.len() < 1000)
        .chain([huge("焊")])
    {
        let f = PermitFx::at_state(S::Draft);
        f.survives("method_device_permit_submit", |d| {
            d.permit_submit(
                PERMIT.into(),
                PermitActorInput {
                    name: text.clone(),
                    id: text.clone(),
                    role: Some(text.clone()),
                },
                None,
                GoodKey::new(false),
                at(-120),
                Lang::En,
            )
        });
        f.survives("method_device_permit_cancel", |d| {
            d.permit_cancel(
                PERMIT.into(),
                by("张三", "S-001"),
                text.clone(),
                at(-110),
                Lang::En,
            )
        });
    }
    for reason in [String::new(), " \n".into()] {
        let f = PermitFx::at_state(S::Checked);
        f.refuses("method_device_permit_reject", Kind::Input, |d| {
            d.permit_reject(
                PERMIT.into(),
                by("周八", "S-004"),
                reason.clone(),
                at(-80),
                Lang::En,
            )
        });
        let f = PermitFx::at_state(S::Active);
        f.refuses("method_device_permit_suspend", Kind::Input, |d| {
            d.permit_suspend(PERMIT.into(), reason.clone(), at(60), Lang::En)
        });
    }
    let f = PermitFx::at_state(S::Checked);
    for place in bad_places {
        f.refuses("method_device_permit_approve", Kind::Input, |d| {
            d.permit_approve(
                PERMIT.into(),
                by("周八", "S-004"),
                Some(place),
                GoodKey::new(true),
                at(-80),
                Lang::En,
            )
        });
    }
    // Gas readings.
    let f = PermitFx::at_state(S::Approved);
    let mut readings = Vec::new();
    for edit in [
        |g: &mut PermitGasInput| g.analyst = String::new(),
        |g: &mut PermitGasInput| g.point = " ".into(),
        |g: &mut PermitGasInput| g.lel_centi_pct = 0,
        |g: &mut PermitGasInput| g.taken_at = Some(i64::MIN),
        |g: &mut PermitGasInput| g.taken_at = Some(i64::MAX),
        |g: &mut PermitGasInput| g.taken_at = Some(NOW + 86_400),
    ] {
        let mut g = gas();
        edit(&mut g);
        readings.push(g);
    }
    for g in readings {
        f.refuses("method_device_permit_record_gas", Kind::Input, |d| {
            d.permit_record_gas(PERMIT.into(), g.clone(), at(-5), Lang::En)
        });
    }
    for g in [
        PermitGasInput {
            lel_centi_pct: u32::MAX,
            concentration_centi_pct: u32::MAX,
            ..gas()
        },
        // Long ago: recorded, and stale.
        PermitGasInput {
            taken_at: Some(-1),
            ..gas()
        },
        PermitGasInput {
            analyst: huge("析"),
            point: huge("\u{0}"),
            ..gas()
        },
    ] {
        f.survives("method_device_permit_record_gas", |d| {
            d.permit_record_gas(PERMIT.into(), g.clone(), at(-5), Lang::En)
        });
    }
    // A start by a welder not on the permit, and hostile welder texts.
    let f = PermitFx::at_state(S::Approved);
    call("method_device_permit_record_gas", || {
        f.d.permit_record_gas(PERMIT.into(), gas(), at(-5), Lang::En)
    })
    .unwrap();
    for welder in hostile_texts() {
        f.refuses("method_device_permit_start", Kind::Input, |d| {
            d.permit_start(PERMIT.into(), true, Some(welder.clone()), NOW, Lang::En)
        });
    }
}

/// Keys that refuse, answer garbage, have public keys of the wrong length or do not claim the
/// presence approval needs: a typed signing error, nothing saved.
fn permit_signers() {
    let bad = || -> Vec<Arc<dyn PersonSigner>> {
        vec![
            Arc::new(RefusingKey(vec![2; 33])),
            Arc::new(GarbageSigner(
                SoftwareSigner::generate().unwrap().public_key(),
            )),
            Arc::new(GarbageSigner(Vec::new())),
            GoodKey::with_public_key(vec![2; 5]),
            GoodKey::with_public_key(vec![4; 65]),
            GoodKey::with_public_key(vec![2; 1 << 20]),
        ]
    };
    use PermitState as S;
    let f = PermitFx::at_state(S::Draft);
    for key in bad() {
        f.refuses("method_device_permit_submit", Kind::Signing, |d| {
            d.permit_submit(
                PERMIT.into(),
                by("张三", "S-001"),
                None,
                key,
                at(-120),
                Lang::En,
            )
        });
    }
    let f = PermitFx::at_state(S::Submitted);
    for key in bad() {
        f.refuses("method_device_permit_site_check", Kind::Signing, |d| {
            d.permit_site_check(
                PERMIT.into(),
                by("孙七", "S-003"),
                site_check_answers(),
                Some(site()),
                key,
                at(-100),
                Lang::En,
            )
        });
    }
    let f = PermitFx::at_state(S::Checked);
    let mut approvers = bad();
    approvers.push(GoodKey::new(false));
    for key in approvers {
        f.refuses("method_device_permit_approve", Kind::Signing, |d| {
            d.permit_approve(
                PERMIT.into(),
                by("周八", "S-004"),
                Some(site()),
                key,
                at(-80),
                Lang::En,
            )
        });
    }
    let f = PermitFx::at_state(S::Completed);
    for key in bad() {
        f.refuses("method_device_permit_close", Kind::Signing, |d| {
            d.permit_close(
                PERMIT.into(),
                by("王五", "S-002"),
                answers(&[ChecklistSection::PostWork], at(210)),
                Some(site()),
                key,
                at(210),
                Lang::En,
            )
        });
    }
    // Site codes: signed with bad keys, for unknown permits, before approval, at absurd times.
    let f = PermitFx::at_state(S::Approved);
    // Keys other than the approver's are refused as such, before anything is signed.
    for key in bad() {
        f.refuses("method_device_permit_site_code", Kind::Any, |d| {
            d.permit_site_code(PERMIT.into(), key, at(-75))
        });
    }
    for id in ["no-such-permit".to_owned(), String::new(), huge("P")] {
        f.refuses("method_device_permit_site_code", Kind::Input, |d| {
            d.permit_site_code(id.clone(), GoodKey::new(true), at(-75))
        });
    }
    for now in [i64::MIN, i64::MAX] {
        f.survives("method_device_permit_site_code", |d| {
            d.permit_site_code(PERMIT.into(), f.approver.clone(), now)
        });
    }
    let code = call("method_device_permit_site_code", || {
        f.d.permit_site_code(PERMIT.into(), f.approver.clone(), at(-75))
    })
    .unwrap();
    let f = PermitFx::at_state(S::Checked);
    f.refuses("method_device_permit_site_code", Kind::Input, |d| {
        d.permit_site_code(PERMIT.into(), GoodKey::new(true), at(-75))
    });
    // Scanning: hostile texts and a code with one character changed are answers, not errors.
    let mut texts = hostile_texts();
    let mut flipped = code.text.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    texts.push(String::from_utf8(flipped).unwrap());
    for text in texts {
        for lang in [Lang::Zh, Lang::En] {
            let scan = call("method_device_permit_scan_code", || {
                f.d.permit_scan_code(text.clone(), lang)
            })
            .unwrap();
            assert!(!scan.valid && scan.reason.is_some(), "{text:.40}");
        }
    }
    let scan = call("method_device_permit_scan_code", || {
        f.d.permit_scan_code(code.text.clone(), Lang::En)
    })
    .unwrap();
    assert!(scan.valid);
    // Verify and show: unknown permits are typed errors.
    for id in [
        "no-such-permit".to_owned(),
        String::new(),
        huge("P"),
        "\0".into(),
    ] {
        f.refuses("method_device_permit_verify", Kind::Input, |d| {
            d.permit_verify(id.clone(), Lang::Zh)
        });
        f.refuses("method_device_permit_show", Kind::Input, |d| {
            d.permit_show(id.clone(), NOW, Lang::En)
        });
    }
    let v = call("method_device_permit_verify", || {
        f.d.permit_verify(PERMIT.into(), Lang::En)
    })
    .unwrap();
    assert!(!v.valid, "no signer directory synced");
}

fn permit_functions() {
    for lang in [Lang::Zh, Lang::En] {
        let checklist = call("func_permit_checklist", || permit_checklist(lang)).unwrap();
        assert!(!checklist.items.is_empty());
    }
    for purpose in [
        SignPurpose::PermitSubmit,
        SignPurpose::PermitSiteCheck,
        SignPurpose::PermitApprove,
        SignPurpose::PermitReject,
        SignPurpose::PermitClose,
        SignPurpose::PermitCode,
        SignPurpose::InspectionSeal,
        SignPurpose::CredentialPresentation,
    ] {
        let asks = call("func_sign_purpose_requires_presence", || {
            sign_purpose_requires_presence(purpose)
        });
        assert_eq!(
            asks,
            matches!(
                purpose,
                SignPurpose::PermitApprove | SignPurpose::PermitReject
            ),
            "{purpose:?}"
        );
    }
}

/// Every permit export refuses hostile input and steps out of order, saving nothing.
fn permits() {
    let started = std::time::Instant::now();
    for (name, section) in [
        ("functions", permit_functions as fn()),
        ("drafts", permit_drafts),
        ("inputs", permit_inputs),
        ("answers", permit_answers),
        ("signers", permit_signers),
        ("out of order", permits_out_of_order),
        ("bad times", permits_at_bad_times),
    ] {
        let t = std::time::Instant::now();
        section();
        eprintln!("permits, {name}: {:?}", t.elapsed());
    }
    eprintln!("permit hostile test: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Scanning with settings (one code or all, a region of the frame): hostile regions.

fn scanning_with_settings() {
    use weldguard_ffi::scan::{
        ExpectedCodes, ScanRegion, ScanSettings, scan_frame_buffer, scan_frame_with,
        scan_image_with,
    };
    let (w, h) = (64u32, 48u32);
    let luma = vec![0x80u8; (w * h) as usize];
    let region = |x, y, width, height| ScanRegion {
        x,
        y,
        width,
        height,
    };
    let regions = [
        region(0, 0, 0, 0),
        region(0, 0, 0, h),
        region(0, 0, w, 0),
        region(0, 0, w + 1, h),
        region(0, 0, w, h + 1),
        region(w, 0, 1, 1),
        region(0, h, 1, 1),
        region(u32::MAX, u32::MAX, 1, 1),
        region(1, 1, u32::MAX, u32::MAX),
        region(u32::MAX, u32::MAX, u32::MAX, u32::MAX),
        region(w / 2, h / 2, u32::MAX - w / 2 + 1, 2),
    ];
    let mut file = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_raw(w, h, luma.clone())
        .unwrap()
        .write_to(&mut file, image::ImageFormat::Png)
        .unwrap();
    let file = file.into_inner();
    for mode in [ScanMode::Live, ScanMode::Photo] {
        for expected in [ExpectedCodes::One, ExpectedCodes::All] {
            for r in regions {
                let settings = ScanSettings {
                    mode,
                    expected,
                    region: Some(r),
                };
                let code = refused("func_scan_frame_with", || {
                    scan_frame_with(luma.clone(), w, h, w, settings)
                });
                assert!(code.starts_with("scan."), "{code}");
                let code = refused("func_scan_frame_buffer", || {
                    scan_frame_buffer(&luma, w, h, w, settings)
                });
                assert!(code.starts_with("scan."), "{code}");
                let code = refused("func_scan_image_with", || {
                    block_on(scan_image_with(file.clone(), settings))
                });
                assert!(code.starts_with("scan."), "{code}");
            }
            // A frame that does not fit its bytes is refused whatever the region.
            let settings = ScanSettings {
                mode,
                expected,
                region: Some(region(0, 0, 1, 1)),
            };
            refused("func_scan_frame_with", || {
                scan_frame_with(vec![0; 10], u32::MAX, u32::MAX, u32::MAX, settings)
            });
            refused("func_scan_frame_buffer", || {
                scan_frame_buffer(&[0; 10], u32::MAX, u32::MAX, u32::MAX, settings)
            });
            refused("func_scan_frame_buffer", || {
                scan_frame_buffer(&[], w, h, w, settings)
            });
            refused("func_scan_image_with", || {
                block_on(scan_image_with(b"not a photo".to_vec(), settings))
            });
            // Regions inside the frame (and none) are answers: a flat frame has no code.
            for r in [
                None,
                Some(region(0, 0, w, h)),
                Some(region(w - 1, h - 1, 1, 1)),
            ] {
                let settings = ScanSettings {
                    mode,
                    expected,
                    region: r,
                };
                let codes = call("func_scan_frame_with", || {
                    scan_frame_with(luma.clone(), w, h, w, settings)
                })
                .unwrap();
                assert!(codes.is_empty());
                let codes = call("func_scan_frame_buffer", || {
                    scan_frame_buffer(&luma, w, h, w, settings)
                })
                .unwrap();
                assert!(codes.is_empty());
                let codes = call("func_scan_image_with", || {
                    block_on(scan_image_with(file.clone(), settings))
                })
                .unwrap();
                assert!(codes.is_empty());
            }
        }
    }
}
