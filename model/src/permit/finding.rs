//! A rule's verdict on a permit: a stable code, the clause it comes from, whether it blocks, and the
//! reason in Chinese and English.

use serde::{Deserialize, Serialize};

use crate::domain::Explain;

/// Stable codes of permit rule findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    LevelNotInProfile,
    WindowInvalid,
    ValidityExceeded,
    NoWelder,
    FireWatchMissing,
    FireWatchPerPoint,
    Checklist,
    MachineDistanceMissing,
    MachineTooFar,
    OutdoorWind,
    ApproverRole,
    ApproverOffSite,
    ApproverLocationMissing,
    NotYetValid,
    Expired,
    GasAnalysisMissing,
    GasAnalysisStale,
    GasAnalysisFailed,
    ContinuousMonitoringRequired,
    PostWorkWatchTooShort,
    StillValid,
    ReasonMissing,
    PersonNotOnPermit,
}

impl FindingCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::LevelNotInProfile => "permit.rule.level_not_in_profile",
            FindingCode::WindowInvalid => "permit.rule.window_invalid",
            FindingCode::ValidityExceeded => "permit.rule.validity_exceeded",
            FindingCode::NoWelder => "permit.rule.no_welder",
            FindingCode::FireWatchMissing => "permit.rule.fire_watch_missing",
            FindingCode::FireWatchPerPoint => "permit.rule.fire_watch_per_point",
            FindingCode::Checklist => "permit.rule.checklist",
            FindingCode::MachineDistanceMissing => "permit.rule.machine_distance_missing",
            FindingCode::MachineTooFar => "permit.rule.machine_too_far",
            FindingCode::OutdoorWind => "permit.rule.outdoor_wind",
            FindingCode::ApproverRole => "permit.rule.approver_role",
            FindingCode::ApproverOffSite => "permit.rule.approver_off_site",
            FindingCode::ApproverLocationMissing => "permit.rule.approver_location_missing",
            FindingCode::NotYetValid => "permit.rule.not_yet_valid",
            FindingCode::Expired => "permit.rule.expired",
            FindingCode::GasAnalysisMissing => "permit.rule.gas_analysis_missing",
            FindingCode::GasAnalysisStale => "permit.rule.gas_analysis_stale",
            FindingCode::GasAnalysisFailed => "permit.rule.gas_analysis_failed",
            FindingCode::ContinuousMonitoringRequired => {
                "permit.rule.continuous_monitoring_required"
            }
            FindingCode::PostWorkWatchTooShort => "permit.rule.post_work_watch_too_short",
            FindingCode::StillValid => "permit.rule.still_valid",
            FindingCode::ReasonMissing => "permit.rule.reason_missing",
            FindingCode::PersonNotOnPermit => "permit.rule.person_not_on_permit",
        }
    }
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    /// The standard and clause the rule comes from, e.g. `GB 30871-2022 5.4`.
    pub clause: String,
    /// Whether the finding refuses the step (otherwise it is recorded as a flag).
    pub blocking: bool,
    pub message_zh: String,
    pub message_en: String,
    /// The checklist item the finding is about (a `permit.rule.checklist` finding), so a screen
    /// can point at the item without reading the text. Absent on other findings, and not
    /// serialized when absent (flags recorded before it keep their encoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
}

impl Finding {
    pub fn block(code: FindingCode, clause: &str, zh: String, en: String) -> Self {
        Self {
            code,
            clause: clause.to_owned(),
            blocking: true,
            message_zh: zh,
            message_en: en,
            item_id: None,
        }
    }

    /// The same finding, about checklist item `item_id`.
    pub fn about_item(self, item_id: &str) -> Self {
        Self {
            item_id: Some(item_id.to_owned()),
            ..self
        }
    }

    pub fn flag(code: FindingCode, clause: &str, zh: String, en: String) -> Self {
        Self {
            blocking: false,
            ..Self::block(code, clause, zh, en)
        }
    }
}

impl Explain for Finding {
    fn code(&self) -> &'static str {
        self.code.as_str()
    }
    fn message_zh(&self) -> String {
        format!("{}（{}）", self.message_zh, self.clause)
    }
    fn message_en(&self) -> String {
        format!("{} ({})", self.message_en, self.clause)
    }
}
