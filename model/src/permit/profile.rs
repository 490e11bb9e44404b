//! Rule profiles as data: which permit levels a site uses, how long each may run, who approves it,
//! when it is escalated, and the gas, distance and wind limits — chosen per site and versioned by
//! effective date. Built in: GB 30871-2022 (chemical plants) and construction sites (GB 50720-2011
//! with common local practice). Every function here is pure; times are passed in (Unix seconds).

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

use super::catalog::GasReading;
use super::finding::{Finding, FindingCode};
use super::model::SignedStep;

/// The JSON text of the built-in profiles.
pub const BUILTIN_PROFILES_JSON: &str = include_str!("profiles_builtin.json");

/// A hot-work permit level. Which ones exist, and their order, depends on the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermitLevel {
    /// 特级
    Special,
    /// 一级
    Level1,
    /// 二级
    Level2,
    /// 三级
    Level3,
}

/// A role that approves permits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
}

/// The rules of one level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelRule {
    pub level: PermitLevel,
    pub name_zh: String,
    pub name_en: String,
    /// The longest a permit of this level may be valid.
    pub max_validity_secs: i64,
    pub validity_clause: String,
    pub approver: Role,
    pub approver_clause: String,
    /// After an interruption longer than this, gas is analysed again before resuming.
    pub gas_reanalysis_after_interruption_secs: Option<i64>,
    /// Gas must be monitored continuously during the work.
    pub continuous_gas_monitoring: bool,
}

/// When a permit is raised by one level (提级管理).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRule {
    pub holidays: bool,
    pub rest_days: bool,
    pub night: bool,
    pub wind_force_at_least: Option<u8>,
    pub sensitive_periods: bool,
    pub complex_environment: bool,
    pub clause: String,
}

/// The approver signs on site; farther than the radius from the site is flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnSiteApproval {
    pub default_radius_m: u32,
    pub clause: String,
}

/// Gas analysis before and during the work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GasRule {
    pub max_age_before_work_secs: i64,
    /// Gases with an LEL at or above this (hundredths of %vol; 4 % = 400) use the higher limit.
    pub lel_threshold_centi_pct: u32,
    pub limit_at_or_above_threshold_centi_pct: u32,
    pub limit_below_threshold_centi_pct: u32,
    pub clause: String,
    /// The clause demanding continuous monitoring where a level asks for it.
    pub continuous_clause: String,
}

/// The welding machine must be near the hot-work point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistanceRule {
    pub max_m: u32,
    pub clause: String,
}

/// Outdoor hot work stops in strong wind, unless shielded when the rule allows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindRule {
    pub force_at_least: u8,
    pub shields_allow: bool,
    pub clause: String,
}

/// One version of a rule profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleProfile {
    pub id: String,
    pub version: String,
    pub effective_from: NaiveDate,
    pub name_zh: String,
    pub name_en: String,
    /// Levels from the highest risk to the lowest; escalation moves one place towards the front.
    pub levels: Vec<LevelRule>,
    pub escalation: EscalationRule,
    pub on_site_approval: OnSiteApproval,
    pub gas: Option<GasRule>,
    pub machine_max_distance: Option<DistanceRule>,
    /// When set (the clause), every hot-work point needs its own fire watch.
    pub fire_watch_per_point: Option<String>,
    pub outdoor_wind_stop: Option<WindRule>,
    pub post_work_watch_secs: i64,
    pub post_work_clause: String,
    pub no_alteration_clause: String,
    /// Who may sign which step (docs/adr/0014-who-may-sign-what.md).
    pub signers: SignerRules,
}

/// Who may sign each step of a permit, as permit role ids that the platform gives enrolled people
/// (the signer directory): the approver of each level is that level's `approver` role, the other
/// steps' roles are listed here. `distinct` pairs of steps must be signed by different people
/// (nobody approves what they applied for or checked themselves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerRules {
    pub submit: Vec<String>,
    pub site_check: Vec<String>,
    pub close: Vec<String>,
    pub distinct: Vec<[SignedStep; 2]>,
    pub clause: String,
}

/// Every known version of every profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileSet {
    pub profiles: Vec<RuleProfile>,
}

/// The profile JSON could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule profiles are malformed: {0}")]
pub struct ProfileError(pub String);

impl ProfileSet {
    pub fn builtin() -> Result<ProfileSet, ProfileError> {
        Self::from_json(BUILTIN_PROFILES_JSON)
    }

    /// The built-in profiles, parsed once per process.
    pub fn builtin_shared() -> Result<&'static ProfileSet, ProfileError> {
        static SET: std::sync::OnceLock<Result<ProfileSet, ProfileError>> =
            std::sync::OnceLock::new();
        SET.get_or_init(Self::builtin)
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn from_json(json: &str) -> Result<ProfileSet, ProfileError> {
        let set: ProfileSet =
            serde_json::from_str(json).map_err(|e| ProfileError(e.to_string()))?;
        for p in &set.profiles {
            if p.levels.is_empty() {
                return Err(ProfileError(format!("profile {} has no levels", p.id)));
            }
        }
        Ok(set)
    }

    /// Profile `id` at exactly `version` (the one a permit records).
    pub fn get(&self, id: &str, version: &str) -> Option<&RuleProfile> {
        self.profiles
            .iter()
            .find(|p| p.id == id && p.version == version)
    }

    /// Every permit role any profile lets sign a step (what an enrolment may grant).
    pub fn signing_roles(&self) -> std::collections::BTreeSet<&str> {
        self.profiles
            .iter()
            .flat_map(|p| {
                let s = &p.signers;
                s.submit
                    .iter()
                    .chain(&s.site_check)
                    .chain(&s.close)
                    .map(String::as_str)
                    .chain(p.levels.iter().map(|l| l.approver.id.as_str()))
            })
            .collect()
    }

    /// The version of profile `id` in force on `date`: the latest whose effective date is not after it.
    pub fn select(&self, id: &str, date: NaiveDate) -> Option<&RuleProfile> {
        self.profiles
            .iter()
            .filter(|p| p.id == id && p.effective_from <= date)
            .max_by_key(|p| p.effective_from)
    }
}

/// A point on Earth in 1e-7 degrees (integers keep signed encodings exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat_e7: i64,
    pub lon_e7: i64,
}

impl GeoPoint {
    pub fn from_degrees(lat: f64, lon: f64) -> Self {
        Self {
            lat_e7: (lat * 1e7).round() as i64,
            lon_e7: (lon * 1e7).round() as i64,
        }
    }

    /// Great-circle distance in metres (haversine, mean Earth radius).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let to_rad = |e7: i64| (e7 as f64 / 1e7).to_radians();
        let (la1, lo1, la2, lo2) = (
            to_rad(self.lat_e7),
            to_rad(self.lon_e7),
            to_rad(other.lat_e7),
            to_rad(other.lon_e7),
        );
        let h = ((la2 - la1) / 2.0).sin().powi(2)
            + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
        2.0 * 6_371_008.8 * h.sqrt().min(1.0).asin()
    }
}

/// Night hours in the site's local time; `start` after `end` means the night spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NightHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// A work site and its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub site_id: String,
    pub name: String,
    /// Which rule profile applies (`gb30871`, `construction`).
    pub profile_id: String,
    pub location: GeoPoint,
    /// The site's offset from UTC in seconds (China: 28800).
    pub utc_offset_secs: i32,
    pub night: NightHours,
    /// Overrides the profile's on-site approval radius.
    pub approval_radius_m: Option<u32>,
}

/// A sensitive period the platform announces (特殊敏感时期), [from, until) in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitivePeriod {
    pub name: String,
    pub from: i64,
    pub until: i64,
}

/// Holidays, rest days and sensitive periods, handed out by the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCalendar {
    /// Statutory holidays (法定节假日).
    pub holidays: Vec<NaiveDate>,
    /// Rest days other than weekends (调休).
    pub extra_rest_days: Vec<NaiveDate>,
    /// Weekend days that are working days (调休上班).
    pub adjusted_workdays: Vec<NaiveDate>,
    pub sensitive_periods: Vec<SensitivePeriod>,
}

impl WorkCalendar {
    pub fn is_rest_day(&self, date: NaiveDate) -> bool {
        if self.extra_rest_days.contains(&date) {
            return true;
        }
        matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
            && !self.adjusted_workdays.contains(&date)
    }
}

/// Conditions of the planned work that bear on escalation and wind rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkConditions {
    /// Forecast or measured wind force (Beaufort).
    pub wind_force: Option<u8>,
    pub outdoor: bool,
    /// Wind shields are in place.
    pub shields: bool,
    /// A complex hot-work environment (复杂动火环境), as judged by the applicant.
    pub complex_environment: bool,
}

/// Why a permit was raised one level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EscalationReason {
    Holiday { date: NaiveDate },
    RestDay { date: NaiveDate },
    Night,
    Wind { force: u8 },
    SensitivePeriod { name: String },
    ComplexEnvironment,
}

/// The level requested, the level required after escalation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelDecision {
    pub requested: PermitLevel,
    pub required: PermitLevel,
    pub reasons: Vec<EscalationReason>,
    pub clause: String,
}

fn local(at: i64, offset: &FixedOffset) -> Option<chrono::NaiveDateTime> {
    DateTime::from_timestamp(at, 0).map(|t| t.with_timezone(offset).naive_local())
}

impl RuleProfile {
    pub fn level(&self, level: PermitLevel) -> Option<&LevelRule> {
        self.levels.iter().find(|l| l.level == level)
    }

    /// The permit roles that may sign `step` of a permit at `level` (none for a level the profile
    /// does not have).
    pub fn signer_roles(&self, step: SignedStep, level: PermitLevel) -> Vec<&str> {
        let s = &self.signers;
        let listed = match step {
            SignedStep::Submit => &s.submit,
            SignedStep::SiteCheck => &s.site_check,
            SignedStep::Close => &s.close,
            SignedStep::Approve => {
                return self
                    .level(level)
                    .map(|l| vec![l.approver.id.as_str()])
                    .unwrap_or_default();
            }
        };
        listed.iter().map(String::as_str).collect()
    }

    fn level_or_finding(&self, level: PermitLevel) -> Result<&LevelRule, Finding> {
        self.level(level).ok_or_else(|| {
            Finding::block(
                FindingCode::LevelNotInProfile,
                &self.version,
                format!("{} 不设此动火级别：{level:?}", self.name_zh),
                format!("profile {} has no level {level:?}", self.id),
            )
        })
    }

    /// One level up (towards higher risk); the highest stays where it is.
    pub fn escalate(&self, level: PermitLevel) -> PermitLevel {
        match self.levels.iter().position(|l| l.level == level) {
            Some(i) if i > 0 => self.levels.get(i - 1).map_or(level, |l| l.level),
            _ => level,
        }
    }

    /// Decide the required level of work planned for [start, end): one level above the requested one
    /// when any escalation condition of this profile holds at any time of the window (escalation is
    /// by one level however many conditions hold).
    pub fn decide_level(
        &self,
        site: &Site,
        calendar: &WorkCalendar,
        requested: PermitLevel,
        start: i64,
        end: i64,
        conditions: &WorkConditions,
    ) -> Result<LevelDecision, Finding> {
        self.level_or_finding(requested)?;
        let e = &self.escalation;
        let mut reasons = Vec::new();
        let offset = FixedOffset::east_opt(site.utc_offset_secs).unwrap_or_else(|| Utc.fix());
        // Calendar and night checks scan the window day by day; a window longer than any level allows
        // is refused by `check_window` anyway, so only plausible windows are scanned.
        let longest = self
            .levels
            .iter()
            .map(|l| l.max_validity_secs)
            .max()
            .unwrap_or(0);
        let scan = end.saturating_sub(start) <= longest;
        let last_second = end.max(start.saturating_add(1)).saturating_sub(1);
        if let (true, Some(first), Some(last)) =
            (scan, local(start, &offset), local(last_second, &offset))
        {
            let (first_day, last_day) = (first.date(), last.date());
            let mut day = first_day;
            while day <= last_day {
                if e.holidays && calendar.holidays.contains(&day) {
                    reasons.push(EscalationReason::Holiday { date: day });
                } else if e.rest_days && calendar.is_rest_day(day) {
                    reasons.push(EscalationReason::RestDay { date: day });
                }
                match day.succ_opt() {
                    Some(d) => day = d,
                    None => break,
                }
            }
            if e.night && overlaps_night(first, last, &site.night) {
                reasons.push(EscalationReason::Night);
            }
        }
        if let (Some(limit), Some(force)) = (e.wind_force_at_least, conditions.wind_force)
            && force >= limit
        {
            reasons.push(EscalationReason::Wind { force });
        }
        if e.sensitive_periods {
            for p in &calendar.sensitive_periods {
                if p.from < end && start < p.until {
                    reasons.push(EscalationReason::SensitivePeriod {
                        name: p.name.clone(),
                    });
                }
            }
        }
        if e.complex_environment && conditions.complex_environment {
            reasons.push(EscalationReason::ComplexEnvironment);
        }
        let required = if reasons.is_empty() {
            requested
        } else {
            self.escalate(requested)
        };
        Ok(LevelDecision {
            requested,
            required,
            reasons,
            clause: e.clause.clone(),
        })
    }

    /// The validity window [start, end) must be non-empty and no longer than the level allows.
    pub fn check_window(&self, level: PermitLevel, start: i64, end: i64) -> Vec<Finding> {
        let rule = match self.level_or_finding(level) {
            Ok(r) => r,
            Err(f) => return vec![f],
        };
        if end <= start {
            return vec![Finding::block(
                FindingCode::WindowInvalid,
                &rule.validity_clause,
                "有效期结束时间须晚于开始时间".into(),
                "the validity must end after it starts".into(),
            )];
        }
        let length = end.saturating_sub(start);
        if length > rule.max_validity_secs {
            return vec![Finding::block(
                FindingCode::ValidityExceeded,
                &rule.validity_clause,
                format!(
                    "{}作业证有效期不应超过{}小时，申请为{}秒",
                    rule.name_zh,
                    rule.max_validity_secs / 3600,
                    length
                ),
                format!(
                    "a {} permit is valid at most {} h; {} s requested",
                    rule.name_en,
                    rule.max_validity_secs / 3600,
                    length
                ),
            )];
        }
        Vec::new()
    }

    /// The pass limit for a gas with this LEL, hundredths of %vol.
    pub fn gas_limit(gas: &GasRule, lel_centi_pct: u32) -> u32 {
        if lel_centi_pct >= gas.lel_threshold_centi_pct {
            gas.limit_at_or_above_threshold_centi_pct
        } else {
            gas.limit_below_threshold_centi_pct
        }
    }

    /// Gas analysis before starting (or resuming) at `at`: the latest reading taken in
    /// [`not_before`, `at`] must be at most the profile's age and within its pass limit.
    /// No findings when the profile has no gas rule.
    pub fn check_gas(&self, readings: &[GasReading], at: i64, not_before: i64) -> Vec<Finding> {
        let Some(gas) = &self.gas else {
            return Vec::new();
        };
        let latest = readings
            .iter()
            .filter(|r| r.taken_at >= not_before && r.taken_at <= at)
            .max_by_key(|r| r.taken_at);
        let Some(reading) = latest else {
            return vec![Finding::block(
                FindingCode::GasAnalysisMissing,
                &gas.clause,
                "动火前（或中断后）未进行气体分析".into(),
                "no gas analysis before the work (or since the interruption)".into(),
            )];
        };
        let mut findings = Vec::new();
        if at.saturating_sub(reading.taken_at) > gas.max_age_before_work_secs {
            findings.push(Finding::block(
                FindingCode::GasAnalysisStale,
                &gas.clause,
                format!(
                    "气体分析距动火超过{}分钟",
                    gas.max_age_before_work_secs / 60
                ),
                format!(
                    "the gas analysis is more than {} min old",
                    gas.max_age_before_work_secs / 60
                ),
            ));
        }
        let limit = Self::gas_limit(gas, reading.lel_centi_pct);
        if reading.concentration_centi_pct > limit {
            findings.push(Finding::block(
                FindingCode::GasAnalysisFailed,
                &gas.clause,
                format!(
                    "可燃气体浓度{}.{:02}%超过合格标准{}.{:02}%",
                    reading.concentration_centi_pct / 100,
                    reading.concentration_centi_pct % 100,
                    limit / 100,
                    limit % 100
                ),
                format!(
                    "flammable gas at {}.{:02} %vol exceeds the limit of {}.{:02} %vol",
                    reading.concentration_centi_pct / 100,
                    reading.concentration_centi_pct % 100,
                    limit / 100,
                    limit % 100
                ),
            ));
        }
        findings
    }

    /// The on-site approval radius for this site.
    pub fn approval_radius_m(&self, site: &Site) -> u32 {
        site.approval_radius_m
            .unwrap_or(self.on_site_approval.default_radius_m)
    }
}

/// Whether local times [first, last] (inclusive) touch the night hours of any day.
fn overlaps_night(
    first: chrono::NaiveDateTime,
    last: chrono::NaiveDateTime,
    night: &NightHours,
) -> bool {
    // Consider every night that starts on the day before `first` up to the day of `last`.
    let Some(mut day) = first.date().pred_opt() else {
        return false;
    };
    while day <= last.date() {
        let n_start = day.and_time(night.start);
        let n_end = if night.end <= night.start {
            match day
                .and_time(night.end)
                .checked_add_signed(Duration::days(1))
            {
                Some(t) => t,
                None => return true,
            }
        } else {
            day.and_time(night.end)
        };
        // Night is [n_start, n_end); the work touches it if first < n_end and n_start <= last.
        if first < n_end && n_start <= last {
            return true;
        }
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    false
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use crate::permit::fixtures::{H, cst, profile, site};

    fn reading(at: i64, lel: u32, conc: u32) -> GasReading {
        GasReading {
            taken_at: at,
            lel_centi_pct: lel,
            concentration_centi_pct: conc,
            point: "动火点".into(),
            analyst: "赵六".into(),
        }
    }

    // 2026-11-30 is a Monday.
    fn monday(h: u32) -> i64 {
        cst(2026, 11, 30, h, 0)
    }

    #[test]
    fn profiles_are_selected_by_effective_date() {
        let set = ProfileSet::builtin().unwrap();
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(set.select("gb30871", d(2022, 9, 30)).is_none());
        assert_eq!(
            set.select("gb30871", d(2022, 10, 1)).unwrap().version,
            "GB 30871-2022"
        );
        let mut later = set.select("gb30871", d(2023, 1, 1)).unwrap().clone();
        later.version = "GB 30871-20XX".into();
        later.effective_from = d(2030, 1, 1);
        let mut set2 = set.clone();
        set2.profiles.push(later);
        assert_eq!(
            set2.select("gb30871", d(2029, 12, 31)).unwrap().version,
            "GB 30871-2022"
        );
        assert_eq!(
            set2.select("gb30871", d(2030, 1, 1)).unwrap().version,
            "GB 30871-20XX"
        );
        assert!(set.select("construction", d(2024, 1, 1)).is_some());
        assert!(set.select("nuclear", d(2024, 1, 1)).is_none());
    }

    #[test]
    fn gb30871_validity_edges() {
        let p = profile("gb30871");
        let s = monday(8);
        for level in [PermitLevel::Special, PermitLevel::Level1] {
            assert!(
                p.check_window(level, s, s + 8 * H).is_empty(),
                "8 h exactly"
            );
            let f = p.check_window(level, s, s + 8 * H + 1);
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].code, FindingCode::ValidityExceeded);
            assert_eq!(f[0].clause, "GB 30871-2022 5.5");
        }
        assert!(
            p.check_window(PermitLevel::Level2, s, s + 72 * H)
                .is_empty()
        );
        assert_eq!(
            p.check_window(PermitLevel::Level2, s, s + 72 * H + 1)[0].code,
            FindingCode::ValidityExceeded
        );
        assert_eq!(
            p.check_window(PermitLevel::Level2, s, s)[0].code,
            FindingCode::WindowInvalid
        );
        assert_eq!(
            p.check_window(PermitLevel::Level3, s, s + H)[0].code,
            FindingCode::LevelNotInProfile
        );
    }

    #[test]
    fn construction_validity_edges() {
        let p = profile("construction");
        let s = monday(8);
        for (level, days) in [
            (PermitLevel::Level1, 1),
            (PermitLevel::Level2, 3),
            (PermitLevel::Level3, 7),
        ] {
            assert!(p.check_window(level, s, s + days * 24 * H).is_empty());
            assert_eq!(
                p.check_window(level, s, s + days * 24 * H + 1)[0].code,
                FindingCode::ValidityExceeded
            );
        }
        assert_eq!(
            p.check_window(PermitLevel::Special, s, s + H)[0].code,
            FindingCode::LevelNotInProfile
        );
    }

    #[test]
    fn gb30871_escalation_cases() {
        let p = profile("gb30871");
        let st = site("gb30871");
        let cal = WorkCalendar {
            holidays: vec![NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()],
            adjusted_workdays: vec![NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()],
            sensitive_periods: vec![SensitivePeriod {
                name: "重大活动保障期".into(),
                from: cst(2026, 12, 10, 0, 0),
                until: cst(2026, 12, 12, 0, 0),
            }],
            ..Default::default()
        };
        let calm = WorkConditions::default();
        let decide = |level, start, end, c: &WorkConditions| {
            p.decide_level(&st, &cal, level, start, end, c).unwrap()
        };
        // A plain Monday daytime: no escalation.
        let d = decide(PermitLevel::Level2, monday(8), monday(17), &calm);
        assert_eq!(d.required, PermitLevel::Level2);
        assert!(d.reasons.is_empty());
        // Ending exactly at 20:00 does not touch the night; one second later does.
        assert!(
            decide(PermitLevel::Level2, monday(8), monday(20), &calm)
                .reasons
                .is_empty()
        );
        let night = decide(PermitLevel::Level2, monday(8), monday(20) + 1, &calm);
        assert_eq!(night.required, PermitLevel::Level1);
        assert_eq!(night.reasons, vec![EscalationReason::Night]);
        // Starting at 06:00 is day; 05:59 is night.
        assert!(
            decide(PermitLevel::Level1, monday(6), monday(10), &calm)
                .reasons
                .is_empty()
        );
        assert_eq!(
            decide(PermitLevel::Level1, monday(6) - 60, monday(10), &calm).required,
            PermitLevel::Special
        );
        // Saturday is a rest day; an adjusted Saturday workday is not.
        let sat = cst(2026, 11, 28, 8, 0);
        assert_eq!(
            decide(PermitLevel::Level2, sat, sat + 4 * H, &calm).required,
            PermitLevel::Level1
        );
        let workday_sat = cst(2026, 12, 5, 8, 0);
        assert!(
            decide(PermitLevel::Level2, workday_sat, workday_sat + 4 * H, &calm)
                .reasons
                .is_empty()
        );
        // A statutory holiday on a Thursday.
        let h = cst(2026, 10, 1, 8, 0);
        assert_eq!(
            decide(PermitLevel::Level2, h, h + 4 * H, &calm).reasons,
            vec![EscalationReason::Holiday {
                date: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()
            }]
        );
        // Wind force 5 escalates, 4 does not.
        let w5 = WorkConditions {
            wind_force: Some(5),
            ..calm
        };
        let w4 = WorkConditions {
            wind_force: Some(4),
            ..calm
        };
        assert_eq!(
            decide(PermitLevel::Level2, monday(8), monday(12), &w5).required,
            PermitLevel::Level1
        );
        assert!(
            decide(PermitLevel::Level2, monday(8), monday(12), &w4)
                .reasons
                .is_empty()
        );
        // Sensitive period, complex environment.
        let sp = cst(2026, 12, 11, 9, 0);
        assert_eq!(
            decide(PermitLevel::Level2, sp, sp + H, &calm).required,
            PermitLevel::Level1
        );
        let cx = WorkConditions {
            complex_environment: true,
            ..calm
        };
        assert_eq!(
            decide(PermitLevel::Level2, monday(8), monday(12), &cx).required,
            PermitLevel::Level1
        );
        // Several reasons still raise by one level only; special stays special.
        let all = decide(PermitLevel::Level2, sat, sat + 14 * H, &w5);
        assert_eq!(all.required, PermitLevel::Level1);
        assert_eq!(all.reasons.len(), 3);
        assert_eq!(
            decide(PermitLevel::Special, sat, sat + H, &calm).required,
            PermitLevel::Special
        );
    }

    #[test]
    fn construction_escalates_only_for_sensitive_or_complex_work() {
        let p = profile("construction");
        let st = site("construction");
        let cal = WorkCalendar::default();
        let sat_night = cst(2026, 11, 28, 21, 0);
        let windy = WorkConditions {
            wind_force: Some(7),
            ..Default::default()
        };
        let d = p
            .decide_level(
                &st,
                &cal,
                PermitLevel::Level3,
                sat_night,
                sat_night + H,
                &windy,
            )
            .unwrap();
        assert_eq!(d.required, PermitLevel::Level3);
        let cx = WorkConditions {
            complex_environment: true,
            ..Default::default()
        };
        let d = p
            .decide_level(
                &st,
                &cal,
                PermitLevel::Level3,
                sat_night,
                sat_night + H,
                &cx,
            )
            .unwrap();
        assert_eq!(d.required, PermitLevel::Level2);
        let d = p
            .decide_level(
                &st,
                &cal,
                PermitLevel::Level1,
                sat_night,
                sat_night + H,
                &cx,
            )
            .unwrap();
        assert_eq!(d.required, PermitLevel::Level1);
    }

    #[test]
    fn gas_limits_and_age() {
        let p = profile("gb30871");
        let start = monday(9);
        // LEL >= 4 %: 0.5 %vol passes, 0.51 fails; LEL < 4 %: 0.2 passes, 0.21 fails.
        assert!(
            p.check_gas(&[reading(start - 60, 400, 50)], start, 0)
                .is_empty()
        );
        assert_eq!(
            p.check_gas(&[reading(start - 60, 400, 51)], start, 0)[0].code,
            FindingCode::GasAnalysisFailed
        );
        assert!(
            p.check_gas(&[reading(start - 60, 399, 20)], start, 0)
                .is_empty()
        );
        assert_eq!(
            p.check_gas(&[reading(start - 60, 250, 21)], start, 0)[0].code,
            FindingCode::GasAnalysisFailed
        );
        // 30 min exactly is fresh; 30 min + 1 s is stale.
        assert!(
            p.check_gas(&[reading(start - 1800, 500, 0)], start, 0)
                .is_empty()
        );
        assert_eq!(
            p.check_gas(&[reading(start - 1801, 500, 0)], start, 0)[0].code,
            FindingCode::GasAnalysisStale
        );
        // The latest reading counts; readings after the moment or before not_before are ignored.
        let rs = [reading(start - 600, 500, 90), reading(start - 60, 500, 10)];
        assert!(p.check_gas(&rs, start, 0).is_empty());
        assert_eq!(
            p.check_gas(&[reading(start + 1, 500, 0)], start, 0)[0].code,
            FindingCode::GasAnalysisMissing
        );
        assert_eq!(
            p.check_gas(&[reading(start - 60, 500, 0)], start, start - 30)[0].code,
            FindingCode::GasAnalysisMissing
        );
        // No gas rule on construction sites.
        assert!(profile("construction").check_gas(&[], start, 0).is_empty());
    }

    #[test]
    fn distances() {
        let a = GeoPoint::from_degrees(36.182, 116.772);
        let b = GeoPoint::from_degrees(36.183, 116.772);
        let d = a.distance_m(&b);
        assert!((d - 111.2).abs() < 0.5, "{d}");
        assert_eq!(a.distance_m(&a), 0.0);
    }
}
