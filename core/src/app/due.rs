//! What the user must do and by when, as data: each open permit's deadlines (gas analysis
//! validity, re-analysis after an interruption, the permit's expiry, the fire watch after the
//! work) and the licences of the welders the open permits name that expire or fall due for review
//! soon. A pure function of the store's data and the time given; the shell schedules its own
//! notifications from it (no timer here).

use serde::Serialize;

use super::device::Device;
use super::error::AppError;
use super::lang::Lang;
use super::permits::{DeadlineKind, deadlines};
use crate::permit::{PermitState, ProfileSet};
use crate::rules::RegistryView;
use crate::store::StoreError;

/// How far ahead a licence's expiry or review is listed by default.
pub const LICENCE_NOTICE_DAYS: u32 = 30;

/// Kinds of thing due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueKind {
    /// Start (or resume) before the latest gas analysis goes stale.
    GasTestValid,
    /// Resume before this, or analyse the gas again.
    GasRetestAfterInterruption,
    /// The permit's validity ends.
    PermitExpiry,
    /// The fire watch after the work ends; close the permit from then on.
    FireWatch,
    /// A licence (作业证) expires.
    LicenceExpiry,
    /// A licence falls due for review (复审).
    LicenceReview,
}

/// One thing the user must do, and by when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    pub kind: DueKind,
    pub permit_id: Option<String>,
    pub certificate_no: Option<String>,
    /// Unix seconds.
    pub due_at: i64,
    /// `due_at` has passed (for the fire watch: closing is due).
    pub overdue: bool,
    pub text: String,
}

/// What is due at `now`, soonest first; licences listed [`LICENCE_NOTICE_DAYS`] ahead.
pub fn due(device: &Device, now: i64, lang: Lang) -> Result<Vec<Due>, AppError> {
    due_within(device, now, lang, LICENCE_NOTICE_DAYS)
}

/// [`due`] with the licence notice threshold in days.
pub fn due_within(
    device: &Device,
    now: i64,
    lang: Lang,
    licence_days: u32,
) -> Result<Vec<Due>, AppError> {
    use PermitState as S;
    let profiles = ProfileSet::builtin_shared().map_err(|e| {
        AppError::input(
            "permit.profiles",
            format!("内置规则配置无法读取：{e:?}"),
            format!("the built-in rule profiles cannot be read: {e:?}"),
        )
    })?;
    let mut out = Vec::new();
    let mut certificates: Vec<String> = Vec::new();
    for permit in device.store().permits(None)? {
        let open = matches!(
            permit.state,
            S::Draft
                | S::Submitted
                | S::Checked
                | S::Approved
                | S::Active
                | S::Suspended
                | S::Completed
        );
        if !open {
            continue;
        }
        for w in &permit.content.welders {
            if !certificates.contains(&w.id) {
                certificates.push(w.id.clone());
            }
        }
        let c = &permit.content;
        let Some(profile) = profiles.get(&c.profile_id, &c.profile_version) else {
            continue;
        };
        for d in deadlines(&permit, profile, now, lang) {
            let kind = match d.kind {
                DeadlineKind::GasTestValidUntil => {
                    // Only while the analysis still lets the work start or resume.
                    if permit.state == S::Active {
                        continue;
                    }
                    DueKind::GasTestValid
                }
                DeadlineKind::GasRetestAfterInterruption => DueKind::GasRetestAfterInterruption,
                DeadlineKind::PermitExpiry => DueKind::PermitExpiry,
                DeadlineKind::FireWatchUntil => DueKind::FireWatch,
            };
            out.push(Due {
                kind,
                permit_id: Some(c.permit_id.clone()),
                certificate_no: None,
                due_at: d.at,
                overdue: d.passed,
                text: d.text.text,
            });
        }
    }
    let horizon = now.saturating_add(i64::from(licence_days) * 86_400);
    for cert in certificates {
        let licence = device
            .store()
            .licence(&cert)
            .map_err(|e| AppError::Store(StoreError::InvalidData(e.to_string())))?;
        let Some(licence) = licence else { continue };
        for (kind, date, zh, en) in [
            (
                DueKind::LicenceExpiry,
                licence.expires_on,
                "作业证到期",
                "licence expires",
            ),
            (
                DueKind::LicenceReview,
                licence.next_review_on,
                "作业证复审到期",
                "licence review due",
            ),
        ] {
            // The end of that day in China time (the registry's dates are China dates).
            let Some(end) = date
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp() - 8 * 3600)
            else {
                continue;
            };
            if end > horizon {
                continue;
            }
            out.push(Due {
                kind,
                permit_id: None,
                certificate_no: Some(cert.clone()),
                due_at: end,
                overdue: end <= now,
                text: lang
                    .pick(
                        &format!("{}（{}）{zh}：{date}", licence.name, cert),
                        &format!("{} ({}): {en} on {date}", licence.name, cert),
                    )
                    .to_owned(),
            });
        }
    }
    out.sort_by(|a, b| {
        a.due_at
            .cmp(&b.due_at)
            .then(a.kind.cmp_key().cmp(&b.kind.cmp_key()))
    });
    Ok(out)
}

impl DueKind {
    fn cmp_key(self) -> u8 {
        self as u8
    }
}
