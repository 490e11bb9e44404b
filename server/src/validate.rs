//! Server-side checks of a pushed record before it is stored: the caller's role may make this
//! kind, the payload is the kind's JSON, its id is the idempotency key where the record has one,
//! and signed records (permits, inspections) verify with the same core code the devices use.

use weldguard_core::domain::Explain;
use weldguard_core::store::WorkSession;
use weldguard_core::sync::protocol::{PushEntry, Role};

use crate::authz::may_push;

/// Most bytes one record's payload may have.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Longest idempotency key.
pub const MAX_KEY_CHARS: usize = 64;

/// `Err(reason)`: the entry is rejected; the reason starts with a stable code.
pub fn check(role: Role, entry: &PushEntry) -> Result<(), String> {
    let key = entry.idempotency_key.as_str();
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "record.bad_key: the idempotency key must be 1-64 printable ASCII characters".into(),
        );
    }
    if entry.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "record.too_large: {} bytes (at most {MAX_PAYLOAD_BYTES})",
            entry.payload.len()
        ));
    }
    if !matches!(
        entry.kind.as_str(),
        "work_session" | "permit_step" | "inspection"
    ) {
        return Err(format!("record.unknown_kind: {:?}", entry.kind));
    }
    if !may_push(role, &entry.kind) {
        return Err(format!(
            "auth.role_may_not_record: a {} device may not record {}",
            role.as_str(),
            entry.kind
        ));
    }
    match entry.kind.as_str() {
        "work_session" => {
            let session: WorkSession =
                serde_json::from_str(&entry.payload).map_err(|e| format!("record.invalid: {e}"))?;
            if session.id != key {
                return Err(
                    "record.key_mismatch: the record's id is not its idempotency key".into(),
                );
            }
            Ok(())
        }
        "permit_step" => {
            let record: weldguard_core::store::PermitStepRecord =
                serde_json::from_str(&entry.payload).map_err(|e| format!("record.invalid: {e}"))?;
            if record.step_id != key {
                return Err("record.key_mismatch: the step's id is not its idempotency key".into());
            }
            let permit = &record.permit;
            if record.permit_id != permit.content.permit_id || record.state != permit.state {
                return Err(
                    "record.inconsistent: the step's permit id or state is not the permit's".into(),
                );
            }
            weldguard_core::permit::verify(permit)
                .map_err(|e| format!("{}: {}", e.code(), e.message_en()))?;
            let digest = weldguard_core::permit::digest(permit)
                .map_err(|e| format!("{}: {}", e.code(), e.message_en()))?;
            if weldguard_core::codes::to_hex(&digest) != record.digest {
                return Err("record.inconsistent: the step's digest is not the permit's".into());
            }
            Ok(())
        }
        "inspection" => {
            let inspection: weldguard_core::inspect::Inspection =
                serde_json::from_str(&entry.payload).map_err(|e| format!("record.invalid: {e}"))?;
            inspection
                .verify()
                .map_err(|e| format!("{}: {}", e.code(), e.message_en()))
        }
        other => Err(format!("record.unknown_kind: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, key: &str, payload: &str) -> PushEntry {
        PushEntry {
            idempotency_key: key.into(),
            kind: kind.into(),
            payload: payload.into(),
        }
    }

    fn session_json(id: &str) -> String {
        serde_json::to_string(&WorkSession {
            id: id.into(),
            machine_id: "M-1".into(),
            certificate_no: "T370983199001011234".into(),
            started_at_ms: 1_764_374_400_000,
            allowed: true,
            reason_codes: vec![],
            permit_id: None,
            created_at_ms: 1_764_374_400_000,
        })
        .unwrap()
    }

    #[test]
    fn a_work_session_must_carry_its_key_and_come_from_a_role_that_works() {
        assert_eq!(
            check(
                Role::Welder,
                &entry("work_session", "k1", &session_json("k1"))
            ),
            Ok(())
        );
        let err = check(
            Role::Welder,
            &entry("work_session", "k2", &session_json("k1")),
        )
        .unwrap_err();
        assert!(err.starts_with("record.key_mismatch"), "{err}");
        let err = check(
            Role::Inspector,
            &entry("work_session", "k1", &session_json("k1")),
        )
        .unwrap_err();
        assert!(err.starts_with("auth.role_may_not_record"), "{err}");
        let err = check(Role::Welder, &entry("work_session", "k1", "{not json")).unwrap_err();
        assert!(err.starts_with("record.invalid"), "{err}");
        let err = check(Role::Admin, &entry("payroll", "k1", "{}")).unwrap_err();
        assert!(err.starts_with("record.unknown_kind"), "{err}");
        let err = check(Role::Admin, &entry("work_session", "", "{}")).unwrap_err();
        assert!(err.starts_with("record.bad_key"), "{err}");
    }

    #[test]
    fn garbage_permits_and_inspections_are_rejected() {
        let err = check(Role::Supervisor, &entry("permit_step", "p1", "{}")).unwrap_err();
        assert!(err.starts_with("record.invalid"), "{err}");
        let err = check(Role::Inspector, &entry("inspection", "i1", "[]")).unwrap_err();
        assert!(err.starts_with("record.invalid"), "{err}");
    }
}
