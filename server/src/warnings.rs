//! The platform's warnings (#19, docs/adr/0017-warnings-and-scope.md): the thresholds
//! ([`WarningConfig`], server options with documented defaults), the rules as pure functions of a
//! record and the facts read for it (distances, speeds, refusal windows), and [`on_work_session`],
//! which runs them inside a push's transaction through [`PushTx`] for every applied work session;
//! and the registry's own check ([`licence_deadlines`], [`on_licence_due`]): a licence coming
//! within its expiry window.
//! A warning is written once: the hook never runs for a duplicate record, and each warning row
//! carries a unique key (its kind and the records that raised it).

use weldguard_model::records::WorkSession;
use weldguard_model::warnings::{Place, Scope, Warning, WarningKind, WarningState};

use crate::db::{AppliedRecord, DbError, PushTx};

/// The reason code of a start refused for an expired licence (model rules).
pub const EXPIRED_LICENCE_CODE: &str = "licence.expired";

/// The thresholds of the warning rules. Defaults: 3 refusals in 24 h, 500 m, 120 km/h, 30 days,
/// sessions of 24 h, an hour's wait for a permit, 30 minutes' grace after a post-work watch, a
/// deadline poll every 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarningConfig {
    /// Whether pushes compute warnings at all (off: for measuring what they cost).
    pub enabled: bool,
    /// `repeated_refusals`: this many refused starts at one machine…
    pub refusals: u32,
    /// …within this window (ms).
    pub refusal_window_ms: i64,
    /// `start_far_from_machine`: farther than this (m) beyond the fix's accuracy; also the least
    /// distance (beyond both accuracies) of `machine_two_places`.
    pub far_m: u32,
    /// `machine_two_places`: faster than this (km/h) between two starts of one machine.
    pub max_speed_kmh: u32,
    /// `licence_expiring`: a start with a licence expiring within this many days (0: the day of
    /// the start itself).
    pub licence_days: u32,
    /// `session_open_too_long`: a session with no sign of its end this long after its start (ms).
    pub session_open_ms: i64,
    /// `start_without_permit`: how long a start naming a permit the platform does not hold waits
    /// for the permit's steps before it is judged (ms).
    pub permit_wait_ms: i64,
    /// `fire_watch_missing`: the grace after a completed permit's post-work watch before a
    /// permit not closed raises it (ms).
    pub fire_watch_grace_ms: i64,
    /// How often the deadline worker takes the rows due (ms).
    pub deadline_poll_ms: u64,
}

impl Default for WarningConfig {
    fn default() -> Self {
        WarningConfig {
            enabled: true,
            refusals: 3,
            refusal_window_ms: 24 * 3600 * 1000,
            far_m: 500,
            max_speed_kmh: 120,
            licence_days: 30,
            session_open_ms: 24 * 3600 * 1000,
            permit_wait_ms: 3600 * 1000,
            fire_watch_grace_ms: 30 * 60 * 1000,
            deadline_poll_ms: 30_000,
        }
    }
}

/// The warning thresholds as server options (`weldguard-server --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct WarningOptions {
    /// Compute warnings at push time (`false`: store records only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub warnings: bool,
    /// `repeated_refusals`: refused starts at one machine within the window that raise it.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub warn_refusals: u32,
    /// `repeated_refusals`: the window, in hours.
    #[arg(long, default_value_t = 24, value_name = "HOURS",
          value_parser = clap::value_parser!(u32).range(1..=24 * 365))]
    pub warn_refusal_window_hours: u32,
    /// `start_far_from_machine`: metres between the scan and the machine's registered location,
    /// beyond the position's accuracy.
    #[arg(long, default_value_t = 500, value_name = "METRES",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub warn_far_m: u32,
    /// `machine_two_places`: the highest plausible speed between two starts of one machine.
    #[arg(long, default_value_t = 120, value_name = "KMH",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub warn_max_speed_kmh: u32,
    /// `licence_expiring`: days before a licence's expiry from which it is raised (from the
    /// registry on that day, or at a start with it before then).
    #[arg(long, default_value_t = 30, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub warn_licence_days: u32,
    /// `session_open_too_long`: hours after a start with no sign of the session's end (the
    /// machine's next start, the permit's work stopping) that raise it.
    #[arg(long, default_value_t = 24, value_name = "HOURS",
          value_parser = clap::value_parser!(u32).range(1..=24 * 365))]
    pub warn_session_hours: u32,
    /// `session_open_too_long` in seconds instead of hours (tests, drills); overrides
    /// `--warn-session-hours`.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub warn_session_secs: Option<u32>,
    /// `start_without_permit`: seconds a start naming a permit the platform does not hold yet
    /// waits for the permit's steps (from the approver's phone) before it is judged.
    #[arg(long, default_value_t = 3600, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(0..=7 * 24 * 3600))]
    pub warn_permit_wait_secs: u32,
    /// `fire_watch_missing`: seconds of grace after a completed permit's post-work watch (the
    /// profile's, e.g. 30 min) before a permit not closed by the fire watch raises it.
    #[arg(long, default_value_t = 1800, value_name = "SECS",
          value_parser = clap::value_parser!(u32).range(0..=7 * 24 * 3600))]
    pub warn_fire_watch_grace_secs: u32,
    /// How often this process's deadline worker takes the due rows of the deadline queue, in
    /// milliseconds.
    #[arg(long, default_value_t = 30_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub deadline_poll_ms: u64,
}

impl From<&WarningOptions> for WarningConfig {
    fn from(o: &WarningOptions) -> Self {
        WarningConfig {
            enabled: o.warnings,
            refusals: o.warn_refusals,
            refusal_window_ms: i64::from(o.warn_refusal_window_hours) * 3600 * 1000,
            far_m: o.warn_far_m,
            max_speed_kmh: o.warn_max_speed_kmh,
            licence_days: o.warn_licence_days,
            session_open_ms: match o.warn_session_secs {
                Some(secs) => i64::from(secs) * 1000,
                None => i64::from(o.warn_session_hours) * 3600 * 1000,
            },
            permit_wait_ms: i64::from(o.warn_permit_wait_secs) * 1000,
            fire_watch_grace_ms: i64::from(o.warn_fire_watch_grace_secs) * 1000,
            deadline_poll_ms: o.deadline_poll_ms,
        }
    }
}

/// A position with its accuracy radius (m), in 1e-7 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fix {
    pub latitude_e7: i32,
    pub longitude_e7: i32,
    pub accuracy_m: u32,
}

/// One scan-to-start as the warning rules keep it (a row per applied work session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRow {
    pub key: String,
    pub machine_id: String,
    pub at_ms: i64,
    pub allowed: bool,
    pub fix: Option<Fix>,
}

/// What the platform's places say about a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineFacts {
    pub place: Place,
    pub site_id: Option<String>,
    /// Its registered location, else its site's.
    pub location: Option<(i32, i32)>,
    /// `normal`, `suspect` or `modified`.
    pub watch: String,
}

/// A warning to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWarning {
    /// Unique: the kind and the records that raised it.
    pub dedup_key: String,
    pub kind: WarningKind,
    pub records: Vec<String>,
    pub machine_id: String,
    pub certificate_no: Option<String>,
    pub place: Option<Place>,
    pub site_id: Option<String>,
    pub at_ms: i64,
    pub raised_at_ms: i64,
    /// JSON object.
    pub detail: String,
}

/// A warning as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningRow {
    pub id: i64,
    pub kind: String,
    pub records_json: String,
    pub machine_id: String,
    pub certificate_no: Option<String>,
    pub district: Option<String>,
    pub town: Option<String>,
    pub grid: Option<String>,
    pub site_id: Option<String>,
    pub at_ms: i64,
    pub raised_at_ms: i64,
    pub detail_json: String,
    pub state: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    pub closed_by: Option<String>,
    pub closed_at_ms: Option<i64>,
    pub close_note: Option<String>,
}

impl WarningRow {
    /// Whether the warning lies inside `scope`.
    pub fn in_scope(&self, scope: &Scope) -> bool {
        scope.holds(self.district.as_deref(), self.town.as_deref())
    }

    /// The API's view of the row.
    pub fn to_wire(&self) -> Result<Warning, DbError> {
        let bad = |what: &str| DbError::Invalid(format!("warning {}: {what}", self.id));
        let kind = WarningKind::parse(&self.kind).ok_or_else(|| bad("kind"))?;
        let state = WarningState::parse(&self.state).ok_or_else(|| bad("state"))?;
        Ok(Warning {
            id: self.id.to_string(),
            kind,
            title_zh: kind.title_zh().to_owned(),
            title_en: kind.title_en().to_owned(),
            records: serde_json::from_str(&self.records_json).map_err(|_| bad("records"))?,
            machine_id: self.machine_id.clone(),
            certificate_no: self.certificate_no.clone(),
            place: self.district.clone().map(|district| Place {
                district,
                town: self.town.clone(),
                grid: self.grid.clone(),
            }),
            site_id: self.site_id.clone(),
            at_ms: self.at_ms,
            raised_at_ms: self.raised_at_ms,
            detail: serde_json::from_str(&self.detail_json).map_err(|_| bad("detail"))?,
            state,
            acknowledged_by: self.acknowledged_by.clone(),
            acknowledged_at_ms: self.acknowledged_at_ms,
            closed_by: self.closed_by.clone(),
            closed_at_ms: self.closed_at_ms,
            close_note: self.close_note.clone(),
        })
    }
}

/// Which warnings a list asks for. `scope` is already narrowed to what the caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningQuery {
    pub scope: Scope,
    pub kind: Option<WarningKind>,
    pub state: Option<WarningState>,
    /// `at_ms` in [from_ms, until_ms).
    pub from_ms: i64,
    pub until_ms: i64,
    /// Only ids below this (the cursor); `i64::MAX` for the first page.
    pub before_id: i64,
    /// Rows to read: the page size plus one.
    pub limit: u32,
}

impl WarningQuery {
    /// `(district, town)` to filter on, from the scope.
    pub fn place_filter(&self) -> (Option<&str>, Option<&str>) {
        match &self.scope {
            Scope::City => (None, None),
            Scope::District(d) => (Some(d.as_str()), None),
            Scope::Town(t) => (None, Some(t.as_str())),
        }
    }

    /// The list's `WHERE … ORDER BY … LIMIT` with only the conditions asked for (so the
    /// `(district, id)` and `(town, id)` indexes serve a scoped page), placeholders written by
    /// `placeholder(n)` (1-based), and the values in order.
    pub fn page_sql(&self, placeholder: impl Fn(usize) -> String) -> (String, Vec<SqlValue>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        let mut add = |column: &str, op: &str, value: SqlValue| {
            values.push(value);
            conditions.push(format!("{column} {op} {}", placeholder(values.len())));
        };
        let (district, town) = self.place_filter();
        if let Some(d) = district {
            add("district", "=", SqlValue::Text(d.to_owned()));
        }
        if let Some(t) = town {
            add("town", "=", SqlValue::Text(t.to_owned()));
        }
        if let Some(k) = self.kind {
            add("kind", "=", SqlValue::Text(k.as_str().to_owned()));
        }
        if let Some(st) = self.state {
            add("state", "=", SqlValue::Text(st.as_str().to_owned()));
        }
        if self.from_ms > i64::MIN {
            add("at_ms", ">=", SqlValue::Int(self.from_ms));
        }
        if self.until_ms < i64::MAX {
            add("at_ms", "<", SqlValue::Int(self.until_ms));
        }
        if self.before_id < i64::MAX {
            add("id", "<", SqlValue::Int(self.before_id));
        }
        values.push(SqlValue::Int(i64::from(self.limit)));
        let limit = placeholder(values.len());
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {} ", conditions.join(" AND "))
        };
        (format!("{filter}ORDER BY id DESC LIMIT {limit}"), values)
    }

    /// A tag binding a cursor to the scope and filters it was made for: a cursor used with
    /// another scope or other filters is refused rather than read.
    pub fn cursor_tag(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = format!(
            "{}|{}|{}|{}|{}",
            self.scope.as_text(),
            self.kind.map_or("", WarningKind::as_str),
            self.state.map_or("", WarningState::as_str),
            self.from_ms,
            self.until_ms
        );
        crate::db::hex(&Sha256::digest(text.as_bytes())[..8])
    }
}

/// A value bound to a query built at run time ([`WarningQuery::page_sql`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
}

/// Great-circle distance in metres between two points in 1e-7 degrees (haversine, mean Earth
/// radius 6 371 008.8 m).
pub fn distance_m(a: (i32, i32), b: (i32, i32)) -> f64 {
    let rad = |e7: i32| f64::from(e7) * 1e-7_f64.to_radians();
    let (lat1, lon1, lat2, lon2) = (rad(a.0), rad(a.1), rad(b.0), rad(b.1));
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().min(1.0).asin()
}

/// `start_far_from_machine`: the metres between the scan and the machine beyond the fix's
/// accuracy, when that exceeds the threshold.
pub fn far_from_machine(fix: Fix, machine: (i32, i32), config: &WarningConfig) -> Option<f64> {
    let d = distance_m((fix.latitude_e7, fix.longitude_e7), machine);
    let beyond = d - f64::from(fix.accuracy_m);
    (beyond > f64::from(config.far_m)).then_some(d)
}

/// `machine_two_places`: `(distance m, speed km/h)` when two starts of one machine lie farther
/// apart (beyond both accuracies) than the far threshold and than the highest plausible speed
/// covers in the time between.
pub fn two_places(a: &StartRow, b: &StartRow, config: &WarningConfig) -> Option<(f64, f64)> {
    let (fa, fb) = (a.fix?, b.fix?);
    let d = distance_m(
        (fa.latitude_e7, fa.longitude_e7),
        (fb.latitude_e7, fb.longitude_e7),
    );
    let beyond = d - f64::from(fa.accuracy_m) - f64::from(fb.accuracy_m);
    if beyond <= f64::from(config.far_m) {
        return None;
    }
    let hours = (a.at_ms - b.at_ms).unsigned_abs() as f64 / 3_600_000.0;
    let speed = if hours == 0.0 {
        f64::INFINITY
    } else {
        beyond / 1000.0 / hours
    };
    (speed > f64::from(config.max_speed_kmh)).then_some((d, speed))
}

/// `repeated_refusals`: the refusals (time, key) of one window of the configured length that
/// holds `at_ms` and at least the configured count, when there is one. `times` are the refusals
/// at the machine around `at_ms` (this one included), in any order.
pub fn refusal_burst(
    mut times: Vec<(i64, String)>,
    at_ms: i64,
    config: &WarningConfig,
) -> Option<Vec<(i64, String)>> {
    times.sort();
    let n = config.refusals as usize;
    let w = config.refusal_window_ms;
    (0..times.len()).find_map(|i| {
        let start = times[i].0;
        if start > at_ms || at_ms - start > w {
            return None;
        }
        let inside: Vec<(i64, String)> = times[i..]
            .iter()
            .take_while(|(t, _)| *t - start <= w)
            .cloned()
            .collect();
        (inside.len() >= n && inside.iter().any(|(t, _)| *t == at_ms)).then_some(inside)
    })
}

/// `licence_expiring`: the days left on a licence expiring on `expires_on` at a start on the
/// China day `start_day`, when that is within the threshold and the licence has not expired
/// (an expired one is refused at the scan: `start_refused_expired_licence`).
pub fn licence_days_left(
    expires_on: chrono::NaiveDate,
    start_day: chrono::NaiveDate,
    config: &WarningConfig,
) -> Option<i64> {
    let left = (expires_on - start_day).num_days();
    (0..=i64::from(config.licence_days))
        .contains(&left)
        .then_some(left)
}

/// Deadline kind: a licence the registry holds comes within [`WarningConfig::licence_days`] of
/// its expiry ([`WarningKind::LicenceExpiring`] raised from the registry, with no start).
pub const DUE_LICENCE: &str = "licence_expiry";

/// What the queued check of a licence's expiry needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LicenceRef {
    pub certificate_no: String,
    pub expires_on: chrono::NaiveDate,
}

/// The `dedup_key` of `licence_expiring`: once per licence and expiry date, whether a start or
/// the registry raised it first (a renewal to a date still inside the window raises again).
pub fn licence_expiring_key(certificate_no: &str, expires_on: chrono::NaiveDate) -> String {
    format!(
        "{}|{certificate_no}|{expires_on}",
        WarningKind::LicenceExpiring.as_str()
    )
}

/// The checks a registry write queues ([`crate::db::Db::write_changes`]): for each valid licence
/// it writes that has not expired on `now_ms`'s China day, one due at the start (China midnight) of
/// the first day inside the window, or at once when that day has come. One per licence and
/// expiry date; the check itself reads the registry again when it falls due, so a licence
/// renewed, deleted or written again meanwhile raises nothing stale.
pub fn licence_deadlines(
    changes: &[weldguard_model::records::RegistryChange],
    config: &WarningConfig,
    now_ms: i64,
) -> Vec<crate::deadlines::NewDeadline> {
    use weldguard_model::records::RegistryChange;
    let Ok(today) =
        chrono::NaiveDate::parse_from_str(&crate::platform::china_day(now_ms), "%Y-%m-%d")
    else {
        return Vec::new();
    };
    changes
        .iter()
        .filter_map(|change| match change {
            RegistryChange::UpsertLicence(l)
                if l.status == weldguard_model::domain::LicenceStatus::Valid
                    && l.expires_on >= today =>
            {
                Some(l)
            }
            _ => None,
        })
        .filter_map(|l| {
            let first = l
                .expires_on
                .checked_sub_days(chrono::Days::new(u64::from(config.licence_days)))
                .unwrap_or(chrono::NaiveDate::MIN);
            let due_at_ms = if first <= today {
                now_ms
            } else {
                crate::platform::day_start_ms(first)
            };
            let payload = serde_json::to_string(&LicenceRef {
                certificate_no: l.certificate_no.clone(),
                expires_on: l.expires_on,
            })
            .ok()?;
            Some(crate::deadlines::NewDeadline {
                dedup_key: format!("{DUE_LICENCE}|{}|{}", l.certificate_no, l.expires_on),
                kind: DUE_LICENCE.to_owned(),
                due_at_ms,
                payload,
            })
        })
        .collect()
}

/// Check a due licence row inside the worker's transaction: raise `licence_expiring` when the
/// registry (its newest change of the licence, [`crate::registry_facts`]) still gives the same
/// expiry date and that date lies within the window on `now_ms`'s China day. The warning has
/// no records and no machine; its place is the licence holder's. It counts on its day's
/// `warnings_open` like any other.
pub fn on_licence_due(
    tx: &mut dyn PushTx,
    context: &RuleContext<'_>,
    row: &crate::deadlines::DueRow,
) -> Result<(), DbError> {
    let Ok(due) = serde_json::from_str::<LicenceRef>(&row.payload) else {
        return Ok(());
    };
    if context.registry.licence_expiry(tx, &due.certificate_no)? != Some(due.expires_on) {
        return Ok(());
    }
    let Ok(today) =
        chrono::NaiveDate::parse_from_str(&crate::platform::china_day(context.now_ms), "%Y-%m-%d")
    else {
        return Ok(());
    };
    let Some(left) = licence_days_left(due.expires_on, today, context.config) else {
        return Ok(());
    };
    let place = tx.licence_place(&due.certificate_no)?;
    raise_counted(
        tx,
        &NewWarning {
            dedup_key: licence_expiring_key(&due.certificate_no, due.expires_on),
            kind: WarningKind::LicenceExpiring,
            records: Vec::new(),
            machine_id: String::new(),
            certificate_no: Some(due.certificate_no.clone()),
            place,
            site_id: None,
            at_ms: row.due_at_ms.min(context.now_ms),
            raised_at_ms: context.now_ms,
            detail: detail(serde_json::json!({
                "expires_on": due.expires_on.to_string(),
                "days_left": left,
                "threshold_days": context.config.licence_days,
                "from": "registry",
            })),
        },
    )?;
    Ok(())
}

/// The machines whose starts a push's warnings read (sorted, once each): locked up front, in
/// this order, so parallel pushes never deadlock on them.
pub fn machines_of(items: &[(&str, &str, &str)]) -> Vec<String> {
    /// Only the machine of a work session (the rest of the record is read by the rules).
    #[derive(serde::Deserialize)]
    struct MachineNamed {
        machine_id: String,
    }

    let mut ids: Vec<String> = items
        .iter()
        .filter(|(_, kind, _)| *kind == "work_session")
        .filter_map(|(_, _, payload)| serde_json::from_str::<MachineNamed>(payload).ok())
        .map(|s| s.machine_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// What a push's rules read besides the record: the thresholds, the registry
/// ([`crate::registry_facts`]), and when the platform raises.
pub struct RuleContext<'a> {
    pub config: &'a WarningConfig,
    pub registry: &'a crate::registry_facts::RegistryFacts,
    pub now_ms: i64,
}

/// Write a warning unless one with its `dedup_key` exists, and count it on its day's
/// `warnings_open`; whether it was written.
pub fn raise_counted(tx: &mut dyn PushTx, warning: &NewWarning) -> Result<bool, DbError> {
    if !tx.raise_warning(warning)? {
        return Ok(false);
    }
    let (district, town) = crate::platform::place_key(warning.place.as_ref());
    tx.count(
        &crate::platform::china_day(warning.at_ms),
        &district,
        &town,
        crate::platform::WARNINGS_OPEN,
        1,
    )?;
    Ok(true)
}

fn detail(value: serde_json::Value) -> String {
    value.to_string()
}

/// Run the rules for an applied work session inside the push's transaction: keep its start row,
/// then raise what it shows. `now_ms` is when the platform raises.
///
/// `facts` are the machine's (when placed) and `place` the session's place
/// ([`crate::platform::session_place`]), read once by the caller. A warning written counts on its
/// day's `warnings_open` counter.
pub fn on_work_session(
    tx: &mut dyn PushTx,
    context: &RuleContext<'_>,
    record: &AppliedRecord<'_>,
    session: &WorkSession,
    facts: Option<MachineFacts>,
    place: Option<Place>,
) -> Result<(), DbError> {
    let (config, registry, now_ms) = (context.config, context.registry, context.now_ms);
    let start = StartRow {
        key: record.key.to_owned(),
        machine_id: session.machine_id.clone(),
        at_ms: session.started_at_ms,
        allowed: session.allowed,
        fix: session.position.map(|p| Fix {
            latitude_e7: p.latitude_e7,
            longitude_e7: p.longitude_e7,
            accuracy_m: p.accuracy_m,
        }),
    };
    // The start itself is the ledger row the push wrote just before (crate::platform::on_session);
    // the rules that compare starts read the ledger.
    let site_id = facts.as_ref().and_then(|f| f.site_id.clone());
    let raise_once = |tx: &mut dyn PushTx,
                      kind: WarningKind,
                      records: Vec<String>,
                      detail_json: String,
                      dedup: Option<String>| {
        let dedup_key = dedup.unwrap_or_else(|| format!("{}|{}", kind.as_str(), records.join("|")));
        raise_counted(
            tx,
            &NewWarning {
                dedup_key,
                kind,
                records,
                machine_id: session.machine_id.clone(),
                certificate_no: Some(session.certificate_no.clone()),
                place: place.clone(),
                site_id: site_id.clone(),
                at_ms: session.started_at_ms,
                raised_at_ms: now_ms,
                detail: detail_json,
            },
        )
        .map(|_| ())
    };
    let raise =
        |tx: &mut dyn PushTx, kind: WarningKind, records: Vec<String>, detail_json: String| {
            raise_once(tx, kind, records, detail_json, None)
        };
    let me = vec![record.key.to_owned()];

    if !session.allowed
        && session
            .reason_codes
            .iter()
            .any(|c| c == EXPIRED_LICENCE_CODE)
    {
        raise(
            tx,
            WarningKind::StartRefusedExpiredLicence,
            me.clone(),
            detail(serde_json::json!({ "reason_codes": session.reason_codes })),
        )?;
    }

    if let (Some(fix), Some(location)) = (start.fix, facts.as_ref().and_then(|f| f.location))
        && let Some(d) = far_from_machine(fix, location, config)
    {
        raise(
            tx,
            WarningKind::StartFarFromMachine,
            me.clone(),
            detail(serde_json::json!({
                "distance_m": d.round(),
                "accuracy_m": fix.accuracy_m,
                "threshold_m": config.far_m,
                "allowed": session.allowed,
            })),
        )?;
    }

    if session.allowed
        && let Some(f) = &facts
        && f.watch != "normal"
    {
        raise(
            tx,
            WarningKind::SuspectMachineStarted,
            me.clone(),
            detail(serde_json::json!({ "watch": f.watch })),
        )?;
    }

    if session.allowed && start.fix.is_some() {
        for other in tx.neighbour_starts(&session.machine_id, start.at_ms, record.key)? {
            if let Some((d, speed)) = two_places(&start, &other, config) {
                let mut keys = vec![start.key.clone(), other.key.clone()];
                keys.sort();
                let speed = if speed.is_finite() {
                    serde_json::json!(speed.round())
                } else {
                    serde_json::Value::Null
                };
                raise(
                    tx,
                    WarningKind::MachineTwoPlaces,
                    keys,
                    detail(serde_json::json!({
                        "distance_m": d.round(),
                        "minutes_between": (start.at_ms - other.at_ms).abs() / 60_000,
                        "speed_kmh": speed,
                        "max_speed_kmh": config.max_speed_kmh,
                    })),
                )?;
            }
        }
    }

    if session.allowed
        && let Some(expires_on) = registry.licence_expiry(tx, &session.certificate_no)?
        && let Some(start_day) =
            chrono::NaiveDate::parse_from_str(&crate::platform::china_day(start.at_ms), "%Y-%m-%d")
                .ok()
        && let Some(left) = licence_days_left(expires_on, start_day, config)
    {
        // Once per licence and expiry date: a renewed licence (a new date) may raise again.
        raise_once(
            tx,
            WarningKind::LicenceExpiring,
            me.clone(),
            detail(serde_json::json!({
                "expires_on": expires_on.to_string(),
                "days_left": left,
                "threshold_days": config.licence_days,
            })),
            Some(licence_expiring_key(&session.certificate_no, expires_on)),
        )?;
    }

    if !session.allowed {
        let w = config.refusal_window_ms;
        let times = tx.refusals_between(
            &session.machine_id,
            start.at_ms.saturating_sub(w),
            start.at_ms.saturating_add(w),
        )?;
        if let Some(burst) = refusal_burst(times, start.at_ms, config) {
            let (first, last) = (burst[0].0, burst[burst.len() - 1].0);
            let already = tx.warning_between(
                WarningKind::RepeatedRefusals,
                &session.machine_id,
                first.saturating_sub(w),
                last.saturating_add(w),
            )?;
            if !already {
                let count = burst.len();
                raise(
                    tx,
                    WarningKind::RepeatedRefusals,
                    burst.into_iter().map(|(_, k)| k).take(50).collect(),
                    detail(serde_json::json!({
                        "refusals": count,
                        "window_hours": w / 3_600_000,
                        "threshold": config.refusals,
                    })),
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, at_ms: i64, lat: i32, lon: i32, acc: u32) -> StartRow {
        StartRow {
            key: key.into(),
            machine_id: "M".into(),
            at_ms,
            allowed: true,
            fix: Some(Fix {
                latitude_e7: lat,
                longitude_e7: lon,
                accuracy_m: acc,
            }),
        }
    }

    // 肥城市 (36.1826 N, 116.7685 E) and 泰安市泰山区 (36.1941 N, 117.1290 E): about 32.4 km.
    const FEICHENG: (i32, i32) = (361_826_000, 1_167_685_000);
    const TAISHAN: (i32, i32) = (361_941_000, 1_171_290_000);

    #[test]
    fn distances_are_great_circle_metres() {
        let d = distance_m(FEICHENG, TAISHAN);
        assert!((32_300.0..32_500.0).contains(&d), "{d}");
        // 0.001° of latitude is about 111.2 m.
        let d = distance_m((361_826_000, 1_167_685_000), (361_836_000, 1_167_685_000));
        assert!((111.0..111.4).contains(&d), "{d}");
        assert_eq!(distance_m(FEICHENG, FEICHENG), 0.0);
    }

    #[test]
    fn far_from_machine_counts_beyond_the_fix_accuracy() {
        let config = WarningConfig::default();
        // 0.006° north: about 667 m.
        let fix = |acc| Fix {
            latitude_e7: 361_886_000,
            longitude_e7: 1_167_685_000,
            accuracy_m: acc,
        };
        assert!(far_from_machine(fix(20), FEICHENG, &config).is_some());
        // A 200 m fix could be within 500 m of the machine.
        assert!(far_from_machine(fix(200), FEICHENG, &config).is_none());
        let near = Fix {
            latitude_e7: 361_827_000,
            longitude_e7: 1_167_685_000,
            accuracy_m: 5,
        };
        assert!(far_from_machine(near, FEICHENG, &config).is_none());
    }

    #[test]
    fn two_places_needs_both_distance_and_speed() {
        let config = WarningConfig::default();
        let hour = 3_600_000;
        let a = row("a", 0, FEICHENG.0, FEICHENG.1, 10);
        // 32 km in 10 minutes: 194 km/h.
        let b = row("b", hour / 6, TAISHAN.0, TAISHAN.1, 10);
        let (d, speed) = two_places(&a, &b, &config).unwrap();
        assert!((32_000.0..33_000.0).contains(&d));
        assert!((190.0..200.0).contains(&speed), "{speed}");
        assert_eq!(two_places(&b, &a, &config).map(|x| x.0), Some(d));
        // 32 km in an hour is plausible.
        let c = row("c", hour, TAISHAN.0, TAISHAN.1, 10);
        assert!(two_places(&a, &c, &config).is_none());
        // 300 m at the same instant: within the far threshold.
        let e = row("e", 0, FEICHENG.0 + 27_000, FEICHENG.1, 10);
        assert!(two_places(&a, &e, &config).is_none());
        // No position: nothing.
        let mut f = b.clone();
        f.fix = None;
        assert!(two_places(&a, &f, &config).is_none());
    }

    #[test]
    fn a_burst_is_n_refusals_inside_one_window_holding_this_one() {
        let config = WarningConfig::default();
        let h = 3_600_000;
        let t = |x: &[(i64, &str)]| x.iter().map(|(a, k)| (*a, k.to_string())).collect();
        assert!(refusal_burst(t(&[(0, "a"), (h, "b")]), h, &config).is_none());
        let burst = refusal_burst(t(&[(2 * h, "c"), (0, "a"), (h, "b")]), 2 * h, &config).unwrap();
        assert_eq!(burst.len(), 3);
        // Spread over 25 h: no window of 24 h holds three.
        assert!(refusal_burst(t(&[(0, "a"), (h, "b"), (25 * h, "c")]), 25 * h, &config).is_none());
        // A late record in the middle completes a burst.
        assert!(refusal_burst(t(&[(0, "a"), (20 * h, "c"), (h, "b")]), h, &config).is_some());
    }

    #[test]
    fn a_page_query_names_only_the_filters_asked_for() {
        let mut q = WarningQuery {
            scope: Scope::City,
            kind: None,
            state: None,
            from_ms: i64::MIN,
            until_ms: i64::MAX,
            before_id: i64::MAX,
            limit: 101,
        };
        let (sql, values) = q.page_sql(|n| format!("${n}"));
        assert_eq!(sql, "ORDER BY id DESC LIMIT $1");
        assert_eq!(values, [SqlValue::Int(101)]);
        q.scope = Scope::District("370983".into());
        q.state = Some(WarningState::Open);
        q.until_ms = 5;
        q.before_id = 9;
        let (sql, values) = q.page_sql(|n| format!("?{n}"));
        assert_eq!(
            sql,
            "WHERE district = ?1 AND state = ?2 AND at_ms < ?3 AND id < ?4 \
             ORDER BY id DESC LIMIT ?5"
        );
        assert_eq!(
            values,
            [
                SqlValue::Text("370983".into()),
                SqlValue::Text("open".into()),
                SqlValue::Int(5),
                SqlValue::Int(9),
                SqlValue::Int(101)
            ]
        );
        // The cursor tag changes with the scope and every filter.
        let tag = q.cursor_tag();
        let mut other = q.clone();
        other.scope = Scope::District("370902".into());
        assert_ne!(other.cursor_tag(), tag);
        other = q.clone();
        other.until_ms = 6;
        assert_ne!(other.cursor_tag(), tag);
        other = q.clone();
        other.before_id = 3;
        assert_eq!(
            other.cursor_tag(),
            tag,
            "the position is not part of the tag"
        );
    }

    #[test]
    fn a_licence_is_expiring_within_the_threshold_until_its_last_day() {
        let c = WarningConfig::default();
        let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let expires = day(12, 31);
        assert_eq!(licence_days_left(expires, day(12, 1), &c), Some(30));
        assert_eq!(licence_days_left(expires, day(11, 30), &c), None, "31 days");
        assert_eq!(licence_days_left(expires, day(12, 31), &c), Some(0));
        assert_eq!(
            licence_days_left(day(12, 30), day(12, 31), &c),
            None,
            "expired"
        );
        let week = WarningConfig {
            licence_days: 7,
            ..c
        };
        assert_eq!(licence_days_left(expires, day(12, 24), &week), Some(7));
        assert_eq!(licence_days_left(expires, day(12, 23), &week), None);
    }

    fn licence(no: &str, expires_on: chrono::NaiveDate) -> weldguard_model::domain::Licence {
        use weldguard_model::domain::{Licence, LicenceStatus, OperationCategory};
        Licence {
            certificate_no: no.into(),
            id_number: "110101199003070011".into(),
            name: "张三".into(),
            categories: vec![OperationCategory::FusionWeldingAndCutting],
            issued_on: expires_on - chrono::Days::new(6 * 365),
            expires_on,
            next_review_on: expires_on,
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: None,
        }
    }

    /// A licence written to the registry queues one check, due at China midnight of the first
    /// day inside the window, or at once when that day has come; none once it has expired, none
    /// for a revoked licence, none for other changes.
    #[test]
    fn a_registry_licence_queues_its_expiry_check_at_the_window() {
        use weldguard_model::records::RegistryChange;
        let c = WarningConfig::default();
        let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        // 2026-12-08 10:00 China time.
        let now = crate::platform::day_start_ms(day(12, 8)) + 10 * 3_600_000;
        let mut revoked = licence("T4", day(12, 20));
        revoked.status = weldguard_model::domain::LicenceStatus::Revoked;
        let changes = vec![
            RegistryChange::UpsertLicence(licence("T1", day(12, 31))),
            RegistryChange::UpsertLicence(licence("T2", day(12, 8))),
            RegistryChange::UpsertLicence(licence("T3", day(12, 7))),
            RegistryChange::UpsertLicence(revoked),
            RegistryChange::UpsertLicence(licence(
                "T5",
                chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
            )),
            RegistryChange::DeleteLicence {
                certificate_no: "T1".into(),
            },
        ];
        let due = licence_deadlines(&changes, &c, now);
        let got: Vec<(&str, i64)> = due
            .iter()
            .map(|d| (d.dedup_key.as_str(), d.due_at_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("licence_expiry|T1|2026-12-31", now),
                ("licence_expiry|T2|2026-12-08", now),
                (
                    "licence_expiry|T5|2027-03-01",
                    // 2027-03-01 minus 30 days: 2027-01-30, 00:00 China time, which is
                    // 16:00 UTC the day before.
                    chrono::NaiveDate::from_ymd_opt(2027, 1, 29)
                        .unwrap()
                        .and_hms_opt(16, 0, 0)
                        .unwrap()
                        .and_utc()
                        .timestamp_millis()
                ),
            ]
        );
        assert!(due.iter().all(|d| d.kind == DUE_LICENCE));
        let payload: LicenceRef = serde_json::from_str(&due[2].payload).unwrap();
        assert_eq!(
            (payload.certificate_no.as_str(), payload.expires_on),
            ("T5", chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap())
        );
        let week = WarningConfig {
            licence_days: 7,
            ..c
        };
        assert_eq!(
            licence_deadlines(&changes[..1], &week, now)[0].due_at_ms,
            crate::platform::day_start_ms(day(12, 24)),
            "a shorter window starts later"
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = WarningConfig::default();
        assert_eq!(
            (
                c.refusals,
                c.refusal_window_ms,
                c.far_m,
                c.max_speed_kmh,
                c.licence_days
            ),
            (3, 86_400_000, 500, 120, 30)
        );
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            w: WarningOptions,
        }
        let parsed = Cli::parse_from(["x"]);
        assert_eq!(WarningConfig::from(&parsed.w), c);
        let parsed = Cli::parse_from(["x", "--warn-far-m", "800", "--warnings", "false"]);
        let c2 = WarningConfig::from(&parsed.w);
        assert_eq!((c2.far_m, c2.enabled), (800, false));
        assert!(Cli::try_parse_from(["x", "--warn-refusals", "1"]).is_err());
        assert_eq!(
            (
                c.session_open_ms,
                c.permit_wait_ms,
                c.fire_watch_grace_ms,
                c.deadline_poll_ms
            ),
            (86_400_000, 3_600_000, 1_800_000, 30_000)
        );
        let parsed = Cli::parse_from(["x", "--warn-session-hours", "12"]);
        assert_eq!(
            WarningConfig::from(&parsed.w).session_open_ms,
            12 * 3_600_000
        );
        let parsed = Cli::parse_from([
            "x",
            "--warn-session-hours",
            "12",
            "--warn-session-secs",
            "90",
            "--warn-permit-wait-secs",
            "0",
            "--warn-fire-watch-grace-secs",
            "5",
            "--deadline-poll-ms",
            "100",
        ]);
        let c3 = WarningConfig::from(&parsed.w);
        assert_eq!(
            (
                c3.session_open_ms,
                c3.permit_wait_ms,
                c3.fire_watch_grace_ms,
                c3.deadline_poll_ms
            ),
            (90_000, 0, 5_000, 100)
        );
        assert!(Cli::try_parse_from(["x", "--warn-session-hours", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--deadline-poll-ms", "1"]).is_err());
    }
}
