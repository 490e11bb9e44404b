//! The sync protocol's wire types (JSON over HTTP), shared by the device client and the reference
//! server so both sides always agree.
//!
//! Endpoints (every one but `/health`, `/v1/enrol` and `/v1/auth/*` needs
//! `Authorization: Bearer TOKEN`):
//! - `GET  /health`: 200 when the server is ready.
//! - `POST /v1/enrol` ([`EnrolRequest`] → [`EnrolResponse`]): a device trades a one-time enrolment
//!   code for a device token.
//! - `POST /v1/auth/challenge` ([`AuthChallengeRequest`] → [`AuthChallenge`]) and
//!   `POST /v1/auth/refresh` ([`TokenRefreshRequest`] → [`TokenRefreshResponse`]), both without a
//!   token: a device whose token expired (401 [`TOKEN_EXPIRED`]) proves it holds the key it enrolled
//!   with by signing [`token_refresh_message`] over a fresh single-use nonce, and gets a new token.
//! - `GET  /v1/me` (any role) → [`Identity`].
//! - `POST /v1/admin/enrolments` (admin; [`NewEnrolment`] → [`EnrolmentCode`]).
//! - `POST /v1/admin/registry` (admin; `[RegistryChange]` → [`RegistryWriteResponse`]), and the
//!   per-collection routes `PUT|DELETE /v1/admin/licences/{certificate_no}`,
//!   `PUT|DELETE /v1/admin/machines/{machine_id}`, `PUT|DELETE /v1/admin/bindings/{machine_id}/{certificate_no}`,
//!   `PUT|DELETE /v1/admin/revocations/{target}/{id}`.
//! - `POST /v1/admin/history/compact` (admin; [`CompactRequest`]): forget change history.
//! - `GET  /v1/admin/records` (admin, supervisor) → [`RecordList`]: the records the platform holds,
//!   a page at a time (`after`, `limit`).
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
//! - `GET  /v1/registry/collections/{name}?after=…&limit=…` (any role) → [`CollectionPage`].
//! - `POST /v1/admin/codes/machine` (admin; a machine label → [`IssuedCode`]) and
//!   `POST /v1/admin/codes/credential` (admin; a welder credential → [`IssuedCode`]).
//! - `POST /v1/admin/keys/rotate` (admin; [`RotateKeyRequest`] → [`RotatedKey`]).
//! - `GET  /metrics` (admin): Prometheus text; `GET /openapi.json`: this API described.
//! - Warnings and places ([`crate::warnings`], docs/adr/0017-warnings-and-scope.md):
//!   `POST /v1/admin/places`, `POST /v1/admin/monitors` (admin); `GET /v1/warnings`,
//!   `GET /v1/warnings/{id}`, `POST /v1/warnings/{id}/acknowledge|close` (admin, monitor, scoped).
//!   "Any role" above means any phone role: a `monitor` calls only `/v1/me` and the warnings.
//!
//! Errors come as [`ErrorBody`] with a stable code.

use serde::{Deserialize, Serialize};

use crate::records::RegistryChange;

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
/// The error code (401) of a device token past its expiry: refresh it with the device key.
pub const TOKEN_EXPIRED: &str = "auth.token_expired";
/// The domain-separation prefix of the message a device signs to refresh its token.
pub const TOKEN_REFRESH_DOMAIN: &str = "weldguard-token-refresh";

/// Who a device acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Welder,
    Inspector,
    Supervisor,
    Admin,
    /// A platform account that watches and acts on warnings inside its scope (city, district or
    /// town) and signs nothing; made by an admin (`POST /v1/admin/monitors`), never a phone.
    Monitor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Welder,
        Role::Inspector,
        Role::Supervisor,
        Role::Admin,
        Role::Monitor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Welder => "welder",
            Role::Inspector => "inspector",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Monitor => "monitor",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// An admin asks for an enrolment code for one person and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEnrolment {
    /// Who will use the device (their name).
    pub person: String,
    pub role: Role,
    /// The id permits and records name the person by: a welder's certificate number, or an ID or
    /// staff number. Whom a welder's permit pull shows, and the signer directory's person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Permit roles the person signs as (`applicant`, `supervisor`, `fire_watch`, a level's
    /// approver role…): the device's key enters the signer directory with them
    /// (docs/adr/0014-who-may-sign-what.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permit_roles: Vec<String>,
}

/// A one-time enrolment code, shown to the person (or as a QR code) to enrol their device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentCode {
    pub code: String,
    pub person: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permit_roles: Vec<String>,
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
    /// The id permits name the person by (the name, for a code made without one).
    #[serde(default)]
    pub person_id: String,
    pub role: Role,
    /// When the token stops working (Unix milliseconds); absent: it does not expire. Before
    /// then, or on a 401 [`TOKEN_EXPIRED`], the device refreshes it with its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at_ms: Option<i64>,
}

/// A device asks for a nonce to sign (`POST /v1/auth/challenge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthChallengeRequest {
    pub device_id: String,
}

/// A random single-use nonce for one token refresh, valid until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthChallenge {
    pub nonce: String,
    /// Unix milliseconds.
    pub expires_at_ms: i64,
}

/// Proof of possession of the device key (`POST /v1/auth/refresh`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefreshRequest {
    pub device_id: String,
    pub nonce: String,
    /// The device key's ES256 signature (64-byte `r || s`, hex) over
    /// [`token_refresh_message`]`(device_id, nonce)`.
    pub signature: String,
}

/// The device's new token; the one it had stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRefreshResponse {
    pub token: String,
    /// Unix milliseconds; absent: it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at_ms: Option<i64>,
}

/// What a device signs to refresh its token: `weldguard-token-refresh`, NUL, the device id, NUL,
/// the nonce. The prefix keeps this signature from ever meaning anything else the device key signs
/// (permit steps, inspections, presentations).
pub fn token_refresh_message(device_id: &str, nonce: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(TOKEN_REFRESH_DOMAIN.len() + device_id.len() + nonce.len() + 2);
    m.extend_from_slice(TOKEN_REFRESH_DOMAIN.as_bytes());
    m.push(0);
    m.extend_from_slice(device_id.as_bytes());
    m.push(0);
    m.extend_from_slice(nonce.as_bytes());
    m
}

/// Who the calling device is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub device_id: String,
    pub person: String,
    /// The id permits name the person by (the name, for a device enrolled without one).
    #[serde(default)]
    pub person_id: String,
    pub role: Role,
}

/// The answer to `POST /v1/admin/devices/{device_id}/disable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledDevice {
    pub device_id: String,
    pub disabled: bool,
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
    pub heads: Vec<crate::records::PermitStepRecord>,
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

/// The platform's signed signer directory (`GET /v1/signers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerDirectoryResponse {
    /// The COSE_Sign1 document ([`crate::signers::verify_directory`]), standard Base64.
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

/// One page of the records the platform holds, in arrival order
/// (`GET /v1/admin/records?kind=…&after=…&limit=…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordList {
    pub records: Vec<StoredRecord>,
    /// Opaque: `after` for the next page (the same cursor again on the last page).
    #[serde(default)]
    pub next_cursor: String,
    /// Whether more records follow this page.
    #[serde(default)]
    pub has_more: bool,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code, e.g. `auth.missing_token`, `auth.forbidden`, `sync.must_refetch`.
    pub code: String,
    pub message: String,
}

/// One page of a registry collection as the platform holds it now (`GET
/// /v1/registry/collections/{name}?after=…&limit=…`), for a device refetching that collection after
/// drift. Rows come in a stable order; `next_after` (opaque) asks for the rest, `None` on the last
/// page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionPage {
    pub collection: super::checksum::Collection,
    /// The platform's feed cursor the rows were read at.
    pub cursor: String,
    /// Each row as the change that creates it.
    pub changes: Vec<RegistryChange>,
    pub next_after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_message_is_domain_separated_and_unambiguous() {
        assert_eq!(
            token_refresh_message("ab12", "n0nce"),
            b"weldguard-token-refresh\0ab12\0n0nce".to_vec()
        );
        // The NUL separators keep (device, nonce) pairs apart.
        assert_ne!(
            token_refresh_message("ab", "1n"),
            token_refresh_message("ab1", "n")
        );
    }

    #[test]
    fn enrolment_answers_without_an_expiry_still_parse() {
        let old = r#"{"device_id":"d","token":"t","person":"p","role":"welder"}"#;
        let answer: EnrolResponse = serde_json::from_str(old).unwrap();
        assert_eq!(answer.token_expires_at_ms, None);
        let text = serde_json::to_string(&answer).unwrap();
        assert!(!text.contains("token_expires_at_ms"), "{text}");
    }
}
