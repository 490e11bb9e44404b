//! The hot-work checklist as versioned data: the ten prohibitions and nine musts (十不准、九必须) of the
//! Feicheng policy's appendix, word for word, plus the post-work (处置) items, and what an answer to
//! each item must contain. The built-in version ships as JSON (`catalog_v1.json`); the platform can hand
//! out later versions in the same shape, and every permit records the version it used.

use serde::{Deserialize, Serialize};

use crate::domain::Explain;

/// The JSON text of the built-in catalog.
pub const BUILTIN_CATALOG_JSON: &str = include_str!("catalog_v1.json");

/// Which list an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// 十不准: the ten prohibitions.
    Prohibition,
    /// 九必须: the nine musts.
    Must,
    /// 处置: checks after the work, before the permit is closed.
    PostWork,
}

/// How serious it is when an inspector finds an item not complied with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Minor,
    Major,
    /// Reported upward at once (发现问题，及时上报).
    Serious,
}

/// A person named in an answer or on a permit, by the part they play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonRole {
    Welder,
    /// 监护人
    FireWatch,
    /// 分析人: takes the gas analysis.
    Analyst,
    Approver,
    Supervisor,
    Inspector,
}

/// What an answer must carry as evidence when it confirms an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvidenceRequirement {
    /// The SHA-256 digest of a photo taken on site.
    Photo,
    /// A whole number (distances in whole metres, counts), within the bounds given.
    Number {
        key: String,
        unit_zh: String,
        unit_en: String,
        #[serde(default)]
        min: Option<i64>,
        #[serde(default)]
        max: Option<i64>,
    },
    /// A person in the given role, by name and certificate or staff number.
    Person { role: PersonRole },
    /// A gas analysis reading with its time.
    GasAnalysis,
}

/// One checklist item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogItem {
    /// Stable id, e.g. `ban.05`, `must.03`, `close.01`.
    pub id: String,
    pub section: Section,
    /// The item's number within its section, as printed.
    pub number: u8,
    /// The Chinese text, verbatim from the source (for 十不准、九必须: the policy appendix).
    pub text_zh: String,
    pub text_en: String,
    /// Whether "not applicable" (with a reason) is an acceptable answer.
    pub not_applicable_allowed: bool,
    /// Evidence a confirming answer must carry.
    pub evidence: Vec<EvidenceRequirement>,
    /// Severity when an inspector finds the item not complied with.
    pub violation_severity: Severity,
}

/// A versioned checklist catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub version: String,
    pub effective_from: chrono::NaiveDate,
    pub source_zh: String,
    pub source_en: String,
    pub items: Vec<CatalogItem>,
}

/// A gas analysis reading (动火分析). Concentrations in hundredths of a percent by volume, so that
/// 0.5 %vol is 50; time in seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GasReading {
    pub taken_at: i64,
    /// Lower explosive limit of the measured gas, hundredths of %vol (methane: 500).
    pub lel_centi_pct: u32,
    /// Measured concentration, hundredths of %vol.
    pub concentration_centi_pct: u32,
    /// Where it was measured (the hot-work point, inside a vessel…).
    pub point: String,
    /// Who measured it.
    pub analyst: String,
}

/// Evidence attached to an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    Photo {
        /// SHA-256 of the photo file, 32 bytes.
        sha256: Vec<u8>,
    },
    Number {
        key: String,
        value: i64,
    },
    Person {
        role: PersonRole,
        name: String,
        /// Certificate number (welders) or staff number.
        id: String,
    },
    GasAnalysis {
        reading: GasReading,
    },
}

/// The answer itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnswerValue {
    /// The item is complied with (for a prohibition: the forbidden condition does not exist).
    Confirmed,
    /// The item does not apply here, and why.
    NotApplicable { reason: String },
}

/// An answer to one checklist item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistAnswer {
    pub item_id: String,
    pub value: AnswerValue,
    pub evidence: Vec<Evidence>,
}

impl ChecklistAnswer {
    pub fn confirmed(item_id: &str, evidence: Vec<Evidence>) -> Self {
        Self {
            item_id: item_id.to_owned(),
            value: AnswerValue::Confirmed,
            evidence,
        }
    }

    pub fn not_applicable(item_id: &str, reason: &str) -> Self {
        Self {
            item_id: item_id.to_owned(),
            value: AnswerValue::NotApplicable {
                reason: reason.to_owned(),
            },
            evidence: Vec::new(),
        }
    }

    /// The number given for `key`, if any.
    pub fn number(&self, key: &str) -> Option<i64> {
        self.evidence.iter().find_map(|e| match e {
            Evidence::Number { key: k, value } if k == key => Some(*value),
            _ => None,
        })
    }
}

/// Why a set of answers is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum AnswerProblem {
    #[error("checklist item {item_id} is not answered")]
    Missing { item_id: String },
    #[error("{item_id} is not an item of catalog {version}")]
    UnknownItem { item_id: String, version: String },
    #[error("checklist item {item_id} is answered more than once")]
    Duplicate { item_id: String },
    #[error("checklist item {item_id} may not be answered 'not applicable'")]
    NotApplicableRefused { item_id: String },
    #[error("checklist item {item_id}: 'not applicable' needs a reason")]
    ReasonMissing { item_id: String },
    #[error("checklist item {item_id} needs evidence: {what}")]
    EvidenceMissing { item_id: String, what: String },
    #[error("checklist item {item_id}: {key} = {value} is outside the allowed range")]
    OutOfRange {
        item_id: String,
        key: String,
        value: i64,
    },
    #[error("checklist item {item_id}: a photo digest must be 32 bytes")]
    BadPhotoDigest { item_id: String },
}

impl AnswerProblem {
    /// The checklist item the problem is about.
    pub fn item_id(&self) -> &str {
        match self {
            AnswerProblem::Missing { item_id }
            | AnswerProblem::UnknownItem { item_id, .. }
            | AnswerProblem::Duplicate { item_id }
            | AnswerProblem::NotApplicableRefused { item_id }
            | AnswerProblem::ReasonMissing { item_id }
            | AnswerProblem::EvidenceMissing { item_id, .. }
            | AnswerProblem::OutOfRange { item_id, .. }
            | AnswerProblem::BadPhotoDigest { item_id } => item_id,
        }
    }
}

impl Explain for AnswerProblem {
    fn code(&self) -> &'static str {
        match self {
            AnswerProblem::Missing { .. } => "checklist.missing",
            AnswerProblem::UnknownItem { .. } => "checklist.unknown_item",
            AnswerProblem::Duplicate { .. } => "checklist.duplicate",
            AnswerProblem::NotApplicableRefused { .. } => "checklist.not_applicable_refused",
            AnswerProblem::ReasonMissing { .. } => "checklist.reason_missing",
            AnswerProblem::EvidenceMissing { .. } => "checklist.evidence_missing",
            AnswerProblem::OutOfRange { .. } => "checklist.out_of_range",
            AnswerProblem::BadPhotoDigest { .. } => "checklist.bad_photo_digest",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            AnswerProblem::Missing { item_id } => format!("检查项 {item_id} 未作答"),
            AnswerProblem::UnknownItem { item_id, version } => {
                format!("{item_id} 不是检查表 {version} 中的项目")
            }
            AnswerProblem::Duplicate { item_id } => format!("检查项 {item_id} 重复作答"),
            AnswerProblem::NotApplicableRefused { item_id } => {
                format!("检查项 {item_id} 不可答“不适用”")
            }
            AnswerProblem::ReasonMissing { item_id } => {
                format!("检查项 {item_id} 答“不适用”须说明理由")
            }
            AnswerProblem::EvidenceMissing { item_id, what } => {
                format!("检查项 {item_id} 缺少证据：{what}")
            }
            AnswerProblem::OutOfRange {
                item_id,
                key,
                value,
            } => format!("检查项 {item_id} 的 {key} = {value} 不符合要求"),
            AnswerProblem::BadPhotoDigest { item_id } => {
                format!("检查项 {item_id} 的照片摘要应为32字节")
            }
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

/// The catalog JSON could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checklist catalog is malformed: {0}")]
pub struct CatalogError(pub String);

impl Explain for CatalogError {
    fn code(&self) -> &'static str {
        "checklist.catalog_malformed"
    }
    fn message_zh(&self) -> String {
        format!("检查表数据格式错误：{}", self.0)
    }
    fn message_en(&self) -> String {
        self.to_string()
    }
}

fn evidence_label(req: &EvidenceRequirement) -> String {
    match req {
        EvidenceRequirement::Photo => "photo".into(),
        EvidenceRequirement::Number { key, .. } => format!("number {key}"),
        EvidenceRequirement::Person { role } => format!("person {role:?}"),
        EvidenceRequirement::GasAnalysis => "gas analysis".into(),
    }
}

impl Catalog {
    /// The catalog built into this version of the core.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Self::from_json(BUILTIN_CATALOG_JSON)
    }

    /// A catalog from its JSON form; ids must be unique.
    pub fn from_json(json: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog =
            serde_json::from_str(json).map_err(|e| CatalogError(e.to_string()))?;
        for (i, item) in catalog.items.iter().enumerate() {
            if catalog.items.iter().skip(i + 1).any(|o| o.id == item.id) {
                return Err(CatalogError(format!("duplicate item id {}", item.id)));
            }
        }
        Ok(catalog)
    }

    pub fn item(&self, id: &str) -> Option<&CatalogItem> {
        self.items.iter().find(|i| i.id == id)
    }

    /// The items of one section, in catalog order.
    pub fn section(&self, section: Section) -> impl Iterator<Item = &CatalogItem> {
        self.items.iter().filter(move |i| i.section == section)
    }

    /// Check one answer against its item.
    pub fn check_answer(&self, answer: &ChecklistAnswer) -> Result<(), AnswerProblem> {
        let item_id = answer.item_id.clone();
        let Some(item) = self.item(&answer.item_id) else {
            return Err(AnswerProblem::UnknownItem {
                item_id,
                version: self.version.clone(),
            });
        };
        for e in &answer.evidence {
            if let Evidence::Photo { sha256 } = e
                && sha256.len() != 32
            {
                return Err(AnswerProblem::BadPhotoDigest { item_id });
            }
        }
        match &answer.value {
            AnswerValue::NotApplicable { reason } => {
                if !item.not_applicable_allowed {
                    return Err(AnswerProblem::NotApplicableRefused { item_id });
                }
                if reason.trim().is_empty() {
                    return Err(AnswerProblem::ReasonMissing { item_id });
                }
                Ok(())
            }
            AnswerValue::Confirmed => {
                for req in &item.evidence {
                    let present = match req {
                        EvidenceRequirement::Photo => answer
                            .evidence
                            .iter()
                            .any(|e| matches!(e, Evidence::Photo { .. })),
                        EvidenceRequirement::Number { key, min, max, .. } => {
                            match answer.number(key) {
                                None => false,
                                Some(value) => {
                                    if min.is_some_and(|m| value < m)
                                        || max.is_some_and(|m| value > m)
                                    {
                                        return Err(AnswerProblem::OutOfRange {
                                            item_id,
                                            key: key.clone(),
                                            value,
                                        });
                                    }
                                    true
                                }
                            }
                        }
                        EvidenceRequirement::Person { role } => answer.evidence.iter().any(|e| {
                            matches!(e, Evidence::Person { role: r, name, id }
                                if r == role && !name.trim().is_empty() && !id.trim().is_empty())
                        }),
                        EvidenceRequirement::GasAnalysis => answer
                            .evidence
                            .iter()
                            .any(|e| matches!(e, Evidence::GasAnalysis { .. })),
                    };
                    if !present {
                        return Err(AnswerProblem::EvidenceMissing {
                            item_id,
                            what: evidence_label(req),
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Check a full set of answers for the given sections: every item answered exactly once, each
    /// answer acceptable, nothing foreign. Returns every problem, not only the first.
    pub fn check_answers(
        &self,
        sections: &[Section],
        answers: &[ChecklistAnswer],
    ) -> Vec<AnswerProblem> {
        let mut problems = Vec::new();
        for (i, answer) in answers.iter().enumerate() {
            if answers
                .iter()
                .take(i)
                .any(|prev| prev.item_id == answer.item_id)
            {
                problems.push(AnswerProblem::Duplicate {
                    item_id: answer.item_id.clone(),
                });
                continue;
            }
            match self.item(&answer.item_id) {
                Some(item) if !sections.contains(&item.section) => {
                    problems.push(AnswerProblem::UnknownItem {
                        item_id: answer.item_id.clone(),
                        version: self.version.clone(),
                    })
                }
                _ => {
                    if let Err(p) = self.check_answer(answer) {
                        problems.push(p);
                    }
                }
            }
        }
        for item in self.items.iter().filter(|i| sections.contains(&i.section)) {
            if !answers.iter().any(|a| a.item_id == item.id) {
                problems.push(AnswerProblem::Missing {
                    item_id: item.id.clone(),
                });
            }
        }
        problems
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A complete, acceptable set of pre-work answers (十不准 and 九必须), for tests across the
    /// permit module: the welder 李四, everyone else 王五, gas analysed at `taken_at`.
    pub(crate) fn full_answers(catalog: &Catalog, taken_at: i64) -> Vec<ChecklistAnswer> {
        let sample = crate::permit::SampleEvidence {
            gas_point: "储罐内".into(),
            machine_distance_m: None,
            ..crate::permit::SampleEvidence::crew(taken_at)
        };
        crate::permit::sample_answers(catalog, &[Section::Prohibition, Section::Must], &sample)
    }

    fn seed_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/seed")
    }

    #[test]
    fn builtin_catalog_parses_with_ten_prohibitions_and_nine_musts() {
        let c = Catalog::builtin().unwrap();
        assert_eq!(c.section(Section::Prohibition).count(), 10);
        assert_eq!(c.section(Section::Must).count(), 9);
        assert_eq!(c.section(Section::PostWork).count(), 3);
        for (section, n) in [(Section::Prohibition, 10u8), (Section::Must, 9)] {
            let numbers: Vec<u8> = c.section(section).map(|i| i.number).collect();
            assert_eq!(numbers, (1..=n).collect::<Vec<_>>());
        }
        assert!(c.items.iter().all(|i| !i.text_en.is_empty()));
    }

    /// The numbered lines of one list of the policy appendix, as (number, text).
    fn appendix_list(text: &str, heading: &str, next_heading: Option<&str>) -> Vec<(u8, String)> {
        let appendix = text.rfind("电气焊作业“十不准、九必须”").unwrap();
        let rest = &text[appendix..];
        let start = rest.find(heading).unwrap() + heading.len();
        let end = next_heading
            .and_then(|h| rest.find(h))
            .unwrap_or(rest.len());
        rest[start..end]
            .lines()
            .map(str::trim)
            .filter_map(|line| {
                let (num, body) = line.split_once(". ")?;
                Some((num.parse().ok()?, body.to_owned()))
            })
            .collect()
    }

    #[test]
    fn catalog_matches_policy_appendix_character_for_character() {
        let dir = seed_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            println!(
                "NOTE: seed directory {} absent; verbatim check skipped",
                dir.display()
            );
            return;
        };
        let mut texts = Vec::new();
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "txt") {
                texts.push(std::fs::read_to_string(path).unwrap());
            }
        }
        let Some(policy) = texts.iter().find(|t| t.contains("十不准、九必须")) else {
            println!(
                "NOTE: no policy text with the appendix in {}; skipped",
                dir.display()
            );
            return;
        };
        let bans = appendix_list(policy, "电气焊作业“十不准”", Some("电气焊作业“九必须”"));
        let musts = appendix_list(policy, "电气焊作业“九必须”", None);
        assert_eq!(bans.len(), 10, "the policy lists ten prohibitions");
        assert_eq!(musts.len(), 9, "the policy lists nine musts");

        let c = Catalog::builtin().unwrap();
        for (section, list) in [(Section::Prohibition, &bans), (Section::Must, &musts)] {
            let items: Vec<&CatalogItem> = c.section(section).collect();
            assert_eq!(items.len(), list.len());
            for (item, (number, text)) in items.iter().zip(list.iter()) {
                assert_eq!(item.number, *number, "{}", item.id);
                assert_eq!(&item.text_zh, text, "{} differs from the policy", item.id);
                // And the line appears in the file exactly as printed.
                assert!(policy.contains(&format!("{}. {}", item.number, item.text_zh)));
            }
        }
    }

    #[test]
    fn full_answers_pass_and_each_missing_item_is_named() {
        let c = Catalog::builtin().unwrap();
        let sections = [Section::Prohibition, Section::Must];
        let answers = full_answers(&c, 0);
        assert!(c.check_answers(&sections, &answers).is_empty());
        for i in 0..answers.len() {
            let mut partial = answers.clone();
            let removed = partial.remove(i);
            assert_eq!(
                c.check_answers(&sections, &partial),
                vec![AnswerProblem::Missing {
                    item_id: removed.item_id
                }]
            );
        }
    }

    #[test]
    fn not_applicable_needs_permission_and_a_reason() {
        let c = Catalog::builtin().unwrap();
        assert_eq!(
            c.check_answer(&ChecklistAnswer::not_applicable("ban.01", "无")),
            Err(AnswerProblem::NotApplicableRefused {
                item_id: "ban.01".into()
            })
        );
        assert_eq!(
            c.check_answer(&ChecklistAnswer::not_applicable("ban.07", "  ")),
            Err(AnswerProblem::ReasonMissing {
                item_id: "ban.07".into()
            })
        );
        assert!(
            c.check_answer(&ChecklistAnswer::not_applicable("ban.07", "无管道容器"))
                .is_ok()
        );
    }

    #[test]
    fn evidence_is_required_and_bounded() {
        let c = Catalog::builtin().unwrap();
        let fire_watch_missing = ChecklistAnswer::confirmed("must.03", vec![]);
        assert_eq!(
            c.check_answer(&fire_watch_missing).unwrap_err().code(),
            "checklist.evidence_missing"
        );
        let none = ChecklistAnswer::confirmed(
            "must.02",
            vec![Evidence::Number {
                key: "extinguishers".into(),
                value: 0,
            }],
        );
        assert_eq!(
            c.check_answer(&none),
            Err(AnswerProblem::OutOfRange {
                item_id: "must.02".into(),
                key: "extinguishers".into(),
                value: 0
            })
        );
        let close = ChecklistAnswer::confirmed(
            "must.05",
            vec![
                Evidence::Number {
                    key: "cylinder_spacing_m".into(),
                    value: 4,
                },
                Evidence::Number {
                    key: "cylinder_to_fire_m".into(),
                    value: 10,
                },
            ],
        );
        assert!(matches!(
            c.check_answer(&close),
            Err(AnswerProblem::OutOfRange { .. })
        ));
        let bad_photo =
            ChecklistAnswer::confirmed("ban.08", vec![Evidence::Photo { sha256: vec![1; 5] }]);
        assert!(matches!(
            c.check_answer(&bad_photo),
            Err(AnswerProblem::BadPhotoDigest { .. })
        ));
    }

    #[test]
    fn duplicates_and_foreign_items_are_reported() {
        let c = Catalog::builtin().unwrap();
        let mut answers = full_answers(&c, 0);
        answers.push(answers[0].clone());
        answers.push(ChecklistAnswer::confirmed("ban.99", vec![]));
        let problems = c.check_answers(&[Section::Prohibition, Section::Must], &answers);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].code(), "checklist.duplicate");
        assert_eq!(problems[1].code(), "checklist.unknown_item");
    }

    #[test]
    fn malformed_catalogs_are_refused() {
        assert!(Catalog::from_json("{").is_err());
        let mut c = Catalog::builtin().unwrap();
        c.items.push(c.items[0].clone());
        let json = serde_json::to_string(&c).unwrap();
        assert!(Catalog::from_json(&json).is_err());
    }
}
