//! `weldguard id check ID`: is this a valid resident ID number (GB 11643-1999)?
//!
//! Any well-formed question exits 0 and prints `valid` true/false with every reason; only unusable
//! input (an empty number) exits non-zero. The number is checked against today's date in China
//! (UTC+8) unless `--today` gives another date.

use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;
use weldguard_core::domain::Explain;
use weldguard_core::rules::{IdReport, Sex, WorkTime, check_id_number, province_name};

use crate::output::{Failure, Lang, Output};

#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(subcommand)]
    command: IdCommand,
}

#[derive(Debug, Subcommand)]
enum IdCommand {
    /// Check an 18-character (or legacy 15-digit) resident ID number.
    Check {
        /// The ID number; a lowercase x is accepted for X.
        id: String,
        /// Check as of this date (YYYY-MM-DD) instead of today in China.
        #[arg(long)]
        today: Option<NaiveDate>,
    },
}

/// One reason, as printed in JSON.
#[derive(Debug, Serialize)]
struct Reason {
    code: &'static str,
    zh: String,
    en: String,
}

/// The JSON answer of `id check`.
#[derive(Debug, Serialize)]
struct CheckAnswer {
    id: String,
    valid: bool,
    legacy: bool,
    birth_date: Option<NaiveDate>,
    region: Option<String>,
    province: Option<&'static str>,
    sex: Option<Sex>,
    reasons: Vec<Reason>,
}

impl CheckAnswer {
    fn from_report(r: IdReport) -> Self {
        let province = r
            .region
            .as_deref()
            .and_then(|s| s.get(0..2))
            .and_then(|p| p.parse::<u8>().ok())
            .and_then(province_name)
            .map(|(zh, _)| zh);
        Self {
            reasons: r
                .problems
                .iter()
                .map(|p| Reason {
                    code: p.code(),
                    zh: p.message_zh(),
                    en: p.message_en(),
                })
                .collect(),
            id: r.normalized,
            valid: r.valid,
            legacy: r.legacy,
            birth_date: r.birth_date,
            region: r.region,
            province,
            sex: r.sex,
        }
    }
}

pub fn run(args: IdArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        IdCommand::Check { id, today } => check(&id, today, out),
    }
}

fn check(id: &str, today: Option<NaiveDate>, out: &Output) -> Result<(), Failure> {
    let id = id.trim();
    if id.is_empty() {
        return Err(Failure::input(
            "id.empty",
            out.lang
                .pick("身份号码为空", "the ID number is empty")
                .to_owned(),
        ));
    }
    let today = today.unwrap_or_else(|| WorkTime::china(Utc::now()).local_date);
    let answer = CheckAnswer::from_report(check_id_number(id, today));
    if out.json {
        return out.json(&answer);
    }
    stdout!("{}", human(&answer, out.lang));
    Ok(())
}

fn human(a: &CheckAnswer, lang: Lang) -> String {
    let mut s = String::new();
    let verdict = match (a.valid, a.legacy) {
        (true, _) => lang.pick("有效", "valid"),
        (false, true) => lang.pick(
            "旧版15位号码，不能作为现行证件",
            "legacy 15-digit number, not a current credential",
        ),
        (false, false) => lang.pick("无效", "not valid"),
    };
    s.push_str(&format!("{}: {verdict}\n", a.id));
    if let Some(b) = a.birth_date {
        s.push_str(&format!("  {} {b}\n", lang.pick("出生日期", "birth date")));
    }
    if let Some(r) = &a.region {
        let prov = r
            .get(0..2)
            .and_then(|p| p.parse::<u8>().ok())
            .and_then(province_name)
            .map(|(zh, en)| format!(" ({})", lang.pick(zh, en)))
            .unwrap_or_default();
        s.push_str(&format!(
            "  {} {r}{prov}\n",
            lang.pick("地区代码", "region")
        ));
    }
    if let Some(sex) = a.sex {
        let text = match sex {
            Sex::Male => lang.pick("男", "male"),
            Sex::Female => lang.pick("女", "female"),
        };
        s.push_str(&format!("  {} {text}\n", lang.pick("性别", "sex")));
    }
    for r in &a.reasons {
        s.push_str(&format!("  - {} [{}]\n", lang.pick(&r.zh, &r.en), r.code));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str) -> CheckAnswer {
        CheckAnswer::from_report(check_id_number(
            id,
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
        ))
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(answer("11010519491231002x")).unwrap();
        assert_eq!(v["valid"], true);
        assert_eq!(v["legacy"], false);
        assert_eq!(v["birth_date"], "1949-12-31");
        assert_eq!(v["region"], "110105");
        assert_eq!(v["sex"], "female");
        assert_eq!(v["reasons"], serde_json::json!([]));
        let v = serde_json::to_value(answer("110105194912310021")).unwrap();
        assert_eq!(v["valid"], false);
        assert_eq!(v["reasons"][0]["code"], "id.check_character_mismatch");
        assert!(v["reasons"][0]["zh"].as_str().unwrap().contains("校验码"));
    }

    #[test]
    fn human_text_in_both_languages() {
        let a = answer("110105491231002");
        let en = human(&a, Lang::En);
        assert!(
            en.contains("legacy") && en.contains("11010519491231002X"),
            "{en}"
        );
        let zh = human(&a, Lang::Zh);
        assert!(zh.contains("旧版") && zh.contains("北京市"), "{zh}");
    }
}
