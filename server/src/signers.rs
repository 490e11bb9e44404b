//! Who may sign what, on the platform (docs/adr/0014-who-may-sign-what.md): the permit roles an
//! enrolment grants, the signed signer directory devices sync (`GET /v1/signers`), and the check
//! every pushed permit step passes before it is placed ([`Admitter`]): the same core replay a
//! device runs ([`weldguard_model::permit::Admission`]) against the directory the platform
//! publishes, its built-in rule profiles and checklist, and the work calendar of its registry.
//!
//! Whose key the platform trusts, and why: a step counts when its signature verifies under the key
//! the step carries AND that key is an enrolled device's whose person the step names, with a
//! permit role the profile lets sign that step at the permit's level; the enrolment (an admin's
//! one-time code, used by the device that holds the key) is what binds key, person and role.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use weldguard_model::domain::Explain;
use weldguard_model::permit::{
    ActionKind, Admission, Catalog, Permit, PermitError, ProfileSet, WorkCalendar,
};
use weldguard_model::protocol::{NewEnrolment, Role, SignerDirectoryResponse};
use weldguard_model::signers::{SignerDirectory, sign_directory};

use crate::authz::Endpoint;
use crate::db::{Caller, Db, DbError, Grant};
use crate::http::{ApiError, ApiResult, AppState, authorize, bad_request, with_db};

/// How far past the platform's clock a permit action may be dated (phones' clocks drift).
pub const ACTION_SKEW_SECS: i64 = 600;
/// Longest person id.
const MAX_PERSON_ID_CHARS: usize = 64;
/// Most permit roles one enrolment grants.
const MAX_PERMIT_ROLES: usize = 8;

/// Check an admin's enrolment request: a person, an id fit to name them on permits, and permit
/// roles that some rule profile lets sign a step.
pub fn check_grant(request: NewEnrolment) -> ApiResult<Grant> {
    let person = request.person.trim().to_owned();
    if person.is_empty() || person.chars().count() > 100 {
        return Err(bad_request(
            "request.bad_person",
            "person must be 1-100 characters",
        ));
    }
    let person_id = match request.person_id.map(|id| id.trim().to_owned()) {
        Some(id)
            if id.is_empty()
                || id.chars().count() > MAX_PERSON_ID_CHARS
                || id.chars().any(char::is_control) =>
        {
            return Err(bad_request(
                "request.bad_person_id",
                format!("person_id must be 1-{MAX_PERSON_ID_CHARS} printable characters"),
            ));
        }
        other => other,
    };
    let profiles = profiles()?;
    let known = profiles.signing_roles();
    let mut permit_roles = request.permit_roles;
    permit_roles.sort();
    permit_roles.dedup();
    if permit_roles.len() > MAX_PERMIT_ROLES {
        return Err(bad_request(
            "request.bad_permit_roles",
            format!("at most {MAX_PERMIT_ROLES} permit roles"),
        ));
    }
    if let Some(unknown) = permit_roles.iter().find(|r| !known.contains(r.as_str())) {
        return Err(bad_request(
            "request.bad_permit_roles",
            format!(
                "unknown permit role {unknown:?}; known: {}",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if !permit_roles.is_empty() && person_id.is_none() {
        return Err(bad_request(
            "request.bad_person_id",
            "a person who signs permits needs the person_id permits name them by",
        ));
    }
    if request.role == Role::Monitor {
        return Err(bad_request(
            "request.monitor_needs_scope",
            "a monitoring account is made with POST /v1/admin/monitors (it needs a scope)",
        ));
    }
    Ok(Grant {
        person,
        person_id,
        role: request.role,
        permit_roles,
        scope: None,
    })
}

fn profiles() -> ApiResult<&'static ProfileSet> {
    ProfileSet::builtin_shared().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "server.profiles",
            e.to_string(),
        )
    })
}

/// The directory as the database holds it now, sequenced by its latest change.
pub fn current_directory(db: &Db, now_ms: i64) -> Result<SignerDirectory, DbError> {
    let rows = db.signer_rows()?;
    let entries = rows
        .iter()
        .map(crate::db::SignerRow::entry)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SignerDirectory::new(
        directory_sequence(&rows),
        now_ms.div_euclid(1000),
        entries,
    ))
}

/// A directory's sequence: its latest change in milliseconds (an enrolment or a disabling),
/// times 1024, plus the number of entries modulo 1024. Every change raises it: a later change by
/// at least 1024 minus what the count can lose, a second enrolment in the same millisecond by one.
fn directory_sequence(rows: &[crate::db::SignerRow]) -> u64 {
    let latest = rows
        .iter()
        .flat_map(|r| [Some(r.enrolled_at_ms), r.disabled_at_ms])
        .flatten()
        .max()
        .unwrap_or(0);
    let count = u64::try_from(rows.len() % 1024).unwrap_or(0);
    u64::try_from(latest)
        .unwrap_or(0)
        .saturating_mul(1024)
        .saturating_add(count)
}

/// `GET /v1/signers`: the signer directory signed with the platform's current issuer key.
pub async fn directory(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<SignerDirectoryResponse>> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let document = with_db(&state, |db| {
        let directory = current_directory(db, crate::db::now_ms())?;
        let key = crate::keys::signing_key(db).map_err(|e| DbError::Invalid(e.to_string()))?;
        sign_directory(&key, &directory).map_err(|e| DbError::Invalid(e.to_string()))
    })
    .await?;
    Ok(Json(SignerDirectoryResponse {
        document: base64::engine::general_purpose::STANDARD.encode(document),
    }))
}

/// What the platform checks a pushed permit step against, loaded once per push: the rules, the
/// directory, the calendar, and the device that pushes. A signed step may reach the platform from
/// another device than the signer's (a phone without signal hands its records on at the next
/// sync of whichever device holds them): the signature and the directory say who vouched for it,
/// the pushing device's role and person say only who may report it.
pub struct Admitter {
    profiles: &'static ProfileSet,
    catalog: Catalog,
    calendar: WorkCalendar,
    directory: SignerDirectory,
    now: i64,
    caller: Caller,
}

/// Why a step is refused for the device that pushes it (not for its content).
fn refused(en: &'static str, zh: &'static str) -> PermitError {
    PermitError::DeviceNotAllowed { en, zh }
}

impl Admitter {
    /// The platform's rules, catalog, calendar and directory as of `now_ms`.
    pub fn load(
        db: &Db,
        calendar: WorkCalendar,
        now_ms: i64,
        caller: Caller,
    ) -> Result<Self, DbError> {
        let profiles = ProfileSet::builtin_shared().map_err(|e| DbError::Invalid(e.to_string()))?;
        let catalog = Catalog::builtin().map_err(|e| DbError::Invalid(e.to_string()))?;
        Ok(Admitter {
            profiles,
            catalog,
            calendar,
            directory: current_directory(db, now_ms)?,
            now: now_ms.div_euclid(1000),
            caller,
        })
    }

    /// The pushing device may report `action` on `permit`: its role's table, and a welder's
    /// device only for permits naming its welder (by id).
    fn check_caller(&self, permit: &Permit, action: ActionKind) -> Result<(), PermitError> {
        if !crate::authz::may_act(self.caller.role, action) {
            return Err(refused(
                "this device's role may not take this action on a permit",
                "此设备的角色不能对作业证执行此操作",
            ));
        }
        if self.caller.role == Role::Welder
            && !crate::permits::people_of(permit).contains(&self.caller.person_id)
        {
            return Err(refused(
                "a welder's device reports only permits that name its welder",
                "焊工的设备只能报送列有该焊工的作业证",
            ));
        }
        Ok(())
    }

    fn admission(&self) -> Admission<'_> {
        Admission {
            profiles: self.profiles,
            catalog: &self.catalog,
            calendar: &self.calendar,
            directory: &self.directory,
            now: self.now,
            skew_secs: ACTION_SKEW_SECS,
        }
    }

    /// A permit's first version (its draft).
    pub fn admit_first(&self, next: &Permit) -> Result<(), PermitError> {
        self.admission().admit_first(next)?;
        self.check_caller(next, ActionKind::Edit)
    }

    /// A step after `prev`: the action it is, or why it is refused.
    pub fn admit(&self, prev: &Permit, next: &Permit) -> Result<ActionKind, PermitError> {
        let action = self.admission().admit(prev, next)?;
        self.check_caller(next, action)?;
        Ok(action)
    }
}

impl crate::permits::AdmitStep for Admitter {
    fn admit(&self, prev: &Permit, next: &Permit) -> Result<ActionKind, PermitError> {
        Admitter::admit(self, prev, next)
    }

    fn admit_first(&self, next: &Permit) -> Result<(), PermitError> {
        Admitter::admit_first(self, next)
    }
}

/// A refusal's text: stable code, then the English message.
pub fn explain(e: &PermitError) -> String {
    format!("{}: {}", e.code(), e.message_en())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SignerRow;

    fn row(enrolled_at_ms: i64, disabled_at_ms: Option<i64>) -> SignerRow {
        SignerRow {
            device_id: format!("d{enrolled_at_ms}"),
            public_key_hex: String::new(),
            person_id: "S-1".into(),
            name: "孙七".into(),
            permit_roles_json: "[\"supervisor\"]".into(),
            enrolled_at_ms,
            disabled_at_ms,
        }
    }

    #[test]
    fn every_change_of_the_directory_raises_its_sequence() {
        let one = [row(1_000, None)];
        let two_same_ms = [row(1_000, None), row(1_000, None)];
        let disabled = [row(1_000, Some(1_001)), row(1_000, None)];
        let later = [row(1_000, Some(1_001)), row(1_000, None), row(2_000, None)];
        let seq: Vec<u64> = [&one[..], &two_same_ms, &disabled, &later]
            .iter()
            .map(|rows| directory_sequence(rows))
            .collect();
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "{seq:?}");
        assert_eq!(directory_sequence(&[]), 0);
    }

    #[test]
    fn an_enrolment_grants_only_known_roles_and_needs_an_id_to_sign() {
        use weldguard_model::protocol::Role;
        let ask = |person_id: Option<&str>, roles: &[&str]| {
            check_grant(NewEnrolment {
                person: "周八".into(),
                role: Role::Supervisor,
                person_id: person_id.map(str::to_owned),
                permit_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            })
        };
        assert!(ask(Some("S-004"), &["unit_head", "applicant"]).is_ok());
        assert!(ask(None, &[]).is_ok());
        let code = |r: ApiResult<Grant>| r.err().map(|e| e.code());
        assert_eq!(
            code(ask(Some("S-004"), &["god"])),
            Some("request.bad_permit_roles")
        );
        assert_eq!(
            code(ask(None, &["unit_head"])),
            Some("request.bad_person_id")
        );
        assert_eq!(code(ask(Some(" "), &[])), Some("request.bad_person_id"));
        assert_eq!(
            code(ask(Some("a\u{0}b"), &[])),
            Some("request.bad_person_id")
        );
    }
}
