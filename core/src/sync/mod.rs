//! Sync with the platform: push the outbox, then pull registry changes.
//!
//! - [`protocol`]: the wire types, shared with the reference server.
//! - [`client`]: the blocking HTTP client ([`SyncClient`]); run it on a background thread.
//! - `admin` (the `admin` feature, never on a phone): the admin calls of [`SyncClient`].
//! - [`backoff`]: the retry policy (exponential backoff with jitter).
//! - [`checksum`]: per-collection registry checksums, to detect a drifted cache.
//!
//! Nothing is lost or duplicated: every outbox entry is pushed under its idempotency key until the
//! platform answers (applied / duplicate / rejected), and each pulled page is applied together with
//! its cursor in one store transaction, so a sync interrupted anywhere resumes where it stopped.

#[cfg(any(test, feature = "admin"))]
mod admin;
pub mod backoff;
pub mod client;
mod error;
mod refetch;

pub use weldguard_model::{checksum, protocol};

pub use backoff::RetryPolicy;
pub use client::{DriftCheck, Progress, StatusListCheck, SyncClient, SyncPhase, SyncReport};
pub use error::SyncError;

#[cfg(test)]
mod tests {
    use crate::domain::{Binding, Revocation, RevocationTarget};
    use crate::store::test_support::TempDir;
    use crate::store::{NewWorkSession, RegistryChange, Store, SyncCursor};

    #[test]
    fn clearing_for_a_refetch_empties_the_cache_but_keeps_records() {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        let cursor = SyncCursor {
            feed: super::protocol::REGISTRY_FEED.into(),
            cursor: "e.3".into(),
        };
        store
            .apply_registry_changes(
                [
                    RegistryChange::Bind(Binding {
                        machine_id: "M-1".into(),
                        certificate_no: "T1".into(),
                    }),
                    RegistryChange::Revoke(Revocation {
                        target: RevocationTarget::Credential,
                        id: "C-1".into(),
                    }),
                ],
                Some(&cursor),
                1,
            )
            .unwrap();
        store
            .record_work_session(
                NewWorkSession {
                    machine_id: "M-1".into(),
                    certificate_no: "T1".into(),
                    started_at_ms: 1_764_374_400_000,
                    allowed: true,
                    reason_codes: vec![],
                    permit_id: None,
                    position: None,
                },
                1_764_374_400_000,
            )
            .unwrap();
        store
            .clear_registry(super::protocol::REGISTRY_FEED)
            .unwrap();
        let stats = store.registry_stats().unwrap();
        assert_eq!((stats.bindings, stats.revocations), (0, 0));
        assert!(stats.cursors.is_empty());
        assert_eq!(
            store.sync_cursor(super::protocol::REGISTRY_FEED).unwrap(),
            None
        );
        assert_eq!(store.outbox_counts().unwrap().pending, 1, "records stay");
    }

    #[test]
    fn the_device_cache_checksums_equal_the_platform_rows_it_was_fed() {
        use super::checksum::{Collection, RegistryChecksums};
        use crate::domain::{
            Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus,
            OperationCategory,
        };
        use crate::store::TrustedIssuerKey;
        use chrono::NaiveDate;
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let rows = vec![
            RegistryChange::UpsertLicence(Licence {
                certificate_no: "T37098319900315001X".into(),
                id_number: "37098319900315001X".into(),
                name: "李四".into(),
                // Out of order on the platform; the device stores a bit set.
                categories: vec![
                    OperationCategory::Brazing,
                    OperationCategory::FusionWeldingAndCutting,
                ],
                issued_on: date(2022, 3, 1),
                expires_on: date(2028, 3, 1),
                next_review_on: date(2025, 3, 1),
                review_extended: true,
                status: LicenceStatus::Valid,
                employer_org: Some("91370983MA3C4X1Y2K".into()),
            }),
            RegistryChange::UpsertMachine(Machine {
                machine_id: "M-370983-00017".into(),
                kind: MachineKind::Arc,
                class: MachineClass::Mobile,
                owner_org: "91370983MA3C4X1Y2K".into(),
                region: 370983,
                status: MachineStatus::Active,
            }),
            RegistryChange::Bind(Binding {
                machine_id: "M-370983-00017".into(),
                certificate_no: "T37098319900315001X".into(),
            }),
            RegistryChange::Revoke(Revocation {
                target: RevocationTarget::Credential,
                id: "c0ffee".into(),
            }),
            RegistryChange::UpsertIssuerKey(TrustedIssuerKey {
                kid: "0a0b".into(),
                algorithm: "EdDSA".into(),
                public_key: vec![7; 32],
                issuer: "肥城市应急管理局".into(),
            }),
            RegistryChange::SetCalendarDay(crate::store::CalendarDay {
                date: date(2027, 10, 1),
                kind: crate::store::CalendarDayKind::Holiday,
            }),
            RegistryChange::SetCalendarDay(crate::store::CalendarDay {
                date: date(2027, 9, 26),
                kind: crate::store::CalendarDayKind::Workday,
            }),
            RegistryChange::AnnouncePeriod(crate::store::AnnouncedPeriod {
                period_id: "2027-lianghui".into(),
                name: "全国两会".into(),
                from: 1_803_600_000,
                until: 1_804_800_000,
            }),
        ];
        let mut platform = RegistryChecksums::new();
        rows.iter().for_each(|r| platform.add_row(r));

        let dir = TempDir::new();
        let store = Store::open(dir.path().join("db.sqlite")).unwrap();
        store.apply_registry_changes(rows.clone(), None, 1).unwrap();
        let device = store.registry_checksums().unwrap();
        assert_eq!(device.drifted(&platform.all()), Vec::<Collection>::new());
        assert_eq!(device.get(Collection::CalendarDays).rows, 2);

        // The calendar the permit rules read comes from the same rows.
        let calendar = store.work_calendar().unwrap();
        assert_eq!(calendar.holidays, vec![date(2027, 10, 1)]);
        assert_eq!(calendar.adjusted_workdays, vec![date(2027, 9, 26)]);
        assert!(!calendar.is_rest_day(date(2027, 9, 26)), "a working Sunday");
        assert_eq!(calendar.sensitive_periods.len(), 1);
        assert_eq!(calendar.sensitive_periods[0].name, "全国两会");

        // A row lost on the device (a restored backup, a bug) shows as drift in its collection.
        store
            .apply_registry_changes(
                [RegistryChange::Unbind(Binding {
                    machine_id: "M-370983-00017".into(),
                    certificate_no: "T37098319900315001X".into(),
                })],
                None,
                2,
            )
            .unwrap();
        let device = store.registry_checksums().unwrap();
        assert_eq!(device.drifted(&platform.all()), vec![Collection::Bindings]);
    }
}
