//! [`Device`]: one user profile's offline state, opened once by a shell (or the CLI) and shared by
//! every service: the profile's database, the trusted issuer keys, the revocations the registry
//! cache holds, and the replay cache of presentations seen since the profile was opened.
//!
//! Trust lives in the store (table `trust_file`): on open it is loaded from what the profile's
//! database holds, and only two things change it (docs/adr/0015-application-layer.md, "Trust in
//! the store"; the rule is [`crate::codes::rotation`]):
//!
//! - an anchor: the trust file fetched at enrolment ([`crate::app::enrol`]), or the one a shell
//!   hands to [`Device::adopt_trust`] (profiles enrolled before schema v5);
//! - a sync ([`crate::app::sync`]): keys a key already trusted endorsed, with the old key's
//!   validity ended at its successor's start.
//!
//! The issuer keys of the registry feed (`issuer_keys` in the registry cache) are not trusted on
//! their own: its pages are unsigned, any admin token can write them and they carry no validity
//! period, so a key there counts only when the trust file holds it too.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use super::error::AppError;
use crate::codes::{ReplayCache, RevocationSet, TrustStore, Verifier};
use crate::store::Store;

/// One user profile's offline state.
#[derive(Debug)]
pub struct Device {
    store: Store,
    trust: RwLock<TrustStore>,
    revocations: RwLock<RevocationSet>,
    replay: Mutex<ReplayCache>,
}

impl Device {
    /// Open (or create) the profile database at `path`; migrations run here, and the trust and
    /// revocations the database holds are loaded. A file from a newer app version, a damaged file or
    /// a non-database file is refused and left untouched.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AppError> {
        let store = Store::open(path)?;
        Self::with_store(store)
    }

    /// The profile over an already opened store.
    pub fn with_store(store: Store) -> Result<Self, AppError> {
        let revocations = store.revocations()?.into_iter().collect();
        let trust = load_trust(&store)?;
        Ok(Self {
            store,
            trust: RwLock::new(trust),
            revocations: RwLock::new(revocations),
            replay: Mutex::new(ReplayCache::default()),
        })
    }

    /// The profile's database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The trusted issuer keys held now (a copy).
    pub fn trust(&self) -> TrustStore {
        self.trust
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replace the trust held in memory (after the store's trust changed). Not saved: see
    /// [`Device::save_trust`] and [`Device::adopt_trust`].
    pub fn set_trust(&self, trust: TrustStore) {
        *self.trust.write().unwrap_or_else(PoisonError::into_inner) = trust;
    }

    /// Save `trust` as the profile's trust and hold it: the enrolment anchor, or the outcome of
    /// the trust rule at a sync. The caller decided it may be trusted.
    pub fn save_trust(&self, trust: TrustStore, saved_at_ms: i64) -> Result<(), AppError> {
        self.store.save_trust(&trust, saved_at_ms)?;
        self.set_trust(trust);
        Ok(())
    }

    /// A shell's own trust file as an anchor (a profile enrolled before schema v5 hands in the file
    /// it kept, at every start): its keys that the profile does not hold are added and saved; keys
    /// held keep what the store says of them (a rotation may have ended one's validity, and an
    /// older file must not undo that). Returns the hex kids added.
    pub fn adopt_trust(
        &self,
        given: &TrustStore,
        saved_at_ms: i64,
    ) -> Result<Vec<String>, AppError> {
        let held = self.store.saved_trust()?.map(|s| s.trust);
        let mut trust = held.clone().unwrap_or_else(|| self.trust());
        let mut added = Vec::new();
        for key in given.keys() {
            if trust.get(&key.kid).is_none() {
                trust.add(key.clone())?;
                added.push(crate::codes::to_hex(&key.kid));
            }
        }
        if held.is_none() || !added.is_empty() {
            self.store.save_trust(&trust, saved_at_ms)?;
        }
        self.set_trust(trust);
        Ok(added)
    }

    /// The revocations held now (a copy).
    pub fn revocations(&self) -> RevocationSet {
        self.revocations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-read the trust from the store (after a sync).
    pub fn reload_trust(&self) -> Result<(), AppError> {
        let trust = load_trust(&self.store)?;
        self.set_trust(trust);
        Ok(())
    }

    /// Re-read the revocations from the registry cache (after a sync).
    pub fn reload_revocations(&self) -> Result<(), AppError> {
        let set = self.store.revocations()?.into_iter().collect();
        *self
            .revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner) = set;
        Ok(())
    }

    /// Add revocations to those held in memory (a revocation file the desktop CLI was handed); they
    /// hold until the next [`Self::reload_revocations`].
    pub fn add_revocations(&self, extra: RevocationSet) {
        self.revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(extra);
    }

    /// Run `f` with a verifier over the trust and revocations held now and the replay cache.
    pub fn with_verifier<R>(&self, f: impl FnOnce(&Verifier<'_>, &mut ReplayCache) -> R) -> R {
        let trust = self.trust.read().unwrap_or_else(PoisonError::into_inner);
        let revocations = self
            .revocations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let verifier = Verifier::new(&trust, &revocations);
        f(&verifier, &mut lock(&self.replay))
    }
}

/// The trust the store holds: the saved trust file (none yet: no keys). The registry feed's
/// issuer keys add nothing (see the module docs).
fn load_trust(store: &Store) -> Result<TrustStore, AppError> {
    Ok(store
        .saved_trust()?
        .map(|saved| saved.trust)
        .unwrap_or_default())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Unix seconds (UTC) as a time; out of range is an input error.
pub fn time(unix: i64) -> Result<DateTime<Utc>, AppError> {
    DateTime::from_timestamp(unix, 0).ok_or_else(|| {
        AppError::input(
            "input.time",
            format!("时间超出范围：{unix}"),
            format!("The time is out of range: {unix}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{IssuerAlg, IssuerKey, TrustedKey, issue_machine_label, to_hex};
    use crate::domain::{MachineClass, MachineKind, MachineLabel};
    use crate::store::test_support::TempDir;
    use crate::store::{RegistryChange, TrustedIssuerKey};

    fn label_code(key: &IssuerKey, issued_at: i64) -> String {
        issue_machine_label(
            key,
            &MachineLabel {
                machine_id: "M-370983-00017".into(),
                kind: MachineKind::Arc,
                class: MachineClass::Mobile,
                owner_org: "91370983MA3C4X1Y2K".into(),
                region: 370983,
                issued_at,
            },
        )
        .unwrap()
    }

    fn verifies(device: &Device, code: &str, now: i64) -> bool {
        device.with_verifier(|v, replay| v.verify(code, now, replay).is_ok())
    }

    #[test]
    fn trust_is_loaded_on_open_and_an_older_shell_file_does_not_undo_a_rotation() {
        let dir = TempDir::new();
        let path = dir.path().join("p.sqlite");
        let (a, b) = (
            IssuerKey::generate(IssuerAlg::EdDSA).unwrap(),
            IssuerKey::generate(IssuerAlg::EdDSA).unwrap(),
        );
        let mut anchor = TrustStore::new();
        anchor
            .add(TrustedKey::for_key(&a, 1_700_000_000, None))
            .unwrap();
        let device = Device::open(&path).unwrap();
        assert!(device.trust().keys().is_empty());
        // A pre-v5 shell hands its file in: saved.
        assert_eq!(
            device.adopt_trust(&anchor, 1).unwrap(),
            vec![to_hex(&a.kid())]
        );
        drop(device);
        let device = Device::open(&path).unwrap();
        assert_eq!(device.trust(), anchor, "loaded on open");
        // A sync recorded a rotation (A ended, B added) …
        let mut rotated = TrustStore::new();
        rotated
            .add(TrustedKey::for_key(&a, 1_700_000_000, Some(1_800_000_000)))
            .unwrap();
        rotated
            .add(TrustedKey::for_key(&b, 1_800_000_000, None))
            .unwrap();
        device.save_trust(rotated.clone(), 2).unwrap();
        drop(device);
        // … and the shell hands in its old file again at the next start: nothing changes.
        let device = Device::open(&path).unwrap();
        assert!(device.adopt_trust(&anchor, 3).unwrap().is_empty());
        assert_eq!(device.trust(), rotated);
        assert_eq!(
            device.store().saved_trust().unwrap().unwrap().saved_at_ms,
            2
        );
        let after = 1_800_000_100;
        assert!(verifies(&device, &label_code(&b, after), after));
        assert!(
            !verifies(&device, &label_code(&a, after), after),
            "A signs nothing after its end"
        );
        assert!(verifies(&device, &label_code(&a, 1_799_999_000), after));
    }

    #[test]
    fn an_issuer_key_in_the_registry_feed_is_not_trusted() {
        let dir = TempDir::new();
        let path = dir.path().join("p.sqlite");
        let rogue = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        let device = Device::open(&path).unwrap();
        device
            .store()
            .apply_registry_changes(
                [RegistryChange::UpsertIssuerKey(TrustedIssuerKey {
                    kid: to_hex(&rogue.kid()),
                    algorithm: "EdDSA".into(),
                    public_key: rogue.public_key(),
                    issuer: "rogue".into(),
                })],
                None,
                1,
            )
            .unwrap();
        device.reload_trust().unwrap();
        drop(device);
        let device = Device::open(&path).unwrap();
        assert!(device.trust().keys().is_empty());
        assert!(!verifies(
            &device,
            &label_code(&rogue, 1_800_000_000),
            1_800_000_100
        ));
    }
}
