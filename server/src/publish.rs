//! What the platform publishes to devices and issues to people: the trust file (every issuer key with
//! its validity period), the signed revocation status list, the signed registry snapshot and its
//! chunks, the per-collection checksums; machine labels and welder credentials signed with the
//! current issuer key, and key rotation.
//!
//! The documents come from [`Publisher`], a per-process cache of the registry view
//! ([`crate::documents`]) kept current from the feed on each request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use weldguard_model::checksum::Collection;
use weldguard_model::codes::{
    IssueError, IssuerAlg, TrustFile, issue_credential, issue_machine_label, to_hex,
};
use weldguard_model::domain::{Explain, MachineLabel, WelderCredential};
use weldguard_model::protocol::{
    ChecksumsResponse, CollectionPage, IssuedCode, RotateKeyRequest, RotatedKey, SnapshotResponse,
    StatusListResponse,
};

use crate::authz::Endpoint;
use crate::db::{Db, SnapshotHead, now_ms};
use crate::documents::{self, DocumentError, RegistryView, SNAPSHOT_MAX_AGE_MS};
use crate::http::{ApiError, ApiResult, AppState, authorize, bad_request, parse, with_db};
use crate::keys::{self, KeyStoreError};

/// The registry view of this process and the last status list it signed. Snapshots are not
/// cached here: the database's newest one is read on each request, so a compaction by any
/// process (which drops the snapshots it outdates) takes effect at once everywhere.
#[derive(Default)]
pub struct Publisher {
    view: Mutex<RegistryView>,
    status_list: Mutex<Option<SignedList>>,
    /// What the push's rules read of the registry, built from the view at a feed cursor: every
    /// push that holds work sessions or permit steps asks for it, and building it walks the
    /// whole registry, so it is rebuilt only when the feed moved.
    facts: Mutex<Option<HeldFacts>>,
}

/// The registry facts built at a feed cursor ([`Publisher::registry_facts`]).
struct HeldFacts {
    cursor: Option<String>,
    calendar: weldguard_model::permit::WorkCalendar,
    rows: Arc<HashMap<String, weldguard_model::records::RegistryChange>>,
}

/// A signed status list and what it was signed for.
struct SignedList {
    cursor: Option<String>,
    kid: String,
    signed_at_ms: i64,
    document: Arc<Vec<u8>>,
}

/// A status list is re-signed at least this often, so its `issued_at` tells devices how fresh
/// their revocation data is even when nothing changes (milliseconds).
const STATUS_LIST_MAX_AGE_MS: i64 = 60_000;

/// How many snapshots the database keeps: the newest, and the one before it for devices still
/// downloading it.
const SNAPSHOTS_KEPT: u32 = 2;

impl Publisher {
    /// Bring the view up to the feed's head and run `f` on it.
    fn with_view<T>(
        &self,
        db: &Db,
        f: impl FnOnce(&RegistryView) -> Result<T, DocumentError>,
    ) -> Result<T, DocumentError> {
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        view.catch_up(&mut |cursor, limit| db.pull(cursor, limit))?;
        f(&view)
    }

    /// What a push's rules read of the registry (machines' classes, licences' expiry, the work
    /// calendar) as the feed holds it now; rebuilt from the view only when the feed moved.
    pub(crate) fn registry_facts(
        &self,
        db: &Db,
    ) -> Result<crate::registry_facts::RegistryFacts, DocumentError> {
        self.with_view(db, |view| {
            let mut held = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
            let current = match held.as_ref() {
                Some(facts) if facts.cursor == view.cursor => facts,
                _ => held.insert(HeldFacts {
                    cursor: view.cursor.clone(),
                    calendar: weldguard_model::records::work_calendar_of(view.rows()),
                    rows: Arc::new(
                        view.entries()
                            .map(|(entity, change)| (entity.clone(), change.clone()))
                            .collect(),
                    ),
                }),
            };
            Ok(crate::registry_facts::RegistryFacts::from_view(
                current.calendar.clone(),
                current.rows.clone(),
            ))
        })
    }

    /// The signed status list of the feed's head: the one signed last when the feed, the key and
    /// the minute are the same, else a new one.
    fn status_list(&self, db: &Db, now_ms: i64) -> Result<Arc<Vec<u8>>, Failed> {
        let key = keys::signing_key(db)?;
        let kid = to_hex(&key.kid());
        Ok(self.with_view(db, |view| {
            let mut held = self
                .status_list
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(list) = held.as_ref()
                && list.cursor == view.cursor
                && list.kid == kid
                && (0..STATUS_LIST_MAX_AGE_MS).contains(&(now_ms - list.signed_at_ms))
            {
                return Ok(list.document.clone());
            }
            let document = Arc::new(documents::status_list(view, &key, now_ms.div_euclid(1000))?);
            *held = Some(SignedList {
                cursor: view.cursor.clone(),
                kid,
                signed_at_ms: now_ms,
                document: document.clone(),
            });
            Ok(document)
        })?)
    }

    /// The newest stored snapshot younger than [`SNAPSHOT_MAX_AGE_MS`] (whichever process cut
    /// it), or a new one cut from the view and stored. A compaction drops the snapshots it
    /// outdates in its own transaction, so what is stored never points before the history floor;
    /// a cut that a compaction overtook is not stored, and is cut again from the caught-up view.
    fn snapshot(&self, db: &Db, now_ms: i64) -> Result<Arc<SnapshotHead>, Failed> {
        let fresh =
            |head: &SnapshotHead| (0..SNAPSHOT_MAX_AGE_MS).contains(&(now_ms - head.made_at_ms));
        if let Some(head) = db.latest_snapshot().map_err(DocumentError::from)?
            && fresh(&head)
        {
            return Ok(Arc::new(head));
        }
        let key = keys::signing_key(db)?;
        let mut attempts = 0;
        loop {
            let cut = self.with_view(db, |view| documents::snapshot(view, &key, now_ms))?;
            attempts += 1;
            let stored = db
                .save_snapshot(&cut, SNAPSHOTS_KEPT)
                .map_err(DocumentError::from)?;
            if stored || attempts >= 3 {
                return Ok(Arc::new(SnapshotHead {
                    chunks: cut.chunks_gzip.len() as i64,
                    snapshot_id: cut.snapshot_id,
                    manifest: cut.manifest,
                    made_at_ms: cut.made_at_ms,
                }));
            }
        }
    }
}

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Db(db) => db.into(),
            DocumentError::BadPosition => bad_request("request.bad_after", e.to_string()),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server.documents",
                other.to_string(),
            ),
        }
    }
}

impl From<KeyStoreError> for ApiError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Db(db) => db.into(),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server.keys",
                other.to_string(),
            ),
        }
    }
}

/// Database work that may fail with a key or document error.
enum Failed {
    Keys(KeyStoreError),
    Docs(DocumentError),
}

impl From<KeyStoreError> for Failed {
    fn from(e: KeyStoreError) -> Self {
        Failed::Keys(e)
    }
}

impl From<DocumentError> for Failed {
    fn from(e: DocumentError) -> Self {
        Failed::Docs(e)
    }
}

impl From<Failed> for ApiError {
    fn from(e: Failed) -> Self {
        match e {
            Failed::Keys(k) => k.into(),
            Failed::Docs(d) => d.into(),
        }
    }
}

/// Run `f` on the database, with key and document errors mapped to answers.
async fn with_db_docs<T, F>(state: &AppState, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> Result<T, Failed> + Send + 'static,
{
    // The database error channel carries only `DbError`; other failures travel in the value.
    with_db(state, move |db| Ok(f(db)))
        .await?
        .map_err(ApiError::from)
}

fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

pub async fn trust(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<TrustFile>> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let file = with_db_docs(&state, |db| Ok(keys::trust_file(db)?)).await?;
    Ok(Json(file))
}

pub async fn status_list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<StatusListResponse>> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let publisher = state.publisher();
    let document = with_db_docs(&state, move |db| publisher.status_list(db, now_ms())).await?;
    Ok(Json(StatusListResponse {
        document: base64::engine::general_purpose::STANDARD.encode(document.as_slice()),
    }))
}

/// The current snapshot's signed manifest (see [`Publisher::snapshot`]).
pub async fn snapshot(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<SnapshotResponse>> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let publisher = state.publisher();
    let snapshot = with_db_docs(&state, move |db| publisher.snapshot(db, now_ms())).await?;
    Ok(Json(SnapshotResponse {
        document: base64::engine::general_purpose::STANDARD.encode(&snapshot.manifest),
    }))
}

/// One chunk's exact bytes, which the manifest's digest covers, from the database whichever
/// process cut the snapshot: sent as stored (gzip) to clients that accept it.
pub async fn snapshot_chunk(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((snapshot_id, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    // The token is checked before the path is read: a caller without one learns nothing.
    authorize(&state, &headers, Endpoint::Pull).await?;
    let gone = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "sync.snapshot_gone",
            "no such snapshot chunk (the snapshot was replaced); fetch the current snapshot",
        )
    };
    let index: i64 = index.parse().map_err(|_| gone())?;
    let stored = with_db(&state, move |db| db.snapshot_chunk(&snapshot_id, index))
        .await?
        .ok_or_else(gone)?;
    if accepts_gzip(&headers) {
        return Ok((
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            stored,
        )
            .into_response());
    }
    let body = documents::gunzip(&stored)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Whether the request's `Accept-Encoding` allows gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

pub async fn checksums(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ChecksumsResponse>> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let publisher = state.publisher();
    let answer = with_db_docs(&state, move |db| {
        Ok(publisher.with_view(db, |view| {
            Ok(ChecksumsResponse {
                cursor: view.cursor.clone().unwrap_or_default(),
                collections: view.checksums(),
            })
        })?)
    })
    .await?;
    Ok(Json(answer))
}

/// Rows per collection page unless the device asks for fewer, and the most it may ask for.
const COLLECTION_PAGE: usize = 5_000;
const MAX_COLLECTION_PAGE: usize = 20_000;

/// One page of a collection as the registry view holds it, for a device refetching it.
pub async fn collection(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<CollectionPage>> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let collection = Collection::from_name(&name).ok_or_else(|| {
        bad_request(
            "request.unknown_collection",
            format!("no collection {name:?}"),
        )
    })?;
    let limit = match query.get("limit") {
        None => COLLECTION_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_COLLECTION_PAGE).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "request.bad_limit",
                    format!("limit must be 1..={MAX_COLLECTION_PAGE}"),
                )
            })?,
    };
    let after = query.get("after").filter(|a| !a.is_empty()).cloned();
    let publisher = state.publisher();
    let page = with_db_docs(&state, move |db| {
        Ok(publisher.with_view(db, |view| {
            let (changes, next_after) =
                view.collection_page(collection, after.as_deref(), limit)?;
            Ok(CollectionPage {
                collection,
                cursor: view.cursor.clone().unwrap_or_default(),
                changes,
                next_after,
            })
        })?)
    })
    .await?;
    Ok(Json(page))
}

/// A code the core would not issue (400 with the core's code: `issue.invalid_claims`,
/// `issue.bad_id_number`, `issue.credential_expired`), or the signing itself failed (500).
fn signing_failed(e: IssueError) -> ApiError {
    let status = match e {
        IssueError::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.message_en())
}

pub async fn issue_machine(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<IssuedCode>> {
    authorize(&state, &headers, Endpoint::IssueCodes).await?;
    let mut label: MachineLabel = parse(&body)?;
    let key = with_db_docs(&state, |db| Ok(keys::signing_key(db)?)).await?;
    // The signing time is the issuer's to state: it is checked against the key's validity.
    label.issued_at = now_secs();
    let code = issue_machine_label(&key, &label).map_err(signing_failed)?;
    Ok(Json(IssuedCode {
        code,
        kid: to_hex(&key.kid()),
    }))
}

pub async fn issue_welder(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<IssuedCode>> {
    authorize(&state, &headers, Endpoint::IssueCodes).await?;
    let credential: WelderCredential = parse(&body)?;
    let key = with_db_docs(&state, |db| Ok(keys::signing_key(db)?)).await?;
    let now = now_secs();
    let code = issue_credential(&key, &credential, now, now).map_err(signing_failed)?;
    Ok(Json(IssuedCode {
        code,
        kid: to_hex(&key.kid()),
    }))
}

pub async fn rotate_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<RotatedKey>> {
    authorize(&state, &headers, Endpoint::IssueCodes).await?;
    let request: RotateKeyRequest = if body.is_empty() {
        RotateKeyRequest::default()
    } else {
        parse(&body)?
    };
    let alg = request.algorithm.unwrap_or(IssuerAlg::EdDSA);
    let kid = with_db_docs(&state, move |db| {
        let new = keys::new_key(alg)?;
        db.install_issuer_key(&new, now_ms(), false)
            .map_err(KeyStoreError::from)?;
        Ok(new.kid)
    })
    .await?;
    Ok(Json(RotatedKey { kid }))
}
