//! The platform's `POST /v1/admin/codes/credential` refuses what the CLI refuses (issue 14, item 9):
//! a resident ID number that fails GB 11643-1999 (`issue.bad_id_number`) and a credential whose
//! expiry date is already past on the platform's clock (`issue.credential_expired`), 400 with the
//! core's stable code; the same credential with a valid number and a future date is signed. Against
//! the real server binary on SQLite and on PostgreSQL.

use chrono::{Days, NaiveDate};
use weldguard_core::codes::{DeviceSigner, SoftwareSigner};
use weldguard_core::domain::{OperationCategory, WelderCredential};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "security-issuing-admin-token-01";

fn credential(id_number: &str, expires_on: NaiveDate) -> WelderCredential {
    WelderCredential {
        certificate_no: format!("T{id_number}"),
        id_number: id_number.into(),
        name: "王五".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2020, 3, 1).unwrap(),
        expires_on,
        next_review_on: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        photo_digest: vec![7; 32],
        device_key: SoftwareSigner::generate().unwrap().public_key(),
    }
}

/// (status, `code` field) of issuing `c`: the error code, or the issued `WG1:` text.
fn issue(server: &ServerProcess, c: &WelderCredential) -> (u16, String) {
    let body = serde_json::to_string(c).unwrap();
    let (status, answer) = raw_call(
        server.addr,
        "POST",
        "/v1/admin/codes/credential",
        Some(ADMIN),
        Some(&body),
    );
    let code = serde_json::from_str::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

fn refusals(backend: ServerBackend) {
    let Some(data) = ServerData::new(backend, "security-issuing") else {
        return;
    };
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
    let today = chrono::Utc::now().date_naive();
    let future = today + Days::new(400);
    // 11010519491231002X is valid; 110105194912310021 has the wrong check character.
    assert_eq!(
        issue(&server, &credential("110105194912310021", future)),
        (400, "issue.bad_id_number".to_owned())
    );
    assert_eq!(
        issue(&server, &credential("110105491231002", future)),
        (400, "issue.bad_id_number".to_owned()),
        "a legacy 15-digit number"
    );
    assert_eq!(
        issue(
            &server,
            &credential("11010519491231002X", today - Days::new(2))
        ),
        (400, "issue.credential_expired".to_owned())
    );
    let (status, code) = issue(&server, &credential("11010519491231002X", future));
    assert_eq!(status, 200, "{code}");
    assert!(code.starts_with("WG1:"), "{code}");
}

#[test]
fn the_platform_refuses_bad_id_numbers_and_expired_credentials_on_sqlite() {
    refusals(ServerBackend::Sqlite);
}

#[test]
fn the_platform_refuses_bad_id_numbers_and_expired_credentials_on_postgres() {
    refusals(ServerBackend::Postgres);
}
