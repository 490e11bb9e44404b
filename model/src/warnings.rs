//! The platform's supervision wire types (#19): places (区县 district, 镇街 town or street, 网格 grid)
//! of machines, licences and sites, the scope of a monitoring account, and the warnings the
//! platform raises as records arrive, with their life cycle (open → acknowledged → closed).
//! Places live in the platform's own registry (`POST /v1/admin/places`), not in the feed phones
//! cache: phones decide nothing with them (docs/adr/0017-warnings-and-scope.md).

use serde::{Deserialize, Serialize};

/// Where something is: a GB/T 2260 district (区县, 6 digits), optionally a town or street (镇街,
/// 9 digits starting with the district's) and a grid (网格, the city's id for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub district: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
}

impl Place {
    /// Why the place is malformed, when it is (a stable code and an English text).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(&self.district, 6) {
            return Some((
                "place.bad_district",
                format!("district must be 6 digits: {:?}", self.district),
            ));
        }
        if let Some(town) = &self.town
            && !(digits(town, 9) && town.starts_with(&self.district))
        {
            return Some((
                "place.bad_town",
                format!("town must be 9 digits starting with its district: {town:?}"),
            ));
        }
        if let Some(grid) = &self.grid
            && (grid.trim().is_empty() || grid.len() > 64)
        {
            return Some((
                "place.bad_grid",
                format!("grid must be 1..=64 bytes: {grid:?}"),
            ));
        }
        None
    }
}

/// A point on the map: WGS-84 in integer 1e-7 degrees (as phones report scan positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude_e7: i32,
    pub longitude_e7: i32,
}

impl GeoPoint {
    pub fn in_range(&self) -> bool {
        (-900_000_000..=900_000_000).contains(&self.latitude_e7)
            && (-1_800_000_000..=1_800_000_000).contains(&self.longitude_e7)
    }
}

/// A work site (工地/作业点) with its place and coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub site_id: String,
    pub name: String,
    pub place: Place,
    pub location: GeoPoint,
}

/// How the platform watches a machine. `suspect` and `modified` machines still start (the phone
/// does not know); every start of one raises `suspect_machine_started`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineWatch {
    #[default]
    Normal,
    /// Suspected of being tampered with or used against the rules (疑似改装/违规).
    Suspect,
    /// Found modified (改装).
    Modified,
}

impl MachineWatch {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineWatch::Normal => "normal",
            MachineWatch::Suspect => "suspect",
            MachineWatch::Modified => "modified",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            MachineWatch::Normal,
            MachineWatch::Suspect,
            MachineWatch::Modified,
        ]
        .into_iter()
        .find(|w| w.as_str() == text)
    }
}

/// A machine's place in the platform's registry: where it belongs, the site it works at, its
/// registered location (else its site's), and how it is watched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachinePlace {
    pub machine_id: String,
    pub place: Place,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
    #[serde(default)]
    pub watch: MachineWatch,
}

/// A licence holder's (welder's) place in the platform's registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicencePlace {
    pub certificate_no: String,
    pub place: Place,
}

/// One change to the platform's places (`POST /v1/admin/places`, a list applied in one
/// transaction; a later change to the same thing replaces the earlier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PlaceChange {
    UpsertSite(Site),
    DeleteSite { site_id: String },
    PlaceMachine(MachinePlace),
    UnplaceMachine { machine_id: String },
    PlaceLicence(LicencePlace),
    UnplaceLicence { certificate_no: String },
}

/// The answer to a places write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacesWriteResponse {
    pub changes: u64,
}

/// What a monitoring account sees: the whole city, one district or one town. Written as text:
/// `city`, `district:370983`, `town:370983001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    City,
    District(String),
    Town(String),
}

impl Scope {
    /// Parse `city`, `district:DDDDDD` or `town:TTTTTTTTT`.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        match text.split_once(':') {
            None if text == "city" => Some(Scope::City),
            Some(("district", code)) if digits(code, 6) => Some(Scope::District(code.to_owned())),
            Some(("town", code)) if digits(code, 9) => Some(Scope::Town(code.to_owned())),
            _ => None,
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Scope::City => "city".to_owned(),
            Scope::District(code) => format!("district:{code}"),
            Scope::Town(code) => format!("town:{code}"),
        }
    }

    /// Whether something at `district` / `town` lies inside this scope (nothing without a place
    /// lies inside a district or town).
    pub fn holds(&self, district: Option<&str>, town: Option<&str>) -> bool {
        match self {
            Scope::City => true,
            Scope::District(code) => district == Some(code.as_str()),
            Scope::Town(code) => town == Some(code.as_str()),
        }
    }

    /// Whether every place inside `inner` lies inside this scope.
    pub fn covers(&self, inner: &Scope) -> bool {
        match (self, inner) {
            (Scope::City, _) => true,
            (Scope::District(d), Scope::District(e)) => d == e,
            (Scope::District(d), Scope::Town(t)) => t.starts_with(d.as_str()),
            (Scope::Town(t), Scope::Town(u)) => t == u,
            _ => false,
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_text())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Scope::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "scope must be city, district:DDDDDD or town:TTTTTTTTT, not {text:?}"
            ))
        })
    }
}

/// An admin asks for a monitoring account (`POST /v1/admin/monitors`): an enrolment code for
/// role `monitor` with this scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMonitor {
    pub person: String,
    pub scope: Scope,
}

/// The code made for a monitoring account (enrolled through `POST /v1/enrol` like a device).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorCode {
    pub code: String,
    pub person: String,
    pub scope: Scope,
}

/// The kinds of warning (stable codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A scan-to-start refused because the licence had expired.
    StartRefusedExpiredLicence,
    /// Several refused scan-to-starts at one machine within a window.
    RepeatedRefusals,
    /// A scan-to-start whose position is far from the machine's registered location.
    StartFarFromMachine,
    /// A machine started at two places too far apart for the time between.
    MachineTwoPlaces,
    /// A machine the platform marks suspect or modified was started.
    SuspectMachineStarted,
    /// A valid licence expires within the configured number of days: raised when it comes inside
    /// that window (from the registry), or at a start with it if that comes first.
    LicenceExpiring,
    /// A work session with no sign of its end (the machine's next start, the permit's end)
    /// within the configured number of hours.
    SessionOpenTooLong,
    /// A permit completed whose post-work watch was never closed (the fire watch's post-work
    /// check and signature) within its watch time and a grace.
    FireWatchMissing,
    /// Hot work started in a special period (holiday, rest day, night, sensitive period) without
    /// a permit at the level the period requires.
    SpecialPeriodWithoutEscalation,
    /// A machine that needs a permit was started without one the platform holds as valid then.
    StartWithoutPermit,
}

impl WarningKind {
    pub const ALL: [WarningKind; 10] = [
        WarningKind::StartRefusedExpiredLicence,
        WarningKind::RepeatedRefusals,
        WarningKind::StartFarFromMachine,
        WarningKind::MachineTwoPlaces,
        WarningKind::SuspectMachineStarted,
        WarningKind::LicenceExpiring,
        WarningKind::SessionOpenTooLong,
        WarningKind::FireWatchMissing,
        WarningKind::SpecialPeriodWithoutEscalation,
        WarningKind::StartWithoutPermit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::StartRefusedExpiredLicence => "start_refused_expired_licence",
            WarningKind::RepeatedRefusals => "repeated_refusals",
            WarningKind::StartFarFromMachine => "start_far_from_machine",
            WarningKind::MachineTwoPlaces => "machine_two_places",
            WarningKind::SuspectMachineStarted => "suspect_machine_started",
            WarningKind::LicenceExpiring => "licence_expiring",
            WarningKind::SessionOpenTooLong => "session_open_too_long",
            WarningKind::FireWatchMissing => "fire_watch_missing",
            WarningKind::SpecialPeriodWithoutEscalation => "special_period_without_escalation",
            WarningKind::StartWithoutPermit => "start_without_permit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// What the warning means, in Chinese.
    pub fn title_zh(self) -> &'static str {
        match self {
            WarningKind::StartRefusedExpiredLicence => "操作证过期仍扫码开机（已拒绝）",
            WarningKind::RepeatedRefusals => "同一焊机多次开机被拒",
            WarningKind::StartFarFromMachine => "扫码位置远离焊机登记位置",
            WarningKind::MachineTwoPlaces => "同一焊机短时间内在两地开机",
            WarningKind::SuspectMachineStarted => "疑似改装焊机仍在开机",
            WarningKind::LicenceExpiring => "操作证即将到期",
            WarningKind::SessionOpenTooLong => "焊机连续开机超时",
            WarningKind::FireWatchMissing => "动火作业完毕后未落实监护（监护人脱岗）",
            WarningKind::SpecialPeriodWithoutEscalation => "特殊时段动火未提级审批",
            WarningKind::StartWithoutPermit => "无有效动火作业证开机",
        }
    }

    /// What the warning means, in English.
    pub fn title_en(self) -> &'static str {
        match self {
            WarningKind::StartRefusedExpiredLicence => "scan-to-start refused: expired licence",
            WarningKind::RepeatedRefusals => "repeated refused starts at one machine",
            WarningKind::StartFarFromMachine => "scan far from the machine's registered location",
            WarningKind::MachineTwoPlaces => "machine started at two places too far apart",
            WarningKind::SuspectMachineStarted => "suspect or modified machine started",
            WarningKind::LicenceExpiring => "licence about to expire",
            WarningKind::SessionOpenTooLong => "work session open too long",
            WarningKind::FireWatchMissing => {
                "permit completed without the post-work fire watch recorded"
            }
            WarningKind::SpecialPeriodWithoutEscalation => {
                "hot work in a special period without an escalated permit"
            }
            WarningKind::StartWithoutPermit => "machine started without a valid permit",
        }
    }
}

/// Where a warning is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningState {
    Open,
    Acknowledged,
    Closed,
}

impl WarningState {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningState::Open => "open",
            WarningState::Acknowledged => "acknowledged",
            WarningState::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            WarningState::Open,
            WarningState::Acknowledged,
            WarningState::Closed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A warning as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// The platform's id of the warning (decimal text).
    pub id: String,
    pub kind: WarningKind,
    pub title_zh: String,
    pub title_en: String,
    /// The idempotency keys of the records that raised it.
    pub records: Vec<String>,
    pub machine_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_no: Option<String>,
    /// Where it happened (the machine's place, else the licence holder's); `None`: unplaced,
    /// seen by city-wide accounts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    /// When it happened (the raising record's start time, Unix ms).
    pub at_ms: i64,
    /// When the platform raised it (Unix ms).
    pub raised_at_ms: i64,
    /// Figures behind it (distance in metres, count in the window, speed…), by name.
    pub detail: serde_json::Value,
    pub state: WarningState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_note: Option<String>,
}

/// One page of warnings, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningList {
    pub warnings: Vec<Warning>,
    /// Opaque: `after` for the next page with the same filters (empty on the last page).
    pub next_cursor: String,
    pub has_more: bool,
}

/// Closing a warning needs a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseWarning {
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_nest_by_code() {
        let city = Scope::parse("city").unwrap();
        let feicheng = Scope::parse("district:370983").unwrap();
        let town = Scope::parse("town:370983001").unwrap();
        let other_town = Scope::parse("town:370902001").unwrap();
        for bad in [
            "",
            "City",
            "district:",
            "district:37098",
            "district:37098x",
            "town:370983",
            "x:1",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad:?}");
        }
        assert_eq!(town.as_text(), "town:370983001");
        assert!(city.covers(&feicheng) && city.covers(&town));
        assert!(feicheng.covers(&town) && !feicheng.covers(&other_town));
        assert!(!town.covers(&feicheng) && !feicheng.covers(&city));
        assert!(feicheng.holds(Some("370983"), None));
        assert!(!feicheng.holds(Some("370902"), Some("370983001")));
        assert!(town.holds(Some("370983"), Some("370983001")));
        assert!(!town.holds(Some("370983"), None));
        assert!(city.holds(None, None) && !feicheng.holds(None, None));
        let json = serde_json::to_string(&town).unwrap();
        assert_eq!(json, "\"town:370983001\"");
        assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), town);
        assert!(serde_json::from_str::<Scope>("\"district:1\"").is_err());
    }

    #[test]
    fn places_need_a_district_and_a_town_inside_it() {
        let place = |d: &str, t: Option<&str>, g: Option<&str>| Place {
            district: d.into(),
            town: t.map(str::to_owned),
            grid: g.map(str::to_owned),
        };
        assert_eq!(
            place("370983", Some("370983001"), Some("G-1")).problem(),
            None
        );
        assert_eq!(place("370983", None, None).problem(), None);
        let code = |p: Place| p.problem().map(|(c, _)| c);
        assert_eq!(code(place("37098", None, None)), Some("place.bad_district"));
        assert_eq!(
            code(place("370983", Some("370902001"), None)),
            Some("place.bad_town")
        );
        assert_eq!(
            code(place("370983", Some("3709830011"), None)),
            Some("place.bad_town")
        );
        assert_eq!(
            code(place("370983", None, Some(" "))),
            Some("place.bad_grid")
        );
        // The watch status reads as normal when absent (places written before it existed).
        let m: MachinePlace =
            serde_json::from_str(r#"{"machine_id":"M","place":{"district":"370983"}}"#).unwrap();
        assert_eq!(m.watch, MachineWatch::Normal);
        for kind in WarningKind::ALL {
            assert_eq!(WarningKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
