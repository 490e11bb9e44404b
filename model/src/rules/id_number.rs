//! Resident ID numbers (公民身份号码, GB 11643-1999): shape, region, birth date and the ISO 7064
//! MOD 11-2 check character; 15-digit numbers from before 1999 are recognised and reported as legacy.
//!
//! [`check_id_number`] never stops at the first problem: it returns every problem it can find, each a
//! stable code with Chinese and English text, plus the parts it could read (birth date, region, sex).
//! The date the number is checked against is passed in (no clock reads).

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::domain::Explain;

/// Weights of the first 17 characters: 2^(17-i) mod 11 (GB 11643-1999, ISO 7064 MOD 11-2).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check characters by (sum of weighted digits) mod 11.
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// A person older than this many years on the date of the check is not plausible.
pub const MAX_PLAUSIBLE_AGE_YEARS: i32 = 130;

/// Province-level prefixes of GB/T 2260 region codes used in resident ID numbers, with their names.
const PROVINCES: [(u8, &str, &str); 34] = [
    (11, "北京市", "Beijing"),
    (12, "天津市", "Tianjin"),
    (13, "河北省", "Hebei"),
    (14, "山西省", "Shanxi"),
    (15, "内蒙古自治区", "Inner Mongolia"),
    (21, "辽宁省", "Liaoning"),
    (22, "吉林省", "Jilin"),
    (23, "黑龙江省", "Heilongjiang"),
    (31, "上海市", "Shanghai"),
    (32, "江苏省", "Jiangsu"),
    (33, "浙江省", "Zhejiang"),
    (34, "安徽省", "Anhui"),
    (35, "福建省", "Fujian"),
    (36, "江西省", "Jiangxi"),
    (37, "山东省", "Shandong"),
    (41, "河南省", "Henan"),
    (42, "湖北省", "Hubei"),
    (43, "湖南省", "Hunan"),
    (44, "广东省", "Guangdong"),
    (45, "广西壮族自治区", "Guangxi"),
    (46, "海南省", "Hainan"),
    (50, "重庆市", "Chongqing"),
    (51, "四川省", "Sichuan"),
    (52, "贵州省", "Guizhou"),
    (53, "云南省", "Yunnan"),
    (54, "西藏自治区", "Tibet"),
    (61, "陕西省", "Shaanxi"),
    (62, "甘肃省", "Gansu"),
    (63, "青海省", "Qinghai"),
    (64, "宁夏回族自治区", "Ningxia"),
    (65, "新疆维吾尔自治区", "Xinjiang"),
    (71, "台湾省", "Taiwan"),
    (81, "香港特别行政区", "Hong Kong"),
    (82, "澳门特别行政区", "Macao"),
];

/// The province (or municipality, region) a two-digit prefix stands for, as (zh, en) names.
pub fn province_name(prefix: u8) -> Option<(&'static str, &'static str)> {
    PROVINCES
        .iter()
        .find(|(p, _, _)| *p == prefix)
        .map(|(_, zh, en)| (*zh, *en))
}

/// The sex recorded in the sequence code (odd: male, even: female).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// One thing wrong with an ID number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdProblem {
    /// Neither 18 characters nor 15 (legacy) characters.
    BadLength { length: usize },
    /// A character other than an ASCII digit where a digit must be (or an X other than last).
    BadCharacter { position: usize },
    /// The first two digits are not a province-level code of GB/T 2260.
    UnknownProvince { prefix: String },
    /// The birth date field is not a real calendar date.
    BirthDateNotADate { field: String },
    /// The birth date is after the date of the check.
    BirthDateInFuture { birth_date: NaiveDate },
    /// The birth date makes the holder implausibly old.
    BirthDateImplausible { birth_date: NaiveDate },
    /// The check character does not match the first 17 characters.
    CheckCharacterMismatch { expected: char, found: char },
    /// A 15-digit number issued before GB 11643-1999: recognised, but not a current credential.
    Legacy15 { upgraded: Option<String> },
}

impl Explain for IdProblem {
    fn code(&self) -> &'static str {
        match self {
            IdProblem::BadLength { .. } => "id.bad_length",
            IdProblem::BadCharacter { .. } => "id.bad_character",
            IdProblem::UnknownProvince { .. } => "id.unknown_province",
            IdProblem::BirthDateNotADate { .. } => "id.birth_date_not_a_date",
            IdProblem::BirthDateInFuture { .. } => "id.birth_date_in_future",
            IdProblem::BirthDateImplausible { .. } => "id.birth_date_implausible",
            IdProblem::CheckCharacterMismatch { .. } => "id.check_character_mismatch",
            IdProblem::Legacy15 { .. } => "id.legacy_15",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            IdProblem::BadLength { length } => {
                format!("身份号码应为18位（旧版为15位），实际为{length}位")
            }
            IdProblem::BadCharacter { position } => {
                format!("第{position}位字符无效：只能是数字，最后一位可以是X")
            }
            IdProblem::UnknownProvince { prefix } => {
                format!("前两位“{prefix}”不是有效的省级行政区划代码")
            }
            IdProblem::BirthDateNotADate { field } => {
                format!("出生日期“{field}”不是真实存在的日期")
            }
            IdProblem::BirthDateInFuture { birth_date } => {
                format!("出生日期{birth_date}晚于核验日期")
            }
            IdProblem::BirthDateImplausible { birth_date } => {
                format!("出生日期{birth_date}不合理（超过{MAX_PLAUSIBLE_AGE_YEARS}岁）")
            }
            IdProblem::CheckCharacterMismatch { expected, found } => {
                format!("校验码错误：最后一位应为{expected}，实际为{found}，号码可能抄错或伪造")
            }
            IdProblem::Legacy15 { upgraded } => match upgraded {
                Some(n) => format!(
                    "这是1999年以前的15位旧身份号码，不能作为现行证件；对应的18位号码应为{n}，请持现行居民身份证核验"
                ),
                None => "这是1999年以前的15位旧身份号码，不能作为现行证件，请持现行居民身份证核验"
                    .to_owned(),
            },
        }
    }

    fn message_en(&self) -> String {
        match self {
            IdProblem::BadLength { length } => format!(
                "an ID number has 18 characters (legacy numbers 15); this one has {length}"
            ),
            IdProblem::BadCharacter { position } => format!(
                "character {position} is not allowed: only digits, and X as the last character"
            ),
            IdProblem::UnknownProvince { prefix } => {
                format!("the first two digits \"{prefix}\" are not a province-level region code")
            }
            IdProblem::BirthDateNotADate { field } => {
                format!("the birth date \"{field}\" is not a real calendar date")
            }
            IdProblem::BirthDateInFuture { birth_date } => {
                format!("the birth date {birth_date} is after the date of the check")
            }
            IdProblem::BirthDateImplausible { birth_date } => format!(
                "the birth date {birth_date} is implausible (more than {MAX_PLAUSIBLE_AGE_YEARS} years ago)"
            ),
            IdProblem::CheckCharacterMismatch { expected, found } => format!(
                "wrong check character: the last character should be {expected}, not {found}; the number was mistyped or forged"
            ),
            IdProblem::Legacy15 { upgraded } => match upgraded {
                Some(n) => format!(
                    "this is a 15-digit number from before 1999 and not a current credential; its 18-character form would be {n}; check the holder's current ID card"
                ),
                None => "this is a 15-digit number from before 1999 and not a current credential; check the holder's current ID card".to_owned(),
            },
        }
    }
}

/// Everything [`check_id_number`] found out about a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdReport {
    /// The number as checked, with a lowercase x made uppercase.
    pub normalized: String,
    /// A well-formed, current 18-character number: no problems at all.
    pub valid: bool,
    /// A 15-digit number from before GB 11643-1999.
    pub legacy: bool,
    /// The birth date, when the field is a real date (even if other checks failed).
    pub birth_date: Option<NaiveDate>,
    /// The six-digit region code, when it is six digits.
    pub region: Option<String>,
    pub sex: Option<Sex>,
    pub problems: Vec<IdProblem>,
}

/// The check character for the first 17 characters, or None if any of them is not an ASCII digit.
pub fn check_character(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in first17.iter().zip(WEIGHTS) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * w;
    }
    CHECK_CHARS.get((sum % 11) as usize).map(|c| char::from(*c))
}

/// Whether this is a valid, current 18-character ID number on `today`.
pub fn is_valid_id_number(id: &str, today: NaiveDate) -> bool {
    check_id_number(id, today).valid
}

/// Check a resident ID number as of `today` (the local date of the check). Returns every problem.
pub fn check_id_number(id: &str, today: NaiveDate) -> IdReport {
    let normalized: String = if id.ends_with('x') {
        let mut s = id.to_owned();
        s.pop();
        s.push('X');
        s
    } else {
        id.to_owned()
    };
    let bytes = normalized.as_bytes();
    let length = normalized.chars().count();
    let mut problems = Vec::new();
    let mut report = IdReport {
        normalized: normalized.clone(),
        valid: false,
        legacy: false,
        birth_date: None,
        region: None,
        sex: None,
        problems: Vec::new(),
    };

    let (legacy, digits_len) = match (length, bytes.len()) {
        (18, 18) => (false, 17),
        (15, 15) => (true, 15),
        _ => {
            problems.push(IdProblem::BadLength { length });
            report.problems = problems;
            return report;
        }
    };
    report.legacy = legacy;

    // Characters: digits everywhere, X allowed only as the 18th.
    let mut all_digits = true;
    for (i, b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_digit() || (!legacy && i == 17 && *b == b'X');
        if !ok {
            all_digits = false;
            problems.push(IdProblem::BadCharacter { position: i + 1 });
        }
    }

    // Region: six digits, a known province prefix.
    if let Some(region) = normalized.get(0..6)
        && region.bytes().all(|b| b.is_ascii_digit())
    {
        report.region = Some(region.to_owned());
        let prefix = region.get(0..2).and_then(|p| p.parse::<u8>().ok());
        if prefix.and_then(province_name).is_none() {
            problems.push(IdProblem::UnknownProvince {
                prefix: region.get(0..2).unwrap_or_default().to_owned(),
            });
        }
    }

    // Birth date: YYYYMMDD (or YYMMDD in 19YY for legacy numbers).
    let birth_field = if legacy {
        normalized.get(6..12)
    } else {
        normalized.get(6..14)
    };
    if let Some(field) = birth_field
        && field.bytes().all(|b| b.is_ascii_digit())
    {
        let (y, m, d) = if legacy {
            (
                field
                    .get(0..2)
                    .and_then(|s| s.parse::<i32>().ok())
                    .map(|y| 1900 + y),
                field.get(2..4).and_then(|s| s.parse::<u32>().ok()),
                field.get(4..6).and_then(|s| s.parse::<u32>().ok()),
            )
        } else {
            (
                field.get(0..4).and_then(|s| s.parse::<i32>().ok()),
                field.get(4..6).and_then(|s| s.parse::<u32>().ok()),
                field.get(6..8).and_then(|s| s.parse::<u32>().ok()),
            )
        };
        match (y, m, d) {
            (Some(y), Some(m), Some(d)) => match NaiveDate::from_ymd_opt(y, m, d) {
                Some(date) => {
                    report.birth_date = Some(date);
                    if date > today {
                        problems.push(IdProblem::BirthDateInFuture { birth_date: date });
                    } else if today.year() - date.year() > MAX_PLAUSIBLE_AGE_YEARS {
                        problems.push(IdProblem::BirthDateImplausible { birth_date: date });
                    }
                }
                None => problems.push(IdProblem::BirthDateNotADate {
                    field: field.to_owned(),
                }),
            },
            _ => problems.push(IdProblem::BirthDateNotADate {
                field: field.to_owned(),
            }),
        }
    }

    // Sex: the last digit of the sequence code.
    let sex_index = if legacy { 14 } else { 16 };
    if let Some(b) = bytes.get(sex_index)
        && b.is_ascii_digit()
    {
        report.sex = Some(if (b - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        });
    }

    if legacy {
        let upgraded = if all_digits {
            upgrade_legacy(bytes)
        } else {
            None
        };
        problems.push(IdProblem::Legacy15 { upgraded });
    } else if let (Some(first17), Some(found)) = (bytes.get(0..digits_len), bytes.get(17))
        && let Some(expected) = check_character(first17)
        && char::from(*found) != expected
    {
        problems.push(IdProblem::CheckCharacterMismatch {
            expected,
            found: char::from(*found),
        });
    }

    report.valid = problems.is_empty();
    report.problems = problems;
    report
}

/// The 18-character form of a 15-digit number: "19" inserted before the year, check character added.
fn upgrade_legacy(digits15: &[u8]) -> Option<String> {
    let mut first17 = Vec::with_capacity(18);
    first17.extend_from_slice(digits15.get(0..6)?);
    first17.extend_from_slice(b"19");
    first17.extend_from_slice(digits15.get(6..15)?);
    let check = check_character(&first17)?;
    let mut s = String::from_utf8(first17).ok()?;
    s.push(check);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    fn codes(r: &IdReport) -> Vec<&'static str> {
        r.problems.iter().map(|p| p.code()).collect()
    }

    /// Build a valid number from 17 digits by computing the check character independently.
    fn with_check(first17: &str) -> String {
        let sum: u32 = first17
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * ((1u32 << (17 - i)) % 11))
            .sum();
        let c = match (12 - sum % 11) % 11 {
            10 => 'X',
            n => char::from_digit(n, 10).unwrap(),
        };
        format!("{first17}{c}")
    }

    #[test]
    fn gb11643_example_is_valid() {
        let r = check_id_number("11010519491231002X", today());
        assert!(r.valid, "{:?}", r.problems);
        assert!(!r.legacy);
        assert_eq!(r.birth_date, NaiveDate::from_ymd_opt(1949, 12, 31));
        assert_eq!(r.region.as_deref(), Some("110105"));
        assert_eq!(r.sex, Some(Sex::Female));
    }

    #[test]
    fn computed_examples_are_valid() {
        // 肥城市 370983, born 1985-06-15, sequence 123 (odd: male).
        let id = with_check("37098319850615123");
        let r = check_id_number(&id, today());
        assert!(r.valid, "{id}: {:?}", r.problems);
        assert_eq!(r.sex, Some(Sex::Male));
        assert_eq!(r.birth_date, NaiveDate::from_ymd_opt(1985, 6, 15));
        // Leap day, Hong Kong prefix, check character computed.
        let id = with_check("81000020000229004");
        assert!(check_id_number(&id, today()).valid, "{id}");
        // The independent computation agrees with the standard's example.
        assert_eq!(with_check("11010519491231002"), "11010519491231002X");
        // Check character 0 (sum mod 11 == 1) is handled.
        let zero = (0..1000)
            .map(|n| with_check(&format!("37098319850615{n:03}")))
            .find(|s| s.ends_with('0'))
            .unwrap();
        assert!(check_id_number(&zero, today()).valid, "{zero}");
    }

    #[test]
    fn lowercase_x_is_accepted() {
        let r = check_id_number("11010519491231002x", today());
        assert!(r.valid, "{:?}", r.problems);
        assert_eq!(r.normalized, "11010519491231002X");
    }

    #[test]
    fn wrong_check_character_is_reported_with_the_right_one() {
        let r = check_id_number("110105194912310021", today());
        assert!(!r.valid);
        assert_eq!(
            r.problems,
            vec![IdProblem::CheckCharacterMismatch {
                expected: 'X',
                found: '1'
            }]
        );
    }

    #[test]
    fn impossible_date_is_reported() {
        // February 30th, with a correct check character so only the date is wrong.
        let id = with_check("37098319900230123");
        let r = check_id_number(&id, today());
        assert_eq!(codes(&r), vec!["id.birth_date_not_a_date"]);
        assert_eq!(r.birth_date, None);
        // Not a leap year: 1900-02-29.
        let id = with_check("37098319000229123");
        assert_eq!(
            codes(&check_id_number(&id, today())),
            vec!["id.birth_date_not_a_date"]
        );
        // Month 13.
        let id = with_check("37098319901301123");
        assert_eq!(
            codes(&check_id_number(&id, today())),
            vec!["id.birth_date_not_a_date"]
        );
    }

    #[test]
    fn birth_date_after_today_and_too_old() {
        let id = with_check("37098320261130123");
        assert_eq!(
            codes(&check_id_number(&id, today())),
            vec!["id.birth_date_in_future"]
        );
        // Born today is fine.
        let id = with_check("37098320261129123");
        assert!(check_id_number(&id, today()).valid);
        let id = with_check("37098318800101123");
        assert_eq!(
            codes(&check_id_number(&id, today())),
            vec!["id.birth_date_implausible"]
        );
    }

    #[test]
    fn bad_length_and_characters() {
        for s in ["", "1234", "11010519491231002X1", "11010519491231002"] {
            assert_eq!(
                codes(&check_id_number(s, today())),
                vec!["id.bad_length"],
                "{s:?}"
            );
        }
        // 18 characters but multi-byte: counted in characters.
        let r = check_id_number("１１010519491231002X", today());
        assert_eq!(codes(&r), vec!["id.bad_length"]);
        let r = check_id_number("1101051949123X002X", today());
        assert!(codes(&r).contains(&"id.bad_character"));
        assert!(!r.valid);
    }

    #[test]
    fn unknown_province_collected_with_other_problems() {
        // 99: no such province; and a wrong check character: both reported.
        let mut id = with_check("99010519491231002");
        let wrong = if id.ends_with('0') { '1' } else { '0' };
        id.pop();
        id.push(wrong);
        let r = check_id_number(&id, today());
        assert_eq!(
            codes(&r),
            vec!["id.unknown_province", "id.check_character_mismatch"]
        );
    }

    #[test]
    fn legacy_15_digit_is_recognised_not_valid() {
        let r = check_id_number("110105491231002", today());
        assert!(!r.valid);
        assert!(r.legacy);
        assert_eq!(r.birth_date, NaiveDate::from_ymd_opt(1949, 12, 31));
        assert_eq!(r.sex, Some(Sex::Female));
        assert_eq!(
            r.problems,
            vec![IdProblem::Legacy15 {
                upgraded: Some("11010519491231002X".to_owned())
            }]
        );
    }

    #[test]
    fn every_problem_explains_itself() {
        let all = [
            IdProblem::BadLength { length: 3 },
            IdProblem::BadCharacter { position: 2 },
            IdProblem::UnknownProvince {
                prefix: "99".into(),
            },
            IdProblem::BirthDateNotADate {
                field: "19900230".into(),
            },
            IdProblem::BirthDateInFuture {
                birth_date: today(),
            },
            IdProblem::BirthDateImplausible {
                birth_date: today(),
            },
            IdProblem::CheckCharacterMismatch {
                expected: 'X',
                found: '1',
            },
            IdProblem::Legacy15 { upgraded: None },
        ];
        let mut seen = std::collections::HashSet::new();
        for p in &all {
            assert!(p.code().starts_with("id."));
            assert!(seen.insert(p.code()));
            assert!(!p.message_zh().is_empty() && !p.message_en().is_empty());
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = check_id_number(&s, today());
        }

        #[test]
        fn one_changed_digit_is_always_caught(pos in 0usize..17, delta in 1u8..10) {
            let id = "11010519491231002X";
            let mut b = id.as_bytes().to_vec();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(b).unwrap();
            proptest::prop_assert!(!check_id_number(&changed, today()).valid);
        }
    }
}
