//! What the platform publishes, end to end over loopback against the real server binary: the trust
//! file, the signed revocation status list fetched first, the signed snapshot a first sync loads
//! (resumed after an interruption), drift detection with checksums, issuing codes and rotating the
//! issuer key, and the FFI `Device.sync` with its listener and task handle.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use weldguard_core::codes::{DeviceSigner, ReplayCache, TrustStore, Verifier};
use weldguard_core::domain::{
    Binding, MachineClass, MachineKind, MachineLabel, OperationCategory, Revocation,
    RevocationTarget, WelderCredential,
};
use weldguard_core::store::{RegistryChange, Store};
use weldguard_core::sync::checksum::Collection;
use weldguard_core::sync::protocol::{REGISTRY_FEED, Role};
use weldguard_core::sync::{DriftCheck, RetryPolicy, StatusListCheck, SyncClient, SyncError};
use weldguard_ffi::sync::RegistryCollection;
use weldguard_ffi::{Device, DriftOutcome, SyncListener, SyncStage, SyncTask, WeldGuardError};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "publish-admin-token-0123456789";

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        request_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(2),
    }
}

fn bindings(from: usize, to: usize) -> Vec<RegistryChange> {
    (from..to)
        .map(|i| {
            RegistryChange::Bind(Binding {
                machine_id: format!("FC-M-{i:05}"),
                certificate_no: format!("T{i}"),
            })
        })
        .collect()
}

fn revoke(id: &str) -> RegistryChange {
    RegistryChange::Revoke(Revocation {
        target: RevocationTarget::Licence,
        id: id.into(),
    })
}

struct Setup {
    server: ServerProcess,
    _data: TempDir,
    admin: SyncClient,
}

fn setup() -> Setup {
    let data = TempDir::new("publish-server");
    let server = ServerProcess::start(SERVER, data.path(), ADMIN);
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    Setup {
        server,
        _data: data,
        admin,
    }
}

fn token(s: &Setup, role: Role) -> String {
    let code = s.admin.create_enrolment("张三", role).unwrap();
    SyncClient::new(&s.server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, "04aa", "publish")
        .unwrap()
        .token
}

fn trust_of(client: &SyncClient) -> TrustStore {
    let file = client.trust_file().unwrap();
    TrustStore::from_json(&serde_json::to_string(&file).unwrap()).unwrap()
}

#[test]
fn a_first_sync_loads_the_signed_snapshot_resumes_it_and_keeps_the_status_list() {
    let s = setup();
    // 45,000 bindings: three snapshot chunks of at most 20,000.
    s.admin.write_registry(&bindings(0, 45_000)).unwrap();
    s.admin
        .write_registry(&[revoke("T7"), revoke("T8")])
        .unwrap();
    let welder = SyncClient::new(&s.server.url(), Some(token(&s, Role::Welder)), policy()).unwrap();
    let trust = trust_of(&welder);
    assert_eq!(trust.keys().len(), 1);
    let client = welder.with_trust(trust);
    let dir = TempDir::new("publish-device");
    let store = Store::open(dir.path().join("d.sqlite")).unwrap();

    // Interrupted after the first chunk (the user left the screen): the chunk stays applied.
    let cancel = AtomicBool::new(false);
    let err = client
        .sync(
            &store,
            &mut |p| {
                if p.total == Some(45_002) && p.done > 0 {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
            &cancel,
        )
        .unwrap_err();
    assert!(matches!(err, SyncError::Cancelled), "{err:?}");
    let progress = store
        .snapshot_progress()
        .unwrap()
        .expect("a download under way");
    assert_eq!(progress.next_chunk, 1);
    assert_eq!(store.registry_stats().unwrap().bindings, 20_000);
    assert_eq!(store.sync_cursor(REGISTRY_FEED).unwrap(), None);
    let info = store.status_list_info().unwrap().expect("fetched first");
    assert_eq!(info.entries, 2);

    // The next sync resumes at chunk 1 and then pulls the feed after the snapshot's cursor.
    s.admin.write_registry(&bindings(45_000, 45_010)).unwrap();
    let report = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(report.snapshot_chunks, 2, "chunks 1 and 2 only");
    assert_eq!(report.pages, 1, "then the ten changes after the snapshot");
    assert!(matches!(
        report.status_list,
        StatusListCheck::Updated { .. } | StatusListCheck::Unchanged { .. }
    ));
    assert_eq!(store.snapshot_progress().unwrap(), None);
    let stats = store.registry_stats().unwrap();
    assert_eq!((stats.bindings, stats.revocations), (45_010, 2));

    // Checksums agree; a row lost on the device is drift in its collection, and a refetch heals it.
    assert_eq!(
        client
            .check_drift(&store, &mut |_| {}, &AtomicBool::new(false))
            .unwrap(),
        DriftCheck::InSync
    );
    {
        let conn = rusqlite::Connection::open(dir.path().join("d.sqlite")).unwrap();
        conn.execute("DELETE FROM bindings WHERE machine_id = 'FC-M-00042'", [])
            .unwrap();
    }
    match client
        .check_drift(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap()
    {
        DriftCheck::Refetched {
            collections,
            report,
        } => {
            assert_eq!(collections, vec![Collection::Bindings]);
            // Only the drifted collection comes again; the revocations are not fetched.
            assert_eq!(report.refetched_rows, 45_010);
            assert_eq!(report.pulled_changes, 0, "nothing changed after the cursor");
        }
        other => panic!("expected a refetch, got {other:?}"),
    }
    let stats = store.registry_stats().unwrap();
    assert_eq!((stats.bindings, stats.revocations), (45_010, 2));
    assert_eq!(
        client
            .check_drift(&store, &mut |_| {}, &AtomicBool::new(false))
            .unwrap(),
        DriftCheck::InSync
    );

    // A refetch cut short resumes at its next page, and changes written meanwhile still arrive.
    {
        let conn = rusqlite::Connection::open(dir.path().join("d.sqlite")).unwrap();
        conn.execute("DELETE FROM bindings WHERE machine_id < 'FC-M-00100'", [])
            .unwrap();
    }
    let cancel = AtomicBool::new(false);
    let err = client
        .check_drift(
            &store,
            &mut |p| {
                if p.done >= 5_000 {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
            &cancel,
        )
        .unwrap_err();
    assert!(matches!(err, SyncError::Cancelled), "{err:?}");
    assert_eq!(
        store.registry_stats().unwrap().bindings,
        5_000,
        "one page in"
    );
    s.admin
        .write_registry(&[RegistryChange::Unbind(Binding {
            machine_id: "FC-M-00001".into(),
            certificate_no: "T1".into(),
        })])
        .unwrap();
    let report = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(
        report.refetched_rows,
        45_010 - 5_000,
        "the rest of the bindings"
    );
    assert_eq!(report.pulled_changes, 1);
    assert_eq!(store.registry_stats().unwrap().bindings, 45_009);
    assert_eq!(
        client
            .check_drift(&store, &mut |_| {}, &AtomicBool::new(false))
            .unwrap(),
        DriftCheck::InSync
    );

    // A lifted revocation leaves the next status list; the device follows.
    s.admin
        .write_registry(&[RegistryChange::Unrevoke(Revocation {
            target: RevocationTarget::Licence,
            id: "T8".into(),
        })])
        .unwrap();
    let report = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert!(
        matches!(report.status_list, StatusListCheck::Updated { .. }),
        "{:?}",
        report.status_list
    );
    assert_eq!(store.status_list_info().unwrap().unwrap().entries, 1);
    let ids: Vec<String> = store
        .revocations()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec!["T7".to_owned()]);
}

/// Snapshots live in the database: a device that started a snapshot through one server process
/// finishes it through another, although the registry changed in between (a process cutting its
/// own snapshot would have made the device start over).
#[test]
fn a_snapshot_cut_by_one_server_process_is_served_by_another() {
    let data = ServerData::new(ServerBackend::Sqlite, "publish-shared").unwrap();
    let first = ServerProcess::start_sharing(SERVER, &data, ADMIN);
    let second = ServerProcess::start_sharing(SERVER, &data, ADMIN);
    let admin = SyncClient::new(&first.url(), Some(ADMIN.into()), policy()).unwrap();
    admin.write_registry(&bindings(0, 45_000)).unwrap();
    let code = admin.create_enrolment("张三", Role::Welder).unwrap();
    let token = SyncClient::new(&first.url(), None, policy())
        .unwrap()
        .enrol(&code.code, "04aa", "publish")
        .unwrap()
        .token;
    let via_first = SyncClient::new(&first.url(), Some(token.clone()), policy()).unwrap();
    let trust = trust_of(&via_first);
    let via_first = via_first.with_trust(trust.clone());
    let dir = TempDir::new("publish-shared-device");
    let store = Store::open(dir.path().join("d.sqlite")).unwrap();
    let cancel = AtomicBool::new(false);
    let err = via_first
        .sync(
            &store,
            &mut |p| {
                if p.total == Some(45_000) && p.done > 0 {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
            &cancel,
        )
        .unwrap_err();
    assert!(matches!(err, SyncError::Cancelled), "{err:?}");
    assert_eq!(store.snapshot_progress().unwrap().unwrap().next_chunk, 1);

    admin.write_registry(&bindings(45_000, 45_005)).unwrap();
    let via_second = SyncClient::new(&second.url(), Some(token), policy())
        .unwrap()
        .with_trust(trust);
    let report = via_second
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(
        report.snapshot_chunks, 2,
        "chunks 1 and 2 of the same snapshot"
    );
    assert_eq!(report.pages, 1, "then the changes after it");
    assert_eq!(report.pulled_changes, 25_005, "two chunks and five changes");
    assert_eq!(store.registry_stats().unwrap().bindings, 45_005);
    drop((first, second));
}

/// Chunks are stored compressed and sent as stored to clients that accept gzip; others get the
/// exact bytes the manifest's digest covers.
#[test]
fn snapshot_chunks_go_out_gzip_encoded_only_when_accepted() {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};

    let s = setup();
    s.admin.write_registry(&bindings(0, 300)).unwrap();
    let token = token(&s, Role::Inspector);
    let (status, body) = raw_call(s.server.addr, "GET", "/v1/snapshot", Some(&token), None);
    assert_eq!(status, 200, "{body}");
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    let manifest = base64::engine::general_purpose::STANDARD
        .decode(document["document"].as_str().unwrap())
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let manifest =
        weldguard_core::codes::verify_snapshot_manifest(&manifest, &trust_of(&s.admin), now, 60)
            .unwrap();
    assert_eq!(manifest.chunks.len(), 1);

    let get_chunk = |accept: &str| {
        let mut stream = std::net::TcpStream::connect(s.server.addr).unwrap();
        write!(
            stream,
            "GET /v1/snapshot/{}/chunks/0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\n{accept}\r\n",
            manifest.snapshot_id
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(!head.contains("transfer-encoding: chunked"), "{head}");
        (head, response[split + 4..].to_vec())
    };
    let digest = |bytes: &[u8]| <[u8; 32]>::from(Sha256::digest(bytes));

    let (head, plain) = get_chunk("");
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(digest(&plain), manifest.chunks[0].sha256);
    assert_eq!(plain.len() as u64, manifest.chunks[0].bytes);

    let (head, compressed) = get_chunk("Accept-Encoding: gzip\r\n");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(
        compressed.len() * 4 < plain.len(),
        "{} of {}",
        compressed.len(),
        plain.len()
    );
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain);

    let (head, _) = get_chunk("Accept-Encoding: gzip;q=0, identity\r\n");
    assert!(!head.contains("content-encoding"), "gzip refused: {head}");
}

#[test]
fn a_status_list_signed_by_a_key_the_device_does_not_trust_stops_the_sync() {
    let s = setup();
    s.admin.write_registry(&[revoke("T1")]).unwrap();
    let welder = SyncClient::new(&s.server.url(), Some(token(&s, Role::Welder)), policy()).unwrap();
    // A trust store from another platform.
    let other = weldguard_core::codes::IssuerKey::generate(weldguard_core::codes::IssuerAlg::EdDSA)
        .unwrap();
    let mut foreign = TrustStore::new();
    foreign
        .add(weldguard_core::codes::TrustedKey::for_key(&other, 0, None))
        .unwrap();
    let client = welder.with_trust(foreign);
    let dir = TempDir::new("publish-foreign");
    let store = Store::open(dir.path().join("d.sqlite")).unwrap();
    let err = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err();
    assert!(matches!(err, SyncError::StatusList(_)), "{err:?}");
    assert_eq!(store.status_list_info().unwrap(), None, "nothing stored");
    assert_eq!(store.registry_stats().unwrap().revocations, 0);
}

#[test]
fn rotation_keeps_issued_codes_valid_and_only_admins_issue() {
    let s = setup();
    let label = MachineLabel {
        machine_id: "FC-M-00017".into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: "91370983MA3C4X1Y2K".into(),
        region: 370983,
        issued_at: chrono::Utc::now().timestamp() - 60,
    };
    let credential = WelderCredential {
        certificate_no: "T11010519491231002X".into(),
        id_number: "11010519491231002X".into(),
        name: "王五".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        photo_digest: vec![7; 32],
        device_key: weldguard_core::codes::SoftwareSigner::generate()
            .unwrap()
            .public_key(),
    };
    let old_label = s.admin.issue_machine_label(&label).unwrap();
    let old_credential = s.admin.issue_credential(&credential).unwrap();
    let rotated = s.admin.rotate_issuer_key(None).unwrap();
    assert_ne!(rotated.kid, old_label.kid);
    // Codes signed after the rotation carry the new key; a code must be signed after its key
    // starts, so the label's own time moves on too.
    let mut later = label.clone();
    later.issued_at = chrono::Utc::now().timestamp() + 1;
    let new_label = s.admin.issue_machine_label(&later).unwrap();
    assert_eq!(new_label.kid, rotated.kid);

    let trust = trust_of(&s.admin);
    assert_eq!(trust.keys().len(), 2);
    assert!(
        trust.keys().iter().any(|k| k.valid_until.is_some()),
        "the old key's signing ended"
    );
    let revocations = weldguard_core::codes::RevocationSet::new();
    let verifier = Verifier::new(&trust, &revocations);
    let now = chrono::Utc::now().timestamp() + 5;
    let replay = &mut ReplayCache::new(8);
    for code in [&old_label.code, &old_credential.code, &new_label.code] {
        assert!(verifier.verify(code, now, replay).is_ok(), "{code}");
    }

    // Welders, inspectors and supervisors cannot issue codes or rotate keys.
    for role in [Role::Welder, Role::Inspector, Role::Supervisor] {
        let client = SyncClient::new(&s.server.url(), Some(token(&s, role)), policy()).unwrap();
        let err = client.issue_machine_label(&label).unwrap_err();
        assert!(
            matches!(err, SyncError::Refused { status: 403, .. }),
            "{role:?}: {err:?}"
        );
        let err = client.rotate_issuer_key(None).unwrap_err();
        assert!(
            matches!(err, SyncError::Refused { status: 403, .. }),
            "{role:?}: {err:?}"
        );
    }
}

/// A shell's listener: counts events, remembers the last.
#[derive(Default)]
struct Listener {
    events: AtomicU64,
    last: Mutex<Option<(SyncStage, u64, Option<u64>)>>,
}

impl SyncListener for Listener {
    fn on_progress(&self, stage: SyncStage, done: u64, total: Option<u64>) {
        self.events.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap() = Some((stage, done, total));
    }

    fn on_token(&self, _token: String, _expires_at_ms: Option<i64>) {
        panic!("Device::sync does not refresh tokens");
    }
}

#[test]
fn the_ffi_device_syncs_with_a_listener_and_a_cancellable_task() {
    let s = setup();
    s.admin.write_registry(&bindings(0, 500)).unwrap();
    s.admin.write_registry(&[revoke("T3")]).unwrap();
    let token = token(&s, Role::Welder);
    let dir = TempDir::new("publish-ffi");
    let device = Device::open(dir.path().join("d.sqlite").display().to_string()).unwrap();
    let trust = SyncClient::new(&s.server.url(), Some(token.clone()), policy())
        .unwrap()
        .trust_file()
        .unwrap();
    device
        .set_trust(serde_json::to_string(&trust).unwrap(), 1_764_000_000)
        .unwrap();

    // A task cancelled before it starts stops at once, with a typed, non-retryable error.
    let task = SyncTask::new();
    task.cancel();
    let listener = Arc::new(Listener::default());
    let err = weldguard_tests::block_on(device.clone().sync(
        s.server.url(),
        token.clone(),
        listener.clone(),
        task,
        weldguard_tests::now_unix(),
    ))
    .unwrap_err();
    match err {
        WeldGuardError::Sync {
            code, retryable, ..
        } => {
            assert_eq!(code, "sync.cancelled");
            assert!(!retryable);
        }
        other => panic!("{other:?}"),
    }

    let summary = weldguard_tests::block_on(device.clone().sync(
        s.server.url(),
        token.clone(),
        listener.clone(),
        SyncTask::new(),
        weldguard_tests::now_unix(),
    ))
    .unwrap();
    assert_eq!(summary.pulled_changes, 501);
    assert_eq!(summary.snapshot_chunks, 1);
    assert!(summary.status_list_sequence.is_some());
    assert!(listener.events.load(Ordering::Relaxed) >= 2);
    assert_eq!(
        *listener.last.lock().unwrap(),
        Some((SyncStage::Pull, 501, Some(501)))
    );
    let status = device
        .revocation_status(chrono::Utc::now().timestamp())
        .unwrap()
        .unwrap();
    assert_eq!(status.entries, 1);
    assert!(status.age_secs < 60);

    // The drift check through the FFI: in sync, then a lost row is refetched with its collection.
    let drift = weldguard_tests::block_on(device.clone().check_drift(
        s.server.url(),
        token.clone(),
        listener.clone(),
        SyncTask::new(),
    ))
    .unwrap();
    assert_eq!(drift, DriftOutcome::InSync);
    {
        let conn = rusqlite::Connection::open(dir.path().join("d.sqlite")).unwrap();
        conn.execute("DELETE FROM revocations", []).unwrap();
    }
    let drift = weldguard_tests::block_on(device.clone().check_drift(
        s.server.url(),
        token.clone(),
        listener.clone(),
        SyncTask::new(),
    ))
    .unwrap();
    assert_eq!(
        drift,
        DriftOutcome::Refetched {
            collections: vec![RegistryCollection::Revocations],
            refetched_rows: 1,
        }
    );

    // A wrong token is a typed refusal, not a panic.
    let err = weldguard_tests::block_on(device.clone().sync(
        s.server.url(),
        "nope".into(),
        listener,
        SyncTask::new(),
        weldguard_tests::now_unix(),
    ))
    .unwrap_err();
    assert!(
        matches!(err, WeldGuardError::Sync { ref code, .. } if code == "sync.unauthorized"),
        "{err:?}"
    );
}
