//! Server-side checks of a pushed record before it is stored: the caller's role may make this
//! kind, the payload is the kind's JSON with no field the core types do not know
//! (`record.unknown_field`: nothing unsigned rides along into storage), its id is the idempotency
//! key (work sessions, permit steps, inspections: one record per id whatever key it arrives
//! under), signed records (permits, inspections) verify with the same core code the devices use,
//! and a start-work record's times lie in [`EARLIEST_MS`, now + [`MAX_AHEAD_MS`]].
//!
//! What the phone decided offline and the platform cannot refuse (a machine or licence the
//! platform's registry does not hold: it may be a registry lag) is kept and flagged
//! ([`session_flags`], stored beside the record for the warnings).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use weldguard_model::domain::Explain;
use weldguard_model::protocol::{PushEntry, Role};
use weldguard_model::records::WorkSession;

use crate::authz::may_push;

/// The earliest time a start-work record may carry: 2020-01-01 00:00 UTC, Unix milliseconds
/// (WeldGuard did not exist before; an earlier time is a broken clock or a forgery).
pub const EARLIEST_MS: i64 = 1_577_836_800_000;
/// How far ahead of the server's clock a start-work record's times may be: 5 minutes, for phone
/// clocks that run a little fast. Later is refused (`session.bad_time`).
pub const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;

/// Flag: the platform's registry holds no machine with the session's machine id.
pub const FLAG_UNKNOWN_MACHINE: &str = "session.unknown_machine";
/// Flag: the platform's registry holds no licence with the session's certificate number.
pub const FLAG_UNKNOWN_LICENCE: &str = "session.unknown_licence";

/// Flag: a welder's phone recorded a scan-to-start with another person's certificate (someone
/// else's licence used, or lent).
pub const FLAG_OTHER_WELDERS_CERTIFICATE: &str = "session.other_welders_certificate";

/// The flags of a stored work session: which of its machine and licence the registry does not
/// hold, and whether a welder's phone recorded someone else's certificate (`pusher`: the pushing
/// device's role and the id its person is named by). `known(collection, id)` says whether the
/// registry currently holds the entity.
pub fn session_flags<E>(
    session: &WorkSession,
    pusher: Option<(Role, &str)>,
    mut known: impl FnMut(weldguard_model::checksum::Collection, &str) -> Result<bool, E>,
) -> Result<Vec<&'static str>, E> {
    use weldguard_model::checksum::Collection;
    let mut flags = Vec::new();
    if let Some((Role::Welder, person_id)) = pusher
        && session.certificate_no != person_id
    {
        flags.push(FLAG_OTHER_WELDERS_CERTIFICATE);
    }
    if !known(Collection::Machines, &session.machine_id)? {
        flags.push(FLAG_UNKNOWN_MACHINE);
    }
    if !known(Collection::Licences, &session.certificate_no)? {
        flags.push(FLAG_UNKNOWN_LICENCE);
    }
    Ok(flags)
}

/// The first field of `raw` (a pushed payload) that `typed` (the same payload read into the core
/// type and written back) does not have, as a JSON path. The core types write every field they
/// know (no field is skipped when empty), so any key missing from `typed` is one they ignored.
fn unknown_field(raw: &Value, typed: &Value, path: &mut String) -> Option<String> {
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (k, v) in r {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                let found = match t.get(k) {
                    None => Some(path.clone()),
                    Some(tv) => unknown_field(v, tv, path),
                };
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        (Value::Array(r), Value::Array(t)) => {
            for (i, (v, tv)) in r.iter().zip(t).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = unknown_field(v, tv, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

/// Read `payload` as `T`, refusing fields `T` does not know (`record.unknown_field`) and anything
/// that is not `T`'s JSON (`record.invalid`).
fn read_exact<T: DeserializeOwned + Serialize>(payload: &str) -> Result<T, String> {
    let raw: Value = serde_json::from_str(payload).map_err(|e| format!("record.invalid: {e}"))?;
    let typed: T = serde_json::from_str(payload).map_err(|e| format!("record.invalid: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("record.invalid: {e}"))?;
    if let Some(path) = unknown_field(&raw, &back, &mut String::from("$")) {
        return Err(format!(
            "record.unknown_field: {path} is not a field of this record \
             (记录含有未知字段，未签名的附加内容不予接收)"
        ));
    }
    Ok(typed)
}

/// Whether a start-work time is possible: not before [`EARLIEST_MS`], not after
/// `now_ms + MAX_AHEAD_MS`.
fn session_time_ok(at_ms: i64, now_ms: i64) -> bool {
    at_ms >= EARLIEST_MS && at_ms <= now_ms.saturating_add(MAX_AHEAD_MS)
}

/// Most bytes one record's payload may have.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Longest idempotency key.
pub const MAX_KEY_CHARS: usize = 64;

/// `Err(reason)`: the entry is rejected; the reason starts with a stable code. Times are judged
/// against the server's clock now.
pub fn check(role: Role, entry: &PushEntry) -> Result<(), String> {
    check_at(role, entry, crate::db::now_ms())
}

/// [`check`] with the server's clock at `now_ms`.
pub fn check_at(role: Role, entry: &PushEntry, now_ms: i64) -> Result<(), String> {
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
            let session: WorkSession = read_exact(&entry.payload)?;
            if session.id != key {
                return Err(
                    "record.key_mismatch: the record's id is not its idempotency key".into(),
                );
            }
            if session.position.is_some_and(|p| !p.in_range()) {
                return Err(
                    "record.invalid: the scan position is out of range (开工位置超出范围)".into(),
                );
            }
            for (what, at) in [
                ("started_at_ms", session.started_at_ms),
                ("created_at_ms", session.created_at_ms),
            ] {
                if !session_time_ok(at, now_ms) {
                    return Err(format!(
                        "session.bad_time: {what} {at} is before 2020-01-01 or more than \
                         {} minutes ahead of the platform's clock (开工记录时间不可能)",
                        MAX_AHEAD_MS / 60_000
                    ));
                }
            }
            Ok(())
        }
        "permit_step" => {
            let record: weldguard_model::records::PermitStepRecord = read_exact(&entry.payload)?;
            if record.step_id != key {
                return Err("record.key_mismatch: the step's id is not its idempotency key".into());
            }
            let permit = &record.permit;
            if record.permit_id != permit.content.permit_id || record.state != permit.state {
                return Err(
                    "record.inconsistent: the step's permit id or state is not the permit's".into(),
                );
            }
            weldguard_model::permit::verify(permit)
                .map_err(|e| format!("{}: {}", e.code(), e.message_en()))?;
            let digest = weldguard_model::permit::digest(permit)
                .map_err(|e| format!("{}: {}", e.code(), e.message_en()))?;
            if weldguard_model::codes::to_hex(&digest) != record.digest {
                return Err("record.inconsistent: the step's digest is not the permit's".into());
            }
            Ok(())
        }
        "inspection" => {
            let inspection: weldguard_model::inspect::Inspection = read_exact(&entry.payload)?;
            // The device keys an inspection by its (signed) id: one record per inspection,
            // whatever key it is pushed under.
            if inspection.body.inspection_id != key {
                return Err(
                    "record.key_mismatch: the inspection's id is not its idempotency key".into(),
                );
            }
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
            position: None,
            created_at_ms: 1_764_374_400_000,
        })
        .unwrap()
    }

    #[test]
    fn a_work_session_may_carry_the_scan_position_in_range() {
        let mut session: WorkSession = serde_json::from_str(&session_json("k1")).unwrap();
        session.position = Some(weldguard_model::records::ScanPosition {
            latitude_e7: 361_820_000,
            longitude_e7: 1_167_720_000,
            accuracy_m: 15,
        });
        let json = serde_json::to_string(&session).unwrap();
        assert_eq!(
            check_at(
                Role::Welder,
                &entry("work_session", "k1", &json),
                1_764_374_400_000
            ),
            Ok(())
        );
        session.position = Some(weldguard_model::records::ScanPosition {
            latitude_e7: 0,
            longitude_e7: 1_800_000_001,
            accuracy_m: 15,
        });
        let json = serde_json::to_string(&session).unwrap();
        let err = check_at(
            Role::Welder,
            &entry("work_session", "k1", &json),
            1_764_374_400_000,
        )
        .unwrap_err();
        assert!(err.starts_with("record.invalid"), "{err}");
        // A field inside the position that the core does not know is refused too.
        let json = json.replace("\"accuracy_m\":15", "\"accuracy_m\":15,\"floor\":3");
        let err = check_at(
            Role::Welder,
            &entry("work_session", "k1", &json),
            1_764_374_400_000,
        )
        .unwrap_err();
        assert!(err.starts_with("record.unknown_field"), "{err}");
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

    const NOW: i64 = 1_796_000_000_000;

    fn session_at(id: &str, at: i64) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&session_json(id)).unwrap();
        v["started_at_ms"] = at.into();
        v["created_at_ms"] = at.into();
        v.to_string()
    }

    #[test]
    fn start_work_times_outside_the_window_are_refused() {
        let ok = |at: i64| {
            check_at(
                Role::Welder,
                &entry("work_session", "k", &session_at("k", at)),
                NOW,
            )
        };
        assert_eq!(ok(EARLIEST_MS), Ok(()));
        assert_eq!(ok(NOW + MAX_AHEAD_MS), Ok(()));
        for at in [
            i64::MIN,
            -1,
            0,
            EARLIEST_MS - 1,
            NOW + MAX_AHEAD_MS + 1,
            32_503_680_000_000,
            i64::MAX,
        ] {
            let err = ok(at).unwrap_err();
            assert!(err.starts_with("session.bad_time"), "{at}: {err}");
        }
        // A time past i64 is not a number the record can hold.
        let huge = session_json("k").replace("1764374400000", "99999999999999999999");
        let err = check_at(Role::Welder, &entry("work_session", "k", &huge), NOW).unwrap_err();
        assert!(err.starts_with("record.invalid"), "{err}");
    }

    #[test]
    fn fields_the_core_types_do_not_know_are_refused_at_any_depth() {
        let with = |path: &[&str]| {
            let mut v: serde_json::Value = serde_json::from_str(&session_json("k")).unwrap();
            let mut at = &mut v;
            for p in path {
                at = &mut at[*p];
            }
            at.as_object_mut().unwrap().insert("extra".into(), 1.into());
            v.to_string()
        };
        let err = check_at(Role::Welder, &entry("work_session", "k", &with(&[])), NOW).unwrap_err();
        assert!(err.starts_with("record.unknown_field: $.extra"), "{err}");
        // The same record without the field is fine; a missing optional field stays fine.
        let mut v: serde_json::Value = serde_json::from_str(&session_json("k")).unwrap();
        v.as_object_mut().unwrap().remove("permit_id");
        assert_eq!(
            check_at(
                Role::Welder,
                &entry("work_session", "k", &v.to_string()),
                NOW
            ),
            Ok(())
        );
        // Deep inside a permit step's permit.
        use crate::permits::fixture::{Fx, payload};
        let f = Fx::new();
        let (key, clean) = payload("s0", "draft", &f.draft());
        assert_eq!(
            check_at(Role::Supervisor, &entry("permit_step", &key, &clean), NOW),
            Ok(())
        );
        let mut v: serde_json::Value = serde_json::from_str(&clean).unwrap();
        v["permit"]["events"][0]
            .as_object_mut()
            .unwrap()
            .insert("signed_by".into(), "someone".into());
        let err = check_at(
            Role::Supervisor,
            &entry("permit_step", &key, &v.to_string()),
            NOW,
        )
        .unwrap_err();
        assert!(
            err.starts_with("record.unknown_field: $.permit.events[0].signed_by"),
            "{err}"
        );
    }

    #[test]
    fn an_inspection_must_arrive_under_its_own_id() {
        use crate::permits::fixture::inspection;
        let id = "0193a1b2-0000-7000-8000-00000000e009";
        let sealed = serde_json::to_string(&inspection(id, 1_796_000_000)).unwrap();
        assert_eq!(
            check_at(Role::Inspector, &entry("inspection", id, &sealed), NOW),
            Ok(())
        );
        let err =
            check_at(Role::Inspector, &entry("inspection", "other", &sealed), NOW).unwrap_err();
        assert!(err.starts_with("record.key_mismatch"), "{err}");
    }

    #[test]
    fn sessions_are_flagged_for_what_the_registry_lacks() {
        use weldguard_model::checksum::Collection;
        let session: WorkSession = serde_json::from_str(&session_json("k")).unwrap();
        let flags_by = |pusher: Option<(Role, &str)>, machines: bool, licences: bool| {
            session_flags::<()>(&session, pusher, |c, _| {
                Ok(match c {
                    Collection::Machines => machines,
                    _ => licences,
                })
            })
            .unwrap()
        };
        let flags = |machines, licences| flags_by(None, machines, licences);
        assert!(flags(true, true).is_empty());
        assert_eq!(flags(false, true), vec![FLAG_UNKNOWN_MACHINE]);
        assert_eq!(flags(true, false), vec![FLAG_UNKNOWN_LICENCE]);
        assert_eq!(flags(false, false).len(), 2);
        // A welder's phone recording someone else's certificate; a supervisor's phone may record
        // any welder's start.
        let own = session.certificate_no.clone();
        assert!(flags_by(Some((Role::Welder, &own)), true, true).is_empty());
        assert_eq!(
            flags_by(Some((Role::Welder, "T370983198001011111")), true, true),
            vec![FLAG_OTHER_WELDERS_CERTIFICATE]
        );
        assert!(flags_by(Some((Role::Supervisor, "S-001")), true, true).is_empty());
    }

    #[test]
    fn garbage_permits_and_inspections_are_rejected() {
        let err = check(Role::Supervisor, &entry("permit_step", "p1", "{}")).unwrap_err();
        assert!(err.starts_with("record.invalid"), "{err}");
        let err = check(Role::Inspector, &entry("inspection", "i1", "[]")).unwrap_err();
        assert!(err.starts_with("record.invalid"), "{err}");
    }
}
