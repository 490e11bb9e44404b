//! The device's sync client: a blocking HTTP client (reqwest + rustls, no OpenSSL) that pushes the
//! outbox and pulls registry pages into the [`Store`]. Run it on a background thread; watch it with
//! the progress callback, stop it with the cancellation flag.
//!
//! Failures without an answer (network errors, timeouts, truncated or unreadable answers, 5xx, 408,
//! 429) are retried with [`RetryPolicy`]'s backoff (for a 429, at least its `Retry-After`, at most
//! the policy's longest wait); other 4xx answers are not, with one exception:
//! a 401 `auth.token_expired` when the client was given the device key ([`SyncClient::with_refresh`])
//! is answered by one token refresh (the device signs a fresh server nonce with its enrolled key)
//! and the call is made again with the new token, which is handed to the caller's callback at once
//! to be stored. Push is safe to retry because the platform applies each idempotency key at most
//! once; pull is a read, and each page lands in the store with its cursor in one transaction.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backoff::RetryPolicy;
use super::error::SyncError;
use super::protocol::{
    AuthChallenge, AuthChallengeRequest, ChecksumsResponse, EnrolRequest, EnrolResponse, ErrorBody,
    Identity, MUST_REFETCH, PERMITS_FEED, PermitPage, PullResponse, PushEntry, PushRequest,
    PushResponse, PushStatus, REGISTRY_FEED, SignerDirectoryResponse, SnapshotResponse,
    StatusListResponse, TOKEN_EXPIRED, TokenRefreshRequest, TokenRefreshResponse,
    token_refresh_message,
};
use crate::codes::signer::sign_normalised;
use crate::codes::{
    DeviceSigner, SnapshotChunk, SnapshotManifest, TrustFile, TrustStore, to_hex,
    verify_snapshot_manifest, verify_status_list,
};
use crate::store::{OutboxResult, RegistryChange, StatusListSaved, Store, SyncCursor};

/// Outbox entries per push request.
pub const PUSH_BATCH: usize = 100;
/// Registry changes per pull page.
pub const PULL_PAGE: u32 = 5000;
/// Permit heads per page of `GET /v1/permits`.
pub const PERMIT_PAGE: u32 = 200;
/// Refetches allowed in one sync before giving up.
const MAX_REFETCHES: u32 = 2;

/// Which part of a sync is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    Push,
    Pull,
}

/// A progress event: `done` of `total` units (outbox entries; registry changes, whose total is
/// unknown until the last page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: SyncPhase,
    pub done: u64,
    pub total: Option<u64>,
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub pushed: u64,
    pub applied: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub pulled_changes: u64,
    pub pages: u64,
    pub refetches: u32,
    /// Requests retried after a failure without an answer.
    pub retries: u32,
    /// What became of the signed revocation status list fetched first.
    pub status_list: StatusListCheck,
    /// What became of the signed signer directory fetched next (same outcomes).
    pub signer_directory: StatusListCheck,
    /// Snapshot chunks downloaded and applied (a first sync or a refetch with a trust store).
    pub snapshot_chunks: u64,
    /// Rows downloaded again for collections that drifted ([`SyncClient::check_drift`]).
    pub refetched_rows: u64,
    /// Device tokens refreshed during the run (each was handed to the token callback at once).
    pub token_refreshes: u32,
    /// Permit heads received from `GET /v1/permits`, and how many of them changed a local permit.
    pub pulled_permits: u64,
    pub permits_changed: u64,
}

/// A device token the client obtained by refreshing. The previous token no longer works: store
/// this one at once (Keystore/Keychain on a phone), even if the sync fails afterwards. A token
/// lost anyway is not fatal: the next sync refreshes again with the device key.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshedToken {
    pub token: String,
    /// Unix milliseconds; `None`: it does not expire.
    pub expires_at_ms: Option<i64>,
}

impl std::fmt::Debug for RefreshedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshedToken")
            .field("token", &"…")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// Called with every new token, on the thread that refreshed it.
pub type TokenCallback = Box<dyn Fn(&RefreshedToken) + Send + Sync>;

/// How the client refreshes an expired token: the device's id and enrolled key, and where new
/// tokens go.
struct Refresher {
    device_id: String,
    signer: Arc<dyn DeviceSigner>,
    on_token: TokenCallback,
    /// One refresh at a time (a prefetching pull makes calls from two threads).
    lock: Mutex<()>,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// What a drift check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftCheck {
    /// Every collection matches the platform's checksums.
    InSync,
    /// The device's cursor is not the one the platform's checksums are for (a change arrived in
    /// between, or the device has not pulled): nothing compared; pull and check again.
    NotComparable,
    /// These collections differed: each was emptied and fetched again, then the feed pulled as
    /// usual (the other collections, records and the outbox are untouched).
    Refetched {
        collections: Vec<super::checksum::Collection>,
        report: SyncReport,
    },
}

/// The status list (or signer directory) step of a sync: each a signed document of the platform
/// that the device keeps only when it verifies and is not older than the one held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusListCheck {
    /// The client has no trust store to verify a list with, or the run did not pull.
    #[default]
    NotChecked,
    /// A newer list was verified and stored.
    Updated { sequence: u64 },
    /// The server's list is the one held; its fetch time was refreshed.
    Unchanged { sequence: u64 },
    /// The server sent an older list than the device holds (a lagging replica or a replay): kept
    /// the newer one.
    Older { held: u64, received: u64 },
}

impl StatusListCheck {
    /// What saving a verified document of `received` sequence did.
    fn of(saved: StatusListSaved, received: u64) -> Self {
        match saved {
            StatusListSaved::Replaced => StatusListCheck::Updated { sequence: received },
            StatusListSaved::Unchanged => StatusListCheck::Unchanged { sequence: received },
            StatusListSaved::Older { held } => StatusListCheck::Older { held, received },
        }
    }
}

/// A client of one platform server, acting for one device (its token).
pub struct SyncClient {
    base: String,
    /// The device token; replaced by a refresh.
    token: RwLock<Option<String>>,
    http: Client,
    policy: RetryPolicy,
    retries: AtomicU32,
    refreshes: AtomicU32,
    /// Issuer keys that may sign the revocation status list; without them the list is not fetched.
    trust: Option<TrustStore>,
    refresher: Option<Refresher>,
}

/// Everything but the token, which must not end up in logs or crash reports.
impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let has_token = self
            .token
            .read()
            .map(|t| t.is_some())
            .unwrap_or_else(|p| p.into_inner().is_some());
        f.debug_struct("SyncClient")
            .field("base", &self.base)
            .field("token", &if has_token { "…" } else { "none" })
            .field("policy", &self.policy)
            .field("trust", &self.trust)
            .field("refresher", &self.refresher)
            .finish_non_exhaustive()
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
}

/// Percent-encode a query value (cursors are opaque to the device).
/// The wait before a retry: the backoff, or the server's `Retry-After` when longer, never over
/// `max`.
fn retry_wait(backoff: Duration, retry_after: Duration, max: Duration) -> Duration {
    backoff.max(retry_after).min(max.max(backoff))
}

pub(super) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How one attempt ended.
enum Failure {
    Retry(SyncError),
    /// A `429` whose `Retry-After` asks to wait this long before retrying.
    RetryAfter(SyncError, Duration),
    Stop(SyncError),
    /// 401 with this error code and message.
    Denied {
        code: String,
        message: String,
    },
}

impl SyncClient {
    /// A client of the server at `base_url` (`http://HOST:PORT` or `https://…`), authenticating
    /// with `token` (none before enrolment).
    pub fn new(
        base_url: &str,
        token: Option<String>,
        policy: RetryPolicy,
    ) -> Result<Self, SyncError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(SyncError::InvalidAddress(base_url.to_owned()));
        }
        // An address that is no URL (`http://[::1`) fails here, not as a network error retried
        // with backoff.
        if reqwest::Url::parse(&base).map_or(true, |u| u.host_str().is_none_or(str::is_empty)) {
            return Err(SyncError::InvalidAddress(base_url.to_owned()));
        }
        // A token that cannot be an HTTP header value (control characters, non-ASCII) is no
        // token the platform issued: refused here rather than retried.
        if token
            .as_deref()
            .is_some_and(|t| !t.bytes().all(|b| (0x20..0x7f).contains(&b)))
        {
            return Err(SyncError::Unauthorized(
                "the device token is malformed".to_owned(),
            ));
        }
        // TLS through rustls with the ring provider; installing fails harmlessly when done before.
        // The address is checked above, so a builder failure is this system's: the root
        // certificates reqwest loads for TLS (a Linux without ca-certificates has none).
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Answers come gzip-compressed when asked (`Accept-Encoding: gzip`); reqwest decodes them.
        let http = Client::builder()
            .gzip(true)
            .timeout(policy.request_timeout)
            .connect_timeout(policy.connect_timeout)
            .no_proxy()
            .build()
            .map_err(|e| SyncError::ClientSetup(describe(&e)))?;
        Ok(SyncClient {
            base,
            token: RwLock::new(token),
            http,
            policy,
            retries: AtomicU32::new(0),
            refreshes: AtomicU32::new(0),
            trust: None,
            refresher: None,
        })
    }

    /// Refresh an expired token with the device key: on a 401 `auth.token_expired` the client
    /// signs a fresh server nonce with `signer` (the key `device_id` enrolled with), takes the new
    /// token, hands it to `on_token` at once (store it: the old one no longer works) and makes
    /// the call again. At most one refresh per call; a refused refresh stops with
    /// [`SyncError::RefreshFailed`].
    pub fn with_refresh(
        mut self,
        device_id: &str,
        signer: Arc<dyn DeviceSigner>,
        on_token: impl Fn(&RefreshedToken) + Send + Sync + 'static,
    ) -> Self {
        self.refresher = Some(Refresher {
            device_id: device_id.to_owned(),
            signer,
            on_token: Box::new(on_token),
            lock: Mutex::new(()),
        });
        self
    }

    /// The token the client uses now (the latest refreshed one).
    pub fn token(&self) -> Option<String> {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Verify the revocation status list with these issuer keys; a sync that pulls fetches the
    /// list first.
    pub fn with_trust(mut self, trust: TrustStore) -> Self {
        self.trust = Some(trust);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// One request, retried per the policy. `body` is JSON; so is the answer.
    pub(super) fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        cancel: &AtomicBool,
    ) -> Result<T, SyncError> {
        self.call_with(method, path_and_query, body, cancel, &|bytes| {
            serde_json::from_slice(bytes).map_err(|e| SyncError::BadResponse(e.to_string()))
        })
    }

    /// One request, retried per the policy, its successful answer read by `parse` (an answer
    /// `parse` refuses is retried like a garbled one).
    fn call_with<T>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        cancel: &AtomicBool,
        parse: &dyn Fn(&[u8]) -> Result<T, SyncError>,
    ) -> Result<T, SyncError> {
        let mut retry = 0u32;
        let mut refreshed = false;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(SyncError::Cancelled);
            }
            let token = self.token();
            match self.attempt(
                method.clone(),
                path_and_query,
                body.clone(),
                token.as_deref(),
                parse,
            ) {
                Ok(value) => return Ok(value),
                Err(Failure::Stop(e)) => return Err(e),
                Err(Failure::Denied { code, message }) if code == TOKEN_EXPIRED => {
                    match &self.refresher {
                        Some(refresher) if !refreshed => {
                            refreshed = true;
                            self.refresh_after(refresher, token.as_deref(), cancel)?;
                        }
                        _ => return Err(SyncError::TokenExpired(message)),
                    }
                }
                Err(Failure::Denied { message, .. }) => {
                    return Err(SyncError::Unauthorized(message));
                }
                Err(Failure::Retry(e)) => self.back_off(&mut retry, Duration::ZERO, e, cancel)?,
                Err(Failure::RetryAfter(e, wait)) => self.back_off(&mut retry, wait, e, cancel)?,
            }
        }
    }

    /// Wait before the next attempt (the policy's backoff, or the server's `Retry-After` when
    /// longer, at most the policy's longest wait), or give up with `e` once the attempts are
    /// used up.
    fn back_off(
        &self,
        retry: &mut u32,
        at_least: Duration,
        e: SyncError,
        cancel: &AtomicBool,
    ) -> Result<(), SyncError> {
        if *retry + 1 >= self.policy.max_attempts.max(1) {
            return Err(e);
        }
        let wait = retry_wait(
            self.policy.delay(*retry, jitter()),
            at_least,
            self.policy.max_delay,
        );
        self.sleep(wait, cancel)?;
        *retry += 1;
        self.retries.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sleep in short slices so a cancellation is seen quickly.
    fn sleep(&self, total: Duration, cancel: &AtomicBool) -> Result<(), SyncError> {
        let slice = Duration::from_millis(50);
        let mut left = total;
        while !left.is_zero() {
            if cancel.load(Ordering::Relaxed) {
                return Err(SyncError::Cancelled);
            }
            let step = left.min(slice);
            std::thread::sleep(step);
            left -= step;
        }
        Ok(())
    }

    /// Replace the token `used` (which the server called expired) by a refreshed one, unless
    /// another thread already did; the new token goes to the callback before anything else.
    fn refresh_after(
        &self,
        refresher: &Refresher,
        used: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<(), SyncError> {
        let _one_at_a_time = refresher
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.token().as_deref() != used {
            return Ok(());
        }
        let issued = self.refresh_token(refresher, cancel)?;
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = Some(issued.token.clone());
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        (refresher.on_token)(&issued);
        Ok(())
    }

    /// Challenge, sign, refresh; the pair is retried as a whole (with a new nonce) after failures
    /// without an answer, so a refresh whose answer was lost is simply done again.
    fn refresh_token(
        &self,
        refresher: &Refresher,
        cancel: &AtomicBool,
    ) -> Result<RefreshedToken, SyncError> {
        let failed = |code: &str, message: String| SyncError::RefreshFailed {
            code: code.to_owned(),
            message,
        };
        let mut retry = 0u32;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(SyncError::Cancelled);
            }
            let attempt = || -> Result<TokenRefreshResponse, Failure> {
                let challenge = Self::json(&AuthChallengeRequest {
                    device_id: refresher.device_id.clone(),
                })
                .map_err(Failure::Stop)?;
                let challenge: AuthChallenge = self.attempt(
                    Method::POST,
                    "/v1/auth/challenge",
                    Some(challenge),
                    None,
                    &parse_json::<AuthChallenge>,
                )?;
                let message = token_refresh_message(&refresher.device_id, &challenge.nonce);
                let signature = sign_normalised(refresher.signer.as_ref(), &message)
                    .map_err(|e| Failure::Stop(failed("signer.failed", e.to_string())))?;
                let request = Self::json(&TokenRefreshRequest {
                    device_id: refresher.device_id.clone(),
                    nonce: challenge.nonce,
                    signature: to_hex(&signature),
                })
                .map_err(Failure::Stop)?;
                self.attempt(
                    Method::POST,
                    "/v1/auth/refresh",
                    Some(request),
                    None,
                    &parse_json::<TokenRefreshResponse>,
                )
            };
            match attempt() {
                Ok(answer) => {
                    return Ok(RefreshedToken {
                        token: answer.token,
                        expires_at_ms: answer.token_expires_at_ms,
                    });
                }
                Err(Failure::Denied { code, message }) => return Err(failed(&code, message)),
                Err(Failure::Stop(SyncError::Refused { code, message, .. })) => {
                    return Err(failed(&code, message));
                }
                Err(Failure::Stop(e)) => return Err(e),
                Err(Failure::Retry(e)) => self.back_off(&mut retry, Duration::ZERO, e, cancel)?,
                Err(Failure::RetryAfter(e, wait)) => self.back_off(&mut retry, wait, e, cancel)?,
            }
        }
    }

    fn attempt<T>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
        parse: &dyn Fn(&[u8]) -> Result<T, SyncError>,
    ) -> Result<T, Failure> {
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().map_err(|e| {
            if e.is_builder() {
                // The request could not even be built: retrying cannot help.
                Failure::Stop(SyncError::InvalidAddress(describe(&e)))
            } else {
                Failure::Retry(SyncError::Network(describe(&e)))
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A body cut short shows here as a read error: retried like any network failure.
        let bytes = response
            .bytes()
            .map_err(|e| Failure::Retry(SyncError::Network(describe(&e))))?;
        if status.is_success() {
            return parse(&bytes).map_err(Failure::Retry);
        }
        let error: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let (code, message) = match error {
            Some(e) => (e.code, e.message),
            None => (
                String::new(),
                String::from_utf8_lossy(bytes.get(..200).unwrap_or(&bytes)).into_owned(),
            ),
        };
        let code_num = status.as_u16();
        if status.is_server_error() || code_num == 408 || code_num == 429 {
            let error = SyncError::Server {
                status: code_num,
                message: format!("{code} {message}").trim().to_owned(),
            };
            match retry_after {
                Some(wait) if code_num == 429 => Err(Failure::RetryAfter(error, wait)),
                _ => Err(Failure::Retry(error)),
            }
        } else if code_num == 401 {
            Err(Failure::Denied { code, message })
        } else {
            Err(Failure::Stop(SyncError::Refused {
                status: code_num,
                code,
                message,
            }))
        }
    }

    pub(super) fn json<B: Serialize>(body: &B) -> Result<Vec<u8>, SyncError> {
        serde_json::to_vec(body).map_err(|e| SyncError::BadResponse(e.to_string()))
    }

    /// Trade an enrolment code for a device token. Use the answer's token for a new client.
    pub fn enrol(
        &self,
        code: &str,
        public_key_hex: &str,
        device_name: &str,
    ) -> Result<EnrolResponse, SyncError> {
        let body = Self::json(&EnrolRequest {
            code: code.to_owned(),
            public_key: public_key_hex.to_owned(),
            device_name: device_name.to_owned(),
        })?;
        self.call(
            Method::POST,
            "/v1/enrol",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// The platform's issuer keys with their validity periods (`GET /v1/trust`): what a device
    /// verifies codes, status lists and snapshots with. Fetched at enrolment over the enrolled
    /// channel; later key rotations reach the device through it again.
    pub fn trust_file(&self) -> Result<TrustFile, SyncError> {
        self.trust_file_or_cancel(&AtomicBool::new(false))
    }

    /// [`Self::trust_file`], stopping (between retries too) when `cancel` is raised.
    pub fn trust_file_or_cancel(&self, cancel: &AtomicBool) -> Result<TrustFile, SyncError> {
        self.call(Method::GET, "/v1/trust", None, cancel)
    }

    /// Who this client's token belongs to.
    pub fn identity(&self) -> Result<Identity, SyncError> {
        self.call(Method::GET, "/v1/me", None, &AtomicBool::new(false))
    }

    /// Push the outbox, then pull the registry.
    pub fn sync(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<SyncReport, SyncError> {
        self.run(store, progress, cancel, true, true)
    }

    /// Push every unresolved outbox entry.
    pub fn push(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<SyncReport, SyncError> {
        self.run(store, progress, cancel, true, false)
    }

    /// Pull registry changes after the stored cursor, page by page.
    pub fn pull(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<SyncReport, SyncError> {
        self.run(store, progress, cancel, false, true)
    }

    /// One sync run of the phases asked for, with its retry count in the report.
    fn run(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        push: bool,
        pull: bool,
    ) -> Result<SyncReport, SyncError> {
        self.retries.store(0, Ordering::Relaxed);
        self.refreshes.store(0, Ordering::Relaxed);
        let mut report = SyncReport::default();
        if pull && let Some(trust) = &self.trust {
            report.status_list = self.fetch_status_list(store, trust, cancel)?;
            report.signer_directory = self.fetch_signer_directory(store, trust, cancel)?;
        }
        if push {
            self.push_into(store, progress, cancel, &mut report)?;
        }
        if pull {
            self.finish_refetches(store, progress, cancel, &mut report)?;
            self.pull_into(store, progress, cancel, &mut report)?;
            self.pull_permits_into(store, cancel, &mut report)?;
        }
        report.retries = self.retries.load(Ordering::Relaxed);
        report.token_refreshes = self.refreshes.load(Ordering::Relaxed);
        Ok(report)
    }

    /// Fetch the signed revocation status list, verify it with `trust` and keep it when it is newer
    /// than the one held. A list that does not verify stops the sync and changes nothing.
    pub fn fetch_status_list(
        &self,
        store: &Store,
        trust: &TrustStore,
        cancel: &AtomicBool,
    ) -> Result<StatusListCheck, SyncError> {
        let response: StatusListResponse =
            self.call(Method::GET, "/v1/revocations/status-list", None, cancel)?;
        let document = decode_base64(&response.document, "status list")?;
        let now = now_ms();
        let list = verify_status_list(&document, trust, now / 1000, DOCUMENT_SKEW_SECS)
            .map_err(SyncError::StatusList)?;
        let signer = status_list_signer(&document);
        let saved = store.save_status_list(&list, &signer, &document, now)?;
        Ok(StatusListCheck::of(saved, list.sequence))
    }

    /// Fetch the signed signer directory (who may sign permits), verify it with `trust` and keep
    /// it when it is not older than the one held. One that does not verify stops the sync and
    /// changes nothing.
    pub fn fetch_signer_directory(
        &self,
        store: &Store,
        trust: &TrustStore,
        cancel: &AtomicBool,
    ) -> Result<StatusListCheck, SyncError> {
        let response: SignerDirectoryResponse =
            self.call(Method::GET, "/v1/signers", None, cancel)?;
        let document = decode_base64(&response.document, "signer directory")?;
        let now = now_ms();
        let directory =
            crate::signers::verify_directory(&document, trust, now / 1000, DOCUMENT_SKEW_SECS)
                .map_err(SyncError::SignerDirectory)?;
        let saved = store.save_signer_directory(&directory, &document, now)?;
        Ok(StatusListCheck::of(saved, directory.sequence))
    }

    /// Compare the registry cache with the platform's per-collection checksums; on drift, refetch
    /// the collections that differ (the private `sync::refetch` module) and pull. Reads the whole
    /// cache, so shells run it now and then (e.g. daily on Wi-Fi), not at every sync.
    pub fn check_drift(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<DriftCheck, SyncError> {
        let platform: ChecksumsResponse =
            self.call(Method::GET, "/v1/registry/checksums", None, cancel)?;
        if store.sync_cursor(REGISTRY_FEED)?.as_deref() != Some(platform.cursor.as_str()) {
            return Ok(DriftCheck::NotComparable);
        }
        let collections = store.registry_checksums()?.drifted(&platform.collections);
        if collections.is_empty() {
            return Ok(DriftCheck::InSync);
        }
        for collection in &collections {
            store.begin_collection_refetch(*collection, now_ms())?;
        }
        let report = self.run(store, progress, cancel, false, true)?;
        Ok(DriftCheck::Refetched {
            collections,
            report,
        })
    }

    fn push_into(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let counts = store.outbox_counts()?;
        let total = counts.pending + counts.sent;
        progress(Progress {
            phase: SyncPhase::Push,
            done: 0,
            total: Some(total),
        });
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(SyncError::Cancelled);
            }
            let batch = store.outbox_pending(PUSH_BATCH)?;
            if batch.is_empty() {
                return Ok(());
            }
            let keys: Vec<&str> = batch.iter().map(|e| e.idempotency_key.as_str()).collect();
            store.outbox_mark_sent(&keys, now_ms())?;
            let request = PushRequest {
                entries: batch
                    .iter()
                    .map(|e| PushEntry {
                        idempotency_key: e.idempotency_key.clone(),
                        kind: e.kind.clone(),
                        payload: e.payload.clone(),
                    })
                    .collect(),
            };
            let answer = Self::json(&request)
                .and_then(|body| {
                    self.call::<PushResponse>(Method::POST, "/v1/push", Some(body), cancel)
                })
                .and_then(|response| answers_for(&keys, response));
            let results = match answer {
                Ok(results) => results,
                Err(e) => {
                    store.outbox_record_failure(&keys, &e.to_string(), now_ms())?;
                    return Err(e);
                }
            };
            for (_, result) in &results {
                match result {
                    OutboxResult::Applied => report.applied += 1,
                    OutboxResult::Duplicate => report.duplicate += 1,
                    OutboxResult::Rejected { .. } => report.rejected += 1,
                }
            }
            store.outbox_mark_results(&results, now_ms())?;
            report.pushed += keys.len() as u64;
            progress(Progress {
                phase: SyncPhase::Push,
                done: report.pushed,
                total: Some(total.max(report.pushed)),
            });
        }
    }

    /// Load the platform's signed registry snapshot chunk by chunk, resuming a download under way
    /// unless `fresh`. `Ok(false)` when the platform offers no snapshot (the paged feed is used).
    fn load_snapshot(
        &self,
        store: &Store,
        trust: &TrustStore,
        fresh: bool,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        report: &mut SyncReport,
    ) -> Result<bool, SyncError> {
        let mut restarts = 0u32;
        let mut fresh = fresh;
        loop {
            let resumed = match store.snapshot_progress()? {
                Some(held) if !fresh => {
                    let now = now_ms() / 1000;
                    match verify_snapshot_manifest(&held.manifest, trust, now, DOCUMENT_SKEW_SECS) {
                        Ok(manifest) => Some((manifest, held.next_chunk)),
                        // The trust store changed since: start over with a new snapshot.
                        Err(_) => None,
                    }
                }
                _ => None,
            };
            let (manifest, first) = match resumed {
                Some(resumed) => resumed,
                None => {
                    let response: SnapshotResponse =
                        match self.call(Method::GET, "/v1/snapshot", None, cancel) {
                            Ok(r) => r,
                            Err(SyncError::Refused { status: 404, .. }) => {
                                store.abandon_snapshot()?;
                                return Ok(false);
                            }
                            Err(e) => return Err(e),
                        };
                    let document = decode_base64(&response.document, "snapshot manifest")?;
                    let now = now_ms();
                    let manifest =
                        verify_snapshot_manifest(&document, trust, now / 1000, DOCUMENT_SKEW_SECS)
                            .map_err(SyncError::Snapshot)?;
                    store.begin_snapshot(REGISTRY_FEED, &manifest.snapshot_id, &document, now)?;
                    (manifest, 0)
                }
            };
            match self.load_chunks(store, &manifest, first, progress, cancel, report) {
                Err(SyncError::Refused { status: 404, .. }) if restarts < 1 => {
                    // The platform replaced the snapshot while this device was loading it.
                    restarts += 1;
                    store.abandon_snapshot()?;
                    fresh = true;
                }
                other => return other.map(|()| true),
            }
        }
    }

    fn load_chunks(
        &self,
        store: &Store,
        manifest: &SnapshotManifest,
        first: u32,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let total: u64 = manifest.chunks.iter().map(|c| u64::from(c.changes)).sum();
        let final_cursor = SyncCursor {
            feed: REGISTRY_FEED.to_owned(),
            cursor: manifest.cursor.clone(),
        };
        if manifest.chunks.is_empty() {
            store.apply_snapshot_chunk(
                &manifest.snapshot_id,
                0,
                Vec::new(),
                Some(&final_cursor),
                now_ms(),
            )?;
            return Ok(());
        }
        let last = manifest.chunks.len() - 1;
        let mut done: u64 = manifest
            .chunks
            .iter()
            .take(first as usize)
            .map(|c| u64::from(c.changes))
            .sum();
        for (index, chunk) in manifest.chunks.iter().enumerate().skip(first as usize) {
            if cancel.load(Ordering::Relaxed) {
                return Err(SyncError::Cancelled);
            }
            let path = format!(
                "/v1/snapshot/{}/chunks/{index}",
                encode(&manifest.snapshot_id)
            );
            let changes: Vec<RegistryChange> =
                self.call_with(Method::GET, &path, None, cancel, &|bytes| {
                    check_chunk(bytes, chunk)
                })?;
            let index32 = u32::try_from(index)
                .map_err(|_| SyncError::BadResponse("too many snapshot chunks".to_owned()))?;
            let n = changes.len() as u64;
            store.apply_snapshot_chunk(
                &manifest.snapshot_id,
                index32,
                changes,
                (index == last).then_some(&final_cursor),
                now_ms(),
            )?;
            done += n;
            report.pulled_changes += n;
            report.snapshot_chunks += 1;
            progress(Progress {
                phase: SyncPhase::Pull,
                done,
                total: Some(total),
            });
        }
        Ok(())
    }

    fn fetch_page(
        &self,
        cursor: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<PullResponse, SyncError> {
        let path = match cursor {
            Some(c) => format!("/v1/pull?limit={PULL_PAGE}&cursor={}", encode(c)),
            None => format!("/v1/pull?limit={PULL_PAGE}"),
        };
        self.call(Method::GET, &path, None, cancel)
    }

    /// Pages are applied in order, each with its cursor in one transaction; the next page is
    /// fetched while the current one is applied (its cursor is known once the page arrives).
    fn pull_into(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        progress(Progress {
            phase: SyncPhase::Pull,
            done: 0,
            total: None,
        });
        // A first sync, or one resuming a snapshot download, loads the signed snapshot when the
        // device can verify it and the platform offers one.
        if let Some(trust) = &self.trust
            && (store.snapshot_progress()?.is_some() || store.sync_cursor(REGISTRY_FEED)?.is_none())
        {
            self.load_snapshot(store, trust, false, progress, cancel, report)?;
        }
        let cursor = store.sync_cursor(REGISTRY_FEED)?;
        let mut fetched = self.fetch_page(cursor.as_deref(), cancel);
        loop {
            let page = match fetched {
                Err(SyncError::Refused { code, .. }) if code == MUST_REFETCH => {
                    if report.refetches >= MAX_REFETCHES {
                        return Err(SyncError::RefetchLoop);
                    }
                    report.refetches += 1;
                    let reloaded = match &self.trust {
                        Some(trust) => {
                            self.load_snapshot(store, trust, true, progress, cancel, report)?
                        }
                        None => false,
                    };
                    if !reloaded {
                        store.clear_registry(REGISTRY_FEED)?;
                    }
                    let cursor = store.sync_cursor(REGISTRY_FEED)?;
                    fetched = self.fetch_page(cursor.as_deref(), cancel);
                    continue;
                }
                other => other?,
            };
            if page.next_cursor.is_empty() || (page.has_more && page.changes.is_empty()) {
                return Err(SyncError::BadResponse(
                    "a page without a cursor, or an empty page announcing more".to_owned(),
                ));
            }
            let n = page.changes.len() as u64;
            let next = SyncCursor {
                feed: REGISTRY_FEED.to_owned(),
                cursor: page.next_cursor,
            };
            let has_more = page.has_more;
            let changes = page.changes;
            let (applied, prefetched) = std::thread::scope(|scope| {
                let prefetch =
                    has_more.then(|| scope.spawn(|| self.fetch_page(Some(&next.cursor), cancel)));
                let applied = store.apply_registry_changes(changes, Some(&next), now_ms());
                let prefetched = prefetch.map(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(SyncError::BadResponse("the page fetch failed".to_owned()))
                    })
                });
                (applied, prefetched)
            });
            applied?;
            report.pulled_changes += n;
            report.pages += 1;
            progress(Progress {
                phase: SyncPhase::Pull,
                done: report.pulled_changes,
                total: (!has_more).then_some(report.pulled_changes),
            });
            match prefetched {
                None => return Ok(()),
                Some(next_page) => fetched = next_page,
            }
        }
    }
}

/// A JSON answer.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SyncError> {
    serde_json::from_slice(bytes).map_err(|e| SyncError::BadResponse(e.to_string()))
}

impl SyncClient {
    /// Pull the permit heads changed since the stored cursor (feed [`PERMITS_FEED`]), page by page,
    /// each page with its cursor in one transaction ([`Store::apply_permit_heads`]): the device's
    /// permits become the platform's versions. A cursor of another server database starts over.
    pub fn pull_permits(
        &self,
        store: &Store,
        cancel: &AtomicBool,
    ) -> Result<SyncReport, SyncError> {
        self.retries.store(0, Ordering::Relaxed);
        let mut report = SyncReport::default();
        self.pull_permits_into(store, cancel, &mut report)?;
        report.retries = self.retries.load(Ordering::Relaxed);
        Ok(report)
    }

    fn pull_permits_into(
        &self,
        store: &Store,
        cancel: &AtomicBool,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let mut cursor = store.sync_cursor(PERMITS_FEED)?;
        let mut restarted = false;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/permits?limit={PERMIT_PAGE}&after={}", encode(c)),
                None => format!("/v1/permits?limit={PERMIT_PAGE}"),
            };
            let page: PermitPage = match self.call(Method::GET, &path, None, cancel) {
                Err(SyncError::Refused { code, .. }) if code == MUST_REFETCH && !restarted => {
                    restarted = true;
                    cursor = None;
                    continue;
                }
                other => other?,
            };
            if page.next_cursor.is_empty() || (page.has_more && page.heads.is_empty()) {
                return Err(SyncError::BadResponse(
                    "a permit page without a cursor, or an empty one announcing more".to_owned(),
                ));
            }
            let next = SyncCursor {
                feed: PERMITS_FEED.to_owned(),
                cursor: page.next_cursor,
            };
            let changed = store
                .apply_permit_heads(&page.heads, &next, now_ms())
                .map_err(|e| match e {
                    crate::store::PermitStoreError::Store(e) => SyncError::Store(e),
                    other => SyncError::BadResponse(format!("a permit head: {other}")),
                })?;
            report.pulled_permits += page.heads.len() as u64;
            report.permits_changed += changed;
            if !page.has_more {
                return Ok(());
            }
            cursor = Some(next.cursor);
        }
    }
}

/// The answers for exactly the pushed keys, or an error when any is missing.
fn answers_for<'a>(
    keys: &[&'a str],
    response: PushResponse,
) -> Result<Vec<(&'a str, OutboxResult)>, SyncError> {
    let mut by_key: std::collections::HashMap<String, OutboxResult> = response
        .results
        .into_iter()
        .map(|r| {
            let result = match r.status {
                PushStatus::Applied => OutboxResult::Applied,
                PushStatus::Duplicate => OutboxResult::Duplicate,
                PushStatus::Rejected => OutboxResult::Rejected {
                    reason: r.reason.unwrap_or_else(|| "rejected".to_owned()),
                },
            };
            (r.idempotency_key, result)
        })
        .collect();
    keys.iter()
        .map(|k| {
            by_key
                .remove(*k)
                .map(|r| (*k, r))
                .ok_or_else(|| SyncError::BadResponse(format!("no answer for outbox entry {k}")))
        })
        .collect()
}

/// A reqwest error with its causes (reqwest's top line alone says little).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A Base64 field of an answer.
fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, SyncError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| SyncError::BadResponse(format!("{what}: {e}")))
}

/// A snapshot chunk's body checked against its manifest entry (length, SHA-256, change count), then
/// read.
fn check_chunk(bytes: &[u8], chunk: &SnapshotChunk) -> Result<Vec<RegistryChange>, SyncError> {
    use sha2::Digest as _;
    if bytes.len() as u64 != chunk.bytes || sha2::Sha256::digest(bytes).as_slice() != chunk.sha256 {
        return Err(SyncError::BadResponse(
            "a snapshot chunk does not match its manifest digest".to_owned(),
        ));
    }
    let changes: Vec<RegistryChange> =
        serde_json::from_slice(bytes).map_err(|e| SyncError::BadResponse(e.to_string()))?;
    if changes.len() as u64 != u64::from(chunk.changes) {
        return Err(SyncError::BadResponse(
            "a snapshot chunk holds another number of changes than its manifest says".to_owned(),
        ));
    }
    Ok(changes)
}

/// How far in the future a signed document may claim to be made (device clocks drift).
const DOCUMENT_SKEW_SECS: i64 = 600;

/// The hex key id in a verified document's protected header (for display; empty if absent).
fn status_list_signer(document: &[u8]) -> String {
    use coset::CborSerializable as _;
    coset::CoseSign1::from_slice(document)
        .map(|s| crate::codes::to_hex(&s.protected.header.key_id))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::protocol::PushResult;

    #[test]
    fn a_retry_waits_for_retry_after_when_longer_but_never_over_the_longest_wait() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        assert_eq!(retry_wait(ms(500), Duration::ZERO, s(30)), ms(500));
        assert_eq!(retry_wait(ms(500), s(3), s(30)), s(3));
        assert_eq!(retry_wait(s(4), s(1), s(30)), s(4));
        assert_eq!(retry_wait(ms(500), s(3600), s(30)), s(30));
    }

    #[test]
    fn the_debug_form_never_shows_the_token() {
        let client = SyncClient::new(
            "http://127.0.0.1:9",
            Some("s3cret-token".into()),
            RetryPolicy::default(),
        )
        .unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("127.0.0.1:9"), "{text}");
    }

    #[test]
    fn every_pushed_key_must_be_answered() {
        let response = PushResponse {
            results: vec![
                PushResult {
                    idempotency_key: "b".into(),
                    status: PushStatus::Duplicate,
                    reason: None,
                },
                PushResult {
                    idempotency_key: "a".into(),
                    status: PushStatus::Rejected,
                    reason: Some("record.invalid: x".into()),
                },
            ],
        };
        let answers = answers_for(&["a", "b"], response.clone()).unwrap();
        assert_eq!(
            answers,
            vec![
                (
                    "a",
                    OutboxResult::Rejected {
                        reason: "record.invalid: x".into()
                    }
                ),
                ("b", OutboxResult::Duplicate)
            ]
        );
        assert!(matches!(
            answers_for(&["a", "b", "c"], response),
            Err(SyncError::BadResponse(_))
        ));
    }

    #[test]
    fn addresses_are_checked_and_cursors_encoded() {
        assert!(SyncClient::new("ftp://x", None, RetryPolicy::default()).is_err());
        assert!(SyncClient::new("http://127.0.0.1:9", None, RetryPolicy::default()).is_ok());
        assert_eq!(encode("ab.12"), "ab.12");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }

    #[test]
    fn a_refused_connection_is_retried_then_reported_as_a_network_error() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        // Port 9 (discard) on loopback: nothing listens in the test environment.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = SyncClient::new(&format!("http://{addr}"), None, policy).unwrap();
        let err = client.identity().unwrap_err();
        assert!(matches!(err, SyncError::Network(_)), "{err:?}");
        assert_eq!(client.retries.load(Ordering::Relaxed), 2);
    }
}
