//! Machine rules (分类管控): registry status, class, and whether a signed label agrees with the
//! registry. Pure: the registry record is passed in.
//!
//! - retired (淘汰) machines are never allowed;
//! - fixed-station machines under process control are exempt from scan-to-start (said as info);
//! - legacy machines that cannot be retrofitted are allowed under key supervision (a warning);
//! - a label whose kind, class or owner differs from the registry is denied: the machine may be
//!   forged or relabelled. A different region is a warning (moved machine or stale label).

use super::finding::{Finding, RuleCode};
use crate::domain::{Machine, MachineClass, MachineLabel, MachineStatus};

/// Judge a registry machine, and the signed label presented for it if any, pushing findings.
pub fn check_machine(machine: &Machine, label: Option<&MachineLabel>, out: &mut Vec<Finding>) {
    let id = machine.machine_id.as_str();
    if machine.status == MachineStatus::Retired {
        out.push(RuleCode::MachineRetired.finding(
            format!("设备{id}已登记淘汰，不得开机作业"),
            format!("machine {id} was retired and may never be switched on"),
        ));
    }
    match machine.class {
        MachineClass::Mobile => {}
        MachineClass::FixedStation => out.push(RuleCode::MachineFixedStationExempt.finding(
            format!("设备{id}为固定工位且已纳入工序管理，免于扫码开机；本次核验仅作记录"),
            format!(
                "machine {id} is a fixed work station under process control and exempt from scan-to-start; this check is for the record"
            ),
        )),
        MachineClass::LegacyRegistered => {
            out.push(RuleCode::MachineLegacyKeySupervision.finding(
                format!("设备{id}为无法改造的老旧设备，已登记造册，允许作业但须重点监管"),
                format!(
                    "machine {id} is a legacy machine that cannot be retrofitted; allowed under key supervision"
                ),
            ))
        }
    }
    if let Some(label) = label {
        check_label(machine, label, out);
    }
}

fn class_zh(c: MachineClass) -> &'static str {
    match c {
        MachineClass::Mobile => "流动设备",
        MachineClass::FixedStation => "固定工位设备",
        MachineClass::LegacyRegistered => "登记监管的老旧设备",
    }
}

fn class_en(c: MachineClass) -> &'static str {
    match c {
        MachineClass::Mobile => "mobile",
        MachineClass::FixedStation => "fixed station",
        MachineClass::LegacyRegistered => "legacy (registered)",
    }
}

fn check_label(machine: &Machine, label: &MachineLabel, out: &mut Vec<Finding>) {
    let mut zh: Vec<String> = Vec::new();
    let mut en: Vec<String> = Vec::new();
    if label.kind != machine.kind {
        zh.push(format!(
            "类型（码上为{}，登记为{}）",
            label.kind.name_zh(),
            machine.kind.name_zh()
        ));
        en.push(format!(
            "kind (label: {}, registry: {})",
            label.kind.name_en(),
            machine.kind.name_en()
        ));
    }
    if label.class != machine.class {
        zh.push(format!(
            "管控类别（码上为{}，登记为{}）",
            class_zh(label.class),
            class_zh(machine.class)
        ));
        en.push(format!(
            "class (label: {}, registry: {})",
            class_en(label.class),
            class_en(machine.class)
        ));
    }
    if label.owner_org != machine.owner_org {
        zh.push(format!(
            "所属单位（码上为{}，登记为{}）",
            label.owner_org, machine.owner_org
        ));
        en.push(format!(
            "owner (label: {}, registry: {})",
            label.owner_org, machine.owner_org
        ));
    }
    if !zh.is_empty() {
        let id = machine.machine_id.as_str();
        out.push(RuleCode::MachineLabelMismatch.finding(
            format!(
                "设备{id}的设备码与登记信息不符：{}；可能是伪造或被调换的设备码",
                zh.join("；")
            ),
            format!(
                "the label of machine {id} does not match the registry: {}; the label may be forged or moved from another machine",
                en.join("; ")
            ),
        ));
    }
    if label.region != machine.region {
        out.push(RuleCode::MachineLabelRegionMismatch.finding(
            format!(
                "设备码上的行政区划{}与登记的{}不同（设备可能已迁移，请更新登记）",
                label.region, machine.region
            ),
            format!(
                "the label's region {} differs from the registry's {} (the machine may have moved; update the registry)",
                label.region, machine.region
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MachineKind;

    fn machine() -> Machine {
        Machine {
            machine_id: "M-370983-0001".into(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: "91370983MA3C000001".into(),
            region: 370983,
            status: MachineStatus::Active,
        }
    }

    fn label_of(m: &Machine) -> MachineLabel {
        MachineLabel {
            machine_id: m.machine_id.clone(),
            kind: m.kind,
            class: m.class,
            owner_org: m.owner_org.clone(),
            region: m.region,
            issued_at: 1_716_000_000,
        }
    }

    fn codes(m: &Machine, l: Option<&MachineLabel>) -> Vec<&'static str> {
        let mut out = Vec::new();
        check_machine(m, l, &mut out);
        out.iter().map(|f| f.code).collect()
    }

    #[test]
    fn matching_label_on_active_mobile_machine_is_clean() {
        let m = machine();
        assert!(codes(&m, Some(&label_of(&m))).is_empty());
        assert!(codes(&m, None).is_empty());
    }

    #[test]
    fn classes_and_retirement() {
        let mut m = machine();
        m.class = MachineClass::FixedStation;
        assert_eq!(codes(&m, None), vec!["machine.fixed_station_exempt"]);
        m.class = MachineClass::LegacyRegistered;
        assert_eq!(codes(&m, None), vec!["machine.legacy_key_supervision"]);
        m.status = MachineStatus::Retired;
        assert_eq!(
            codes(&m, None),
            vec!["machine.retired", "machine.legacy_key_supervision"]
        );
    }

    #[test]
    fn relabelled_machine_is_one_deny_naming_every_difference() {
        let m = machine();
        let mut l = label_of(&m);
        l.kind = MachineKind::Spot;
        l.owner_org = "91370983MA3C000999".into();
        l.region = 370982;
        let mut out = Vec::new();
        check_machine(&m, Some(&l), &mut out);
        let c: Vec<_> = out.iter().map(|f| f.code).collect();
        assert_eq!(
            c,
            vec!["machine.label_mismatch", "machine.label_region_mismatch"]
        );
        assert!(out[0].en.contains("kind") && out[0].en.contains("owner"));
        assert!(!out[0].en.contains("class"));
    }
}
