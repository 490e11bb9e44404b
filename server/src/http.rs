//! The HTTP surface: routes, authentication (bearer device tokens), the role check of
//! [`crate::authz`] on every call, and JSON error answers with stable codes. Database work runs on
//! tokio's blocking pool. Every route is declared once in [`router`] through a recording builder,
//! so [`route_table`] lists exactly what the router serves (the OpenAPI test compares the two).
//! Around the routes: gzip compression of answers and [`crate::observe`] (request id, log, metrics).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use weldguard_model::domain::{Binding, Licence, Machine, Revocation, RevocationTarget};
use weldguard_model::protocol::{
    AuthChallenge, AuthChallengeRequest, CompactRequest, DisabledDevice, EnrolRequest,
    EnrolResponse, EnrolmentCode, ErrorBody, Identity, MAX_PULL_LIMIT, MAX_PUSH_ENTRIES,
    MUST_REFETCH, NewEnrolment, PermitPage, PushRequest, PushResponse, PushResult, PushStatus,
    RecordList, RegistryWriteResponse, Role, TOKEN_EXPIRED, TokenRefreshRequest,
    TokenRefreshResponse,
};
use weldguard_model::records::RegistryChange;

use crate::authz::{Endpoint, allowed};
use crate::db::{Caller, Db, DbError, Insert, TokenCheck};
use crate::limits::{Limiter, RateOptions};
use crate::metrics::Metrics;
use crate::{
    errors, limits, observe, platform_api, platform_views, publish, validate, warnings_api,
};

/// Pull page size when the device does not ask for one.
pub const DEFAULT_PULL_LIMIT: u32 = 1000;
/// Largest request body (a full push batch).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How long a device token lives unless the server is told otherwise (`--token-ttl`): 24 h.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 24 * 3600;
/// How long a refresh nonce may wait for its signature: 5 min.
pub const NONCE_TTL_MS: i64 = 5 * 60 * 1000;

/// Shared by every handler: the database (SQLite behind its own mutex, PostgreSQL pooled).
#[derive(Clone)]
pub struct AppState {
    db: Arc<Db>,
    publisher: Arc<crate::publish::Publisher>,
    /// Lifetime of device tokens issued at enrolment and refresh; `None`: they do not expire.
    token_ttl_ms: Option<i64>,
    /// The rate limits' buckets ([`crate::limits`]).
    limiter: Arc<Limiter>,
    /// Open warning streams per account ([`crate::platform_api::StreamSlots`]).
    streams: Arc<crate::platform_api::StreamSlots>,
    /// The dashboard's map tile server (`--dashboard-tiles`), if any.
    dashboard_tiles: Option<Arc<crate::dashboard::Tiles>>,
}

impl AppState {
    pub fn new(db: Db) -> Self {
        Self::shared(Arc::new(db))
    }

    /// A state over a database the caller keeps a handle to.
    pub fn shared(db: Arc<Db>) -> Self {
        AppState {
            db,
            publisher: Arc::default(),
            token_ttl_ms: Some(DEFAULT_TOKEN_TTL_SECS as i64 * 1000),
            limiter: Arc::default(),
            streams: Arc::default(),
            dashboard_tiles: None,
        }
    }

    /// The dashboard draws its map over this tile server.
    pub fn with_dashboard_tiles(mut self, tiles: Option<crate::dashboard::Tiles>) -> Self {
        self.dashboard_tiles = tiles.map(Arc::new);
        self
    }

    /// The dashboard's tile server, if one is configured.
    pub(crate) fn dashboard_tiles(&self) -> Option<&crate::dashboard::Tiles> {
        self.dashboard_tiles.as_deref()
    }

    /// Rate limits from `options` (the default state has the defaults).
    pub fn with_rate_limits(mut self, options: RateOptions) -> Self {
        self.limiter = Arc::new(Limiter::new(options));
        self
    }

    /// The rate limits' buckets of this process.
    pub(crate) fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Device tokens issued from now live `secs` seconds (0: they do not expire).
    pub fn with_token_ttl(mut self, secs: u64) -> Self {
        self.token_ttl_ms =
            (secs > 0).then(|| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        self
    }

    /// When a token issued at `now_ms` expires.
    fn token_expiry(&self, now_ms: i64) -> Option<i64> {
        self.token_ttl_ms.map(|ttl| now_ms.saturating_add(ttl))
    }

    /// The warning streams open in this process, per account.
    pub(crate) fn streams(&self) -> Arc<crate::platform_api::StreamSlots> {
        self.streams.clone()
    }

    /// The registry documents cache of this process.
    pub(crate) fn publisher(&self) -> Arc<crate::publish::Publisher> {
        self.publisher.clone()
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `Retry-After` (seconds) of a `429`.
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// `429 rate.limited`, to be retried after `secs` seconds (at least 1).
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn rate_limited(secs: u64) -> Self {
        let secs = secs.max(1);
        ApiError {
            retry_after_secs: Some(secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate.limited",
                format!("too many requests; retry after {secs} s"),
            )
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::MustRefetch => ApiError::new(StatusCode::GONE, MUST_REFETCH, e.to_string()),
            DbError::InvalidCursor => ApiError::new(
                StatusCode::BAD_REQUEST,
                "sync.invalid_cursor",
                e.to_string(),
            ),
            DbError::BadEnrolmentCode => ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.bad_enrolment_code",
                e.to_string(),
            ),
            DbError::Refresh(refusal) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                refusal.code(),
                refusal.to_string(),
            ),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server.database",
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        observe::note_error(self.code);
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// One route the router serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The path template, e.g. `/v1/admin/licences/{certificate_no}`.
    pub path: &'static str,
    /// The endpoint checked by [`crate::authz::allowed`]; `None`: open to anyone.
    pub endpoint: Option<Endpoint>,
}

/// Builds the router and the list of what it serves in one go.
struct Routes {
    router: Router<AppState>,
    table: Vec<RouteInfo>,
}

impl Routes {
    fn add<H, T>(
        mut self,
        method: &'static str,
        path: &'static str,
        endpoint: Option<Endpoint>,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            _ => MethodFilter::DELETE,
        };
        self.router = self.router.route(path, on(filter, handler));
        self.table.push(RouteInfo {
            method,
            path,
            endpoint,
        });
        self
    }
}

fn routes() -> Routes {
    use Endpoint::*;
    let licence = "/v1/admin/licences/{certificate_no}";
    let machine = "/v1/admin/machines/{machine_id}";
    let binding = "/v1/admin/bindings/{machine_id}/{certificate_no}";
    let revocation = "/v1/admin/revocations/{target}/{id}";
    Routes {
        router: Router::new(),
        table: Vec::new(),
    }
    .add("GET", "/health", None, health)
    .add("GET", "/openapi.json", None, openapi)
    .add("GET", "/metrics", Some(ReadMetrics), metrics)
    .add("POST", "/v1/enrol", None, enrol)
    .add("POST", "/v1/auth/challenge", None, auth_challenge)
    .add("POST", "/v1/auth/refresh", None, auth_refresh)
    .add("GET", "/v1/me", Some(Me), me)
    .add(
        "POST",
        "/v1/admin/enrolments",
        Some(CreateEnrolment),
        create_enrolment,
    )
    .add(
        "POST",
        "/v1/admin/devices/{device_id}/disable",
        Some(ManageDevices),
        disable_device,
    )
    .add(
        "POST",
        "/v1/admin/registry",
        Some(RegistryWrite),
        registry_write,
    )
    .add("PUT", licence, Some(RegistryWrite), put_licence)
    .add("DELETE", licence, Some(RegistryWrite), delete_licence)
    .add("PUT", machine, Some(RegistryWrite), put_machine)
    .add("DELETE", machine, Some(RegistryWrite), delete_machine)
    .add("PUT", binding, Some(RegistryWrite), put_binding)
    .add("DELETE", binding, Some(RegistryWrite), delete_binding)
    .add("PUT", revocation, Some(RegistryWrite), put_revocation)
    .add("DELETE", revocation, Some(RegistryWrite), delete_revocation)
    .add(
        "POST",
        "/v1/admin/history/compact",
        Some(CompactHistory),
        compact,
    )
    .add("GET", "/v1/admin/records", Some(ListRecords), records)
    .add("POST", "/v1/push", Some(Push), push)
    .add("GET", "/v1/pull", Some(Pull), pull)
    .add("GET", "/v1/permits", Some(PullPermits), pull_permits)
    .add("GET", "/v1/trust", Some(Pull), publish::trust)
    .add("GET", "/v1/signers", Some(Pull), crate::signers::directory)
    .add(
        "GET",
        "/v1/revocations/status-list",
        Some(Pull),
        publish::status_list,
    )
    .add("GET", "/v1/snapshot", Some(Pull), publish::snapshot)
    .add(
        "GET",
        "/v1/snapshot/{snapshot_id}/chunks/{index}",
        Some(Pull),
        publish::snapshot_chunk,
    )
    .add(
        "GET",
        "/v1/registry/checksums",
        Some(Pull),
        publish::checksums,
    )
    .add(
        "GET",
        "/v1/registry/collections/{name}",
        Some(Pull),
        publish::collection,
    )
    .add(
        "POST",
        "/v1/admin/codes/machine",
        Some(IssueCodes),
        publish::issue_machine,
    )
    .add(
        "POST",
        "/v1/admin/codes/credential",
        Some(IssueCodes),
        publish::issue_welder,
    )
    .add(
        "POST",
        "/v1/admin/keys/rotate",
        Some(IssueCodes),
        publish::rotate_key,
    )
    .add(
        "POST",
        "/v1/admin/places",
        Some(WritePlaces),
        warnings_api::write_places,
    )
    .add(
        "POST",
        "/v1/admin/monitors",
        Some(CreateMonitor),
        warnings_api::create_monitor,
    )
    .add(
        "GET",
        "/v1/warnings",
        Some(ReadWarnings),
        warnings_api::list,
    )
    .add(
        "GET",
        "/v1/warnings/{id}",
        Some(ReadWarnings),
        warnings_api::get,
    )
    .add(
        "POST",
        "/v1/warnings/{id}/acknowledge",
        Some(ActOnWarnings),
        warnings_api::acknowledge,
    )
    .add(
        "POST",
        "/v1/warnings/{id}/close",
        Some(ActOnWarnings),
        warnings_api::close,
    )
    .add(
        "GET",
        "/v1/warnings/stream",
        Some(ReadWarnings),
        platform_api::stream,
    )
    .add(
        "GET",
        "/v1/warnings.csv",
        Some(ReadWarnings),
        platform_api::warnings_csv,
    )
    .add("GET", "/v1/stats", Some(ReadWarnings), platform_api::stats)
    .add(
        "GET",
        "/v1/ledger.csv",
        Some(ReadWarnings),
        platform_api::ledger_csv,
    )
    .add(
        "GET",
        "/v1/platform/sites",
        Some(ReadPlatform),
        platform_views::sites,
    )
    .add(
        "GET",
        "/v1/platform/sites/{site_id}",
        Some(ReadPlatform),
        platform_views::site,
    )
    .add(
        "GET",
        "/v1/platform/machines/{machine_id}",
        Some(ReadPlatform),
        platform_views::machine,
    )
    .add(
        "GET",
        "/v1/platform/welders/{certificate_no}",
        Some(ReadPlatform),
        platform_views::welder,
    )
    .add(
        "GET",
        "/v1/platform/permits/{permit_id}",
        Some(ReadPlatform),
        platform_views::permit,
    )
}

/// Every route the router serves, in declaration order.
pub fn route_table() -> Vec<RouteInfo> {
    routes().table
}

pub fn router(state: AppState) -> Router {
    let metrics = Arc::new(Metrics::default());
    routes()
        .router
        // The web dashboard's pages (not API routes: no token, not in the route table).
        .merge(crate::dashboard::routes())
        // Every error answer is the JSON error ([`crate::errors`]).
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(errors::json_errors))
        .layer(axum::middleware::from_fn(errors::check_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit_by_ip,
        ))
        // Answers compressed with gzip when the client accepts it (and they are over 32 bytes).
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .quality(tower_http::CompressionLevel::Fastest),
        )
        .layer(Extension(metrics.clone()))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observe::observe,
        ))
        .with_state(state)
}

/// Run `f` on the database on the blocking pool.
pub(crate) async fn with_db<T, F>(state: &AppState, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<T, DbError> + Send + 'static,
{
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || {
        let db: &Db = &db;
        f(db)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server.internal",
            e.to_string(),
        )
    })?
    .map_err(ApiError::from)
}

/// Authenticate the bearer token, count the request against the device's rate limit, and check
/// the role may call `endpoint`. A request without a valid token counts against its client IP's
/// limit ([`crate::limits`]).
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    endpoint: Endpoint,
) -> ApiResult<Caller> {
    let caller = match authenticate(state, headers).await {
        Ok(caller) => caller,
        Err(e) => {
            state.limiter().unauthenticated()?;
            return Err(e);
        }
    };
    observe::note_caller(&caller.device_id, caller.role.as_str());
    state.limiter().device(&caller.device_id, caller.role)?;
    if !allowed(caller.role, endpoint) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            format!(
                "a {} device may not call this endpoint",
                caller.role.as_str()
            ),
        ));
    }
    Ok(caller)
}

/// The caller the bearer token names.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<Caller> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.missing_token",
                "an Authorization: Bearer token is required",
            )
        })?
        .to_owned();
    let caller = match with_db(state, move |db| db.check_token(&token, crate::db::now_ms())).await?
    {
        TokenCheck::Valid(caller) => caller,
        TokenCheck::Expired => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                TOKEN_EXPIRED,
                "the device token has expired; refresh it with the device key \
                 (POST /v1/auth/challenge, then POST /v1/auth/refresh)",
            ));
        }
        TokenCheck::Unknown => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.bad_token",
                "unknown or disabled device token",
            ));
        }
    };
    Ok(caller)
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_json",
            e.to_string(),
        )
    })
}

pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

async fn health(State(state): State<AppState>) -> ApiResult<&'static str> {
    with_db(&state, |db| db.caller("").map(|_| ())).await?;
    Ok("ok")
}

/// The API's OpenAPI description (open, like `/health`).
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::OPENAPI_JSON,
    )
        .into_response()
}

/// Prometheus text exposition of this process's metrics.
async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> ApiResult<Response> {
    authorize(&state, &headers, Endpoint::ReadMetrics).await?;
    let queued = with_db(&state, |db| db.deadlines_queued()).await?;
    let mut text = metrics.render();
    crate::metrics::append_gauge(
        &mut text,
        "weldguard_deadlines_queued",
        "Rows in the deadline queue (crate::deadlines), due or not.",
        queued,
    );
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

async fn enrol(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<EnrolResponse>> {
    let request: EnrolRequest = parse(&body)?;
    if request.public_key.len() > 512 || request.device_name.chars().count() > 200 {
        return Err(bad_request(
            "request.too_long",
            "public key or device name too long",
        ));
    }
    if !request.public_key.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad_request(
            "request.bad_public_key",
            "the public key must be hex",
        ));
    }
    let expires = state.token_expiry(crate::db::now_ms());
    let (token, caller) = with_db(&state, move |db| {
        db.enrol_expiring(
            &request.code,
            &request.public_key,
            &request.device_name,
            expires,
        )
    })
    .await?;
    Ok(Json(EnrolResponse {
        device_id: caller.device_id,
        token,
        person: caller.person,
        person_id: caller.person_id,
        role: caller.role,
        token_expires_at_ms: expires,
    }))
}

fn check_device_id(device_id: &str) -> ApiResult<()> {
    if device_id.is_empty() || device_id.len() > 100 {
        return Err(bad_request(
            "request.bad_device_id",
            "device_id must be 1-100 characters",
        ));
    }
    Ok(())
}

/// A single-use nonce for a device to sign with its enrolled key (no token: the device's token
/// may have expired).
async fn auth_challenge(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<AuthChallenge>> {
    let request: AuthChallengeRequest = parse(&body)?;
    check_device_id(&request.device_id)?;
    let (nonce, expires_at_ms) = with_db(&state, move |db| {
        db.create_auth_nonce(&request.device_id, crate::db::now_ms(), NONCE_TTL_MS)
    })
    .await?;
    Ok(Json(AuthChallenge {
        nonce,
        expires_at_ms,
    }))
}

/// A new device token for a nonce signed with the device key; the previous token stops working.
async fn auth_refresh(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<TokenRefreshResponse>> {
    let request: TokenRefreshRequest = parse(&body)?;
    check_device_id(&request.device_id)?;
    if request.nonce.len() > 200 || request.signature.len() > 200 {
        return Err(bad_request(
            "request.too_long",
            "nonce or signature too long",
        ));
    }
    let now = crate::db::now_ms();
    let expires = state.token_expiry(now);
    let issued = with_db(&state, move |db| {
        db.refresh_token(
            &request.device_id,
            &request.nonce,
            &request.signature,
            now,
            expires,
        )
    })
    .await?;
    Ok(Json(TokenRefreshResponse {
        token: issued.token,
        token_expires_at_ms: issued.expires_at_ms,
    }))
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Identity>> {
    let caller = authorize(&state, &headers, Endpoint::Me).await?;
    Ok(Json(Identity {
        device_id: caller.device_id,
        person: caller.person,
        person_id: caller.person_id,
        role: caller.role,
    }))
}

async fn create_enrolment(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<EnrolmentCode>> {
    authorize(&state, &headers, Endpoint::CreateEnrolment).await?;
    let request: NewEnrolment = parse(&body)?;
    let grant = crate::signers::check_grant(request)?;
    let saved = grant.clone();
    let code = with_db(&state, move |db| db.create_enrolment(&saved)).await?;
    Ok(Json(EnrolmentCode {
        code,
        person: grant.person,
        role: grant.role,
        person_id: grant.person_id,
        permit_roles: grant.permit_roles,
    }))
}

/// Disable a device: its token stops working at once and it cannot refresh; enrolling again with
/// a new code enables it. An admin cannot disable the device it calls from (that would lock out
/// the caller, possibly the last admin).
async fn disable_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(device_id): Path<String>,
) -> ApiResult<Json<DisabledDevice>> {
    let caller = authorize(&state, &headers, Endpoint::ManageDevices).await?;
    if caller.device_id == device_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "device.self",
            "an admin cannot disable the device it calls from",
        ));
    }
    let id = device_id.clone();
    if !with_db(&state, move |db| db.disable_device(&id)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "device.unknown",
            format!("no device {device_id:?}"),
        ));
    }
    Ok(Json(DisabledDevice {
        device_id,
        disabled: true,
    }))
}

/// Basic shape checks of an admin's registry change (keys present).
fn check_change(change: &RegistryChange) -> ApiResult<()> {
    let key = crate::db::entity_of(change);
    let empty_part = key.split('\u{1f}').skip(1).any(|p| p.trim().is_empty());
    if empty_part || key.len() > 300 {
        return Err(bad_request(
            "registry.bad_key",
            format!("a change has an empty or overlong key: {key:?}"),
        ));
    }
    if let RegistryChange::AnnouncePeriod(p) = change
        && (p.from >= p.until || p.name.trim().is_empty())
    {
        return Err(bad_request(
            "registry.bad_period",
            format!(
                "a sensitive period needs a name and must end after it starts: {:?}",
                p.period_id
            ),
        ));
    }
    Ok(())
}

async fn write_changes(
    state: &AppState,
    headers: &HeaderMap,
    changes: Vec<RegistryChange>,
) -> ApiResult<Json<RegistryWriteResponse>> {
    for change in &changes {
        check_change(change)?;
    }
    let n = changes.len() as u64;
    let last_seq = with_db(state, move |db| db.write_changes(&changes)).await?;
    let _ = headers;
    Ok(Json(RegistryWriteResponse {
        changes: n,
        last_seq,
    }))
}

async fn registry_write(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    let changes: Vec<RegistryChange> = parse(&body)?;
    write_changes(&state, &headers, changes).await
}

async fn put_licence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(certificate_no): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    let licence: Licence = parse(&body)?;
    if licence.certificate_no != certificate_no {
        return Err(bad_request(
            "registry.key_mismatch",
            "certificate number differs from the path",
        ));
    }
    write_changes(
        &state,
        &headers,
        vec![RegistryChange::UpsertLicence(licence)],
    )
    .await
}

async fn delete_licence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(certificate_no): Path<String>,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    write_changes(
        &state,
        &headers,
        vec![RegistryChange::DeleteLicence { certificate_no }],
    )
    .await
}

async fn put_machine(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(machine_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    let machine: Machine = parse(&body)?;
    if machine.machine_id != machine_id {
        return Err(bad_request(
            "registry.key_mismatch",
            "machine id differs from the path",
        ));
    }
    write_changes(
        &state,
        &headers,
        vec![RegistryChange::UpsertMachine(machine)],
    )
    .await
}

async fn delete_machine(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(machine_id): Path<String>,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    write_changes(
        &state,
        &headers,
        vec![RegistryChange::DeleteMachine { machine_id }],
    )
    .await
}

async fn put_binding(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((machine_id, certificate_no)): Path<(String, String)>,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    let binding = Binding {
        machine_id,
        certificate_no,
    };
    write_changes(&state, &headers, vec![RegistryChange::Bind(binding)]).await
}

async fn delete_binding(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((machine_id, certificate_no)): Path<(String, String)>,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    let binding = Binding {
        machine_id,
        certificate_no,
    };
    write_changes(&state, &headers, vec![RegistryChange::Unbind(binding)]).await
}

fn revocation(target: &str, id: String) -> ApiResult<Revocation> {
    let target: RevocationTarget =
        serde_json::from_value(serde_json::Value::String(target.to_owned())).map_err(|_| {
            bad_request(
                "registry.bad_target",
                "target must be licence, credential, issuer_key or machine",
            )
        })?;
    Ok(Revocation { target, id })
}

async fn put_revocation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((target, id)): Path<(String, String)>,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    let r = revocation(&target, id)?;
    write_changes(&state, &headers, vec![RegistryChange::Revoke(r)]).await
}

async fn delete_revocation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((target, id)): Path<(String, String)>,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::RegistryWrite).await?;
    let r = revocation(&target, id)?;
    write_changes(&state, &headers, vec![RegistryChange::Unrevoke(r)]).await
}

async fn compact(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RegistryWriteResponse>> {
    authorize(&state, &headers, Endpoint::CompactHistory).await?;
    let request: CompactRequest = if body.is_empty() {
        CompactRequest::default()
    } else {
        parse(&body)?
    };
    let floor = with_db(&state, move |db| db.compact(request.through_seq)).await?;
    Ok(Json(RegistryWriteResponse {
        changes: 0,
        last_seq: floor,
    }))
}

/// Records per page of `GET /v1/admin/records` when the caller does not ask for a number.
pub const DEFAULT_RECORDS_LIMIT: u32 = 500;
/// Most records one page may carry.
pub const MAX_RECORDS_LIMIT: u32 = 5000;

/// The records the platform holds, in arrival order, a page at a time
/// (`GET /v1/admin/records?kind=K&after=CURSOR&limit=N`): `next_cursor` asks for the next page,
/// `has_more` says whether there is one.
async fn records(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<RecordList>> {
    authorize(&state, &headers, Endpoint::ListRecords).await?;
    let kind = query.get("kind").cloned();
    let limit = match query.get("limit") {
        None => DEFAULT_RECORDS_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_RECORDS_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "request.bad_limit",
                    format!("limit must be 1..={MAX_RECORDS_LIMIT}"),
                )
            })?,
    };
    let after = match query.get("after").map(String::as_str) {
        None | Some("") => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                bad_request(
                    "request.bad_after",
                    "after must be a next_cursor of this route",
                )
            })?,
    };
    let page = with_db(&state, move |db| {
        db.records_page(kind.as_deref(), after, limit)
    })
    .await?;
    Ok(Json(RecordList {
        records: page.records,
        next_cursor: page.last.max(after).to_string(),
        has_more: page.has_more,
    }))
}

async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<PushResponse>> {
    let caller = authorize(&state, &headers, Endpoint::Push).await?;
    let request: PushRequest = parse(&body)?;
    if request.entries.len() > MAX_PUSH_ENTRIES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "push.too_many_entries",
            format!("at most {MAX_PUSH_ENTRIES} entries per push"),
        ));
    }
    let verdicts: Vec<Result<(), String>> = request
        .entries
        .iter()
        .map(|e| validate::check(caller.role, e))
        .collect();
    let entries = request.entries;
    let device_id = caller.device_id.clone();
    let publisher = state.publisher();
    let (entries, verdicts, inserted) = with_db(&state, move |db| {
        let items: Vec<(&str, &str, &str)> = entries
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.is_ok())
            .map(|(e, _)| {
                (
                    e.idempotency_key.as_str(),
                    e.kind.as_str(),
                    e.payload.as_str(),
                )
            })
            .collect();
        // Permit steps are placed under the platform's rules and signer directory; work sessions'
        // warnings judge special periods on the calendar (crate::work_rules).
        let has_steps = items.iter().any(|(_, kind, _)| *kind == "permit_step");
        let registry = if has_steps
            || (db.warning_config().enabled
                && items.iter().any(|(_, kind, _)| *kind == "work_session"))
        {
            publisher
                .registry_facts(db)
                .map_err(|e| DbError::Invalid(e.to_string()))?
        } else {
            crate::registry_facts::RegistryFacts::from_transaction(Default::default())
        };
        let admitter = if has_steps {
            Some(crate::signers::Admitter::load(
                db,
                registry.calendar.clone(),
                crate::db::now_ms(),
                caller,
            )?)
        } else {
            None
        };
        let admit: &dyn crate::permits::AdmitStep = match &admitter {
            Some(a) => a,
            None => &crate::permits::SuccessorOnly,
        };
        let inserted = db.insert_records_in(&device_id, &items, admit, &registry)?;
        Ok((entries, verdicts, inserted))
    })
    .await?;
    let mut inserted = inserted.into_iter();
    let results = entries
        .into_iter()
        .zip(verdicts)
        .map(|(entry, verdict)| {
            let (status, reason) = match verdict {
                Err(reason) => (PushStatus::Rejected, Some(reason)),
                Ok(()) => match inserted.next() {
                    Some(Insert::Applied) => (PushStatus::Applied, None),
                    Some(Insert::Duplicate) => (PushStatus::Duplicate, None),
                    Some(Insert::Refused(reason)) => (PushStatus::Rejected, Some(reason)),
                    Some(Insert::Conflict) | None => (
                        PushStatus::Rejected,
                        Some(
                            "record.key_conflict: this key was applied with a different payload"
                                .to_owned(),
                        ),
                    ),
                },
            };
            PushResult {
                idempotency_key: entry.idempotency_key,
                status,
                reason,
            }
        })
        .collect::<Vec<_>>();
    observe::note_push(&results);
    Ok(Json(PushResponse { results }))
}

async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let limit = match query.get("limit") {
        None => DEFAULT_PULL_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PULL_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "request.bad_limit",
                    format!("limit must be 1..={MAX_PULL_LIMIT}"),
                )
            })?,
    };
    let cursor = query.get("cursor").filter(|c| !c.is_empty()).cloned();
    let page = with_db(&state, move |db| db.pull(cursor.as_deref(), limit)).await?;
    observe::note_pull(page.changes_json.len());
    // A `PullResponse` written out by hand around the stored change texts (no re-encoding).
    let size: usize = page.changes_json.iter().map(|c| c.len() + 1).sum();
    let mut body = String::with_capacity(size + 128);
    body.push_str("{\"changes\":[");
    for (i, change) in page.changes_json.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(change);
    }
    body.push_str("],\"next_cursor\":");
    body.push_str(&serde_json::Value::String(page.next_cursor).to_string());
    body.push_str(",\"has_more\":");
    body.push_str(if page.has_more { "true" } else { "false" });
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Permit heads changed after a cursor (`GET /v1/permits?after=CURSOR&limit=N`): every permit for
/// supervisors, inspectors and admins; for a welder, the permits naming them (applicant or welder,
/// by id or name).
async fn pull_permits(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<PermitPage>> {
    let caller = authorize(&state, &headers, Endpoint::PullPermits).await?;
    let limit = match query.get("limit") {
        None => DEFAULT_PERMIT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PERMIT_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "request.bad_limit",
                    format!("limit must be 1..={MAX_PERMIT_LIMIT}"),
                )
            })?,
    };
    let cursor = query.get("after").filter(|c| !c.is_empty()).cloned();
    // A welder sees the permits naming their id, never another person of the same name.
    let person = (caller.role == Role::Welder).then(|| caller.person_id.clone());
    let page = with_db(&state, move |db| {
        db.permit_heads(cursor.as_deref(), limit, person.as_deref())
    })
    .await?;
    let heads = page
        .heads
        .into_iter()
        .map(|h| {
            let permit = serde_json::from_str(&h.body)
                .map_err(|e| DbError::Invalid(format!("stored permit {}: {e}", h.permit_id)))?;
            let state = weldguard_model::permit::PermitState::ALL
                .into_iter()
                .find(|s| weldguard_model::records::state_name(*s) == h.state)
                .ok_or_else(|| DbError::Invalid(format!("permit state {:?}", h.state)))?;
            Ok(weldguard_model::records::PermitStepRecord {
                step_id: h.step_id,
                permit_id: h.permit_id,
                action: h.action,
                state,
                digest: h.digest,
                permit,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok(Json(PermitPage {
        heads,
        next_cursor: page.next_cursor,
        has_more: page.has_more,
    }))
}

/// Permit heads per page when the device does not ask for a number.
pub const DEFAULT_PERMIT_LIMIT: u32 = 200;
/// Most permit heads one page may carry.
pub const MAX_PERMIT_LIMIT: u32 = 1000;
