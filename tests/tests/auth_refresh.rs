//! Token expiry and refresh end to end, against the real server binary with a 2-second token life:
//! a device syncs, its token expires, the next sync refreshes it exactly once with the device key
//! (the new token reaches the caller's callback or the FFI listener), the old token is answered
//! `auth.token_expired` and the new one works; a replayed nonce, a foreign signature and an
//! unknown device are refused with their codes and change nothing. `auth_refresh_postgres.rs`
//! runs the same flows on PostgreSQL.
//!
//! Not covered: a disabled device cannot refresh at the HTTP level, because the server has no
//! endpoint to disable a device yet (the database refuses it; see the server's db tests).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weldguard_core::codes::{DeviceSigner, SoftwareSigner, to_hex};
use weldguard_core::domain::Binding;
use weldguard_core::store::{NewWorkSession, RegistryChange, Store};
use weldguard_core::sync::client::RefreshedToken;
use weldguard_core::sync::protocol::{Role, token_refresh_message};
use weldguard_core::sync::{RetryPolicy, SyncClient, SyncError};
use weldguard_ffi::functions::DeviceKey;
use weldguard_ffi::{Device as FfiDevice, SyncListener, SyncStage, SyncTask, WeldGuardError};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "auth-admin-token-0123456789";
/// Device tokens live this long on the test servers.
const TTL_SECS: u64 = 2;
/// 2025-11-29T00:00:00Z
const T0: i64 = 1_764_374_400_000;

#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

fn start_server() -> Option<ServerProcess> {
    let data = ServerData::new(crate::BACKEND, "auth")?;
    Some(ServerProcess::start_with_token_ttl(
        SERVER, data, ADMIN, TTL_SECS,
    ))
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

fn wait_past_ttl() {
    std::thread::sleep(Duration::from_millis(TTL_SECS * 1000 + 600));
}

struct Enrolled {
    device_id: String,
    token: String,
    expires_at_ms: Option<i64>,
}

fn enrol(server: &ServerProcess, key: &SoftwareSigner, role: Role) -> Enrolled {
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let code = admin.create_enrolment("张三", role).unwrap();
    let answer = SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, &to_hex(&key.public_key()), "phone")
        .unwrap();
    Enrolled {
        device_id: answer.device_id,
        token: answer.token,
        expires_at_ms: answer.token_expires_at_ms,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn work(store: &Store, n: usize, offset: usize) {
    for i in offset..offset + n {
        let at = T0 + i as i64 * 60_000;
        store
            .record_work_session(
                NewWorkSession {
                    machine_id: "FC-M-00001".into(),
                    certificate_no: "T370983199001010012".into(),
                    started_at_ms: at,
                    allowed: true,
                    reason_codes: vec![],
                    permit_id: None,
                    position: None,
                },
                at,
            )
            .unwrap();
    }
}

fn bind(i: u32) -> RegistryChange {
    RegistryChange::Bind(Binding {
        machine_id: format!("FC-M-{i:05}"),
        certificate_no: "T370983199001010012".into(),
    })
}

/// (status, error code) of an answer.
fn code_of((status, body): (u16, String)) -> (u16, String) {
    let code = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

#[test]
fn an_expired_token_is_refreshed_once_with_the_device_key_and_the_old_one_is_refused() {
    let Some(server) = start_server() else {
        return;
    };
    let key = Arc::new(SoftwareSigner::generate().unwrap());
    let before = now_ms();
    let enrolled = enrol(&server, &key, Role::Welder);
    let expires = enrolled.expires_at_ms.expect("device tokens expire");
    assert!(
        (before + 1000 * TTL_SECS as i64..=now_ms() + 1000 * TTL_SECS as i64).contains(&expires),
        "the enrolment answer carries the expiry"
    );

    let dir = TempDir::new("auth-device");
    let store = Store::open(dir.path().join("d.sqlite")).unwrap();
    let saved: Arc<Mutex<Vec<RefreshedToken>>> = Arc::default();
    let sink = saved.clone();
    let client = SyncClient::new(&server.url(), Some(enrolled.token.clone()), policy())
        .unwrap()
        .with_refresh(&enrolled.device_id, key.clone(), move |t| {
            sink.lock().unwrap().push(t.clone())
        });
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    admin.write_registry(&[bind(1)]).unwrap();
    work(&store, 3, 0);
    let first = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(first.applied, 3);
    assert_eq!(first.pulled_changes, 1);
    assert_eq!(first.token_refreshes as usize, saved.lock().unwrap().len());
    let refreshed_before = saved.lock().unwrap().len();

    wait_past_ttl();
    // Offline work and registry changes meanwhile; the sync goes through after one refresh.
    work(&store, 2, 3);
    admin.write_registry(&[bind(2), bind(3)]).unwrap();
    let current = client.token().unwrap();
    assert_eq!(
        code_of(raw_call(server.addr, "GET", "/v1/me", Some(&current), None)),
        (401, "auth.token_expired".to_owned())
    );
    let second = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(second.token_refreshes, 1, "exactly one refresh");
    assert_eq!(second.applied, 2);
    assert_eq!(second.pulled_changes, 2);
    let tokens = saved.lock().unwrap().clone();
    assert_eq!(tokens.len(), refreshed_before + 1, "the callback got it");
    let new = tokens.last().unwrap();
    assert_eq!(client.token().as_deref(), Some(new.token.as_str()));
    assert!(new.expires_at_ms.unwrap() > now_ms());

    // The old token is refused as expired, the new one works.
    assert_eq!(
        code_of(raw_call(server.addr, "GET", "/v1/me", Some(&current), None)),
        (401, "auth.token_expired".to_owned())
    );
    let (status, _) = raw_call(server.addr, "GET", "/v1/me", Some(&new.token), None);
    assert_eq!(status, 200);
    // A client without the device key stops with a clear, non-retried error.
    let keyless = SyncClient::new(&server.url(), Some(current), policy()).unwrap();
    let err = keyless.identity().unwrap_err();
    assert!(matches!(err, SyncError::TokenExpired(_)), "{err:?}");
    // Only `auth.token_expired` triggers a refresh: a forged token is refused as it was.
    let refreshed = Arc::new(Mutex::new(0));
    let seen = refreshed.clone();
    let forged = SyncClient::new(&server.url(), Some("forged".into()), policy())
        .unwrap()
        .with_refresh(&enrolled.device_id, key.clone(), move |_| {
            *seen.lock().unwrap() += 1
        });
    let err = forged.identity().unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized(_)), "{err:?}");
    assert_eq!(*refreshed.lock().unwrap(), 0);
    assert_eq!(forged.token().as_deref(), Some("forged"));
    // The bootstrap admin's token does not expire.
    assert_eq!(admin.identity().unwrap().role, Role::Admin);
    // An unknown token is still `auth.bad_token`.
    assert_eq!(
        code_of(raw_call(server.addr, "GET", "/v1/me", Some("forged"), None)),
        (401, "auth.bad_token".to_owned())
    );
}

#[test]
fn replayed_nonces_foreign_keys_and_unknown_devices_are_refused() {
    let Some(server) = start_server() else {
        return;
    };
    let key = SoftwareSigner::generate().unwrap();
    let other = SoftwareSigner::generate().unwrap();
    let enrolled = enrol(&server, &key, Role::Inspector);
    let id = &enrolled.device_id;
    let challenge = |device_id: &str| {
        raw_call(
            server.addr,
            "POST",
            "/v1/auth/challenge",
            None,
            Some(&serde_json::json!({ "device_id": device_id }).to_string()),
        )
    };
    let refresh = |nonce: &str, signer: &SoftwareSigner| {
        let signature = to_hex(&signer.sign(&token_refresh_message(id, nonce)).unwrap());
        raw_call(
            server.addr,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(
                &serde_json::json!({ "device_id": id, "nonce": nonce, "signature": signature })
                    .to_string(),
            ),
        )
    };
    let (status, body) = challenge(id);
    assert_eq!(status, 200, "{body}");
    let nonce = serde_json::from_str::<serde_json::Value>(&body).unwrap()["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another key's signature: refused, nothing changed (the nonce still works after).
    assert_eq!(
        code_of(refresh(&nonce, &other)),
        (401, "auth.bad_signature".to_owned())
    );
    let (status, body) = refresh(&nonce, &key);
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        raw_call(server.addr, "GET", "/v1/me", Some(&token), None).0,
        200
    );
    assert_eq!(
        code_of(raw_call(
            server.addr,
            "GET",
            "/v1/me",
            Some(&enrolled.token),
            None
        )),
        (401, "auth.token_expired".to_owned()),
        "the token before the refresh stops working"
    );
    // Replayed: refused, and the token it bought stays the device's token.
    assert_eq!(
        code_of(refresh(&nonce, &key)),
        (401, "auth.bad_nonce".to_owned())
    );
    assert_eq!(
        raw_call(server.addr, "GET", "/v1/me", Some(&token), None).0,
        200
    );
    assert_eq!(
        code_of(challenge("no-such-device")),
        (401, "auth.unknown_device".to_owned())
    );
    assert_eq!(
        code_of(refresh("made-up", &key)),
        (401, "auth.bad_nonce".to_owned())
    );

    // A client whose key is not the enrolled one: the refresh fails once, clearly, not retried.
    wait_past_ttl();
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let client = SyncClient::new(&server.url(), Some(token), policy())
        .unwrap()
        .with_refresh(id, Arc::new(other), move |_| *seen.lock().unwrap() += 1);
    let dir = TempDir::new("auth-wrong-key");
    let store = Store::open(dir.path().join("d.sqlite")).unwrap();
    let err = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_err();
    match &err {
        SyncError::RefreshFailed { code, .. } => assert_eq!(code, "auth.bad_signature"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*calls.lock().unwrap(), 0);
    let ffi: WeldGuardError = err.into();
    assert!(
        matches!(ffi, WeldGuardError::Sync { retryable: false, ref code, .. } if code == "sync.refresh_failed"),
        "{ffi:?}"
    );
}

/// The phone's key as a shell would hand it over.
struct PhoneKey(SoftwareSigner);

impl DeviceKey for PhoneKey {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, WeldGuardError> {
        Ok(self.0.sign(&message).unwrap())
    }
}

/// A shell's listener that keeps the tokens it is given (in the Keystore, on a phone).
#[derive(Default)]
struct Keystore {
    tokens: Mutex<Vec<(String, Option<i64>)>>,
}

impl SyncListener for Keystore {
    fn on_progress(&self, _stage: SyncStage, _done: u64, _total: Option<u64>) {}

    fn on_token(&self, token: String, expires_at_ms: Option<i64>) {
        self.tokens.lock().unwrap().push((token, expires_at_ms));
    }
}

#[test]
fn the_ffi_device_refreshes_with_its_key_and_hands_the_token_to_the_listener() {
    let Some(server) = start_server() else {
        return;
    };
    let key = SoftwareSigner::generate().unwrap();
    let secret = key.secret();
    let enrolled = enrol(&server, &key, Role::Supervisor);
    let dir = TempDir::new("auth-ffi");
    let device = FfiDevice::open(dir.path().join("p.sqlite").to_str().unwrap().into()).unwrap();
    SyncClient::new(&server.url(), Some(ADMIN.into()), policy())
        .unwrap()
        .write_registry(&[bind(7)])
        .unwrap();
    wait_past_ttl();
    let keystore = Arc::new(Keystore::default());
    let phone_key = Arc::new(PhoneKey(SoftwareSigner::from_secret(&secret).unwrap()));
    let summary = weldguard_tests::block_on(device.clone().sync_with_key(
        server.url(),
        enrolled.token.clone(),
        enrolled.device_id.clone(),
        phone_key.clone(),
        keystore.clone(),
        SyncTask::new(),
        weldguard_tests::now_unix(),
    ))
    .unwrap();
    assert_eq!(summary.token_refreshes, 1);
    assert_eq!(summary.pulled_changes, 1);
    let tokens = keystore.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "on_token once");
    let (token, expires) = &tokens[0];
    assert!(expires.unwrap() > now_ms());
    assert_eq!(
        raw_call(server.addr, "GET", "/v1/me", Some(token), None).0,
        200
    );
    // The stored token syncs without another refresh.
    let again = weldguard_tests::block_on(device.clone().sync_with_key(
        server.url(),
        token.clone(),
        enrolled.device_id,
        phone_key,
        keystore.clone(),
        SyncTask::new(),
        weldguard_tests::now_unix(),
    ))
    .unwrap();
    assert_eq!(again.token_refreshes, 0);
    // Without the key, an expired token is an error the shell can recognise.
    let err = weldguard_tests::block_on(device.clone().sync(
        server.url(),
        enrolled.token,
        keystore,
        SyncTask::new(),
        weldguard_tests::now_unix(),
    ))
    .unwrap_err();
    assert!(
        matches!(&err, WeldGuardError::Sync { code, retryable: false, .. } if code == "sync.token_expired"),
        "{err:?}"
    );
}
