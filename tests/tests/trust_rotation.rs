//! Key rotation reaching a phone, end to end through the application layer (`app::enrol`,
//! `app::sync`, `app::Device`) against the real server binary on loopback: a phone enrols (the
//! platform's trust file becomes its anchor, kept in the profile database), verifies a credential
//! issued under key A; the admin rotates to key B; a credential under B is refused until the
//! phone's next sync brings B (endorsed by A), then verifies, also after the profile is closed and
//! opened again; A's code from before the rotation still verifies.
//!
//! And the attacks on the trust rule (`weldguard_core::codes::rotation`): a key written into the
//! registry feed by an admin token, a key served by a fake platform on the network path (listed
//! bare, self-endorsed, endorsed by another untrusted key), the stolen phone token asking for a
//! rotation or a registry write. None adds a key to the phone.
//!
//! Also the sync service's summary: the permits another device changed, with their new state.
//!
//! `trust_rotation_postgres.rs` runs the same flows on PostgreSQL.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::NaiveDate;
use weldguard_core::app::Device;
use weldguard_core::app::enrol::{EnrolRequest, enrol};
use weldguard_core::app::sync::{DocumentOutcome, SyncRequest, sync, update_trust};
use weldguard_core::codes::rotation::sign_key_endorsement;
use weldguard_core::codes::{
    CodeError, DeviceSigner, IssuerAlg, IssuerKey, SoftwareSigner, TrustedKey, issue_credential,
    to_hex,
};
use weldguard_core::domain::{OperationCategory, WelderCredential};
use weldguard_core::store::{RegistryChange, TrustedIssuerKey};
use weldguard_core::sync::protocol::{NewEnrolment, Role};
use weldguard_core::sync::{RetryPolicy, SyncClient, SyncError};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, TempDir};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "trust-admin-token-0123456789";

#[allow(dead_code)]
const BACKEND: ServerBackend = ServerBackend::Sqlite;

fn start_server() -> Option<ServerProcess> {
    let data = ServerData::new(crate::BACKEND, "trust")?;
    Some(ServerProcess::start_on(SERVER, data, ADMIN))
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn credential(certificate_no: &str) -> WelderCredential {
    WelderCredential {
        certificate_no: certificate_no.into(),
        id_number: "11010519491231002X".into(),
        name: "王五".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2030, 3, 1).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        photo_digest: vec![7; 32],
        device_key: SoftwareSigner::generate().unwrap().public_key(),
    }
}

/// What the phone's verifier says of `code` at `at`.
fn check(device: &Device, code: &str, at: i64) -> Result<(), CodeError> {
    device.with_verifier(|v, replay| v.verify(code, at, replay).map(|_| ()))
}

/// A phone enrolled through `app::enrol`, with its token.
struct Phone {
    _dir: TempDir,
    path: std::path::PathBuf,
    device: Device,
    token: String,
}

fn enrol_phone(server: &ServerProcess, admin: &SyncClient, name: &str) -> Phone {
    enrol_phone_as(server, admin, name, Role::Inspector, &[])
}

fn enrol_phone_as(
    server: &ServerProcess,
    admin: &SyncClient,
    name: &str,
    role: Role,
    permit_roles: &[&str],
) -> Phone {
    let code = admin
        .enrolment(&NewEnrolment {
            person: name.into(),
            role,
            person_id: Some(format!("ID-{name}")),
            permit_roles: permit_roles.iter().map(|r| (*r).to_owned()).collect(),
        })
        .unwrap();
    let dir = TempDir::new("trust-phone");
    let path = dir.path().join("phone.sqlite");
    let device = Device::open(&path).unwrap();
    let enrolled = enrol(
        &device,
        &EnrolRequest {
            server_url: server.url(),
            code: code.code,
            public_key: SoftwareSigner::generate().unwrap().public_key(),
            device_name: "test phone".into(),
        },
        now(),
    )
    .unwrap();
    assert_eq!(enrolled.role, role);
    assert_eq!(
        enrolled.permit_roles,
        Some(
            permit_roles
                .iter()
                .map(|r| (*r).to_owned())
                .collect::<Vec<_>>()
        ),
        "the directory vouches for the roles"
    );
    assert_eq!(enrolled.person_id, format!("ID-{name}"));
    assert!(!enrolled.issuer_keys.is_empty(), "{enrolled:?}");
    assert_eq!(
        device.trust().keys().len(),
        enrolled.issuer_keys.len(),
        "the anchor is held"
    );
    Phone {
        _dir: dir,
        path,
        device,
        token: enrolled.token,
    }
}

fn sync_phone(server_url: &str, phone: &Phone) -> weldguard_core::app::sync::SyncSummary {
    let mut request = SyncRequest::new(server_url, phone.token.clone());
    request.policy = policy();
    sync(
        &phone.device,
        request,
        now(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

#[test]
fn a_rotated_key_reaches_the_phone_at_its_next_sync_and_stays_after_reopening() {
    let Some(server) = start_server() else { return };
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let phone = enrol_phone(&server, &admin, "李四");
    let first = sync_phone(&server.url(), &phone);
    assert!(
        first.trust.checked && first.trust.added.is_empty(),
        "{first:?}"
    );
    assert!(first.trust.refused.is_empty(), "{first:?}");
    assert!(matches!(first.status_list, DocumentOutcome::Updated { .. }));

    let under_a = admin.issue_credential(&credential("T1")).unwrap();
    check(&phone.device, &under_a.code, now()).expect("A's credential verifies");

    let rotated = admin.rotate_issuer_key(None).unwrap();
    assert_ne!(rotated.kid, under_a.kid);
    let under_b = admin.issue_credential(&credential("T2")).unwrap();
    assert_eq!(under_b.kid, rotated.kid);
    assert!(
        matches!(
            check(&phone.device, &under_b.code, now()),
            Err(CodeError::UnknownIssuer { .. })
        ),
        "B is unknown before the sync"
    );

    let second = sync_phone(&server.url(), &phone);
    assert_eq!(second.trust.added, vec![rotated.kid.clone()], "{second:?}");
    assert!(second.trust.refused.is_empty(), "{second:?}");
    // The status list is signed with B now: it verified because the trust came first.
    assert!(
        matches!(
            second.status_list,
            DocumentOutcome::Updated { .. } | DocumentOutcome::Unchanged { .. }
        ),
        "{second:?}"
    );
    check(&phone.device, &under_b.code, now()).expect("B's credential verifies after the sync");
    check(&phone.device, &under_a.code, now()).expect("A's code from before the rotation");

    // Closed and opened again: the trust is loaded from the profile database.
    let Phone {
        _dir, path, token, ..
    } = phone;
    let device = Device::open(&path).unwrap();
    assert_eq!(device.trust().keys().len(), 2);
    check(&device, &under_b.code, now()).expect("B still trusted after reopening");
    check(&device, &under_a.code, now()).expect("A's old code still verifies");
    let a = device
        .trust()
        .keys()
        .iter()
        .find(|k| to_hex(&k.kid) == under_a.kid)
        .cloned()
        .unwrap();
    let rotated_at = a.valid_until.expect("A's validity ended at the rotation");
    let b = device
        .trust()
        .keys()
        .iter()
        .find(|k| to_hex(&k.kid) == rotated.kid)
        .cloned()
        .unwrap();
    assert_eq!(b.valid_from, rotated_at);
    assert_eq!(b.valid_until, None);
    let phone = Phone {
        _dir,
        path: path.clone(),
        device,
        token,
    };
    // The next sync changes nothing.
    let third = sync_phone(&server.url(), &phone);
    assert!(third.trust.added.is_empty() && third.trust.refused.is_empty());

    // A shell that enrolled before the trust was kept hands in its old file at every start
    // (the FFI's set_trust): it does not undo the rotation.
    let Phone {
        _dir: _keep,
        device,
        ..
    } = phone;
    drop(device);
    let ffi = weldguard_ffi::Device::open(path.display().to_string()).unwrap();
    let mut old = weldguard_core::codes::TrustStore::new();
    old.add(TrustedKey {
        valid_until: None,
        ..a
    })
    .unwrap();
    ffi.set_trust(old.to_json(), 1_764_000_000).unwrap();
    assert!(ffi.verify_code(under_b.code.clone(), now()).valid);
    let reopened = Device::open(&path).unwrap();
    assert_eq!(
        reopened
            .trust()
            .keys()
            .iter()
            .find(|k| to_hex(&k.kid) == under_a.kid)
            .unwrap()
            .valid_until,
        Some(rotated_at),
        "A's end stays"
    );

    // Two rotations while a phone is away: the chain A→B→C brings C.
    let away = enrol_phone(&server, &admin, "赵六");
    admin.rotate_issuer_key(Some(IssuerAlg::ES256)).unwrap();
    let c = admin.rotate_issuer_key(None).unwrap();
    let under_c = admin.issue_credential(&credential("T3")).unwrap();
    let summary = sync_phone(&server.url(), &away);
    assert_eq!(summary.trust.added.len(), 2, "{summary:?}");
    assert_eq!(summary.trust.added[1], c.kid);
    check(&away.device, &under_c.code, now()).unwrap();
}

#[test]
fn a_key_in_the_registry_feed_is_not_trusted() {
    let Some(server) = start_server() else { return };
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let phone = enrol_phone(&server, &admin, "王五");
    let rogue = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
    admin
        .write_registry(&[RegistryChange::UpsertIssuerKey(TrustedIssuerKey {
            kid: to_hex(&rogue.kid()),
            algorithm: "EdDSA".into(),
            public_key: rogue.public_key(),
            issuer: "rogue".into(),
        })])
        .unwrap();
    let summary = sync_phone(&server.url(), &phone);
    assert!(summary.pulled_changes >= 1 || summary.snapshot_chunks >= 1);
    assert_eq!(
        phone.device.store().registry_stats().unwrap().issuer_keys,
        1,
        "the feed's row arrived"
    );
    assert!(summary.trust.added.is_empty());
    let forged = issue_credential(&rogue, &credential("T9"), now(), now()).unwrap();
    assert!(matches!(
        check(&phone.device, &forged, now()),
        Err(CodeError::UnknownIssuer { .. })
    ));
    let reopened = Device::open(&phone.path).unwrap();
    assert!(reopened.trust().get(&rogue.kid()).is_none());
}

/// A fake platform on loopback (the network path is the attacker's): answers `GET /v1/trust` with
/// `trust_json` and everything else with 503.
fn fake_platform(trust_json: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let (status, body) = if line.starts_with("GET /v1/trust") {
                ("200 OK", trust_json.clone())
            } else {
                ("503 Service Unavailable", "{}".to_owned())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_fake_platform_on_the_network_path_cannot_add_a_key() {
    let Some(server) = start_server() else { return };
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let phone = enrol_phone(&server, &admin, "钱七");
    let held = phone.device.trust();
    let anchor = held.keys()[0].clone();
    let (x, y) = (
        IssuerKey::generate(IssuerAlg::EdDSA).unwrap(),
        IssuerKey::generate(IssuerAlg::EdDSA).unwrap(),
    );
    let start = now();
    let forged_entry = TrustedKey::for_key(&x, start, None);
    // The genuine key, ended at the forged key's start, and the forged key: listed bare,
    // endorsed by itself, endorsed by another key the phone does not trust.
    let mut offered = weldguard_core::codes::TrustStore::new();
    offered
        .add(TrustedKey {
            valid_until: Some(start),
            ..anchor.clone()
        })
        .unwrap();
    offered.add(forged_entry.clone()).unwrap();
    let mut file = offered.to_file();
    file.endorsements = vec![
        to_hex(&sign_key_endorsement(&x, &forged_entry).unwrap()),
        to_hex(&sign_key_endorsement(&y, &forged_entry).unwrap()),
        "not hex at all".into(),
    ];
    let fake = fake_platform(serde_json::to_string(&file).unwrap());
    let client = SyncClient::new(&fake, Some(phone.token.clone()), policy()).unwrap();
    let change = update_trust(&phone.device, &client, now(), &AtomicBool::new(false)).unwrap();
    assert!(change.checked);
    assert!(change.added.is_empty(), "{change:?}");
    assert_eq!(change.refused.len(), 1, "{change:?}");
    assert_eq!(change.refused[0].kid, to_hex(&x.kid()));
    assert_eq!(change.refused[0].code, "trust.not_endorsed");
    assert_eq!(
        phone.device.trust(),
        held,
        "not even the anchor's end moved"
    );
    let forged = issue_credential(&x, &credential("T8"), now(), now()).unwrap();
    assert!(check(&phone.device, &forged, now()).is_err());

    // A whole sync against the fake: it fails (the fake serves nothing else) and the trust, in
    // memory and in the database, is what it was.
    let mut request = SyncRequest::new(fake.clone(), phone.token.clone());
    request.policy = policy();
    assert!(
        sync(
            &phone.device,
            request,
            now(),
            &mut |_| {},
            &AtomicBool::new(false)
        )
        .is_err()
    );
    assert_eq!(phone.device.trust(), held);
    assert_eq!(Device::open(&phone.path).unwrap().trust(), held);
    // Garbage instead of a trust file: an error, nothing changed.
    let garbage = fake_platform("[1,2,3]".into());
    let client = SyncClient::new(&garbage, Some(phone.token.clone()), policy()).unwrap();
    assert!(update_trust(&phone.device, &client, now(), &AtomicBool::new(false)).is_err());
    assert_eq!(phone.device.trust(), held);
}

#[test]
fn a_stolen_phone_token_cannot_rotate_keys_or_write_issuer_keys() {
    let Some(server) = start_server() else { return };
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let phone = enrol_phone(&server, &admin, "孙八");
    let thief = SyncClient::new(&server.url(), Some(phone.token.clone()), policy()).unwrap();
    let err = thief.rotate_issuer_key(None).unwrap_err();
    assert!(
        matches!(err, SyncError::Refused { status: 403, .. }),
        "{err:?}"
    );
    let rogue = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
    let err = thief
        .write_registry(&[RegistryChange::UpsertIssuerKey(TrustedIssuerKey {
            kid: to_hex(&rogue.kid()),
            algorithm: "EdDSA".into(),
            public_key: rogue.public_key(),
            issuer: "rogue".into(),
        })])
        .unwrap_err();
    assert!(
        matches!(err, SyncError::Refused { status: 403, .. }),
        "{err:?}"
    );
    let summary = sync_phone(&server.url(), &phone);
    assert!(summary.trust.added.is_empty());
    assert_eq!(
        admin.trust_file().unwrap().keys.len(),
        1,
        "no rotation happened"
    );
}

#[test]
fn the_sync_summary_names_the_permits_another_device_changed() {
    use weldguard_core::app::sync::ChangedPermit;
    use weldguard_core::permit::{Action, Permit};
    use weldguard_tests::permits::{DAY, Enrolment, H, Rules, actor, enrol as enrol_signer, key};
    const PERMIT_ID: &str = "0193a1b2-0000-7000-8000-0000000000d1";
    let Some(server) = start_server() else { return };
    let admin = SyncClient::new(&server.url(), Some(ADMIN.into()), policy()).unwrap();
    let rules = Rules::new();
    let ctx = rules.ctx();
    let welder_key = key(1);
    let welder = enrol_signer(
        &server,
        Enrolment {
            name: "张三",
            person_id: "S-001",
            role: Role::Welder,
            permit_roles: &["applicant"],
            key: Some(&welder_key),
        },
    );
    let supervisor = enrol_phone_as(&server, &admin, "孙七", Role::Supervisor, &["supervisor"]);
    assert!(
        sync_phone(&server.url(), &supervisor)
            .changed_permits
            .is_empty()
    );

    let applicant = actor("张三", "S-001", "applicant");
    let draft = Permit::draft(rules.content(PERMIT_ID), &ctx, &applicant, DAY + 6 * H).unwrap();
    welder
        .store
        .save_permit(None, &draft, None, (DAY + 6 * H) * 1000)
        .unwrap();
    let submit = Action::Submit {
        by: applicant.clone(),
        signer: &welder_key,
        calendar: &rules.calendar,
        at: DAY + 7 * H,
        location: None,
    };
    welder
        .store
        .apply_permit_action(PERMIT_ID, &ctx, submit, (DAY + 7 * H) * 1000)
        .unwrap();
    weldguard_tests::permits::sync(&welder);

    let summary = sync_phone(&server.url(), &supervisor);
    assert_eq!(
        summary.changed_permits,
        vec![ChangedPermit {
            permit_id: PERMIT_ID.into(),
            state: "submitted".into(),
            previous_state: None,
        }],
        "{summary:?}"
    );
    assert_eq!(summary.permits_changed, 1);

    let cancel = Action::Cancel {
        by: applicant,
        at: DAY + 8 * H,
        reason: "天气".into(),
    };
    welder
        .store
        .apply_permit_action(PERMIT_ID, &ctx, cancel, (DAY + 8 * H) * 1000)
        .unwrap();
    weldguard_tests::permits::sync(&welder);
    let summary = sync_phone(&server.url(), &supervisor);
    assert_eq!(
        summary.changed_permits,
        vec![ChangedPermit {
            permit_id: PERMIT_ID.into(),
            state: "cancelled".into(),
            previous_state: Some("submitted".into()),
        }],
        "{summary:?}"
    );
    assert!(
        sync_phone(&server.url(), &supervisor)
            .changed_permits
            .is_empty()
    );
}
