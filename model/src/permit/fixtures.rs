//! Test fixtures for permits (a rule profile, the catalog, four signers and the steps of a whole
//! walk), shared by this crate's tests and, through the `test-support` feature, by the device
//! core's tests. Never compiled into a phone or server build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use super::*;
use crate::codes::signer::{DeviceSigner, SoftwareSigner};
use chrono::{NaiveDate, NaiveTime};

pub const H: i64 = 3600;

/// Unix seconds of a local China time.
pub fn cst(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
        .and_utc()
        .timestamp()
        - 8 * H
}

pub fn site(profile: &str) -> Site {
    Site {
        site_id: "site-370983-001".into(),
        name: "肥城某化工厂三车间".into(),
        profile_id: profile.into(),
        location: GeoPoint::from_degrees(36.182, 116.772),
        utc_offset_secs: 8 * 3600,
        night: NightHours {
            start: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
        },
        approval_radius_m: None,
    }
}

pub fn profile(id: &str) -> RuleProfile {
    ProfileSet::builtin()
        .unwrap()
        .select(id, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
        .unwrap()
        .clone()
}

/// Monday 2026-11-30, China time.
pub fn t(h: u32, min: u32) -> i64 {
    cst(2026, 11, 30, h, min)
}

pub struct Fx {
    pub profile: RuleProfile,
    pub catalog: Catalog,
    pub calendar: WorkCalendar,
    pub applicant: SoftwareSigner,
    pub checker: SoftwareSigner,
    /// The approver's key, signing with the person present (approvals must record it).
    pub approver: crate::codes::PresenceConfirmed<SoftwareSigner>,
    pub closer: SoftwareSigner,
}

pub fn actor(name: &str, id: &str, role: &str) -> Actor {
    Actor {
        name: name.into(),
        id: id.into(),
        role: role.into(),
    }
}

impl Fx {
    pub fn new(profile_id: &str) -> Fx {
        Fx {
            profile: profile(profile_id),
            catalog: Catalog::builtin().unwrap(),
            calendar: WorkCalendar::default(),
            applicant: SoftwareSigner::generate().unwrap(),
            checker: SoftwareSigner::generate().unwrap(),
            approver: crate::codes::PresenceConfirmed(SoftwareSigner::generate().unwrap()),
            closer: SoftwareSigner::generate().unwrap(),
        }
    }

    pub fn ctx(&self) -> RuleContext<'_> {
        RuleContext {
            profile: &self.profile,
            catalog: &self.catalog,
        }
    }

    /// The approver's device key.
    pub fn approver(&self) -> &SoftwareSigner {
        &self.approver.0
    }

    /// The applicant's and the site checker's device keys.
    pub fn applicant(&self) -> &SoftwareSigner {
        &self.applicant
    }

    pub fn checker(&self) -> &SoftwareSigner {
        &self.checker
    }

    /// The work calendar the fixture submits with.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }

    /// The signer directory enrolling the fixture's four signers with the roles they sign as in
    /// the standard timeline (the approver holds every approver role of the profile), valid from
    /// the day before.
    pub fn directory(&self) -> crate::signers::SignerDirectory {
        let approver_roles = self
            .profile
            .levels
            .iter()
            .map(|l| l.approver.id.clone())
            .collect();
        let entry = |key: &SoftwareSigner, id: &str, name: &str, roles: Vec<String>| {
            crate::signers::SignerEntry {
                public_key: key.public_key(),
                person_id: id.into(),
                name: name.into(),
                roles,
                device_id: format!("dev-{id}"),
                valid_from: t(0, 0) - 24 * H,
                valid_until: None,
            }
        };
        crate::signers::SignerDirectory::new(
            1,
            t(0, 0),
            vec![
                entry(&self.applicant, "S-001", "张三", vec!["applicant".into()]),
                entry(&self.checker, "S-003", "孙七", vec!["supervisor".into()]),
                entry(&self.approver.0, "S-004", "周八", approver_roles),
                entry(
                    &self.closer,
                    "S-002",
                    "王五",
                    vec!["supervisor".into(), "fire_watch".into()],
                ),
            ],
        )
    }

    pub fn approver_role(&self) -> String {
        self.profile
            .level(PermitLevel::Level2)
            .unwrap()
            .approver
            .id
            .clone()
    }

    pub fn content(&self) -> PermitContent {
        PermitContent {
            permit_id: "0193a1b2-0000-7000-8000-000000000001".into(),
            site: site(&self.profile.id),
            profile_id: self.profile.id.clone(),
            profile_version: self.profile.version.clone(),
            catalog_version: self.catalog.version.clone(),
            work_description: "更换3号储罐出口管线法兰".into(),
            hot_work_point: "3号储罐东侧管廊".into(),
            hot_work_points: 1,
            location: site(&self.profile.id).location,
            conditions: WorkConditions::default(),
            requested_level: PermitLevel::Level2,
            valid_from: t(8, 0),
            valid_until: t(17, 0),
            applicant: Person {
                name: "张三".into(),
                id: "S-001".into(),
            },
            welders: vec![Person {
                name: "李四".into(),
                id: "T370983199001011234".into(),
            }],
            machines: vec!["M-370983-0001".into()],
            fire_watch: vec![Person {
                name: "王五".into(),
                id: "S-002".into(),
            }],
        }
    }

    pub fn answers(&self) -> Vec<ChecklistAnswer> {
        let mut sample = SampleEvidence::crew(t(7, 15));
        sample.gas_point = "储罐内".into();
        sample_answers(
            &self.catalog,
            &[Section::Prohibition, Section::Must],
            &sample,
        )
    }

    pub fn post_work(&self) -> Vec<ChecklistAnswer> {
        post_work_answers()
    }

    pub fn gas(&self, at: i64, conc: u32) -> GasReading {
        GasReading {
            taken_at: at,
            lel_centi_pct: 500,
            concentration_centi_pct: conc,
            point: "动火点".into(),
            analyst: "赵六".into(),
        }
    }

    /// A valid action of each kind for a permit in the fixture's standard timeline.
    pub fn action(&self, kind: ActionKind) -> Action<'_> {
        match kind {
            ActionKind::Edit => Action::Edit {
                content: Box::new(self.content()),
                at: t(6, 50),
            },
            ActionKind::Submit => Action::Submit {
                by: actor("张三", "S-001", "applicant"),
                signer: &self.applicant,
                calendar: &self.calendar,
                at: t(7, 0),
                location: None,
            },
            ActionKind::SiteCheck => Action::SiteCheck {
                by: actor("孙七", "S-003", "supervisor"),
                signer: &self.checker,
                answers: self.answers(),
                at: t(7, 20),
                location: Some(self.content().location),
            },
            ActionKind::Approve => Action::Approve {
                by: actor("周八", "S-004", &self.approver_role()),
                signer: &self.approver,
                at: t(7, 40),
                location: Some(self.content().location),
            },
            ActionKind::Start => Action::Start {
                at: t(9, 0),
                continuous_monitoring: false,
                by: Some("T370983199001011234".into()),
            },
            ActionKind::Suspend => Action::Suspend {
                at: t(10, 0),
                reason: "午休".into(),
            },
            ActionKind::Resume => Action::Resume { at: t(10, 10) },
            ActionKind::Complete => Action::Complete { at: t(12, 0) },
            ActionKind::Close => Action::Close {
                by: actor("王五", "S-002", "supervisor"),
                signer: &self.closer,
                post_work: self.post_work(),
                at: t(12, 30),
                location: Some(self.content().location),
            },
            ActionKind::Reject => Action::Reject {
                by: actor("周八", "S-004", &self.approver_role()),
                at: t(7, 30),
                reason: "措施不落实".into(),
            },
            ActionKind::Cancel => Action::Cancel {
                by: actor("张三", "S-001", "applicant"),
                at: t(7, 30),
                reason: "工期调整".into(),
            },
            ActionKind::Expire => Action::Expire { at: t(17, 0) },
            ActionKind::RecordGas => Action::RecordGas {
                reading: self.gas(t(8, 55), 10),
                by: Some("赵六".into()),
            },
        }
    }

    pub fn draft(&self) -> Permit {
        Permit::draft(
            self.content(),
            &self.ctx(),
            &actor("张三", "S-001", "applicant"),
            t(6, 45),
        )
        .unwrap()
    }

    pub fn run(&self, p: &mut Permit, kinds: &[ActionKind]) {
        for k in kinds {
            p.apply(&self.ctx(), self.action(*k))
                .unwrap_or_else(|e| panic!("{k:?}: {e}"));
        }
    }

    /// A permit in the given state, reached along the standard timeline.
    pub fn in_state(&self, state: PermitState) -> Permit {
        use ActionKind as A;
        let path: &[A] = match state {
            PermitState::Draft => &[],
            PermitState::Submitted => &[A::Submit],
            PermitState::Checked => &[A::Submit, A::SiteCheck],
            PermitState::Approved => &[A::Submit, A::SiteCheck, A::Approve],
            PermitState::Active => &[A::Submit, A::SiteCheck, A::Approve, A::RecordGas, A::Start],
            PermitState::Suspended => &[
                A::Submit,
                A::SiteCheck,
                A::Approve,
                A::RecordGas,
                A::Start,
                A::Suspend,
            ],
            PermitState::Completed => &[
                A::Submit,
                A::SiteCheck,
                A::Approve,
                A::RecordGas,
                A::Start,
                A::Complete,
            ],
            PermitState::Closed => &[
                A::Submit,
                A::SiteCheck,
                A::Approve,
                A::RecordGas,
                A::Start,
                A::Complete,
                A::Close,
            ],
            PermitState::Rejected => &[A::Submit, A::Reject],
            PermitState::Cancelled => &[A::Cancel],
            PermitState::Expired => &[A::Submit, A::SiteCheck, A::Approve, A::Expire],
        };
        let mut p = self.draft();
        self.run(&mut p, path);
        assert_eq!(p.state, state);
        p
    }
}

/// The post-work answers (处置) a closing gives: the site photographed, the fire watch 王五 (S-002)
/// watched 30 minutes.
pub fn post_work_answers() -> Vec<ChecklistAnswer> {
    vec![
        ChecklistAnswer::confirmed(
            "close.01",
            vec![Evidence::Photo {
                sha256: vec![3; 32],
            }],
        ),
        ChecklistAnswer::confirmed("close.02", vec![]),
        ChecklistAnswer::confirmed(
            "close.03",
            vec![
                Evidence::Person {
                    role: PersonRole::FireWatch,
                    name: "王五".into(),
                    id: "S-002".into(),
                },
                Evidence::Number {
                    key: "watch_minutes".into(),
                    value: 30,
                },
            ],
        ),
    ]
}
