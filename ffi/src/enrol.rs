//! Enrolment through the FFI, over [`weldguard_core::app::enrol`]: an `async` call (a thread of
//! its own, [`crate::background`]) that trades a one-time code for the device's identity and
//! token and saves the platform's trust file as the profile's trust. The token is returned, never
//! saved: the shell keeps it in the Keystore / Keychain.
//!
//! Cancelling (the [`SyncTask`] handle, or dropping the call) stops it before it starts; once the
//! code is on its way to the platform the enrolment runs to its end (the code is single-use, so
//! stopping half-way would waste it).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Device;
use super::background::run;
use super::error::WeldGuardError;
use super::sync::SyncTask;
use weldguard_core::app::enrol::{EnrolRequest, enrol};
use weldguard_core::sync::SyncError;
use weldguard_core::sync::protocol::Role as WireRole;

/// Who a device acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    Welder,
    Inspector,
    Supervisor,
    Admin,
}

impl TryFrom<WireRole> for Role {
    type Error = WeldGuardError;

    /// A phone's role; a platform account (`monitor`, the warnings dashboard's) is no phone's.
    fn try_from(r: WireRole) -> Result<Self, WeldGuardError> {
        Ok(match r {
            WireRole::Welder => Role::Welder,
            WireRole::Inspector => Role::Inspector,
            WireRole::Supervisor => Role::Supervisor,
            WireRole::Admin => Role::Admin,
            WireRole::Monitor => {
                return Err(WeldGuardError::invalid_text(
                    "enrol.platform_account",
                    "这是平台监管账号的注册码，不能用于手机",
                    "this code is for a platform monitoring account, not a phone",
                ));
            }
        })
    }
}

/// Who the device is enrolled as.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct Enrolment {
    /// The platform's address as used (no trailing slash).
    pub server: String,
    pub device_id: String,
    /// The person's name as enrolled.
    pub person: String,
    /// The id permits name the person by.
    pub person_id: String,
    pub role: Role,
    /// The permit roles the platform's signed signer directory gives this device's key (empty: it
    /// signs no permit step); `None` when the directory could not be fetched (the next sync does).
    pub permit_roles: Option<Vec<String>>,
    /// The device token: store it in secure storage right away.
    pub token: String,
    /// When the token expires (Unix ms); `None`: it does not.
    pub token_expires_at_ms: Option<i64>,
    /// The issuer keys now trusted (hex kids).
    pub issuer_keys: Vec<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("server", &self.server)
            .field("device_id", &self.device_id)
            .field("role", &self.role)
            .field("token", &"…")
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl Device {
    /// Enrol this profile with the platform at `server_url` at `now_unix`: the one-time `code` an
    /// administrator made, the device key's `public_key` (SEC1; empty for a device that signs
    /// nothing) and a `device_name` shown to administrators. The platform's trust file is saved as
    /// the profile's trust. An empty code, a bad address or an unreachable platform is a typed
    /// error and the profile is unchanged.
    pub async fn enrol(
        self: Arc<Self>,
        server_url: String,
        code: String,
        public_key: Vec<u8>,
        device_name: String,
        task: Arc<SyncTask>,
        now_unix: i64,
    ) -> Result<Enrolment, WeldGuardError> {
        let cancel = task.flag();
        let flag = cancel.clone();
        run("enrol", cancel, move || {
            if flag.load(Ordering::Relaxed) {
                return Err(SyncError::Cancelled.into());
            }
            let request = EnrolRequest {
                server_url,
                code,
                public_key,
                device_name,
            };
            let e = enrol(&self.app, &request, now_unix)?;
            Ok(Enrolment {
                server: e.server,
                device_id: e.device_id,
                person: e.person,
                person_id: e.person_id,
                role: Role::try_from(e.role)?,
                permit_roles: e.permit_roles,
                token: e.token,
                token_expires_at_ms: e.token_expires_at_ms,
                issuer_keys: e.issuer_keys,
            })
        })
        .await
    }
}
