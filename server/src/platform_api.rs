//! The dashboard's data routes (#19; docs/adr/0017-warnings-and-scope.md, "Statistics, stream,
//! CSV"), each answering only what lies inside the caller's scope, like the warning routes:
//! `GET /v1/stats` (figures per China day and place, from the counters the pushes keep),
//! `GET /v1/warnings/stream` (server-sent events of new warnings, resumable with
//! `Last-Event-ID`, read from the store by id cursor so a warning raised by any server process
//! sharing the database arrives), `GET /v1/warnings.csv` and `GET /v1/ledger.csv` (UTF-8 with a
//! BOM, RFC 4180, formula-safe; written page by page as the client reads).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;
use tokio::sync::mpsc;
use weldguard_model::warnings::Scope;

use crate::authz::Endpoint;
use crate::http::{ApiError, ApiResult, AppState, authorize, bad_request, with_db};
use crate::platform::{
    BOM, CountRow, INSPECTIONS, PERMITS_PREFIX, STARTS_ALLOWED, STARTS_REFUSED, WARNINGS_OPEN,
    csv_line,
};
use crate::warnings_api::{list_query, narrowed, scope_of};

/// How often an open stream asks the store for new warnings.
pub const STREAM_POLL: Duration = Duration::from_secs(1);
/// A comment line this often keeps proxies and the connection's deadline from closing a quiet
/// stream.
pub const STREAM_KEEPALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this long; the client reconnects with `Last-Event-ID`, which checks its
/// token and scope again.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// Warnings read per store call while a stream catches up.
const STREAM_PAGE: u32 = 100;
/// Most streams one account may hold open in one server process.
pub const MAX_STREAMS_PER_ACCOUNT: u32 = 3;
/// Longest statistics window, in days.
pub const MAX_STATS_DAYS: i64 = 366;
/// Rows read per store call while writing a CSV export.
const CSV_PAGE: u32 = 500;

/// The warning streams open in this process, per account (device id).
#[derive(Debug, Default)]
pub struct StreamSlots(Mutex<HashMap<String, u32>>);

/// One open stream's slot, given back when dropped (the stream ended or its client left).
pub struct StreamSlot {
    slots: std::sync::Arc<StreamSlots>,
    account: String,
}

impl StreamSlots {
    /// A slot for `account`, unless it holds [`MAX_STREAMS_PER_ACCOUNT`] already.
    pub fn take(self: &std::sync::Arc<Self>, account: &str) -> Option<StreamSlot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(account.to_owned()).or_insert(0);
        if *n >= MAX_STREAMS_PER_ACCOUNT {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            slots: self.clone(),
            account: account.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.account);
            }
        }
    }
}

/// A channel's receiving end as a stream of items.
struct Received<T>(mpsc::Receiver<T>);

impl<T> futures_core::Stream for Received<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().0.poll_recv(cx)
    }
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

fn day_param(query: &HashMap<String, String>, name: &str) -> ApiResult<NaiveDate> {
    let text = query
        .get(name)
        .ok_or_else(|| bad_request("stats.bad_day", format!("{name} (YYYY-MM-DD) is required")))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or_else(|| bad_request("stats.bad_day", format!("{name} must be YYYY-MM-DD")))
}

/// Figures of one place on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlaceFigures {
    /// The district (`null`: records without a place, seen city-wide only).
    pub district: Option<String>,
    /// The town, when grouped by town (`null`: in the district, without a town).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    pub starts_allowed: i64,
    pub starts_refused: i64,
    pub inspections: i64,
    /// Permits by their latest state, counted on the day their validity starts.
    pub permits: BTreeMap<String, i64>,
    /// Warnings of that day (by the time of the record that raised them) still open.
    pub warnings_open: i64,
}

impl PlaceFigures {
    fn add(&mut self, row: &CountRow) {
        match row.metric.as_str() {
            STARTS_ALLOWED => self.starts_allowed += row.n,
            STARTS_REFUSED => self.starts_refused += row.n,
            INSPECTIONS => self.inspections += row.n,
            WARNINGS_OPEN => self.warnings_open += row.n,
            m => {
                if let Some(state) = m.strip_prefix(PERMITS_PREFIX) {
                    *self.permits.entry(state.to_owned()).or_insert(0) += row.n;
                }
            }
        }
    }

    fn tidy(&mut self) {
        self.permits.retain(|_, n| *n != 0);
    }
}

/// One China day's figures, per place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    pub day: String,
    pub places: Vec<PlaceFigures>,
}

/// `GET /v1/stats`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The scope the figures cover (the caller's, or the district/town asked for inside it).
    pub scope: Scope,
    pub from: String,
    pub until: String,
    /// `district` (city-wide) or `town` (inside a district or town).
    pub group_by: &'static str,
    /// Every day of the window, oldest first (a day without records has no places).
    pub days: Vec<DayFigures>,
    /// The window's sums per place (the same grouping).
    pub totals: Vec<PlaceFigures>,
}

/// (district, town) of a figures row.
type PlaceKey = (Option<String>, Option<String>);

/// Group counter rows by day and place (district city-wide, town inside a district or town).
pub fn figures(
    rows: &[CountRow],
    scope: &Scope,
    from: NaiveDate,
    until: NaiveDate,
) -> (Vec<DayFigures>, Vec<PlaceFigures>) {
    let by_town = !matches!(scope, Scope::City);
    let place_of = |r: &CountRow| -> PlaceKey {
        let district = (!r.district.is_empty()).then(|| r.district.clone());
        if by_town {
            (district, (!r.town.is_empty()).then(|| r.town.clone()))
        } else {
            (district, None)
        }
    };
    let mut days: BTreeMap<String, BTreeMap<PlaceKey, PlaceFigures>> = BTreeMap::new();
    let mut totals: BTreeMap<PlaceKey, PlaceFigures> = BTreeMap::new();
    for row in rows {
        let key = place_of(row);
        let fresh = || PlaceFigures {
            district: key.0.clone(),
            town: key.1.clone(),
            ..PlaceFigures::default()
        };
        days.entry(row.day.clone())
            .or_default()
            .entry(key.clone())
            .or_insert_with(fresh)
            .add(row);
        totals.entry(key.clone()).or_insert_with(fresh).add(row);
    }
    let mut out = Vec::new();
    let mut day = from;
    while day <= until {
        let text = day.format("%Y-%m-%d").to_string();
        let places = days
            .remove(&text)
            .map(|p| {
                p.into_values()
                    .map(|mut f| {
                        f.tidy();
                        f
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(DayFigures { day: text, places });
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    let totals = totals
        .into_values()
        .map(|mut f| {
            f.tidy();
            f
        })
        .collect();
    (out, totals)
}

/// `GET /v1/stats?from=YYYY-MM-DD&until=YYYY-MM-DD[&district=|&town=]`: figures per China day
/// and place inside the caller's scope, read from the per-day counters (a few rows per day and
/// place, however many records).
pub async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Stats>> {
    let caller = authorize(&state, &headers, Endpoint::ReadWarnings).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &["from", "until", "district", "town"])?;
    let from = day_param(&query, "from")?;
    let until = day_param(&query, "until")?;
    let span = (until - from).num_days();
    if !(0..MAX_STATS_DAYS).contains(&span) {
        return Err(bad_request(
            "stats.bad_window",
            format!("from must not be after until, and the window at most {MAX_STATS_DAYS} days"),
        ));
    }
    let inside = narrowed(&scope, &query)?;
    let (from_text, until_text) = (
        from.format("%Y-%m-%d").to_string(),
        until.format("%Y-%m-%d").to_string(),
    );
    let rows = {
        let (inside, f, u) = (inside.clone(), from_text.clone(), until_text.clone());
        with_db(&state, move |db| db.counts(&inside, &f, &u)).await?
    };
    // The store filtered by place; keep only rows inside the scope again before they leave.
    let rows: Vec<CountRow> = rows
        .into_iter()
        .filter(|r| {
            let (d, t) = (
                (!r.district.is_empty()).then_some(r.district.as_str()),
                (!r.town.is_empty()).then_some(r.town.as_str()),
            );
            scope.holds(d, t) && inside.holds(d, t)
        })
        .collect();
    let (days, totals) = figures(&rows, &inside, from, until);
    Ok(Json(Stats {
        group_by: if matches!(inside, Scope::City) {
            "district"
        } else {
            "town"
        },
        scope: inside,
        from: from_text,
        until: until_text,
        days,
        totals,
    }))
}

/// `GET /v1/warnings/stream`: new warnings inside the caller's scope as server-sent events
/// (`event: warning`, `id:` the warning's id, `data:` the warning as the list gives it). With
/// `Last-Event-ID` the stream starts after that id (what was missed comes first, from the
/// store); without it, with the warnings raised from now on.
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let caller = authorize(&state, &headers, Endpoint::ReadWarnings).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &[])?;
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                bad_request(
                    "warnings.bad_event_id",
                    "Last-Event-ID must be the id of an event of this stream",
                )
            })?,
        None => with_db(&state, |db| db.last_warning_id()).await?,
    };
    let slot = state.streams().take(&caller.device_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "warnings.too_many_streams",
            format!("an account may hold {MAX_STREAMS_PER_ACCOUNT} warning streams at once"),
        )
    })?;
    let (send, receive) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(feed_stream(state, scope, after, send, slot));
    Ok(Sse::new(Received(receive))
        .keep_alive(
            KeepAlive::new()
                .interval(STREAM_KEEPALIVE)
                .text("keep-alive"),
        )
        .into_response())
}

/// Read new warnings by id cursor until the client leaves or the stream's lifetime ends.
async fn feed_stream(
    state: AppState,
    scope: Scope,
    mut after: i64,
    send: mpsc::Sender<Result<Event, Infallible>>,
    _slot: StreamSlot,
) {
    let ends = tokio::time::Instant::now() + STREAM_LIFETIME;
    let mut tick = tokio::time::interval(STREAM_POLL);
    loop {
        tick.tick().await;
        if send.is_closed() || tokio::time::Instant::now() >= ends {
            return;
        }
        // Catch up a page at a time (a reconnect after a long gap), then wait for the next tick.
        loop {
            let page = {
                let scope = scope.clone();
                with_db(&state, move |db| {
                    db.warnings_after(&scope, after, STREAM_PAGE)
                })
                .await
            };
            let Ok(rows) = page else {
                // The store is away for a moment: try again at the next tick.
                break;
            };
            let full = rows.len() == STREAM_PAGE as usize;
            if !send_rows(&send, &scope, rows, &mut after).await {
                return;
            }
            if !full {
                break;
            }
        }
    }
}

/// Send warnings as events, moving the cursor past them; `false` when the client has left.
async fn send_rows(
    send: &mpsc::Sender<Result<Event, Infallible>>,
    scope: &Scope,
    rows: Vec<crate::warnings::WarningRow>,
    after: &mut i64,
) -> bool {
    for row in rows {
        *after = (*after).max(row.id);
        if !row.in_scope(scope) {
            continue;
        }
        let Ok(warning) = row.to_wire() else {
            continue;
        };
        let Ok(event) = Event::default()
            .event("warning")
            .id(row.id.to_string())
            .json_data(&warning)
        else {
            continue;
        };
        if send.send(Ok(event)).await.is_err() {
            return false;
        }
    }
    true
}

/// A streamed CSV answer: the BOM and `header`, then the lines `produce` sends.
fn csv_response<F, Fut>(filename: &str, header: &[&str], produce: F) -> Response
where
    F: FnOnce(mpsc::Sender<Result<Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (send, receive) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let first = format!("{BOM}{}", csv_line(header));
    let task = produce(send.clone());
    tokio::spawn(async move {
        if send.send(Ok(Bytes::from(first))).await.is_ok() {
            drop(send);
            task.await;
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(Received(receive)),
    )
        .into_response()
}

/// A moment as China time, `YYYY-MM-DD HH:MM:SS`.
fn china_time(at_ms: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(crate::platform::CHINA_OFFSET_SECS);
    match (chrono::DateTime::from_timestamp_millis(at_ms), offset) {
        (Some(t), Some(o)) => t.with_timezone(&o).format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => String::new(),
    }
}

const WARNINGS_HEADER: [&str; 19] = [
    "编号 id",
    "类型 kind",
    "名称",
    "title",
    "状态 state",
    "发生时间 at (UTC+8)",
    "区县 district",
    "镇街 town",
    "网格 grid",
    "工地 site",
    "焊机 machine",
    "证书 certificate",
    "记录 records",
    "确认人 acknowledged by",
    "确认时间 acknowledged at",
    "关闭人 closed by",
    "关闭时间 closed at",
    "关闭说明 close note",
    "详情 detail",
];

/// `GET /v1/warnings.csv?kind=&state=&from=&until=&district=&town=`: the warning list (its
/// filters, every page, newest first) as CSV.
pub async fn warnings_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let caller = authorize(&state, &headers, Endpoint::ReadWarnings).await?;
    let scope = scope_of(&state, &caller).await?;
    if let Some(p) = ["after", "limit"].iter().find(|p| query.contains_key(**p)) {
        return Err(bad_request(
            "request.unknown_parameter",
            format!("{p:?} pages the list; the export holds every page"),
        ));
    }
    let (mut q, _) = list_query(&scope, &query)?;
    q.limit = CSV_PAGE;
    Ok(csv_response(
        "warnings.csv",
        &WARNINGS_HEADER,
        move |send| async move {
            loop {
                let page = {
                    let q = q.clone();
                    with_db(&state, move |db| db.warnings_page(&q)).await
                };
                let Ok(rows) = page else {
                    let _ = send
                        .send(Err(std::io::Error::other("the store failed mid-export")))
                        .await;
                    return;
                };
                let Some(last) = rows.last() else {
                    return;
                };
                q.before_id = last.id;
                let mut chunk = String::new();
                for row in &rows {
                    if !(row.in_scope(&scope) && row.in_scope(&q.scope)) {
                        continue;
                    }
                    let Ok(w) = row.to_wire() else { continue };
                    let opt = |t: &Option<String>| t.clone().unwrap_or_default();
                    let time = |t: Option<i64>| t.map(china_time).unwrap_or_default();
                    chunk.push_str(&csv_line(&[
                        w.id.clone(),
                        w.kind.as_str().to_owned(),
                        w.title_zh.clone(),
                        w.title_en.clone(),
                        w.state.as_str().to_owned(),
                        china_time(w.at_ms),
                        w.place
                            .as_ref()
                            .map(|p| p.district.clone())
                            .unwrap_or_default(),
                        w.place
                            .as_ref()
                            .and_then(|p| p.town.clone())
                            .unwrap_or_default(),
                        w.place
                            .as_ref()
                            .and_then(|p| p.grid.clone())
                            .unwrap_or_default(),
                        opt(&w.site_id),
                        w.machine_id.clone(),
                        opt(&w.certificate_no),
                        w.records.join(" "),
                        opt(&w.acknowledged_by),
                        time(w.acknowledged_at_ms),
                        opt(&w.closed_by),
                        time(w.closed_at_ms),
                        opt(&w.close_note),
                        w.detail.to_string(),
                    ]));
                }
                if send.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
                if rows.len() < CSV_PAGE as usize {
                    return;
                }
            }
        },
    ))
}

const LEDGER_HEADER: [&str; 14] = [
    "序号 no",
    "时间 time (UTC+8)",
    "类型 kind",
    "区县 district",
    "镇街 town",
    "工地 site",
    "焊机 machine",
    "人员 person",
    "结论 decision",
    "说明 detail",
    "纬度 latitude",
    "经度 longitude",
    "精度(米) accuracy m",
    "记录 record",
];

/// `GET /v1/ledger.csv?day=YYYY-MM-DD[&district=|&town=]`: the day's ledger (台账) inside the
/// caller's scope: every applied scan-to-start (decision, machine, welder, site, place,
/// position), inspection and permit step of that China day, in arrival order.
pub async fn ledger_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let caller = authorize(&state, &headers, Endpoint::ReadWarnings).await?;
    let scope = scope_of(&state, &caller).await?;
    refuse_unknown(&query, &["day", "district", "town"])?;
    let day = day_param(&query, "day")?;
    let inside = narrowed(&scope, &query)?;
    let day_text = day.format("%Y-%m-%d").to_string();
    let filename = format!("ledger-{day_text}.csv");
    Ok(csv_response(
        &filename,
        &LEDGER_HEADER,
        move |send| async move {
            let mut after = 0_i64;
            let mut no = 0_u64;
            loop {
                let page = {
                    let (d, s) = (day_text.clone(), inside.clone());
                    with_db(&state, move |db| db.ledger_page(&d, &s, after, CSV_PAGE)).await
                };
                let Ok(rows) = page else {
                    let _ = send
                        .send(Err(std::io::Error::other("the store failed mid-export")))
                        .await;
                    return;
                };
                let Some(last) = rows.last() else {
                    return;
                };
                after = last.id;
                let mut chunk = String::new();
                for r in &rows {
                    let (d, t) = (
                        (!r.district.is_empty()).then_some(r.district.as_str()),
                        (!r.town.is_empty()).then_some(r.town.as_str()),
                    );
                    if !(scope.holds(d, t) && inside.holds(d, t)) {
                        continue;
                    }
                    no += 1;
                    let e7 = |v: i32| format!("{:.7}", f64::from(v) / 1e7);
                    chunk.push_str(&csv_line(&[
                        no.to_string(),
                        china_time(r.at_ms),
                        r.kind.clone(),
                        r.district.clone(),
                        r.town.clone(),
                        r.site_id.clone().unwrap_or_default(),
                        r.machine_id.clone().unwrap_or_default(),
                        r.person.clone().unwrap_or_default(),
                        r.decision.clone(),
                        r.detail.clone(),
                        r.position.map(|p| e7(p.0)).unwrap_or_default(),
                        r.position.map(|p| e7(p.1)).unwrap_or_default(),
                        r.position.map(|p| p.2.to_string()).unwrap_or_default(),
                        r.key.clone(),
                    ]));
                }
                if send.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
                if rows.len() < CSV_PAGE as usize {
                    return;
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, district: &str, town: &str, metric: &str, n: i64) -> CountRow {
        CountRow {
            day: day.into(),
            district: district.into(),
            town: town.into(),
            metric: metric.into(),
            n,
        }
    }

    #[test]
    fn figures_group_by_district_city_wide_and_by_town_inside_a_district() {
        let rows = vec![
            row("2026-12-06", "110105", "110105001", STARTS_ALLOWED, 3),
            row("2026-12-06", "110105", "110105002", STARTS_REFUSED, 1),
            row("2026-12-07", "110105", "", INSPECTIONS, 2),
            row("2026-12-07", "110106", "", "permits.approved", 1),
            row("2026-12-07", "110106", "", "permits.draft", 0),
            row("2026-12-07", "", "", WARNINGS_OPEN, 4),
        ];
        let from = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let until = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let (days, totals) = figures(&rows, &Scope::City, from, until);
        assert_eq!(
            days.iter().map(|d| d.day.as_str()).collect::<Vec<_>>(),
            ["2026-12-05", "2026-12-06", "2026-12-07"]
        );
        assert!(days[0].places.is_empty());
        assert_eq!(
            days[1].places.len(),
            1,
            "both towns fold into their district"
        );
        assert_eq!(days[1].places[0].starts_allowed, 3);
        assert_eq!(days[1].places[0].starts_refused, 1);
        assert_eq!(days[1].places[0].town, None);
        let unplaced = totals.iter().find(|p| p.district.is_none()).unwrap();
        assert_eq!(unplaced.warnings_open, 4);
        let d106 = totals
            .iter()
            .find(|p| p.district.as_deref() == Some("110106"))
            .unwrap();
        assert_eq!(
            d106.permits,
            BTreeMap::from([("approved".to_owned(), 1)]),
            "zero counts are left out"
        );

        let scope = Scope::District("110105".into());
        let (_, totals) = figures(&rows[..3], &scope, from, until);
        let towns: Vec<Option<&str>> = totals.iter().map(|p| p.town.as_deref()).collect();
        assert_eq!(towns, [None, Some("110105001"), Some("110105002")]);
    }
}
