//! The warnings' HTTP routes and the places an admin writes (docs/adr/0017-warnings-and-scope.md):
//! `POST /v1/admin/places`, `POST /v1/admin/monitors`, `GET /v1/warnings`,
//! `GET /v1/warnings/{id}`, `POST /v1/warnings/{id}/acknowledge`, `POST /v1/warnings/{id}/close`.
//! Every warning route answers only what lies inside the caller's scope (an admin's is the
//! city); a warning outside it is answered as unknown, and a list cursor is bound to the scope
//! and filters it was made for.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use weldguard_model::protocol::Role;
use weldguard_model::warnings::{
    CloseWarning, MonitorCode, NewMonitor, PlaceChange, PlacesWriteResponse, Scope, Warning,
    WarningKind, WarningList, WarningState,
};

use crate::authz::Endpoint;
use crate::db::{Caller, Grant};
use crate::http::{ApiError, ApiResult, AppState, authorize, bad_request, parse, with_db};
use crate::warnings::{WarningQuery, WarningRow};

/// Warnings per page when the caller does not ask for a number.
pub const DEFAULT_WARNINGS_LIMIT: u32 = 100;
/// Most warnings one page may carry.
pub const MAX_WARNINGS_LIMIT: u32 = 500;
/// Most changes one places write may carry.
pub const MAX_PLACE_CHANGES: usize = 10_000;
/// Longest close note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;

fn check_id(what: &'static str, id: &str) -> ApiResult<()> {
    if id.trim().is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(bad_request(
            "place.bad_id",
            format!("{what} must be 1-200 printable bytes: {id:?}"),
        ));
    }
    Ok(())
}

fn check_place_change(change: &PlaceChange) -> ApiResult<()> {
    let place_problem = |p: &weldguard_model::warnings::Place| match p.problem() {
        Some((code, message)) => Err(bad_request(code, message)),
        None => Ok(()),
    };
    let location = |l: &weldguard_model::warnings::GeoPoint| {
        if l.in_range() {
            Ok(())
        } else {
            Err(bad_request(
                "place.bad_location",
                "latitude_e7 must be in ±900000000 and longitude_e7 in ±1800000000",
            ))
        }
    };
    match change {
        PlaceChange::UpsertSite(site) => {
            check_id("site_id", &site.site_id)?;
            if site.name.trim().is_empty() || site.name.chars().count() > 200 {
                return Err(bad_request(
                    "place.bad_name",
                    "a site needs a name of 1-200 characters",
                ));
            }
            place_problem(&site.place)?;
            location(&site.location)
        }
        PlaceChange::DeleteSite { site_id } => check_id("site_id", site_id),
        PlaceChange::PlaceMachine(m) => {
            check_id("machine_id", &m.machine_id)?;
            if let Some(site) = &m.site_id {
                check_id("site_id", site)?;
            }
            if let Some(l) = &m.location {
                location(l)?;
            }
            place_problem(&m.place)
        }
        PlaceChange::UnplaceMachine { machine_id } => check_id("machine_id", machine_id),
        PlaceChange::PlaceLicence(l) => {
            check_id("certificate_no", &l.certificate_no)?;
            place_problem(&l.place)
        }
        PlaceChange::UnplaceLicence { certificate_no } => {
            check_id("certificate_no", certificate_no)
        }
    }
}

/// `POST /v1/admin/places`: apply place changes in one transaction; any bad change refuses
/// them all.
pub async fn write_places(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<PlacesWriteResponse>> {
    authorize(&state, &headers, Endpoint::WritePlaces).await?;
    let changes: Vec<PlaceChange> = parse(&body)?;
    if changes.len() > MAX_PLACE_CHANGES {
        return Err(bad_request(
            "place.too_many",
            format!("at most {MAX_PLACE_CHANGES} changes per write"),
        ));
    }
    for change in &changes {
        check_place_change(change)?;
    }
    let n = changes.len() as u64;
    with_db(&state, move |db| db.write_places(&changes)).await?;
    Ok(Json(PlacesWriteResponse { changes: n }))
}

/// `POST /v1/admin/monitors`: an enrolment code for a monitoring account with a scope.
pub async fn create_monitor(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<MonitorCode>> {
    authorize(&state, &headers, Endpoint::CreateMonitor).await?;
    let request: NewMonitor = parse(&body)?;
    let person = request.person.trim().to_owned();
    if person.is_empty() || person.chars().count() > 100 || person.chars().any(char::is_control) {
        return Err(bad_request(
            "request.bad_person",
            "person must be 1-100 characters",
        ));
    }
    let grant = Grant {
        person: person.clone(),
        person_id: None,
        role: Role::Monitor,
        permit_roles: Vec::new(),
        scope: Some(request.scope.as_text()),
    };
    let code = with_db(&state, move |db| db.create_enrolment(&grant)).await?;
    Ok(Json(MonitorCode {
        code,
        person,
        scope: request.scope,
    }))
}

/// The scope the caller sees: the city for an admin, the stored scope for a monitor (a monitor
/// without a readable scope sees nothing: refused).
pub(crate) async fn scope_of(state: &AppState, caller: &Caller) -> ApiResult<Scope> {
    if caller.role == Role::Admin {
        return Ok(Scope::City);
    }
    let device = caller.device_id.clone();
    let stored = with_db(state, move |db| db.device_scope(&device)).await?;
    stored.as_deref().and_then(Scope::parse).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.no_scope",
            "this account has no scope: ask an admin for a monitoring account",
        )
    })
}

fn query_i64(query: &HashMap<String, String>, name: &str) -> ApiResult<Option<i64>> {
    query
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                bad_request(
                    "request.bad_time",
                    format!("{name} must be Unix milliseconds"),
                )
            })
        })
        .transpose()
}

/// The caller's scope narrowed by an optional `district` or `town` parameter, which must lie
/// inside it (`403 warnings.out_of_scope`).
pub(crate) fn narrowed(scope: &Scope, query: &HashMap<String, String>) -> ApiResult<Scope> {
    let narrowed = match (
        query.get("district").filter(|v| !v.is_empty()),
        query.get("town").filter(|v| !v.is_empty()),
    ) {
        (None, None) => scope.clone(),
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "warnings.bad_place",
                "give district or town, not both",
            ));
        }
        (Some(d), None) => Scope::parse(&format!("district:{d}"))
            .ok_or_else(|| bad_request("place.bad_district", "district must be 6 digits"))?,
        (None, Some(t)) => Scope::parse(&format!("town:{t}"))
            .ok_or_else(|| bad_request("place.bad_town", "town must be 9 digits"))?,
    };
    if !scope.covers(&narrowed) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "warnings.out_of_scope",
            format!("{} lies outside this account's scope", narrowed.as_text()),
        ));
    }
    Ok(narrowed)
}

/// The list's query, checked against the caller's scope.
pub(crate) fn list_query(
    scope: &Scope,
    query: &HashMap<String, String>,
) -> ApiResult<(WarningQuery, i64)> {
    const KNOWN: [&str; 8] = [
        "kind", "state", "from", "until", "district", "town", "after", "limit",
    ];
    if let Some(unknown) = query.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad_request(
            "request.unknown_parameter",
            format!("unknown parameter {unknown:?}; known: {}", KNOWN.join(", ")),
        ));
    }
    let kind = match query.get("kind").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => Some(WarningKind::parse(text).ok_or_else(|| {
            bad_request(
                "warnings.bad_kind",
                format!(
                    "unknown kind {text:?}; known: {}",
                    WarningKind::ALL.map(WarningKind::as_str).join(", ")
                ),
            )
        })?),
    };
    let state = match query.get("state").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => Some(WarningState::parse(text).ok_or_else(|| {
            bad_request(
                "warnings.bad_state",
                "state must be open, acknowledged or closed",
            )
        })?),
    };
    let from_ms = query_i64(query, "from")?.unwrap_or(i64::MIN);
    let until_ms = query_i64(query, "until")?.unwrap_or(i64::MAX);
    if from_ms >= until_ms {
        return Err(bad_request("request.bad_time", "from must be before until"));
    }
    let narrowed = narrowed(scope, query)?;
    let limit = match query.get("limit") {
        None => DEFAULT_WARNINGS_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_WARNINGS_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "request.bad_limit",
                    format!("limit must be 1..={MAX_WARNINGS_LIMIT}"),
                )
            })?,
    };
    let mut q = WarningQuery {
        scope: narrowed,
        kind,
        state,
        from_ms,
        until_ms,
        before_id: i64::MAX,
        limit: limit + 1,
    };
    if let Some(cursor) = query.get("after").filter(|v| !v.is_empty()) {
        let tag = q.cursor_tag();
        let before = cursor
            .split_once('.')
            .filter(|(_, t)| *t == tag)
            .and_then(|(id, _)| id.parse::<i64>().ok())
            .ok_or_else(|| {
                bad_request(
                    "warnings.bad_cursor",
                    "after must be a next_cursor of this list, with the same filters and account",
                )
            })?;
        q.before_id = before;
    }
    Ok((q, i64::from(limit)))
}

/// `GET /v1/warnings?kind=&state=&from=&until=&district=&town=&after=&limit=`: warnings inside
/// the caller's scope, newest first.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<WarningList>> {
    let caller = authorize(&state, &headers, Endpoint::ReadWarnings).await?;
    let scope = scope_of(&state, &caller).await?;
    let (q, limit) = list_query(&scope, &query)?;
    let tag = q.cursor_tag();
    let rows = {
        let q = q.clone();
        with_db(&state, move |db| db.warnings_page(&q)).await?
    };
    let has_more = rows.len() as i64 > limit;
    let mut warnings = Vec::with_capacity(rows.len());
    for row in rows.iter().take(limit as usize) {
        // The store filtered by place; check again so no row outside the scope ever leaves.
        if row.in_scope(&scope) && row.in_scope(&q.scope) {
            warnings.push(row.to_wire()?);
        }
    }
    let next_cursor = match rows.get((limit as usize).saturating_sub(1)) {
        Some(last) if has_more => format!("{}.{tag}", last.id),
        _ => String::new(),
    };
    Ok(Json(WarningList {
        warnings,
        next_cursor,
        has_more,
    }))
}

/// The warning `id` if it lies inside `scope`; otherwise (also when unknown) 404.
async fn scoped_warning(state: &AppState, scope: &Scope, id: &str) -> ApiResult<WarningRow> {
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "warnings.unknown",
            format!("no warning {id:?} in this account's scope"),
        )
    };
    let Ok(number) = id.parse::<i64>() else {
        return Err(unknown());
    };
    let row = with_db(state, move |db| db.warning(number)).await?;
    row.filter(|r| r.in_scope(scope)).ok_or_else(unknown)
}

/// `GET /v1/warnings/{id}`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Warning>> {
    let caller = authorize(&state, &headers, Endpoint::ReadWarnings).await?;
    let scope = scope_of(&state, &caller).await?;
    Ok(Json(scoped_warning(&state, &scope, &id).await?.to_wire()?))
}

fn who(caller: &Caller) -> String {
    format!("{} ({})", caller.person, caller.device_id)
}

/// Move a warning `from` → `to`, or say why not (404 outside the scope, 409 in another state).
async fn act(
    state: &AppState,
    caller: &Caller,
    id: &str,
    from: WarningState,
    to: WarningState,
    note: Option<String>,
) -> ApiResult<Json<Warning>> {
    let scope = scope_of(state, caller).await?;
    let row = scoped_warning(state, &scope, id).await?;
    let by = who(caller);
    let number = row.id;
    let moved = with_db(state, move |db| {
        db.move_warning(number, from, to, &by, crate::db::now_ms(), note.as_deref())
    })
    .await?;
    let now = scoped_warning(state, &scope, id).await?;
    if !moved {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "warnings.bad_transition",
            format!(
                "the warning is {}; it can go {} → {} only",
                now.state,
                from.as_str(),
                to.as_str()
            ),
        ));
    }
    Ok(Json(now.to_wire()?))
}

/// `POST /v1/warnings/{id}/acknowledge`: open → acknowledged.
pub async fn acknowledge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Warning>> {
    let caller = authorize(&state, &headers, Endpoint::ActOnWarnings).await?;
    act(
        &state,
        &caller,
        &id,
        WarningState::Open,
        WarningState::Acknowledged,
        None,
    )
    .await
}

/// `POST /v1/warnings/{id}/close` with `{"note": …}`: acknowledged → closed.
pub async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Warning>> {
    let caller = authorize(&state, &headers, Endpoint::ActOnWarnings).await?;
    let request: CloseWarning = parse(&body)?;
    let note = request.note.trim().to_owned();
    if note.is_empty()
        || note.chars().count() > MAX_NOTE_CHARS
        || note.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(bad_request(
            "warnings.bad_note",
            format!("closing needs a note of 1-{MAX_NOTE_CHARS} printable characters"),
        ));
    }
    act(
        &state,
        &caller,
        &id,
        WarningState::Acknowledged,
        WarningState::Closed,
        Some(note),
    )
    .await
}
