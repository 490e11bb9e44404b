//! [`Device`]: one user profile's offline state, opened once by a shell (or the CLI) and shared by
//! every service: the profile's database, the trusted issuer keys, the revocations the registry
//! cache holds, and the replay cache of presentations seen since the profile was opened.
//!
//! Trust lives in the store: on open it is loaded from what the profile's database holds (the
//! platform's trust file and the issuer keys the registry feed delivered), and a sync updates both
//! (docs/adr/0015-application-layer.md).

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

    /// Replace the trust held in memory (after the store's trust changed).
    pub fn set_trust(&self, trust: TrustStore) {
        *self.trust.write().unwrap_or_else(PoisonError::into_inner) = trust;
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

/// The trust the store holds. (Being written: the trust file and the registry's issuer keys.)
fn load_trust(_store: &Store) -> Result<TrustStore, AppError> {
    Ok(TrustStore::new())
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
