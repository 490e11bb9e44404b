//! The permit part of the start-work decision (扫码开机): mobile work needs an approved, unexpired
//! permit naming this welder and this site; fixed-station machines under process control are exempt.
//! Pure: the permit (already verified by the caller), the welder, the machine, the site and the time
//! are passed in.

use serde::{Deserialize, Serialize};

use super::model::{Permit, PermitState};
use crate::domain::{Explain, MachineClass};

/// Whether a finding stops the machine or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Deny,
    Warn,
}

/// One reason from the permit check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PermitFinding {
    /// No permit presented.
    Missing,
    /// The permit is not approved (or was closed, rejected, cancelled, suspended…).
    NotApproved {
        state: PermitState,
    },
    NotYetValid {
        valid_from: i64,
    },
    Expired {
        valid_until: i64,
    },
    /// The permit does not name this welder.
    WelderNotNamed {
        certificate_no: String,
    },
    /// The permit is for another site.
    WrongSite {
        permit_site: String,
    },
    /// The permit lists machines and this one is not among them.
    MachineNotNamed {
        machine_id: String,
    },
}

impl PermitFinding {
    pub fn verdict(&self) -> Verdict {
        match self {
            PermitFinding::MachineNotNamed { .. } => Verdict::Warn,
            _ => Verdict::Deny,
        }
    }
}

impl Explain for PermitFinding {
    fn code(&self) -> &'static str {
        match self {
            PermitFinding::Missing => "permit.missing",
            PermitFinding::NotApproved { .. } => "permit.not_approved",
            PermitFinding::NotYetValid { .. } => "permit.not_yet_valid",
            PermitFinding::Expired { .. } => "permit.expired",
            PermitFinding::WelderNotNamed { .. } => "permit.welder_not_named",
            PermitFinding::WrongSite { .. } => "permit.wrong_site",
            PermitFinding::MachineNotNamed { .. } => "permit.machine_not_named",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            PermitFinding::Missing => "未办理动火审批手续，不准焊割：没有动火作业证".into(),
            PermitFinding::NotApproved { state } => {
                format!("动火作业证处于“{}”状态，不能作业", state.name_zh())
            }
            PermitFinding::NotYetValid { .. } => "动火作业证尚未生效".into(),
            PermitFinding::Expired { .. } => "动火作业证已过有效期".into(),
            PermitFinding::WelderNotNamed { certificate_no } => {
                format!("动火作业证未列明此焊工（证号{certificate_no}）")
            }
            PermitFinding::WrongSite { permit_site } => {
                format!("动火作业证属于其他作业地点（{permit_site}）")
            }
            PermitFinding::MachineNotNamed { machine_id } => {
                format!("动火作业证未列明此焊机（{machine_id}）")
            }
        }
    }

    fn message_en(&self) -> String {
        match self {
            PermitFinding::Missing => {
                "no hot-work permit: welding without approval is forbidden".into()
            }
            PermitFinding::NotApproved { state } => {
                format!(
                    "the hot-work permit is {}; work may not start",
                    state.name_en()
                )
            }
            PermitFinding::NotYetValid { .. } => "the hot-work permit is not valid yet".into(),
            PermitFinding::Expired { .. } => "the hot-work permit has expired".into(),
            PermitFinding::WelderNotNamed { certificate_no } => {
                format!(
                    "the hot-work permit does not name this welder (certificate {certificate_no})"
                )
            }
            PermitFinding::WrongSite { permit_site } => {
                format!("the hot-work permit is for another site ({permit_site})")
            }
            PermitFinding::MachineNotNamed { machine_id } => {
                format!("the hot-work permit does not list this machine ({machine_id})")
            }
        }
    }
}

/// The permit part of a start-work decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitCheck {
    /// The machine is a fixed station under process control: no permit is required here.
    pub exempt: bool,
    /// Every failed condition, not only the first.
    pub findings: Vec<PermitFinding>,
}

impl PermitCheck {
    pub fn denies(&self) -> bool {
        self.findings.iter().any(|f| f.verdict() == Verdict::Deny)
    }
}

/// Check the permit for starting `machine_id` (of `machine_class`) by the welder with
/// `certificate_no` at `site_id` at time `at`. The caller has verified the permit's signatures.
pub fn permit_findings(
    permit: Option<&Permit>,
    certificate_no: &str,
    machine_id: &str,
    machine_class: MachineClass,
    site_id: &str,
    at: i64,
) -> PermitCheck {
    if machine_class == MachineClass::FixedStation {
        return PermitCheck {
            exempt: true,
            findings: Vec::new(),
        };
    }
    let Some(permit) = permit else {
        return PermitCheck {
            exempt: false,
            findings: vec![PermitFinding::Missing],
        };
    };
    let c = &permit.content;
    let mut findings = Vec::new();
    match permit.state {
        PermitState::Approved | PermitState::Active => {
            if at < c.valid_from {
                findings.push(PermitFinding::NotYetValid {
                    valid_from: c.valid_from,
                });
            } else if at >= c.valid_until {
                findings.push(PermitFinding::Expired {
                    valid_until: c.valid_until,
                });
            }
        }
        PermitState::Expired => findings.push(PermitFinding::Expired {
            valid_until: c.valid_until,
        }),
        state => findings.push(PermitFinding::NotApproved { state }),
    }
    if !c.welders.iter().any(|w| w.id == certificate_no) {
        findings.push(PermitFinding::WelderNotNamed {
            certificate_no: certificate_no.to_owned(),
        });
    }
    if c.site.site_id != site_id {
        findings.push(PermitFinding::WrongSite {
            permit_site: c.site.site_id.clone(),
        });
    }
    if !c.machines.is_empty() && !c.machines.iter().any(|m| m == machine_id) {
        findings.push(PermitFinding::MachineNotNamed {
            machine_id: machine_id.to_owned(),
        });
    }
    PermitCheck {
        exempt: false,
        findings,
    }
}
