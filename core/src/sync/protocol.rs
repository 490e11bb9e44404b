//! The sync protocol's wire types (JSON over HTTP), shared by the device client and the reference
//! server so both sides always agree.
//!
//! Endpoints (every one but `/health` and `/v1/enrol` needs `Authorization: Bearer TOKEN`):
//! - `GET  /health`: 200 when the server is ready.
//! - `POST /v1/enrol` ([`EnrolRequest`] → [`EnrolResponse`]): a device trades a one-time enrolment
//!   code for a device token.
//! - `GET  /v1/me` (any role) → [`Identity`].
//! - `POST /v1/admin/enrolments` (admin; [`NewEnrolment`] → [`EnrolmentCode`]).
//! - `POST /v1/admin/registry` (admin; `[RegistryChange]` → [`RegistryWriteResponse`]), and the
//!   per-collection routes `PUT|DELETE /v1/admin/licences/{certificate_no}`,
//!   `PUT|DELETE /v1/admin/machines/{machine_id}`, `PUT|DELETE /v1/admin/bindings/{machine_id}/{certificate_no}`,
//!   `PUT|DELETE /v1/admin/revocations/{target}/{id}`.
//! - `POST /v1/admin/history/compact` (admin; [`CompactRequest`]): forget change history.
//! - `GET  /v1/admin/records` (admin, supervisor) → [`RecordList`]: the records the platform holds.
//! - `POST /v1/push` (any role; [`PushRequest`] → [`PushResponse`]).
//! - `GET  /v1/pull?cursor=C&limit=N` (any role) → [`PullResponse`], or 410 with code
//!   `sync.must_refetch` when the cursor is older than the history the server keeps.
//! - `GET  /v1/permits?after=C&limit=N` (any role) → [`PermitPage`]: the current version of each
//!   permit changed after the cursor (a welder gets the permits naming them); 410
//!   `sync.must_refetch` for a cursor of another server (start again without one).
//! - `GET  /v1/trust` (any role) → the trust file ([`crate::codes::TrustFile`]): every issuer key
//!   with its validity period.
//! - `GET  /v1/revocations/status-list` (any role) → [`StatusListResponse`].
//! - `GET  /v1/snapshot` (any role) → [`SnapshotResponse`]; `GET /v1/snapshot/{id}/chunks/{index}`
//!   → the chunk's bytes (a JSON array of [`RegistryChange`]); 404 `sync.snapshot_gone` once the
//!   platform cut a newer snapshot.
//! - `GET  /v1/registry/checksums` (any role) → [`ChecksumsResponse`].
//! - `POST /v1/admin/codes/machine` (admin; a machine label → [`IssuedCode`]) and
//!   `POST /v1/admin/codes/credential` (admin; a welder credential → [`IssuedCode`]).
//! - `POST /v1/admin/keys/rotate` (admin; [`RotateKeyRequest`] → [`RotatedKey`]).
//! - `GET  /metrics` (admin): Prometheus text; `GET /openapi.json`: this API described.
//!
//! Errors come as [`ErrorBody`] with a stable code.

use serde::{Deserialize, Serialize};

use crate::store::RegistryChange;

/// The one registry feed; its cursor is stored under this name on the device.
pub const REGISTRY_FEED: &str = "registry";
/// The permit head feed; its cursor is stored under this name on the device.
pub const PERMITS_FEED: &str = "permits";
/// Most entries one push may carry.
pub const MAX_PUSH_ENTRIES: usize = 500;
/// Most changes one pull page may carry.
pub const MAX_PULL_LIMIT: u32 = 10_000;
/// The error code of a cursor older than the server's history.
pub const MUST_REFETCH: &str = "sync.must_refetch";

/// Who a device acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Welder,
    Inspector,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Welder, Role::Inspector, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Welder => "welder",
            Role::Inspector => "inspector",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// An admin asks for an enrolment code for one person and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEnrolment {
    /// Who will use the device (name or staff number).
    pub person: String,
    pub role: Role,
}

/// A one-time enrolment code, shown to the person (or as a QR code) to enrol their device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentCode {
    pub code: String,
    pub person: String,
    pub role: Role,
}

/// A device presents its enrolment code and its public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub code: String,
    /// The device key's public part (hex; SEC1 point for ES256).
    pub public_key: String,
    /// A label for the device (model, owner), shown to admins.
    pub device_name: String,
}

/// The device's identity and the token it authenticates with from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub device_id: String,
    pub token: String,
    pub person: String,
    pub role: Role,
}

/// Who the calling device is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub device_id: String,
    pub person: String,
    pub role: Role,
}

/// What a registry write changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryWriteResponse {
    /// Changes recorded in the feed.
    pub changes: u64,
    /// The feed position after the write.
    pub last_seq: i64,
}

/// Forget change history up to `through_seq` (or all of it when absent); devices whose cursor
/// is older must refetch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactRequest {
    pub through_seq: Option<i64>,
}

/// One outbox entry as pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEntry {
    pub idempotency_key: String,
    pub kind: String,
    /// The record as JSON text, exactly as stored on the device.
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub entries: Vec<PushEntry>,
}

/// The platform's answer for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    Applied,
    Duplicate,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResult {
    pub idempotency_key: String,
    pub status: PushStatus,
    /// Why it was rejected: a stable code, then `: ` and details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One result per pushed entry, in the order pushed.
    pub results: Vec<PushResult>,
}

/// One page of registry changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullResponse {
    pub changes: Vec<RegistryChange>,
    /// The cursor to store with this page (and send for the next one). Opaque.
    pub next_cursor: String,
    /// More changes wait after this page.
    pub has_more: bool,
}

/// One page of permit heads (`GET /v1/permits`): each permit's current version on the platform,
/// in the order they changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermitPage {
    pub heads: Vec<crate::store::PermitStepRecord>,
    /// The cursor to store with this page (and send as `after` for the next one). Opaque.
    pub next_cursor: String,
    pub has_more: bool,
}

/// A code the platform issued (`POST /v1/admin/codes/machine`, `…/credential`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    /// The `WG1:` text to print or hand to the welder's phone.
    pub code: String,
    /// The issuer key that signed it (hex).
    pub kid: String,
}

/// Start a new issuer key (`POST /v1/admin/keys/rotate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateKeyRequest {
    /// `EdDSA` (default) or `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<crate::codes::IssuerAlg>,
}

/// The key that signs from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedKey {
    pub kid: String,
}

/// The platform's signed revocation status list (`GET /v1/revocations/status-list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListResponse {
    /// The COSE_Sign1 document ([`crate::codes::verify_status_list`]), standard Base64.
    pub document: String,
}

/// The platform's current registry snapshot (`GET /v1/snapshot`); its chunks are
/// `GET /v1/snapshot/{snapshot_id}/chunks/{index}`, each a JSON array of registry changes whose exact
/// bytes the manifest's digest covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResponse {
    /// The signed manifest ([`crate::codes::verify_snapshot_manifest`]), standard Base64.
    pub document: String,
}

/// The platform's per-collection registry checksums at a feed position
/// (`GET /v1/registry/checksums`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumsResponse {
    /// The cursor a device holds when it has every change these checksums cover.
    pub cursor: String,
    pub collections: Vec<super::checksum::CollectionChecksum>,
}

/// A record the platform holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub idempotency_key: String,
    pub kind: String,
    pub payload: String,
    pub device_id: String,
    pub received_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordList {
    pub records: Vec<StoredRecord>,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code, e.g. `auth.missing_token`, `auth.forbidden`, `sync.must_refetch`.
    pub code: String,
    pub message: String,
}
