//! The start-work decision (扫码开机): may this welder switch on this machine now?
//!
//! Input: what the machine showed ([`MachineEvidence`]), what the welder showed ([`WelderEvidence`]),
//! the registry ([`RegistryView`]) and the time of the work ([`WorkTime`]). Output: a [`Decision`]
//! with EVERY failing condition, not only the first, each a [`Finding`] (stable code, severity,
//! Chinese and English). Work is allowed when no finding has severity deny.
//!
//! Signatures are checked before this (by `codes`): a `Label`, `Credential` or `Presentation` here
//! means its signature was verified. Bare ids and certificate numbers from unsigned sources (typed,
//! printed, URL QR codes) prove nothing by themselves: only the registry's answer counts, and the
//! decision says so.
//!
//! Registry reads per decision: machine, machine-label revocation, licence, licence revocation, and a
//! binding lookup only when the welder's employer does not own the machine (at most five point reads).
//! A read that fails becomes a `registry.unavailable` deny finding, never a panic.
//!
//! Seam for hot-work permits (a later issue): the permit rules run elsewhere and pass their findings
//! in [`StartWorkRequest::external`]; they join this decision unchanged (a deny there denies here).
//! [`WorkTime::instant`] is carried for them (permit windows are instants, licence dates are days).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Serialize;

use super::finding::{Finding, RuleCode, Severity};
use super::id_number::check_id_number;
use super::licence::{
    LicenceTerms, RuleSetId, check_category, check_terms, revoked_finding, rule_set_for,
};
use super::machine::check_machine;
use super::registry::{RegistryError, RegistryView};
use crate::domain::{
    Explain, Licence, LicenceStatus, Machine, MachineClass, MachineLabel, RevocationTarget,
    WelderCredential,
};

/// What identifies the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineEvidence<'a> {
    /// A machine label (设备码) whose signature the caller has verified.
    Label(&'a MachineLabel),
    /// A bare machine id from an unsigned source: it proves nothing, the registry decides.
    Id(&'a str),
}

/// What identifies the welder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WelderEvidence<'a> {
    /// A welder credential (人员码) whose issuer signature was verified, shown without a live
    /// presentation (it could be a screenshot of someone else's code).
    Credential(&'a WelderCredential),
    /// A credential with a verified live presentation signed by the holder's device just now.
    Presentation(&'a WelderCredential),
    /// A bare certificate number from an unsigned source: it proves nothing, the registry decides.
    CertificateNo(&'a str),
}

/// When the work happens.
///
/// Licence dates are calendar dates in China, so the decision judges them on `local_date`, which the
/// caller derives from the instant (China has used UTC+8 without daylight saving since 1991:
/// [`WorkTime::china`] does that). `instant` is kept for rules that work on instants (permits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkTime {
    pub instant: DateTime<Utc>,
    pub local_date: NaiveDate,
}

impl WorkTime {
    pub fn new(instant: DateTime<Utc>, local_date: NaiveDate) -> Self {
        Self {
            instant,
            local_date,
        }
    }

    /// The work time with its local date in China Standard Time (UTC+8).
    pub fn china(instant: DateTime<Utc>) -> Self {
        let local_date = FixedOffset::east_opt(8 * 3600)
            .map(|cst| instant.with_timezone(&cst).date_naive())
            .unwrap_or_else(|| instant.date_naive());
        Self::new(instant, local_date)
    }
}

/// One start-work question.
#[derive(Debug, Clone, Copy)]
pub struct StartWorkRequest<'a> {
    pub machine: MachineEvidence<'a>,
    pub welder: WelderEvidence<'a>,
    pub time: WorkTime,
    /// Findings computed outside these rules that join the decision (hot-work permit checks, later).
    pub external: &'a [Finding],
}

/// The answer: allowed or not, and every finding behind it (deny first, then warn, then info).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The machine is a fixed station under process control: scanning to start is not required.
    pub scan_exempt: bool,
    /// The licence rule set the work date selected.
    pub rule_set: RuleSetId,
    pub findings: Vec<Finding>,
}

impl Decision {
    /// Whether a finding with this code is present.
    pub fn has(&self, code: &str) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// The deny findings.
    pub fn denials(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_deny())
    }
}

fn registry_failed(what_zh: &str, what_en: &str, e: &RegistryError) -> Finding {
    RuleCode::RegistryUnavailable.finding(
        format!("无法读取登记库（{what_zh}）：{}，不能确认，暂不允许作业", e.0),
        format!(
            "the registry could not be read ({what_en}): {}; nothing can be confirmed, so work may not start",
            e.0
        ),
    )
}

/// Decide whether work may start. Pure apart from the registry reads; never panics on input.
pub fn decide_start_work<R: RegistryView + ?Sized>(
    req: &StartWorkRequest<'_>,
    registry: &R,
) -> Decision {
    let date = req.time.local_date;
    let rules = rule_set_for(date);
    let mut out: Vec<Finding> = Vec::with_capacity(4 + req.external.len());

    // --- Machine -------------------------------------------------------------------------------
    let (machine_id, label) = match req.machine {
        MachineEvidence::Label(l) => (l.machine_id.as_str(), Some(l)),
        MachineEvidence::Id(id) => {
            out.push(RuleCode::MachineUnsignedSource.finding(
                format!("设备编号{id}来自未签名的来源，编号本身不能证明任何事，以下结论来自登记库"),
                format!(
                    "machine id {id} came from an unsigned source and proves nothing by itself; the answer below comes from the registry"
                ),
            ));
            (id, None)
        }
    };
    let machine: Option<Machine> = match registry.machine(machine_id) {
        Ok(Some(m)) => {
            check_machine(&m, label, &mut out);
            Some(m)
        }
        Ok(None) => {
            out.push(RuleCode::MachineUnknown.finding(
                format!("设备{machine_id}未在登记库中，不得开机（未登记设备或伪造设备码）"),
                format!(
                    "machine {machine_id} is not in the registry and may not be switched on (unregistered machine or forged label)"
                ),
            ));
            None
        }
        Err(e) => {
            out.push(registry_failed("设备", "machine", &e));
            None
        }
    };
    match registry.is_revoked(RevocationTarget::Machine, machine_id) {
        Ok(false) => {}
        Ok(true) => out.push(RuleCode::MachineLabelRevoked.finding(
            format!("设备{machine_id}的设备码已被平台注销"),
            format!("the platform has revoked the label of machine {machine_id}"),
        )),
        Err(e) => out.push(registry_failed("设备码注销名单", "machine revocations", &e)),
    }
    let kind = machine.as_ref().map(|m| m.kind).or(label.map(|l| l.kind));
    let scan_exempt = machine
        .as_ref()
        .is_some_and(|m| m.class == MachineClass::FixedStation);

    // --- Welder --------------------------------------------------------------------------------
    let (certificate_no, claimed) = match req.welder {
        WelderEvidence::Credential(c) => {
            out.push(RuleCode::WelderNotLive.finding(
                "人员码签名有效，但未经本人手机实时出示，可能是截图或翻拍，请核对本人",
                "the credential's signature is valid but it was not presented live from the holder's phone; it may be a screenshot: check the person",
            ));
            (c.certificate_no.as_str(), Some(c))
        }
        WelderEvidence::Presentation(c) => (c.certificate_no.as_str(), Some(c)),
        WelderEvidence::CertificateNo(n) => (n, None),
    };
    let (licence, lookup_ok): (Option<Licence>, bool) = match registry.licence(certificate_no) {
        Ok(l) => (l, true),
        Err(e) => {
            out.push(registry_failed("操作证", "licence", &e));
            (None, false)
        }
    };
    match (claimed, licence.as_ref()) {
        (Some(c), Some(l)) => compare_with_registry(c, l, &mut out),
        (Some(_), None) if lookup_ok => out.push(RuleCode::WelderNotInRegistry.finding(
            format!("登记库中暂无操作证{certificate_no}（可能尚未同步），按人员码上签名的信息判断"),
            format!(
                "licence {certificate_no} is not in the registry (perhaps not yet synced); judged on the credential's signed claims"
            ),
        )),
        (None, Some(_)) => out.push(RuleCode::WelderUnsignedSource.finding(
            format!("证号{certificate_no}来自未签名的来源（网址二维码或手工输入），证号本身不能证明任何事；以下结论来自登记库，请核对持证人本人"),
            format!(
                "certificate number {certificate_no} came from an unsigned source (URL QR code or typed) and proves nothing by itself; the answer below comes from the registry: check the holder in person"
            ),
        )),
        (None, None) if lookup_ok => out.push(RuleCode::WelderUnknownCertificate.finding(
            format!("登记库中没有操作证{certificate_no}：无法确认持证，不得作业（可能是假证）"),
            format!(
                "licence {certificate_no} is not in the registry: no licence can be confirmed, so work may not start (possibly a fake certificate)"
            ),
        )),
        _ => {}
    }

    // Revocation: the registry status or the platform's list, reported once.
    let mut revoked = licence
        .as_ref()
        .is_some_and(|l| l.status == LicenceStatus::Revoked);
    match registry.is_revoked(RevocationTarget::Licence, certificate_no) {
        Ok(r) => revoked |= r,
        Err(e) => out.push(registry_failed("操作证注销名单", "licence revocations", &e)),
    }
    if revoked {
        out.push(revoked_finding(certificate_no));
    }

    // The holder's ID number, from the signed claims or else the registry.
    let id_number = claimed
        .map(|c| c.id_number.as_str())
        .or(licence.as_ref().map(|l| l.id_number.as_str()));
    if let Some(id) = id_number {
        let report = check_id_number(id, date);
        if !report.valid {
            let zh: Vec<String> = report.problems.iter().map(|p| p.message_zh()).collect();
            let en: Vec<String> = report.problems.iter().map(|p| p.message_en()).collect();
            out.push(RuleCode::WelderIdNumberInvalid.finding(
                format!("持证人身份号码不合格：{}", zh.join("；")),
                format!("the holder's ID number is not valid: {}", en.join("; ")),
            ));
        }
    }

    // The licence's dates and category: the registry's when it has them, else the signed claims.
    let terms: Option<LicenceTerms<'_>> = licence
        .as_ref()
        .map(LicenceTerms::from)
        .or(claimed.map(LicenceTerms::from));
    if let Some(t) = &terms {
        check_terms(t, date, rules, &mut out);
        if let Some(k) = kind {
            check_category(t.categories, k, &mut out);
        }
    }

    // --- Person–machine matching (人机匹配) -------------------------------------------------------
    if let (Some(m), Some(_)) = (&machine, &terms) {
        let employer = licence.as_ref().and_then(|l| l.employer_org.as_deref());
        if employer == Some(m.owner_org.as_str()) {
            out.push(RuleCode::MatchByEmployer.finding(
                format!("人机匹配：设备属于持证人所在单位{}", m.owner_org),
                format!(
                    "person–machine match: the machine belongs to the holder's employer {}",
                    m.owner_org
                ),
            ));
        } else {
            match registry.is_bound(&m.machine_id, certificate_no) {
                Ok(true) => out.push(RuleCode::MatchByBinding.finding(
                    format!("人机匹配：持证人已与设备{}绑定", m.machine_id),
                    format!(
                        "person–machine match: the holder is bound to machine {}",
                        m.machine_id
                    ),
                )),
                Ok(false) => out.push(RuleCode::MatchNotMatched.finding(
                    format!(
                        "人机不匹配：持证人未与设备{}绑定，也不属于设备所属单位{}",
                        m.machine_id, m.owner_org
                    ),
                    format!(
                        "no person–machine match: the holder is not bound to machine {} and does not work for its owner {}",
                        m.machine_id, m.owner_org
                    ),
                )),
                Err(e) => out.push(registry_failed("人机绑定", "bindings", &e)),
            }
        }
    }

    out.extend_from_slice(req.external);
    out.sort_by_key(|f| f.severity);
    Decision {
        allowed: !out.iter().any(|f| f.severity == Severity::Deny),
        scan_exempt,
        rule_set: rules.id,
        findings: out,
    }
}

/// Compare a signed credential with the registry's licence for the same certificate number.
pub fn compare_with_registry(c: &WelderCredential, l: &Licence, out: &mut Vec<Finding>) {
    let id_differs = !c.id_number.eq_ignore_ascii_case(&l.id_number);
    let name_differs = c.name != l.name;
    if id_differs || name_differs {
        let (zh, en) = match (id_differs, name_differs) {
            (true, true) => ("身份号码和姓名", "ID number and name"),
            (true, false) => ("身份号码", "ID number"),
            _ => ("姓名", "name"),
        };
        out.push(RuleCode::WelderRegistryMismatch.finding(
            format!(
                "人员码上的{zh}与登记库中操作证{}的持证人不符：证件可能被冒用或伪造",
                l.certificate_no
            ),
            format!(
                "the credential's {en} differs from the registry's holder of licence {}: the certificate may be borrowed or forged",
                l.certificate_no
            ),
        ));
    }
    if c.categories != l.categories
        || c.issued_on != l.issued_on
        || c.expires_on != l.expires_on
        || c.next_review_on != l.next_review_on
    {
        out.push(RuleCode::WelderCredentialOutdated.finding(
            "人员码上的日期或类别与登记库不同（例如复审后未更新人员码），按登记库判断",
            "the credential's dates or categories differ from the registry (e.g. not refreshed after a review); the registry's were used",
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{MachineKind, MachineStatus, OperationCategory};
    use crate::rules::registry::MemoryRegistry;

    const CERT: &str = "T11010519491231002X";
    const ID: &str = "11010519491231002X";
    const ORG: &str = "91370983MA3C000001";
    const MID: &str = "M-370983-0001";

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// 10:00 China time on the given day.
    fn at(y: i32, m: u32, day: u32) -> WorkTime {
        WorkTime::china(Utc.with_ymd_and_hms(y, m, day, 2, 0, 0).unwrap())
    }

    fn licence() -> Licence {
        Licence {
            certificate_no: CERT.into(),
            id_number: ID.into(),
            name: "张三".into(),
            categories: vec![OperationCategory::FusionWeldingAndCutting],
            issued_on: d(2024, 3, 15),
            expires_on: d(2030, 3, 15),
            next_review_on: d(2027, 3, 15),
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: Some(ORG.into()),
        }
    }

    fn credential(l: &Licence) -> WelderCredential {
        WelderCredential {
            certificate_no: l.certificate_no.clone(),
            id_number: l.id_number.clone(),
            name: l.name.clone(),
            categories: l.categories.clone(),
            issued_on: l.issued_on,
            expires_on: l.expires_on,
            next_review_on: l.next_review_on,
            photo_digest: vec![0; 32],
            device_key: vec![2; 33],
        }
    }

    fn machine() -> Machine {
        Machine {
            machine_id: MID.into(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: ORG.into(),
            region: 370983,
            status: MachineStatus::Active,
        }
    }

    fn label(m: &Machine) -> MachineLabel {
        MachineLabel {
            machine_id: m.machine_id.clone(),
            kind: m.kind,
            class: m.class,
            owner_org: m.owner_org.clone(),
            region: m.region,
            issued_at: 1_716_000_000,
        }
    }

    fn registry() -> MemoryRegistry {
        let mut r = MemoryRegistry::default();
        r.add_licence(licence());
        r.add_machine(machine());
        r
    }

    /// A scenario: registry, machine evidence, welder evidence, time, external findings.
    struct Case {
        reg: MemoryRegistry,
        label: Option<MachineLabel>,
        machine_id: String,
        cred: Option<WelderCredential>,
        live: bool,
        cert_no: String,
        time: WorkTime,
        external: Vec<Finding>,
    }

    impl Case {
        fn happy() -> Self {
            let reg = registry();
            Case {
                label: Some(label(&machine())),
                machine_id: MID.into(),
                cred: Some(credential(&licence())),
                live: true,
                cert_no: CERT.into(),
                time: at(2025, 6, 1),
                external: Vec::new(),
                reg,
            }
        }

        fn run_with(&self, reg: &dyn RegistryView) -> Decision {
            let machine = match &self.label {
                Some(l) => MachineEvidence::Label(l),
                None => MachineEvidence::Id(&self.machine_id),
            };
            let welder = match (&self.cred, self.live) {
                (Some(c), true) => WelderEvidence::Presentation(c),
                (Some(c), false) => WelderEvidence::Credential(c),
                (None, _) => WelderEvidence::CertificateNo(&self.cert_no),
            };
            let req = StartWorkRequest {
                machine,
                welder,
                time: self.time,
                external: &self.external,
            };
            decide_start_work(&req, reg)
        }

        fn run(&self) -> Decision {
            self.run_with(&self.reg)
        }
    }

    fn codes(d: &Decision) -> Vec<&'static str> {
        d.findings.iter().map(|f| f.code).collect()
    }

    /// A registry whose every read fails.
    struct BrokenRegistry;
    impl RegistryView for BrokenRegistry {
        fn licence(&self, _: &str) -> Result<Option<Licence>, RegistryError> {
            Err(RegistryError("disk I/O error".into()))
        }
        fn machine(&self, _: &str) -> Result<Option<Machine>, RegistryError> {
            Err(RegistryError("disk I/O error".into()))
        }
        fn is_bound(&self, _: &str, _: &str) -> Result<bool, RegistryError> {
            Err(RegistryError("disk I/O error".into()))
        }
        fn is_revoked(&self, _: RevocationTarget, _: &str) -> Result<bool, RegistryError> {
            Err(RegistryError("disk I/O error".into()))
        }
    }

    /// A registry that answers licences and machines but fails on bindings.
    struct NoBindings(MemoryRegistry);
    impl RegistryView for NoBindings {
        fn licence(&self, c: &str) -> Result<Option<Licence>, RegistryError> {
            self.0.licence(c)
        }
        fn machine(&self, m: &str) -> Result<Option<Machine>, RegistryError> {
            self.0.machine(m)
        }
        fn is_bound(&self, _: &str, _: &str) -> Result<bool, RegistryError> {
            Err(RegistryError("bindings table missing".into()))
        }
        fn is_revoked(&self, t: RevocationTarget, id: &str) -> Result<bool, RegistryError> {
            self.0.is_revoked(t, id)
        }
    }

    /// Every scenario, named, with the decision it produced.
    fn scenarios() -> Vec<(&'static str, Decision)> {
        let mut v = Vec::new();
        let mut push = |name, d| v.push((name, d));

        push("happy", Case::happy().run());

        let mut c = Case::happy();
        c.label = None;
        c.cred = None;
        push("unsigned ids", c.run());

        push("broken registry", Case::happy().run_with(&BrokenRegistry));

        let mut c = Case::happy();
        c.reg.licences.get_mut(CERT).unwrap().employer_org = None;
        push("binding read fails", c.run_with(&NoBindings(c.reg.clone())));

        let mut c = Case::happy();
        c.reg.machines.clear();
        push("unknown machine", c.run());

        let mut c = Case::happy();
        c.reg.machines.get_mut(MID).unwrap().status = MachineStatus::Retired;
        push("retired machine", c.run());

        let mut c = Case::happy();
        c.reg.revoke(RevocationTarget::Machine, MID);
        push("revoked label", c.run());

        let mut c = Case::happy();
        c.label.as_mut().unwrap().owner_org = "91370983MA3C000999".into();
        c.label.as_mut().unwrap().region = 370982;
        push("relabelled", c.run());

        let mut c = Case::happy();
        c.reg.machines.get_mut(MID).unwrap().class = MachineClass::FixedStation;
        c.label.as_mut().unwrap().class = MachineClass::FixedStation;
        push("fixed station", c.run());

        let mut c = Case::happy();
        c.reg.machines.get_mut(MID).unwrap().class = MachineClass::LegacyRegistered;
        c.label.as_mut().unwrap().class = MachineClass::LegacyRegistered;
        push("legacy", c.run());

        let mut c = Case::happy();
        c.cred = None;
        c.cert_no = "T370983199001011234".into();
        push("unknown certificate", c.run());

        let mut c = Case::happy();
        c.live = false;
        push("static credential", c.run());

        let mut c = Case::happy();
        c.reg.licences.clear();
        push("credential not in registry", c.run());

        let mut c = Case::happy();
        c.cred.as_mut().unwrap().name = "李四".into();
        c.cred.as_mut().unwrap().next_review_on = d(2026, 3, 15);
        push("borrowed certificate", c.run());

        let mut c = Case::happy();
        c.reg.licences.get_mut(CERT).unwrap().id_number = "110105491231002".into();
        c.cred.as_mut().unwrap().id_number = "110105491231002".into();
        push("legacy id number", c.run());

        let mut c = Case::happy();
        c.reg.licences.get_mut(CERT).unwrap().status = LicenceStatus::Revoked;
        c.reg.revoke(RevocationTarget::Licence, CERT);
        push("revoked licence", c.run());

        let mut c = Case::happy();
        c.time = at(2024, 3, 1);
        push("not yet valid", c.run());

        let mut c = Case::happy();
        c.time = at(2030, 3, 16);
        push("expired", c.run());

        let mut c = Case::happy();
        let l = c.reg.licences.get_mut(CERT).unwrap();
        l.next_review_on = d(2030, 3, 15);
        l.expires_on = d(2031, 3, 15);
        c.time = at(2030, 2, 1);
        push("beyond rule, expiring soon", c.run());

        let mut c = Case::happy();
        c.time = at(2027, 3, 16);
        push("review overdue", c.run());

        let mut c = Case::happy();
        c.time = at(2027, 2, 1);
        push("review due soon", c.run());

        let mut c = Case::happy();
        c.reg.licences.get_mut(CERT).unwrap().next_review_on = d(2030, 3, 15);
        push("implausible review", c.run());

        let mut c = Case::happy();
        c.reg.machines.get_mut(MID).unwrap().kind = MachineKind::Spot;
        c.label.as_mut().unwrap().kind = MachineKind::Spot;
        push("category mismatch", c.run());

        let mut c = Case::happy();
        c.reg.licences.get_mut(CERT).unwrap().employer_org = Some("other".into());
        push("not matched", c.run());

        let mut c = Case::happy();
        c.reg.licences.get_mut(CERT).unwrap().employer_org = None;
        c.reg.bind(MID, CERT);
        push("bound", c.run());

        let mut c = Case::happy();
        c.external = vec![Finding::new(
            "permit.missing",
            Severity::Deny,
            "无动火作业票",
            "no hot-work permit",
        )];
        push("permit seam", c.run());

        v
    }

    #[test]
    fn every_rule_code_is_reachable() {
        let produced: HashSet<&str> = scenarios()
            .iter()
            .flat_map(|(_, d)| d.findings.iter().map(|f| f.code))
            .collect();
        let missing: Vec<_> = RuleCode::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !produced.contains(c))
            .collect();
        assert!(missing.is_empty(), "never produced: {missing:?}");
        // And every finding has its code's severity and texts in both languages.
        for (name, d) in scenarios() {
            for f in &d.findings {
                if let Some(rc) = RuleCode::ALL.iter().find(|c| c.as_str() == f.code) {
                    assert_eq!(f.severity, rc.severity(), "{name}: {}", f.code);
                }
                assert!(!f.zh.is_empty() && !f.en.is_empty());
            }
            assert_eq!(d.allowed, d.denials().next().is_none(), "{name}");
        }
    }

    #[test]
    fn expected_outcomes() {
        let expect: &[(&str, bool, &[&str])] = &[
            ("happy", true, &["match.by_employer"]),
            (
                "unsigned ids",
                true,
                &[
                    "welder.unsigned_source",
                    "machine.unsigned_source",
                    "match.by_employer",
                ],
            ),
            ("unknown machine", false, &["machine.unknown"]),
            (
                "fixed station",
                true,
                &["machine.fixed_station_exempt", "match.by_employer"],
            ),
            (
                "legacy",
                true,
                &["machine.legacy_key_supervision", "match.by_employer"],
            ),
            (
                "unknown certificate",
                false,
                &["welder.unknown_certificate"],
            ),
            (
                "static credential",
                true,
                &["welder.not_live", "match.by_employer"],
            ),
            (
                "credential not in registry",
                false,
                // No employer known from the registry and no binding: not matched.
                &["welder.not_in_registry", "match.not_matched"],
            ),
            (
                "revoked licence",
                false,
                &["licence.revoked", "match.by_employer"],
            ),
            (
                "review overdue",
                false,
                &["licence.review_overdue", "match.by_employer"],
            ),
            ("bound", true, &["match.by_binding"]),
            (
                "permit seam",
                false,
                &["permit.missing", "match.by_employer"],
            ),
        ];
        let all = scenarios();
        for (name, allowed, want) in expect {
            let (_, d) = all.iter().find(|(n, _)| n == name).unwrap();
            let mut got = codes(d);
            got.sort();
            let mut want = want.to_vec();
            want.sort();
            assert_eq!(got, want, "{name}");
            assert_eq!(d.allowed, *allowed, "{name}");
        }
    }

    #[test]
    fn all_failures_reported_together() {
        // Unknown certificate typed by hand, retired machine of the wrong kind, permit missing.
        let mut c = Case::happy();
        c.reg.machines.get_mut(MID).unwrap().status = MachineStatus::Retired;
        c.reg.machines.get_mut(MID).unwrap().kind = MachineKind::Spot;
        c.reg.licences.get_mut(CERT).unwrap().employer_org = Some("other".into());
        c.time = at(2030, 3, 16);
        c.live = false;
        let d = c.run();
        assert!(!d.allowed);
        for code in [
            "machine.retired",
            "machine.label_mismatch",
            "licence.expired",
            "licence.category_mismatch",
            "match.not_matched",
            "welder.not_live",
        ] {
            assert!(d.has(code), "missing {code}: {:?}", codes(&d));
        }
        // Deny findings come first.
        let sev: Vec<_> = d.findings.iter().map(|f| f.severity).collect();
        assert!(sev.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn certificate_number_is_never_derived_from_the_id_number() {
        // The registry knows this holder under a certificate number that is not "T" + ID number.
        let mut c = Case::happy();
        let mut l = c.reg.licences.remove(CERT).unwrap();
        l.certificate_no = "370983202403150017".into();
        c.reg.add_licence(l);
        let d = c.run();
        // The credential's own number is looked up, not one built from its ID number.
        assert!(d.has("welder.not_in_registry"), "{:?}", codes(&d));
        // Same certificate number, another holder's ID number: the credential is not theirs.
        let mut c = Case::happy();
        c.reg.licences.get_mut(CERT).unwrap().id_number = "370983198506151237".into();
        let d = c.run();
        assert!(!d.allowed);
        assert!(d.has("welder.registry_mismatch"));
        assert!(d.findings.iter().any(|f| f.en.contains("ID number")));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_odd_input(
            cert in "\\PC{0,30}",
            mid in "\\PC{0,30}",
            id in "\\PC{0,20}",
            days in -800_000i64..800_000,
            issued in -3_000i64..3_000,
        ) {
            let mut c = Case::happy();
            c.machine_id = mid;
            c.label = None;
            c.cert_no = cert;
            c.cred = None;
            let l = c.reg.licences.get_mut(CERT).unwrap();
            l.id_number = id;
            l.issued_on = d(2024, 3, 15) + chrono::Days::new(issued.unsigned_abs());
            c.time = WorkTime::new(c.time.instant, d(2000, 1, 1) + chrono::TimeDelta::days(days / 4));
            let _ = c.run();
            // The registry's own licence under odd dates and ID numbers.
            let mut c2 = Case::happy();
            c2.cred = None;
            c2.reg = c.reg.clone();
            c2.time = c.time;
            let _ = c2.run();
        }
    }

    #[test]
    fn broken_registry_denies_without_panicking() {
        let d = Case::happy().run_with(&BrokenRegistry);
        assert!(!d.allowed);
        assert!(d.has("registry.unavailable"));
        // The signed claims are still judged (category against the label's kind is fine).
        assert!(!d.has("licence.category_mismatch"));
    }

    #[test]
    fn local_date_is_china_time() {
        // 2030-03-15 16:30 UTC is already 2030-03-16 00:30 in China: the licence has expired.
        let t = WorkTime::china(Utc.with_ymd_and_hms(2030, 3, 15, 16, 30, 0).unwrap());
        assert_eq!(t.local_date, d(2030, 3, 16));
        let mut c = Case::happy();
        c.time = t;
        assert!(c.run().has("licence.expired"));
        c.time = WorkTime::china(Utc.with_ymd_and_hms(2030, 3, 15, 15, 59, 0).unwrap());
        let d = c.run();
        assert!(!d.has("licence.expired"));
        assert!(d.has("licence.expiring_soon"));
    }

    #[test]
    fn rule_set_follows_work_date() {
        let mut c = Case::happy();
        assert_eq!(c.run().rule_set, RuleSetId::SawsOrder30);
        c.time = at(2026, 6, 1);
        assert_eq!(c.run().rule_set, RuleSetId::MemOrder19);
    }

    #[test]
    fn lowercase_x_in_credential_matches_registry() {
        let mut c = Case::happy();
        c.cred.as_mut().unwrap().id_number = "11010519491231002x".into();
        let d = c.run();
        assert!(d.allowed, "{:?}", codes(&d));
        assert!(!d.has("welder.registry_mismatch"));
    }

    #[test]
    fn decision_serialises() {
        let d = Case::happy().run();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["allowed"], true);
        assert_eq!(v["rule_set"], "saws_order_30");
        assert_eq!(v["findings"][0]["code"], "match.by_employer");
    }
}
