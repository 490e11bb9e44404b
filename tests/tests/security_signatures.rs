//! Low-S only, against the real server binary on SQLite and on PostgreSQL (issue 14, item 3). An
//! ECDSA signature `(r, s)` has a twin `(r, n − s)` that the bare equation accepts; before, anyone
//! who could pull a permit could push a copy of its last step carrying the twin under a new record
//! key, and it verified (and could win the conflict tie-break on its different digest).
//!
//! - A welder, a site checker and an approver push a permit chain to approved, each step signed
//!   by its enrolled device key. Another supervisor's device pulls the permit and pushes a copy of the approval
//!   whose signature is the high-S twin, under a new step id: rejected with
//!   `permit.signature_broken`, not stored, and the platform's head is unchanged.
//! - A token refresh with the high-S twin of a valid proof: `auth.bad_signature`; the proof itself
//!   then works. A phone whose key answers in the high-S form still refreshes (the core normalises
//!   what the signer returns).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weldguard_core::codes::{
    DeviceSigner, SignerError, SoftwareSigner, es256_is_low_s, es256_twin, sign_normalised, to_hex,
};
use weldguard_core::permit::{Action, PermitState};
use weldguard_core::store::{PermitStepRecord, Store};
use weldguard_core::sync::SyncClient;
use weldguard_core::sync::protocol::{
    PermitPage, PushEntry, PushRequest, PushResponse, PushStatus, Role, token_refresh_message,
};
use weldguard_tests::permits::{DAY, Enrolment, H, Rules, actor, enrol, policy, sync};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "security-signatures-admin-0123";
const PERMIT_ID: &str = "0193a1b2-0000-7000-8000-0000000000e1";

fn code_of((status, body): (u16, String)) -> (u16, String) {
    let code = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

/// The platform's current version of the permit, as `token`'s device pulls it.
fn head(server: &ServerProcess, token: &str) -> PermitStepRecord {
    let (status, body) = raw_call(server.addr, "GET", "/v1/permits", Some(token), None);
    assert_eq!(status, 200, "{body}");
    let page: PermitPage = serde_json::from_str(&body).unwrap();
    page.heads
        .into_iter()
        .find(|h| h.permit_id == PERMIT_ID)
        .expect("the device can pull the permit")
}

fn push(server: &ServerProcess, token: &str, record: &PermitStepRecord) -> PushResponse {
    let request = PushRequest {
        entries: vec![PushEntry {
            idempotency_key: record.step_id.clone(),
            kind: "permit_step".into(),
            payload: serde_json::to_string(record).unwrap(),
        }],
    };
    let body = serde_json::to_string(&request).unwrap();
    let (status, answer) = raw_call(server.addr, "POST", "/v1/push", Some(token), Some(&body));
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

fn high_s_copy_of_the_last_step_is_refused(backend: ServerBackend) {
    let Some(data) = ServerData::new(backend, "security-signatures") else {
        return;
    };
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
    let rules = Rules::new();
    let ctx = rules.ctx();
    let (welder_key, supervisor_key, approver_key) = (
        SoftwareSigner::generate().unwrap(),
        SoftwareSigner::generate().unwrap(),
        SoftwareSigner::generate().unwrap(),
    );
    let approver_role = rules.approver_role();
    let welder = enrol(
        &server,
        Enrolment {
            name: "张三",
            person_id: "S-001",
            role: Role::Welder,
            permit_roles: &["applicant"],
            key: Some(&welder_key),
        },
    );
    let supervisor = enrol(
        &server,
        Enrolment {
            name: "孙七",
            person_id: "S-003",
            role: Role::Supervisor,
            permit_roles: &["supervisor"],
            key: Some(&supervisor_key),
        },
    );
    let approver = enrol(
        &server,
        Enrolment {
            name: "周八",
            person_id: "S-004",
            role: Role::Supervisor,
            permit_roles: &[approver_role.as_str()],
            key: Some(&approver_key),
        },
    );
    let attacker = enrol(
        &server,
        Enrolment {
            name: "吴九",
            person_id: "S-009",
            role: Role::Supervisor,
            permit_roles: &[],
            key: None,
        },
    );

    // The legitimate chain: drafted and submitted by the welder's device, checked and approved by
    // the supervisor's, each pushed and applied.
    let applicant = actor("张三", "S-001", "applicant");
    let draft = weldguard_core::permit::Permit::draft(
        rules.content(PERMIT_ID),
        &ctx,
        &applicant,
        DAY + 6 * H,
    )
    .unwrap();
    welder
        .store
        .save_permit(None, &draft, None, (DAY + 6 * H) * 1000)
        .unwrap();
    let calendar = weldguard_core::permit::WorkCalendar::default();
    let submit = Action::Submit {
        by: applicant,
        signer: &welder_key,
        calendar: &calendar,
        at: DAY + 7 * H,
        location: None,
    };
    welder
        .store
        .apply_permit_action(PERMIT_ID, &ctx, submit, (DAY + 7 * H) * 1000)
        .unwrap();
    sync(&welder);
    sync(&supervisor);
    let check = Action::SiteCheck {
        by: actor("孙七", "S-003", "supervisor"),
        signer: &supervisor_key,
        answers: rules.answers(DAY + 7 * H + 600),
        at: DAY + 7 * H + 900,
        location: Some(rules.location()),
    };
    supervisor
        .store
        .apply_permit_action(PERMIT_ID, &ctx, check, (DAY + 7 * H + 900) * 1000)
        .unwrap();
    sync(&supervisor);
    sync(&approver);
    let approve = Action::Approve {
        by: actor("周八", "S-004", &approver_role),
        signer: &weldguard_core::codes::PresenceConfirmed(&approver_key),
        at: DAY + 7 * H + 2400,
        location: Some(rules.location()),
    };
    approver
        .store
        .apply_permit_action(PERMIT_ID, &ctx, approve, (DAY + 7 * H + 2400) * 1000)
        .unwrap();
    sync(&approver);

    // The attacker pulls the approved permit.
    let original = head(&server, &attacker.token);
    assert_eq!(original.action, "approve");
    assert_eq!(original.state, PermitState::Approved);
    assert!(
        original
            .permit
            .signatures
            .iter()
            .all(|s| es256_is_low_s(&s.signature)),
        "every device signed low-S"
    );

    // A copy of its last step with the high-S twin of the approval, under a new step id.
    let mut forged = original.clone();
    forged.step_id = "0193a1b2-0000-7000-8000-00000000f0f0".into();
    let last = forged.permit.signatures.last_mut().unwrap();
    last.signature = es256_twin(&last.signature).unwrap();
    forged.digest = to_hex(&weldguard_core::permit::digest(&forged.permit).unwrap());
    assert_ne!(forged.digest, original.digest);
    let answer = push(&server, &attacker.token, &forged);
    let result = &answer.results[0];
    assert_eq!(result.status, PushStatus::Rejected, "{result:?}");
    let reason = result.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("permit.signature_broken"), "{reason}");

    // Nothing changed: the head is the same step and version, and the copy is not on record.
    for token in [ADMIN, attacker.token.as_str(), supervisor.token.as_str()] {
        assert_eq!(head(&server, token), original);
    }
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let keys: Vec<String> = admin
        .records(Some("permit_step"))
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    assert!(!keys.contains(&forged.step_id), "{keys:?}");
    assert_eq!(keys.len(), 4, "draft, submission, site check, approval");
}

/// A phone key that answers in the high-S form (Android Keystore and the Secure Enclave give
/// either).
struct HighSPhone(SoftwareSigner);

impl DeviceSigner for HighSPhone {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let low = self.0.sign(message)?;
        es256_twin(&low).ok_or_else(|| SignerError("not a signature".into()))
    }
}

fn high_s_refresh_proof_is_refused(backend: ServerBackend) {
    let Some(data) = ServerData::new(backend, "security-refresh") else {
        return;
    };
    let server = ServerProcess::start_with_token_ttl(SERVER, data, ADMIN, 2);
    let key = SoftwareSigner::generate().unwrap();
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let code = admin.create_enrolment("张三", Role::Inspector).unwrap();
    let enrolled = SyncClient::new(&server.url(), None, policy())
        .unwrap()
        .enrol(&code.code, &to_hex(&key.public_key()), "phone")
        .unwrap();
    let id = enrolled.device_id.as_str();
    let (status, body) = raw_call(
        server.addr,
        "POST",
        "/v1/auth/challenge",
        None,
        Some(&serde_json::json!({ "device_id": id }).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let nonce = serde_json::from_str::<serde_json::Value>(&body).unwrap()["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = |signature: &[u8]| {
        raw_call(
            server.addr,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(
                &serde_json::json!({ "device_id": id, "nonce": nonce, "signature": to_hex(signature) })
                    .to_string(),
            ),
        )
    };
    let proof = sign_normalised(&key, &token_refresh_message(id, &nonce)).unwrap();
    let twin = es256_twin(&proof).unwrap();
    assert!(es256_is_low_s(&proof) && !es256_is_low_s(&twin));
    assert_eq!(
        code_of(refresh(&twin)),
        (401, "auth.bad_signature".to_owned())
    );
    // The old token still works (nothing changed), and the proof itself is accepted.
    assert_eq!(
        raw_call(server.addr, "GET", "/v1/me", Some(&enrolled.token), None).0,
        200
    );
    let (status, body) = refresh(&proof);
    assert_eq!(status, 200, "{body}");

    // A phone whose key answers high-S refreshes an expired token all the same.
    let phone_key = SoftwareSigner::from_secret(&key.secret()).unwrap();
    let new_token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = Arc::new(Mutex::new(Vec::new()));
    let sink = saved.clone();
    let client = SyncClient::new(&server.url(), Some(new_token), policy())
        .unwrap()
        .with_refresh(id, Arc::new(HighSPhone(phone_key)), move |t| {
            sink.lock().unwrap().push(t.token.clone())
        });
    std::thread::sleep(Duration::from_millis(2_600));
    let dir = TempDir::new("security-refresh");
    let store = Store::open(dir.path().join("d.sqlite")).unwrap();
    let report = client
        .sync(&store, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(report.token_refreshes, 1);
    assert_eq!(saved.lock().unwrap().len(), 1);
}

#[test]
fn a_high_s_copy_of_a_permit_step_is_refused_on_sqlite() {
    high_s_copy_of_the_last_step_is_refused(ServerBackend::Sqlite);
}

#[test]
fn a_high_s_copy_of_a_permit_step_is_refused_on_postgres() {
    high_s_copy_of_the_last_step_is_refused(ServerBackend::Postgres);
}

#[test]
fn a_high_s_refresh_proof_is_refused_on_sqlite() {
    high_s_refresh_proof_is_refused(ServerBackend::Sqlite);
}

#[test]
fn a_high_s_refresh_proof_is_refused_on_postgres() {
    high_s_refresh_proof_is_refused(ServerBackend::Postgres);
}
