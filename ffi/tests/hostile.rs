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
use weldguard_ffi::scan::{ScanMode, scan_frame, scan_image};
use weldguard_ffi::types::DevicePosition;
use weldguard_ffi::{Device, Lang, SyncListener, SyncStage, SyncTask, WeldGuardError};

/// The exports this test calls: `func_*` functions, `constructor_<object>_*` and
/// `method_<object>_*` (the names in the generated header after `uniffi_weldguard_ffi_fn_`).
/// Methods of the traits the shells implement (DeviceKey, SyncListener) are not exports to attack.
const COVERED: &[&str] = &[
    "func_check_id_number",
    "func_present_credential",
    "func_scan_frame",
    "func_scan_image",
    "func_scan_frame_with",
    "func_scan_image_with",
    "func_verify_code",
    "constructor_device_open",
    "constructor_synctask_new",
    "method_device_check_drift",
    "method_device_check_welder",
    "method_device_enrol",
    "method_device_inspections",
    "method_device_outbox_entries",
    "method_device_outbox_summary",
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

/// A real software key.
struct GoodKey(SoftwareSigner);

impl DeviceKey for GoodKey {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError> {
        self.0.sign(&message).map_err(|e| WeldGuardError::Signing {
            code: "signer.failed".into(),
            message_zh: e.0.clone(),
            message_en: e.0,
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
    let key = Arc::new(GoodKey(SoftwareSigner::generate().unwrap()));
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
        Arc::new(GarbageKey) as Arc<dyn DeviceKey>,
        Arc::new(RefusingKey(key.public_key())),
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
// Scanning with settings (one code or all, a region of the frame): hostile regions.

fn scanning_with_settings() {
    use weldguard_ffi::scan::{
        ExpectedCodes, ScanRegion, ScanSettings, scan_frame_with, scan_image_with,
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
                let codes = call("func_scan_image_with", || {
                    block_on(scan_image_with(file.clone(), settings))
                })
                .unwrap();
                assert!(codes.is_empty());
            }
        }
    }
}
