//! Scan-to-start (扫码开机) end to end: from the two scanned texts (the machine label and the welder's
//! code) to one start-work decision, offline. Codes are verified against the device's trust store and
//! revocations; a code that fails verification, or an unsigned text, becomes a finding, so the answer
//! always lists every reason; the registry and the hot-work permit join through the rules.
//!
//! Pure apart from the registry reads behind [`RegistryView`]: the time, the trust data and the
//! permit are passed in.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::codes::{
    CodeKind, LookupTarget, ReplayCache, ScannedText, VerifiedClaims, Verifier, classify,
};
use crate::domain::{Explain, MachineClass, MachineLabel, WelderCredential};
use crate::permit::{Permit, Verdict, permit_findings};
use crate::rules::{
    Decision, Finding, MachineEvidence, RegistryView, Severity, StartWorkRequest, WelderEvidence,
    WorkTime, decide_start_work,
};
use crate::store::Store;

/// Where the permit for a welder at a site comes from: the device database, or a permit given
/// directly (tests, a permit scanned and checked by the caller).
pub trait PermitSource {
    /// The permit to check for this welder at this site at `at` (Unix seconds), already
    /// signature-checked; an error (e.g. a tampered stored permit) is a refusal with its reason.
    fn permit_for(
        &self,
        site_id: &str,
        certificate_no: &str,
        at: i64,
    ) -> Result<Option<Permit>, Finding>;
}

/// A permit handed over directly (or none).
#[derive(Debug, Clone, Copy)]
pub struct GivenPermit<'a>(pub Option<&'a Permit>);

impl PermitSource for GivenPermit<'_> {
    fn permit_for(&self, _site: &str, _cert: &str, _at: i64) -> Result<Option<Permit>, Finding> {
        Ok(self.0.cloned())
    }
}

impl PermitSource for Store {
    fn permit_for(
        &self,
        site_id: &str,
        certificate_no: &str,
        at: i64,
    ) -> Result<Option<Permit>, Finding> {
        let deny = |e: &dyn Explain| Finding::from_explain(e, Severity::Deny);
        let permit = self
            .permit_to_check(site_id, certificate_no, at)
            .map_err(|e| deny(&e))?;
        // Who signed it, against the signer directory this device synced (docs/adr/0014).
        if let Some(permit) = &permit {
            let profiles = crate::permit::ProfileSet::builtin_shared().map_err(|e| {
                Finding::new(
                    "permit.profiles",
                    Severity::Deny,
                    e.to_string(),
                    e.to_string(),
                )
            })?;
            let directory = self.signer_directory().map_err(|e| deny(&e))?;
            crate::permit::vouch(permit, profiles, directory.as_ref()).map_err(|e| deny(&e))?;
        }
        Ok(permit)
    }
}

/// The hot-work permit part of a start-work question.
#[derive(Clone, Copy)]
pub struct PermitContext<'a> {
    pub source: &'a dyn PermitSource,
    /// The site where the work happens.
    pub site_id: &'a str,
}

/// One scan-to-start question.
#[derive(Clone, Copy)]
pub struct ScanToStart<'a> {
    /// The text scanned from the machine's label.
    pub machine_text: &'a str,
    /// The text scanned from the welder's phone (a presentation) or certificate.
    pub welder_text: &'a str,
    pub permit: PermitContext<'a>,
    pub at: DateTime<Utc>,
}

/// What the machine's scanned text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum MachineSource {
    /// A label whose issuer signature verified.
    SignedLabel { label: MachineLabel, kid: String },
    /// An unsigned machine id, to be looked up in the registry.
    UnsignedId { machine_id: String },
    /// Nothing usable: the label failed verification or is not a machine code.
    Unusable,
}

/// What the welder's scanned text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum WelderSource {
    /// A live presentation signed by the credential's device key just now.
    Presentation {
        credential: WelderCredential,
        credential_id: String,
    },
    /// A credential without a live presentation (could be a screenshot).
    Credential {
        credential: WelderCredential,
        credential_id: String,
    },
    /// An unsigned certificate number, to be looked up in the registry.
    UnsignedCertificateNo { certificate_no: String },
    /// Nothing usable.
    Unusable,
}

/// The answer to a scan-to-start question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartWorkOutcome {
    pub decision: Decision,
    pub machine: MachineSource,
    pub welder: WelderSource,
    /// The machine id and certificate number the decision was about, when known (for the record).
    pub machine_id: Option<String>,
    pub certificate_no: Option<String>,
    /// The permit checked, if any.
    pub permit_id: Option<String>,
}

/// Decide whether work may start from the scanned texts.
pub fn scan_to_start<R: RegistryView + ?Sized>(
    question: &ScanToStart<'_>,
    verifier: &Verifier<'_>,
    replay: &mut ReplayCache,
    registry: &R,
) -> StartWorkOutcome {
    let now = question.at.timestamp();
    let mut extra: Vec<Finding> = Vec::new();
    let machine = read_machine(question.machine_text, verifier, replay, now, &mut extra);
    let welder = read_welder(question.welder_text, verifier, replay, now, &mut extra);

    let machine_id = match &machine {
        MachineSource::SignedLabel { label, .. } => Some(label.machine_id.clone()),
        MachineSource::UnsignedId { machine_id } => Some(machine_id.clone()),
        MachineSource::Unusable => None,
    };
    let certificate_no = match &welder {
        WelderSource::Presentation { credential, .. }
        | WelderSource::Credential { credential, .. } => Some(credential.certificate_no.clone()),
        WelderSource::UnsignedCertificateNo { certificate_no } => Some(certificate_no.clone()),
        WelderSource::Unusable => None,
    };

    // Revocation of the credential itself (the rules check the licence; the codes checked the set the
    // verifier holds): the registry cache may know a newer list.
    if let WelderSource::Presentation { credential_id, .. }
    | WelderSource::Credential { credential_id, .. } = &welder
    {
        match registry.is_revoked(crate::domain::RevocationTarget::Credential, credential_id) {
            Ok(true) => extra.push(Finding::new(
                "credential.revoked",
                Severity::Deny,
                "该人员码已被吊销",
                "This welder credential has been revoked",
            )),
            Ok(false) => {}
            Err(e) => extra.push(Finding::new(
                "registry.unavailable",
                Severity::Deny,
                format!("无法读取登记库：{e}"),
                format!("The registry could not be read: {e}"),
            )),
        }
    }

    // The permit check needs the machine's class: from the signed label, else from the registry.
    let machine_class = match (&machine, machine_id.as_deref()) {
        (MachineSource::SignedLabel { label, .. }, _) => Some(label.class),
        (_, Some(id)) => registry.machine(id).ok().flatten().map(|m| m.class),
        _ => None,
    };
    let mut permit_id = None;
    if let (Some(class), Some(mid), Some(cert)) = (
        machine_class,
        machine_id.as_deref(),
        certificate_no.as_deref(),
    ) {
        match question
            .permit
            .source
            .permit_for(question.permit.site_id, cert, now)
        {
            Ok(permit) => {
                permit_id = permit.as_ref().map(|p| p.content.permit_id.clone());
                extra.extend(permit_part(
                    permit.as_ref(),
                    question.permit.site_id,
                    cert,
                    mid,
                    class,
                    now,
                ));
            }
            Err(finding) => extra.push(finding),
        }
    }

    let decision = match (&machine, &welder) {
        (MachineSource::Unusable, _) | (_, WelderSource::Unusable) => {
            // Without both parties there is nothing for the rules to judge: deny with every reason.
            let mut findings = extra;
            findings.sort_by_key(|f| f.severity);
            Decision {
                allowed: false,
                scan_exempt: false,
                rule_set: crate::rules::rule_set_for(WorkTime::china(question.at).local_date).id,
                findings,
            }
        }
        _ => {
            let machine_evidence = match &machine {
                MachineSource::SignedLabel { label, .. } => MachineEvidence::Label(label),
                MachineSource::UnsignedId { machine_id } => MachineEvidence::Id(machine_id),
                MachineSource::Unusable => MachineEvidence::Id(""),
            };
            let welder_evidence = match &welder {
                WelderSource::Presentation { credential, .. } => {
                    WelderEvidence::Presentation(credential)
                }
                WelderSource::Credential { credential, .. } => {
                    WelderEvidence::Credential(credential)
                }
                WelderSource::UnsignedCertificateNo { certificate_no } => {
                    WelderEvidence::CertificateNo(certificate_no)
                }
                WelderSource::Unusable => WelderEvidence::CertificateNo(""),
            };
            let request = StartWorkRequest {
                machine: machine_evidence,
                welder: welder_evidence,
                time: WorkTime::china(question.at),
                external: &extra,
            };
            decide_start_work(&request, registry)
        }
    };
    StartWorkOutcome {
        decision,
        machine,
        welder,
        machine_id,
        certificate_no,
        permit_id,
    }
}

fn permit_part(
    permit: Option<&Permit>,
    site_id: &str,
    certificate_no: &str,
    machine_id: &str,
    class: MachineClass,
    now: i64,
) -> Vec<Finding> {
    let check = permit_findings(permit, certificate_no, machine_id, class, site_id, now);
    check
        .findings
        .iter()
        .map(|f| {
            let severity = match f.verdict() {
                Verdict::Deny => Severity::Deny,
                Verdict::Warn => Severity::Warn,
            };
            Finding::from_explain(f, severity)
        })
        .collect()
}

fn code_finding(error: &dyn Explain, what_zh: &str, what_en: &str) -> Finding {
    Finding::new(
        error.code(),
        Severity::Deny,
        format!("{what_zh}：{}", error.message_zh()),
        format!("{what_en}: {}", error.message_en()),
    )
}

fn read_machine(
    text: &str,
    verifier: &Verifier<'_>,
    replay: &mut ReplayCache,
    now: i64,
    findings: &mut Vec<Finding>,
) -> MachineSource {
    match classify(text) {
        ScannedText::Signed => {
            match verifier.verify_expecting(text, CodeKind::MachineLabel, now, replay) {
                Ok(code) => match code.claims {
                    VerifiedClaims::MachineLabel(label) => MachineSource::SignedLabel {
                        label,
                        kid: code.kid,
                    },
                    _ => MachineSource::Unusable,
                },
                Err(e) => {
                    findings.push(code_finding(&e, "设备码", "Machine label"));
                    MachineSource::Unusable
                }
            }
        }
        ScannedText::Unsigned(unsigned) => {
            let lookup = unsigned
                .lookup
                .as_ref()
                .filter(|l| l.target == LookupTarget::Machine);
            match lookup {
                Some(l) => MachineSource::UnsignedId {
                    machine_id: l.id.clone(),
                },
                None => {
                    findings.push(Finding::new(
                        "code.not_a_machine_code",
                        Severity::Deny,
                        format!("设备码：{}", unsigned.message_zh()),
                        format!("Machine label: {}", unsigned.message_en()),
                    ));
                    MachineSource::Unusable
                }
            }
        }
    }
}

fn read_welder(
    text: &str,
    verifier: &Verifier<'_>,
    replay: &mut ReplayCache,
    now: i64,
    findings: &mut Vec<Finding>,
) -> WelderSource {
    match classify(text) {
        ScannedText::Signed => match verifier.verify(text, now, replay) {
            Ok(code) => {
                let credential_id = code.credential_id.unwrap_or_default();
                match code.claims {
                    VerifiedClaims::Presentation { credential, .. } => WelderSource::Presentation {
                        credential: credential.credential,
                        credential_id,
                    },
                    VerifiedClaims::WelderCredential(claims) => WelderSource::Credential {
                        credential: claims.credential,
                        credential_id,
                    },
                    VerifiedClaims::MachineLabel(_) => {
                        findings.push(Finding::new(
                            "code.not_a_welder_code",
                            Severity::Deny,
                            "人员码位置扫到的是设备码",
                            "A machine label was scanned where the welder's code was expected",
                        ));
                        WelderSource::Unusable
                    }
                }
            }
            Err(e) => {
                findings.push(code_finding(&e, "人员码", "Welder code"));
                WelderSource::Unusable
            }
        },
        ScannedText::Unsigned(unsigned) => {
            let lookup = unsigned
                .lookup
                .as_ref()
                .filter(|l| l.target == LookupTarget::Licence);
            match lookup {
                Some(l) => WelderSource::UnsignedCertificateNo {
                    certificate_no: l.id.clone(),
                },
                None => {
                    findings.push(Finding::new(
                        "code.not_a_welder_code",
                        Severity::Deny,
                        format!("人员码：{}", unsigned.message_zh()),
                        format!("Welder code: {}", unsigned.message_en()),
                    ));
                    WelderSource::Unusable
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
