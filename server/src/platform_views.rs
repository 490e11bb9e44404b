//! The dashboard's read routes (#19, "monitor scoping of records and permits";
//! docs/adr/0017-warnings-and-scope.md): `GET /v1/platform/sites`, `…/sites/{site_id}`,
//! `…/machines/{machine_id}`, `…/welders/{certificate_no}` and `…/permits/{permit_id}`, for
//! admins and monitors. Like the warning routes, the store filters every query by the caller's
//! scope (SQL) and the handler checks each row again before it leaves; an id outside the scope is
//! answered exactly like an unknown one (`404 platform.unknown`) and a `district`/`town` filter
//! outside it is `403 platform.out_of_scope`.
//!
//! A start is a ledger row (`crate::platform`, kept for every applied scan-to-start with the place
//! it happened at) with the pushed work session; a permit is the platform's stored head and its
//! applied steps, shown as the model holds them: the checklist's texts from the catalog, every
//! signature with the enrolled person and permit role the signer directory admitted it under
//! (docs/adr/0014-who-may-sign-what.md). Nothing here re-derives a rule.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;
use weldguard_model::permit::{AnswerValue, Catalog, ChecklistAnswer, EventKind, Permit, Section};
use weldguard_model::records::{RegistryChange, WorkSession, state_name};
use weldguard_model::warnings::{Place, Scope, Warning};

use crate::authz::Endpoint;
use crate::db::{DbError, collection_prefix};
use crate::http::{ApiError, ApiResult, AppState, authorize, bad_request, with_db};
use crate::platform::LedgerRow;
use crate::warnings::WarningRow;
use crate::warnings_api::{narrowed, scope_of};

/// Rows of a list when the caller does not ask for a number.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most rows of a list.
pub const MAX_LIMIT: u32 = 200;
/// Most sites one map answer carries (every site in scope, bounded).
pub const MAX_SITES: u32 = 10_000;
/// Longest id accepted in a path (longer ones are unknown).
const MAX_ID_BYTES: usize = 200;

/// What a list of starts or warnings is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    Site(&'a str),
    Machine(&'a str),
    Welder(&'a str),
}

impl Subject<'_> {
    /// The ledger's column naming the subject.
    pub fn ledger_column(&self) -> &'static str {
        match self {
            Subject::Site(_) => "site_id",
            Subject::Machine(_) => "machine_id",
            Subject::Welder(_) => "person",
        }
    }

    /// The warnings' column naming the subject.
    pub fn warning_column(&self) -> &'static str {
        match self {
            Subject::Site(_) => "site_id",
            Subject::Machine(_) => "machine_id",
            Subject::Welder(_) => "certificate_no",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Subject::Site(id) | Subject::Machine(id) | Subject::Welder(id) => id,
        }
    }
}

/// A site as the store reads it, with its machines and open warnings inside the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    pub id: String,
    pub name: String,
    pub district: String,
    pub town: Option<String>,
    pub grid: Option<String>,
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub machines: i64,
    pub open_by_kind: BTreeMap<String, i64>,
}

/// A placed machine as the store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRow {
    pub id: String,
    /// `normal`, `suspect` or `modified` (the platform's mark).
    pub watch: String,
    pub district: String,
    pub town: Option<String>,
    pub grid: Option<String>,
    pub site_id: Option<String>,
    pub site_name: Option<String>,
    /// Its registered location, else its site's.
    pub lat_e7: Option<i32>,
    pub lon_e7: Option<i32>,
    pub open_warnings: i64,
}

/// An applied scan-to-start: its ledger row and the pushed work session (JSON), when stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRecord {
    pub ledger: LedgerRow,
    pub payload: Option<String>,
}

/// A permit's head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitHeadRow {
    pub permit_id: String,
    pub state: String,
    /// The permit version, JSON.
    pub body: String,
    pub updated_at_ms: i64,
}

/// An applied step of a permit (on the head's branch), in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitStepRow {
    pub step_id: String,
    pub action: String,
    /// The version the step made, JSON.
    pub body: String,
    pub device_id: String,
    /// The person of the device that reported it.
    pub person: Option<String>,
    pub received_at_ms: i64,
}

/// Add open-warning counts `(site, kind, n)` to the sites they name.
pub fn add_open_warnings(sites: &mut [SiteRow], open: Vec<(String, String, i64)>) {
    for (site, kind, n) in open {
        if let Some(row) = sites.iter_mut().find(|s| s.id == site) {
            *row.open_by_kind.entry(kind).or_insert(0) += n;
        }
    }
}

// The answers (field names fixed by the dashboard's contract; more may be added).

#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    pub id: String,
    pub name: String,
    pub district: String,
    pub town: Option<String>,
    pub grid: Option<String>,
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub machines: i64,
    pub open_warnings: i64,
    pub open_by_kind: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SitesAnswer {
    pub sites: Vec<SiteView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MachineSummary {
    pub id: String,
    /// The registry's status (`active`, `retired`), `revoked` when a revocation names the
    /// machine, `deleted`, or `unregistered` when the registry never held it.
    pub status: String,
    pub watch: Option<String>,
    pub open_warnings: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StartView {
    pub session_id: String,
    pub machine_id: String,
    pub certificate_no: String,
    pub started_at_ms: i64,
    pub allowed: bool,
    pub reason_codes: Vec<String>,
    pub permit_id: Option<String>,
    pub lat_e7: Option<i32>,
    pub lon_e7: Option<i32>,
    pub accuracy_m: Option<u32>,
    pub site_id: Option<String>,
    /// Where the start was counted (the machine's place, else the licence holder's).
    pub district: Option<String>,
    pub town: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PermitSummary {
    pub id: String,
    pub state: String,
    pub level: Option<String>,
    pub updated_at_ms: i64,
    pub site_id: Option<String>,
    pub valid_from_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    pub work_description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteAnswer {
    pub site: SiteView,
    pub machines: Vec<MachineSummary>,
    pub warnings: Vec<Warning>,
    pub starts: Vec<StartView>,
    pub permits: Vec<PermitSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MachineView {
    pub id: String,
    pub status: String,
    pub watch: Option<String>,
    pub site_id: Option<String>,
    pub site_name: Option<String>,
    pub district: Option<String>,
    pub town: Option<String>,
    pub grid: Option<String>,
    pub lat_e7: Option<i32>,
    pub lon_e7: Option<i32>,
    pub open_warnings: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MachineAnswer {
    pub machine: MachineView,
    pub starts: Vec<StartView>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WelderView {
    pub certificate_no: String,
    /// The registry's name ("" when the registry does not hold the licence).
    pub name: String,
    /// The licence's operation categories, comma-separated.
    pub kind: Option<String>,
    pub categories: Vec<String>,
    /// `YYYY-MM-DD`.
    pub expires_on: Option<String>,
    pub next_review_on: Option<String>,
    /// `valid`, `revoked` (also when a revocation names the licence) or `deleted`.
    pub status: Option<String>,
    pub employer_org: Option<String>,
    pub district: Option<String>,
    pub town: Option<String>,
    pub grid: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WelderAnswer {
    pub welder: WelderView,
    pub starts: Vec<StartView>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChecklistItemView {
    pub item_id: String,
    /// `prohibition`, `must` or `post_work`.
    pub section: String,
    pub number: Option<u8>,
    pub text_zh: String,
    pub text_en: String,
    /// `confirmed`, `not_applicable`, or `null` when not answered.
    pub answer: Option<String>,
    /// Why not applicable.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignatureView {
    /// The applied step that added the signature.
    pub step_id: Option<String>,
    /// `submit`, `site_check`, `approve` or `close`.
    pub action: String,
    /// The enrolled person whose key signed (the signer directory's entry), else the name the
    /// signature claims.
    pub person: String,
    pub person_id: String,
    /// The permit role the signature was made in.
    pub role: String,
    pub signed_at_ms: i64,
    pub user_present: Option<bool>,
    /// The enrolled device whose key signed.
    pub device_id: Option<String>,
    /// Whether the directory holds the key for that person with that role.
    pub vouched: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub step_id: String,
    pub action: String,
    /// The permit's state after the step.
    pub state: String,
    /// When the action happened (the permit's log).
    pub at_ms: i64,
    /// Who acted, as the permit's log names them (`name (id)` when the permit names them).
    pub by: String,
    /// The person of the device that reported the step.
    pub reported_by: Option<String>,
    pub received_at_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PermitView {
    pub id: String,
    pub state: String,
    pub site_id: Option<String>,
    pub site_name: Option<String>,
    pub level: Option<String>,
    pub updated_at_ms: i64,
    pub checklist: Vec<ChecklistItemView>,
    pub signatures: Vec<SignatureView>,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PermitAnswer {
    pub permit: PermitView,
    pub raw: Value,
}

fn unknown(what: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "platform.unknown",
        format!("no {what} {id:?} in this account's scope"),
    )
}

fn refuse_unknown(query: &HashMap<String, String>, known: &[&str]) -> ApiResult<()> {
    match query.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(bad_request(
            "request.unknown_parameter",
            format!("unknown parameter {unknown:?}; known: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The caller's scope narrowed by `district`/`town`, which must lie inside it.
fn inside(scope: &Scope, query: &HashMap<String, String>) -> ApiResult<Scope> {
    let given = |k: &str| query.get(k).is_some_and(|v| !v.is_empty());
    if !given("district") && !given("town") {
        return Ok(scope.clone());
    }
    let asked = narrowed(&Scope::City, query)?;
    if !scope.covers(&asked) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "platform.out_of_scope",
            format!("{} lies outside this account's scope", asked.as_text()),
        ));
    }
    Ok(asked)
}

fn limit_of(query: &HashMap<String, String>) -> ApiResult<u32> {
    match query.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "request.bad_limit",
                    format!("limit must be 1..={MAX_LIMIT}"),
                )
            }),
    }
}

fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES && !id.chars().any(char::is_control)
}

fn site_view(row: SiteRow) -> SiteView {
    SiteView {
        open_warnings: row.open_by_kind.values().sum(),
        id: row.id,
        name: row.name,
        district: row.district,
        town: row.town,
        grid: row.grid,
        lat_e7: row.lat_e7,
        lon_e7: row.lon_e7,
        machines: row.machines,
        open_by_kind: row.open_by_kind,
    }
}

fn site_in(scope: &Scope, row: &SiteRow) -> bool {
    scope.holds(Some(&row.district), row.town.as_deref())
}

fn machine_in(scope: &Scope, row: &MachineRow) -> bool {
    scope.holds(Some(&row.district), row.town.as_deref())
}

fn place_in(scope: &Scope, place: &Place) -> bool {
    scope.holds(Some(&place.district), place.town.as_deref())
}

fn ledger_in(scope: &Scope, row: &LedgerRow) -> bool {
    scope.holds(
        (!row.district.is_empty()).then_some(row.district.as_str()),
        (!row.town.is_empty()).then_some(row.town.as_str()),
    )
}

/// A start as the dashboard shows it: the pushed work session, else what the ledger kept.
pub fn start_view(record: &StartRecord) -> StartView {
    let l = &record.ledger;
    let session = record
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<WorkSession>(p).ok());
    let (lat, lon, acc) = match l.position {
        Some((a, b, c)) => (Some(a), Some(b), Some(c)),
        None => (None, None, None),
    };
    let place = |t: &str| (!t.is_empty()).then(|| t.to_owned());
    match session {
        Some(s) => StartView {
            session_id: s.id,
            machine_id: s.machine_id,
            certificate_no: s.certificate_no,
            started_at_ms: s.started_at_ms,
            allowed: s.allowed,
            reason_codes: s.reason_codes,
            permit_id: s.permit_id,
            lat_e7: s.position.map(|p| p.latitude_e7),
            lon_e7: s.position.map(|p| p.longitude_e7),
            accuracy_m: s.position.map(|p| p.accuracy_m),
            site_id: l.site_id.clone(),
            district: place(&l.district),
            town: place(&l.town),
        },
        None => StartView {
            session_id: l.key.clone(),
            machine_id: l.machine_id.clone().unwrap_or_default(),
            certificate_no: l.person.clone().unwrap_or_default(),
            started_at_ms: l.at_ms,
            allowed: l.decision == "allowed",
            reason_codes: l.detail.split_whitespace().map(str::to_owned).collect(),
            permit_id: None,
            lat_e7: lat,
            lon_e7: lon,
            accuracy_m: acc,
            site_id: l.site_id.clone(),
            district: place(&l.district),
            town: place(&l.town),
        },
    }
}

/// The text form of a serde enum value (`"level2"`, `"active"`).
fn wire_name<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn permit_summary(row: &PermitHeadRow) -> PermitSummary {
    let permit = serde_json::from_str::<Permit>(&row.body).ok();
    PermitSummary {
        id: row.permit_id.clone(),
        state: row.state.clone(),
        level: permit
            .as_ref()
            .and_then(|p| p.level.as_ref())
            .and_then(|d| wire_name(&d.required)),
        updated_at_ms: row.updated_at_ms,
        site_id: permit.as_ref().map(|p| p.content.site.site_id.clone()),
        valid_from_ms: permit
            .as_ref()
            .map(|p| p.content.valid_from.saturating_mul(1000)),
        valid_until_ms: permit
            .as_ref()
            .map(|p| p.content.valid_until.saturating_mul(1000)),
        work_description: permit.map(|p| p.content.work_description),
    }
}

/// Keep only warnings inside both scopes, as the API shows them.
fn wire_warnings(rows: Vec<WarningRow>, scope: &Scope) -> ApiResult<Vec<Warning>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if row.in_scope(scope) {
            out.push(row.to_wire()?);
        }
    }
    Ok(out)
}

/// The registry's newest change of a machine or licence, and whether a revocation names it.
fn registry_of(
    db: &crate::db::Db,
    collection: weldguard_model::checksum::Collection,
    revocation_target: &str,
    id: &str,
) -> Result<(Option<RegistryChange>, bool), DbError> {
    use weldguard_model::checksum::Collection;
    let change = db
        .registry_entity(&format!("{}{id}", collection_prefix(collection)))?
        .and_then(|json| serde_json::from_str::<RegistryChange>(&json).ok());
    let revoked = db
        .registry_entity(&format!(
            "{}{revocation_target}\u{1f}{id}",
            collection_prefix(Collection::Revocations)
        ))?
        .and_then(|json| serde_json::from_str::<RegistryChange>(&json).ok())
        .is_some_and(|c| matches!(c, RegistryChange::Revoke(_)));
    Ok((change, revoked))
}

fn machine_status(db: &crate::db::Db, machine_id: &str) -> Result<(String, bool), DbError> {
    let (change, revoked) = registry_of(
        db,
        weldguard_model::checksum::Collection::Machines,
        "machine",
        machine_id,
    )?;
    let status = match (&change, revoked) {
        (Some(RegistryChange::UpsertMachine(m)), false) => {
            wire_name(&m.status).unwrap_or_else(|| "active".to_owned())
        }
        (Some(RegistryChange::UpsertMachine(_)), true) => "revoked".to_owned(),
        (Some(_), _) => "deleted".to_owned(),
        (None, _) => "unregistered".to_owned(),
    };
    Ok((status, change.is_some()))
}

fn summaries(db: &crate::db::Db, rows: Vec<MachineRow>) -> Result<Vec<MachineSummary>, DbError> {
    rows.into_iter()
        .map(|m| {
            Ok(MachineSummary {
                status: machine_status(db, &m.id)?.0,
                id: m.id,
                watch: Some(m.watch),
                open_warnings: m.open_warnings,
            })
        })
        .collect()
}

/// `GET /v1/platform/sites[?district=|&town=]`: every site inside the caller's scope, with its
/// machines and open warnings (for the map).
pub async fn sites(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<SitesAnswer>> {
    let caller = authorize(&state, &headers, Endpoint::ReadPlatform).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &["district", "town"])?;
    let asked = inside(&scope, &query)?;
    let rows = {
        let asked = asked.clone();
        with_db(&state, move |db| db.view_sites(&asked, None)).await?
    };
    // By id in byte order whatever the database's collation.
    let mut sites: Vec<SiteView> = rows
        .into_iter()
        .filter(|r| site_in(&scope, r) && site_in(&asked, r))
        .map(site_view)
        .collect();
    sites.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(SitesAnswer { sites }))
}

/// `GET /v1/platform/sites/{site_id}`: a site inside the caller's scope with its machines, its
/// warnings, the starts and the permits at it, newest first.
pub async fn site(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(site_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<SiteAnswer>> {
    let caller = authorize(&state, &headers, Endpoint::ReadPlatform).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &["limit"])?;
    let limit = limit_of(&query)?;
    if !plausible_id(&site_id) {
        return Err(unknown("site", &site_id));
    }
    let answer = {
        let (scope, id) = (scope.clone(), site_id.clone());
        with_db(&state, move |db| {
            let Some(site) = db
                .view_sites(&scope, Some(&id))?
                .into_iter()
                .find(|r| r.id == id && site_in(&scope, r))
            else {
                return Ok(None);
            };
            let mut machines: Vec<MachineRow> = db
                .view_machines(&scope, Some(&id), None, limit)?
                .into_iter()
                .filter(|m| machine_in(&scope, m))
                .collect();
            machines.sort_by(|a, b| a.id.cmp(&b.id));
            let machines = summaries(db, machines)?;
            let subject = Subject::Site(&id);
            let warnings = db.view_warnings(&scope, &subject, limit)?;
            let starts = db.view_starts(&scope, &subject, limit)?;
            let permits = db.view_site_permits(&id, limit)?;
            Ok(Some((site, machines, warnings, starts, permits)))
        })
        .await?
    };
    let Some((site, machines, warnings, starts, permits)) = answer else {
        return Err(unknown("site", &site_id));
    };
    Ok(Json(SiteAnswer {
        site: site_view(site),
        machines,
        warnings: wire_warnings(warnings, &scope)?,
        starts: starts
            .iter()
            .filter(|s| ledger_in(&scope, &s.ledger))
            .map(start_view)
            .collect(),
        permits: permits.iter().map(permit_summary).collect(),
    }))
}

/// `GET /v1/platform/machines/{machine_id}`: a machine inside the caller's scope (an unplaced
/// one city-wide only), its starts and warnings, newest first.
pub async fn machine(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(machine_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<MachineAnswer>> {
    let caller = authorize(&state, &headers, Endpoint::ReadPlatform).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &["limit"])?;
    let limit = limit_of(&query)?;
    if !plausible_id(&machine_id) {
        return Err(unknown("machine", &machine_id));
    }
    let answer = {
        let (scope, id) = (scope.clone(), machine_id.clone());
        with_db(&state, move |db| {
            let placed = db
                .view_machines(&scope, None, Some(&id), 1)?
                .into_iter()
                .find(|m| m.id == id && machine_in(&scope, m));
            if placed.is_none() && scope != Scope::City {
                return Ok(None);
            }
            let (status, registered) = machine_status(db, &id)?;
            let subject = Subject::Machine(&id);
            let warnings = db.view_warnings(&scope, &subject, limit)?;
            let starts = db.view_starts(&scope, &subject, limit)?;
            if placed.is_none() && !registered && warnings.is_empty() && starts.is_empty() {
                return Ok(None);
            }
            Ok(Some((placed, status, warnings, starts)))
        })
        .await?
    };
    let Some((placed, status, warnings, starts)) = answer else {
        return Err(unknown("machine", &machine_id));
    };
    let open_here = warnings.iter().filter(|w| w.state == "open").count() as i64;
    let machine = match placed {
        Some(m) => MachineView {
            id: m.id,
            status,
            watch: Some(m.watch),
            site_id: m.site_id,
            site_name: m.site_name,
            district: Some(m.district),
            town: m.town,
            grid: m.grid,
            lat_e7: m.lat_e7,
            lon_e7: m.lon_e7,
            open_warnings: m.open_warnings,
        },
        None => MachineView {
            id: machine_id,
            status,
            watch: None,
            site_id: None,
            site_name: None,
            district: None,
            town: None,
            grid: None,
            lat_e7: None,
            lon_e7: None,
            // Unplaced: seen city-wide only, so the warnings read are all of its warnings (up
            // to the limit).
            open_warnings: open_here,
        },
    };
    Ok(Json(MachineAnswer {
        machine,
        warnings: wire_warnings(warnings, &scope)?,
        starts: starts
            .iter()
            .filter(|s| ledger_in(&scope, &s.ledger))
            .map(start_view)
            .collect(),
    }))
}

/// `GET /v1/platform/welders/{certificate_no}`: a licence holder placed inside the caller's
/// scope, or whose licence was used for a start (or raised a warning) inside it (an unplaced
/// holder without either: city-wide only), with the registry's licence fields (never the ID
/// number), the holder's place when inside the scope, and the starts and warnings with the
/// licence inside the scope, newest first.
pub async fn welder(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(certificate_no): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<WelderAnswer>> {
    let caller = authorize(&state, &headers, Endpoint::ReadPlatform).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &["limit"])?;
    let limit = limit_of(&query)?;
    if !plausible_id(&certificate_no) {
        return Err(unknown("welder", &certificate_no));
    }
    let answer = {
        let (scope, cert) = (scope.clone(), certificate_no.clone());
        with_db(&state, move |db| {
            let place = db
                .view_licence_place(&scope, &cert)?
                .filter(|p| place_in(&scope, p));
            let subject = Subject::Welder(&cert);
            let warnings = db.view_warnings(&scope, &subject, limit)?;
            let starts = db.view_starts(&scope, &subject, limit)?;
            let (change, revoked) = registry_of(
                db,
                weldguard_model::checksum::Collection::Licences,
                "licence",
                &cert,
            )?;
            // Inside the scope: the holder's place, or a start or warning with the licence.
            let seen = place.is_some() || !warnings.is_empty() || !starts.is_empty();
            if !seen && (scope != Scope::City || change.is_none()) {
                return Ok(None);
            }
            Ok(Some((place, change, revoked, warnings, starts)))
        })
        .await?
    };
    let Some((place, change, revoked, warnings, starts)) = answer else {
        return Err(unknown("welder", &certificate_no));
    };
    let mut welder = WelderView {
        certificate_no,
        name: String::new(),
        kind: None,
        categories: Vec::new(),
        expires_on: None,
        next_review_on: None,
        status: None,
        employer_org: None,
        district: place.as_ref().map(|p| p.district.clone()),
        town: place.as_ref().and_then(|p| p.town.clone()),
        grid: place.as_ref().and_then(|p| p.grid.clone()),
    };
    match change {
        Some(RegistryChange::UpsertLicence(l)) => {
            welder.categories = l.categories.iter().filter_map(wire_name).collect();
            welder.kind = (!welder.categories.is_empty()).then(|| welder.categories.join(","));
            welder.name = l.name;
            welder.expires_on = Some(l.expires_on.format("%Y-%m-%d").to_string());
            welder.next_review_on = Some(l.next_review_on.format("%Y-%m-%d").to_string());
            welder.status = if revoked {
                Some("revoked".to_owned())
            } else {
                wire_name(&l.status)
            };
            welder.employer_org = l.employer_org;
        }
        Some(_) => welder.status = Some("deleted".to_owned()),
        None => {}
    }
    Ok(Json(WelderAnswer {
        welder,
        warnings: wire_warnings(warnings, &scope)?,
        starts: starts
            .iter()
            .filter(|s| ledger_in(&scope, &s.ledger))
            .map(start_view)
            .collect(),
    }))
}

/// Who a permit's log names by `id`: `name (id)` when the permit names the person.
fn named(permit: &Permit, id: &str) -> String {
    let c = &permit.content;
    let name = permit
        .signatures
        .iter()
        .map(|s| (&s.signer.id, &s.signer.name))
        .chain(std::iter::once((&c.applicant.id, &c.applicant.name)))
        .chain(c.welders.iter().map(|p| (&p.id, &p.name)))
        .chain(c.fire_watch.iter().map(|p| (&p.id, &p.name)))
        .find(|(pid, _)| pid.as_str() == id)
        .map(|(_, name)| name.clone());
    match name {
        Some(name) => format!("{name} ({id})"),
        None => id.to_owned(),
    }
}

fn section_name(section: Section) -> String {
    wire_name(&section).unwrap_or_default()
}

/// The checklist as the model holds it: every item of the permit's catalog (the built-in one)
/// in catalog order with the permit's answer, then answers naming items the catalog lacks.
pub fn checklist(
    answers: &[ChecklistAnswer],
    post_work: &[ChecklistAnswer],
    catalog: &Catalog,
) -> Vec<ChecklistItemView> {
    let answers: Vec<&ChecklistAnswer> = answers.iter().chain(post_work).collect();
    let answer_of = |id: &str| {
        answers
            .iter()
            .find(|a| a.item_id == id)
            .map(|a| match &a.value {
                AnswerValue::Confirmed => ("confirmed".to_owned(), None),
                AnswerValue::NotApplicable { reason } => {
                    ("not_applicable".to_owned(), Some(reason.clone()))
                }
            })
    };
    let mut out: Vec<ChecklistItemView> = catalog
        .items
        .iter()
        .map(|item| {
            let answer = answer_of(&item.id);
            ChecklistItemView {
                item_id: item.id.clone(),
                section: section_name(item.section),
                number: Some(item.number),
                text_zh: item.text_zh.clone(),
                text_en: item.text_en.clone(),
                note: answer.as_ref().and_then(|a| a.1.clone()),
                answer: answer.map(|a| a.0),
            }
        })
        .collect();
    for a in &answers {
        if catalog.item(&a.item_id).is_none() {
            let answer = answer_of(&a.item_id);
            out.push(ChecklistItemView {
                item_id: a.item_id.clone(),
                section: String::new(),
                number: None,
                text_zh: String::new(),
                text_en: String::new(),
                note: answer.as_ref().and_then(|x| x.1.clone()),
                answer: answer.map(|x| x.0),
            });
        }
    }
    out
}

/// The permit page: the head, its applied steps, and the signer directory that admitted them.
pub fn permit_view(
    head: &PermitHeadRow,
    steps: &[PermitStepRow],
    directory: &weldguard_model::signers::SignerDirectory,
    site_name: Option<String>,
) -> Result<PermitAnswer, DbError> {
    let permit: Permit = serde_json::from_str(&head.body)
        .map_err(|e| DbError::Invalid(format!("stored permit {}: {e}", head.permit_id)))?;
    let raw: Value = serde_json::from_str(&head.body)
        .map_err(|e| DbError::Invalid(format!("stored permit {}: {e}", head.permit_id)))?;
    let catalog = Catalog::builtin().map_err(|e| DbError::Invalid(e.to_string()))?;
    let versions: Vec<(&PermitStepRow, Option<Permit>)> = steps
        .iter()
        .map(|s| (s, serde_json::from_str::<Permit>(&s.body).ok()))
        .collect();
    let signatures = permit
        .signatures
        .iter()
        .enumerate()
        .map(|(i, sig)| {
            let entry = directory.entry(&sig.public_key);
            let step_id = versions
                .iter()
                .find(|(_, v)| v.as_ref().is_some_and(|p| p.signatures.len() > i))
                .map(|(s, _)| s.step_id.clone());
            SignatureView {
                step_id,
                action: wire_name(&sig.step).unwrap_or_default(),
                person: entry.map_or_else(|| sig.signer.name.clone(), |e| e.name.clone()),
                person_id: entry.map_or_else(|| sig.signer.id.clone(), |e| e.person_id.clone()),
                role: sig.signer.role.clone(),
                signed_at_ms: sig.at.saturating_mul(1000),
                user_present: sig.user_present,
                device_id: entry.map(|e| e.device_id.clone()),
                vouched: entry.is_some_and(|e| {
                    e.person_id == sig.signer.id && e.roles.contains(&sig.signer.role)
                }),
            }
        })
        .collect();
    let steps = versions
        .iter()
        .map(|(s, v)| {
            // The step's action is the last entry of the log it made (flags come before it).
            let last = v.as_ref().and_then(|p| {
                p.events
                    .iter()
                    .rev()
                    .find(|e| !matches!(e.kind, EventKind::Flagged { .. }))
            });
            let by = match (last.and_then(|e| e.by.as_deref()), v) {
                (Some(id), Some(p)) => named(p, id),
                _ => s.person.clone().unwrap_or_default(),
            };
            StepView {
                step_id: s.step_id.clone(),
                action: s.action.clone(),
                state: v
                    .as_ref()
                    .map(|p| state_name(p.state).to_owned())
                    .unwrap_or_default(),
                at_ms: last.map_or(s.received_at_ms, |e| e.at.saturating_mul(1000)),
                by,
                reported_by: s.person.clone(),
                received_at_ms: s.received_at_ms,
            }
        })
        .collect();
    Ok(PermitAnswer {
        permit: PermitView {
            id: head.permit_id.clone(),
            state: head.state.clone(),
            site_id: Some(permit.content.site.site_id.clone()),
            site_name: site_name.or_else(|| Some(permit.content.site.name.clone())),
            level: permit.level.as_ref().and_then(|d| wire_name(&d.required)),
            updated_at_ms: head.updated_at_ms,
            checklist: checklist(&permit.answers, &permit.post_work, &catalog),
            signatures,
            steps,
        },
        raw,
    })
}

/// `GET /v1/platform/permits/{permit_id}`: a permit whose site lies inside the caller's scope (a
/// permit at a site the platform has not placed: city-wide only): its checklist, who signed what
/// and its steps, with the stored version.
pub async fn permit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(permit_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<PermitAnswer>> {
    let caller = authorize(&state, &headers, Endpoint::ReadPlatform).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &[])?;
    if !plausible_id(&permit_id) {
        return Err(unknown("permit", &permit_id));
    }
    let answer = {
        let (scope, id) = (scope.clone(), permit_id.clone());
        with_db(&state, move |db| {
            let Some((head, steps)) = db.view_permit(&id)? else {
                return Ok(None);
            };
            let site_id = serde_json::from_str::<Permit>(&head.body)
                .map_err(|e| DbError::Invalid(format!("stored permit {id}: {e}")))?
                .content
                .site
                .site_id;
            let site = db
                .view_sites(&scope, Some(&site_id))?
                .into_iter()
                .find(|r| r.id == site_id && site_in(&scope, r));
            if site.is_none() && scope != Scope::City {
                return Ok(None);
            }
            let directory = crate::signers::current_directory(db, crate::db::now_ms())?;
            permit_view(&head, &steps, &directory, site.map(|s| s.name)).map(Some)
        })
        .await?
    };
    answer
        .map(Json)
        .ok_or_else(|| unknown("permit", &permit_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_reads_the_pushed_session_else_the_ledger() {
        let ledger = LedgerRow {
            id: 7,
            key: "k1".into(),
            day: "2026-12-01".into(),
            at_ms: 1_796_083_200_000,
            kind: "start".into(),
            district: "370983".into(),
            town: String::new(),
            site_id: Some("S-1".into()),
            machine_id: Some("M-1".into()),
            person: Some("T1".into()),
            decision: "refused".into(),
            detail: "licence.expired machine.retired".into(),
            position: Some((361_826_000, 1_167_685_000, 15)),
        };
        let bare = start_view(&StartRecord {
            ledger: ledger.clone(),
            payload: None,
        });
        assert_eq!(bare.session_id, "k1");
        assert!(!bare.allowed);
        assert_eq!(bare.reason_codes, ["licence.expired", "machine.retired"]);
        assert_eq!(
            (bare.lat_e7, bare.accuracy_m),
            (Some(361_826_000), Some(15))
        );
        assert_eq!(
            (bare.district.as_deref(), bare.town),
            (Some("370983"), None)
        );
        let session = serde_json::json!({
            "id": "k1", "machine_id": "M-1", "certificate_no": "T1",
            "started_at_ms": 1_796_083_200_000_i64, "allowed": false,
            "reason_codes": ["licence.expired"], "permit_id": "P-1",
            "created_at_ms": 1_796_083_200_000_i64
        });
        let full = start_view(&StartRecord {
            ledger,
            payload: Some(session.to_string()),
        });
        assert_eq!(full.permit_id.as_deref(), Some("P-1"));
        assert_eq!(full.reason_codes, ["licence.expired"]);
        assert_eq!(full.lat_e7, None, "the session had no position");
    }

    #[test]
    fn filters_outside_the_scope_are_refused_and_limits_bounded() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let district = Scope::District("370983".into());
        assert_eq!(inside(&district, &q(&[])).unwrap(), district);
        assert_eq!(
            inside(&district, &q(&[("town", "370983001")])).unwrap(),
            Scope::Town("370983001".into())
        );
        let code = |r: ApiResult<Scope>| r.err().map(|e| e.code());
        assert_eq!(
            code(inside(&district, &q(&[("district", "370902")]))),
            Some("platform.out_of_scope")
        );
        assert_eq!(
            code(inside(&district, &q(&[("town", "370902001")]))),
            Some("platform.out_of_scope")
        );
        assert_eq!(
            code(inside(&district, &q(&[("district", "37")]))),
            Some("place.bad_district")
        );
        assert_eq!(limit_of(&q(&[])).unwrap(), DEFAULT_LIMIT);
        assert!(limit_of(&q(&[("limit", "201")])).is_err());
        assert!(limit_of(&q(&[("limit", "0")])).is_err());
        assert_eq!(limit_of(&q(&[("limit", "200")])).unwrap(), 200);
    }

    #[test]
    fn the_checklist_is_the_catalog_with_the_permits_answers() {
        let catalog = Catalog::builtin().unwrap();
        let answers = weldguard_model::permit::sample_answers(
            &catalog,
            &[Section::Prohibition],
            &weldguard_model::permit::SampleEvidence::crew(0),
        );
        let list = checklist(&answers, &[], &catalog);
        assert_eq!(list.len(), catalog.items.len());
        let first = &list[0];
        assert_eq!(first.item_id, catalog.items[0].id);
        assert_eq!(first.text_zh, catalog.items[0].text_zh);
        assert_eq!(first.text_en, catalog.items[0].text_en);
        assert!(first.answer.is_some());
        let post = list.iter().find(|i| i.section == "post_work").unwrap();
        assert_eq!(post.answer, None, "not answered yet");
    }

    #[test]
    fn the_openapi_schemas_have_exactly_the_fields_the_answers_write() {
        let doc: Value = serde_json::from_str(crate::openapi::OPENAPI_JSON).unwrap();
        let check = |schema: &str, sample: Value| {
            let props = doc["components"]["schemas"][schema]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{schema} is documented"));
            let mut documented: Vec<&String> = props.keys().collect();
            let mut written: Vec<&String> = sample.as_object().unwrap().keys().collect();
            documented.sort();
            written.sort();
            assert_eq!(documented, written, "{schema}");
        };
        let site = SiteView {
            id: "S".into(),
            name: "n".into(),
            district: "370983".into(),
            town: None,
            grid: None,
            lat_e7: 0,
            lon_e7: 0,
            machines: 0,
            open_warnings: 0,
            open_by_kind: BTreeMap::new(),
        };
        let j = |v: &dyn erased::Json| v.json();
        check("PlatformSite", j(&site));
        check("PlatformSites", j(&SitesAnswer { sites: vec![] }));
        let summary = MachineSummary {
            id: "M".into(),
            status: "active".into(),
            watch: None,
            open_warnings: 0,
        };
        check("PlatformMachineSummary", j(&summary));
        let start = start_view(&StartRecord {
            ledger: LedgerRow {
                id: 1,
                key: "k".into(),
                day: "2026-12-01".into(),
                at_ms: 0,
                kind: "start".into(),
                district: String::new(),
                town: String::new(),
                site_id: None,
                machine_id: None,
                person: None,
                decision: "allowed".into(),
                detail: String::new(),
                position: None,
            },
            payload: None,
        });
        check("PlatformStart", j(&start));
        let head = PermitHeadRow {
            permit_id: "P".into(),
            state: "draft".into(),
            body: "{}".into(),
            updated_at_ms: 0,
        };
        check("PlatformPermitSummary", j(&permit_summary(&head)));
        check(
            "PlatformSitePage",
            j(&SiteAnswer {
                site,
                machines: vec![],
                warnings: vec![],
                starts: vec![],
                permits: vec![],
            }),
        );
        let machine = MachineView {
            id: "M".into(),
            status: "active".into(),
            watch: None,
            site_id: None,
            site_name: None,
            district: None,
            town: None,
            grid: None,
            lat_e7: None,
            lon_e7: None,
            open_warnings: 0,
        };
        check("PlatformMachine", j(&machine));
        check(
            "PlatformMachinePage",
            j(&MachineAnswer {
                machine,
                starts: vec![],
                warnings: vec![],
            }),
        );
        let welder = WelderView {
            certificate_no: "T".into(),
            name: String::new(),
            kind: None,
            categories: vec![],
            expires_on: None,
            next_review_on: None,
            status: None,
            employer_org: None,
            district: None,
            town: None,
            grid: None,
        };
        check("PlatformWelder", j(&welder));
        check(
            "PlatformWelderPage",
            j(&WelderAnswer {
                welder,
                starts: vec![],
                warnings: vec![],
            }),
        );
        let catalog = Catalog::builtin().unwrap();
        check(
            "PlatformChecklistItem",
            j(&checklist(&[], &[], &catalog)[0]),
        );
        let signature = SignatureView {
            step_id: None,
            action: "submit".into(),
            person: "p".into(),
            person_id: "S-1".into(),
            role: "applicant".into(),
            signed_at_ms: 0,
            user_present: None,
            device_id: None,
            vouched: false,
        };
        check("PlatformSignature", j(&signature));
        let step = StepView {
            step_id: "s".into(),
            action: "draft".into(),
            state: "draft".into(),
            at_ms: 0,
            by: "p".into(),
            reported_by: None,
            received_at_ms: 0,
        };
        check("PlatformPermitStep", j(&step));
        let permit = PermitView {
            id: "P".into(),
            state: "draft".into(),
            site_id: None,
            site_name: None,
            level: None,
            updated_at_ms: 0,
            checklist: vec![],
            signatures: vec![signature],
            steps: vec![step],
        };
        check("PlatformPermit", j(&permit));
        check(
            "PlatformPermitPage",
            j(&PermitAnswer {
                permit,
                raw: Value::Null,
            }),
        );
    }

    /// Serialize any answer to JSON (a trait object, so one closure takes them all).
    mod erased {
        pub trait Json {
            fn json(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap()
            }
        }
    }
}
