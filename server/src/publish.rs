//! What the platform publishes to devices and issues to people: the trust file (every issuer key with
//! its validity period), the signed revocation status list, the signed registry snapshot and its
//! chunks, the per-collection checksums; machine labels and welder credentials signed with the
//! current issuer key, and key rotation.
//!
//! The documents come from [`Publisher`], a per-process cache of the registry view
//! ([`crate::documents`]) kept current from the feed on each request.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use weldguard_core::codes::{IssuerAlg, TrustFile, issue_credential, issue_machine_label, to_hex};
use weldguard_core::domain::{MachineLabel, WelderCredential};
use weldguard_core::sync::protocol::{
    ChecksumsResponse, IssuedCode, RotateKeyRequest, RotatedKey, SnapshotResponse,
    StatusListResponse,
};

use crate::authz::Endpoint;
use crate::db::{Db, now_ms};
use crate::documents::{self, DocumentError, RegistryView, SNAPSHOT_MAX_AGE_MS, Snapshot};
use crate::http::{ApiError, ApiResult, AppState, authorize, parse, with_db};
use crate::keys::{self, KeyStoreError};

/// The registry view and the current snapshot of this process.
#[derive(Default)]
pub struct Publisher {
    view: Mutex<RegistryView>,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
}

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
}

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Db(db) => db.into(),
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
    let document = with_db_docs(&state, move |db| {
        let key = keys::signing_key(db)?;
        Ok(publisher.with_view(db, |view| documents::status_list(view, &key, now_secs()))?)
    })
    .await?;
    Ok(Json(StatusListResponse {
        document: base64::engine::general_purpose::STANDARD.encode(document),
    }))
}

/// The current snapshot, cut anew when the cached one is older than [`SNAPSHOT_MAX_AGE_MS`].
pub async fn snapshot(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<SnapshotResponse>> {
    authorize(&state, &headers, Endpoint::Pull).await?;
    let publisher = state.publisher();
    let snapshot = with_db_docs(&state, move |db| {
        let now = now_ms();
        if let Some(held) = publisher
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            && now - held.made_at_ms < SNAPSHOT_MAX_AGE_MS
        {
            return Ok(held);
        }
        let key = keys::signing_key(db)?;
        let cut = publisher.with_view(db, |view| documents::snapshot(view, &key, now))?;
        *publisher
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cut.clone());
        Ok(cut)
    })
    .await?;
    Ok(Json(SnapshotResponse {
        document: base64::engine::general_purpose::STANDARD.encode(&snapshot.manifest),
    }))
}

/// One chunk's exact bytes, which the manifest's digest covers.
pub async fn snapshot_chunk(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((snapshot_id, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    // The token is checked before the path is read: a caller without one learns nothing.
    authorize(&state, &headers, Endpoint::Pull).await?;
    let index: Option<usize> = index.parse().ok();
    let held = state
        .publisher()
        .snapshot
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let body = held
        .filter(|s| s.snapshot_id == snapshot_id)
        .and_then(|s| index.and_then(|i| s.chunks.get(i).cloned()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "sync.snapshot_gone",
                "this process holds no such snapshot chunk; fetch the current snapshot",
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
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

fn signing_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "issue.invalid_claims",
        e.to_string(),
    )
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
    let code = issue_credential(&key, &credential, now_secs()).map_err(signing_failed)?;
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
