//! Who may call what: one table, checked on every authenticated call (the authorization test walks
//! the same table against the running server). Open routes (`/health`, `/openapi.json`,
//! `/v1/enrol`, `/v1/auth/challenge`, `/v1/auth/refresh`) have no endpoint here: the last two
//! authenticate by the device key's signature instead of a token (docs/adr/0010-token-refresh.md).

use weldguard_model::permit::ActionKind;
use weldguard_model::protocol::Role;

/// The endpoints that need a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Me,
    CreateEnrolment,
    RegistryWrite,
    CompactHistory,
    ListRecords,
    Push,
    Pull,
    /// `GET /metrics`: request counts by route and device activity totals, so admins only
    /// (a Prometheus scraper authenticates with an admin device's token).
    ReadMetrics,
    /// Signing machine labels and welder credentials with the platform's key, and rotating it.
    IssueCodes,
    /// `GET /v1/permits`: permit heads; every role, a welder sees the permits naming them (the
    /// handler scopes the answer).
    PullPermits,
    /// Disabling a device (a lost or stolen phone).
    ManageDevices,
    /// Writing the platform's places (sites, machines' and licences' places, machine watch).
    WritePlaces,
    /// Making a monitoring account (role `monitor` with a scope).
    CreateMonitor,
    /// Listing and reading warnings: admins see all, a monitor what lies in its scope (the
    /// handler scopes every answer, docs/adr/0017-warnings-and-scope.md).
    ReadWarnings,
    /// Acknowledging and closing warnings, inside the caller's scope.
    ActOnWarnings,
    /// The dashboard's pages of sites, machines, welders and permits (`/v1/platform/…`): admins
    /// see all, a monitor what lies in its scope (crate::platform_views).
    ReadPlatform,
}

impl Endpoint {
    pub const ALL: [Endpoint; 16] = [
        Endpoint::Me,
        Endpoint::CreateEnrolment,
        Endpoint::RegistryWrite,
        Endpoint::CompactHistory,
        Endpoint::ListRecords,
        Endpoint::Push,
        Endpoint::Pull,
        Endpoint::ReadMetrics,
        Endpoint::IssueCodes,
        Endpoint::PullPermits,
        Endpoint::ManageDevices,
        Endpoint::WritePlaces,
        Endpoint::CreateMonitor,
        Endpoint::ReadWarnings,
        Endpoint::ActOnWarnings,
        Endpoint::ReadPlatform,
    ];
}

/// Whether `role` may call `endpoint`. A monitor (a platform account watching warnings) reads
/// and acts on warnings and nothing else: it neither pushes nor pulls the phones' feeds.
pub fn allowed(role: Role, endpoint: Endpoint) -> bool {
    use Endpoint::*;
    match endpoint {
        Me => true,
        Push | Pull | PullPermits => role != Role::Monitor,
        CreateEnrolment | RegistryWrite | CompactHistory | ReadMetrics | IssueCodes
        | ManageDevices | WritePlaces | CreateMonitor => role == Role::Admin,
        ListRecords => matches!(role, Role::Admin | Role::Supervisor),
        ReadWarnings | ActOnWarnings | ReadPlatform => matches!(role, Role::Admin | Role::Monitor),
    }
}

/// Whether `role` may push records of `kind` (checked per entry; a refusal is a rejected entry).
pub fn may_push(role: Role, kind: &str) -> bool {
    match kind {
        "work_session" => matches!(role, Role::Welder | Role::Supervisor | Role::Admin),
        "permit_step" => matches!(role, Role::Welder | Role::Supervisor | Role::Admin),
        "inspection" => matches!(role, Role::Inspector | Role::Supervisor | Role::Admin),
        _ => false,
    }
}

/// Whether a device of `role` may push a permit step of `action` (checked on the action the
/// platform's replay finds, not the one the record claims). Signed steps need, besides, the
/// signer directory's leave for the person who signed (docs/adr/0014-who-may-sign-what.md); this
/// table is about the device that reports the step. A welder's device reports only steps of
/// permits naming its welder, and never decides for a supervisor (site check, approval, reject);
/// it may cancel its own application or stop its own work, which only makes work safer, and
/// report a closing that a fire watch signed on it.
pub fn may_act(role: Role, action: ActionKind) -> bool {
    use ActionKind as A;
    match role {
        Role::Admin | Role::Supervisor => true,
        Role::Welder => matches!(
            action,
            A::Edit
                | A::Submit
                | A::Start
                | A::Suspend
                | A::Resume
                | A::Complete
                | A::RecordGas
                | A::Cancel
                | A::Expire
                | A::Close
        ),
        Role::Inspector | Role::Monitor => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_administer_and_every_phone_syncs() {
        for role in Role::ALL {
            let phone = role != Role::Monitor;
            assert_eq!(allowed(role, Endpoint::Push), phone);
            assert_eq!(allowed(role, Endpoint::Pull), phone);
            assert_eq!(allowed(role, Endpoint::PullPermits), phone);
            assert!(allowed(role, Endpoint::Me));
            assert_eq!(allowed(role, Endpoint::WritePlaces), role == Role::Admin);
            assert_eq!(allowed(role, Endpoint::CreateMonitor), role == Role::Admin);
            for e in [
                Endpoint::ReadWarnings,
                Endpoint::ActOnWarnings,
                Endpoint::ReadPlatform,
            ] {
                assert_eq!(
                    allowed(role, e),
                    matches!(role, Role::Admin | Role::Monitor)
                );
            }
            assert_eq!(allowed(role, Endpoint::RegistryWrite), role == Role::Admin);
            assert_eq!(allowed(role, Endpoint::ReadMetrics), role == Role::Admin);
            assert_eq!(allowed(role, Endpoint::ManageDevices), role == Role::Admin);
            assert_eq!(
                allowed(role, Endpoint::CreateEnrolment),
                role == Role::Admin
            );
        }
        assert!(allowed(Role::Supervisor, Endpoint::ListRecords));
        assert!(!allowed(Role::Welder, Endpoint::ListRecords));
        assert!(!may_push(Role::Inspector, "work_session"));
        assert!(!may_push(Role::Welder, "inspection"));
        assert!(!may_push(Role::Admin, "anything_else"));
        assert!(!may_push(Role::Monitor, "work_session"));
        assert!(!allowed(Role::Monitor, Endpoint::ListRecords));
    }

    #[test]
    fn a_welders_device_never_approves_or_rejects() {
        for action in [
            ActionKind::Approve,
            ActionKind::Reject,
            ActionKind::SiteCheck,
        ] {
            assert!(!may_act(Role::Welder, action), "{action:?}");
            assert!(may_act(Role::Supervisor, action), "{action:?}");
        }
        assert!(may_act(Role::Welder, ActionKind::Submit));
        assert!(may_act(Role::Welder, ActionKind::Suspend));
        assert!(
            ActionKind::ALL
                .iter()
                .all(|a| !may_act(Role::Inspector, *a))
        );
    }
}
