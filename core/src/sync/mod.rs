//! Sync with the platform: push the outbox, then pull registry changes.
//!
//! - [`protocol`]: the wire types, shared with the reference server.
//! - [`client`]: the blocking HTTP client ([`SyncClient`]); run it on a background thread.
//! - [`backoff`]: the retry policy (exponential backoff with jitter).
//!
//! Nothing is lost or duplicated: every outbox entry is pushed under its idempotency key until the
//! platform answers (applied / duplicate / rejected), and each pulled page is applied together with
//! its cursor in one store transaction, so a sync interrupted anywhere resumes where it stopped.

pub mod backoff;
pub mod client;
mod error;
pub mod protocol;

pub use backoff::RetryPolicy;
pub use client::{Progress, StatusListCheck, SyncClient, SyncPhase, SyncReport};
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
}
