//! Plain data shared by every capability: who welds, with which machine, under which licence.
//!
//! Nothing here does I/O or reads the clock; the types are small, cloneable and serialisable so the
//! store, the codes, the rules and the server all speak the same vocabulary.

mod reason;

pub use reason::Explain;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Operation categories of the 焊接与热切割作业 special-operation certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationCategory {
    /// 熔化焊接与热切割作业: arc, gas and plasma welding and cutting.
    FusionWeldingAndCutting,
    /// 压力焊作业: resistance, spot and friction welding.
    PressureWelding,
    /// 钎焊作业: brazing and soldering.
    Brazing,
}

impl OperationCategory {
    pub const ALL: [OperationCategory; 3] = [
        OperationCategory::FusionWeldingAndCutting,
        OperationCategory::PressureWelding,
        OperationCategory::Brazing,
    ];

    /// The category's name as printed on the certificate.
    pub fn name_zh(self) -> &'static str {
        match self {
            OperationCategory::FusionWeldingAndCutting => "熔化焊接与热切割作业",
            OperationCategory::PressureWelding => "压力焊作业",
            OperationCategory::Brazing => "钎焊作业",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            OperationCategory::FusionWeldingAndCutting => "fusion welding and thermal cutting",
            OperationCategory::PressureWelding => "pressure welding",
            OperationCategory::Brazing => "brazing and soldering",
        }
    }
}

/// What a welding machine does; decides which licence category its operator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineKind {
    /// 电弧焊机
    Arc,
    /// 等离子切割机
    Plasma,
    /// 气割 (oxy-fuel cutting)
    GasCutting,
    /// 气焊 (oxy-fuel welding)
    GasWelding,
    /// 电阻焊机
    Resistance,
    /// 点焊机
    Spot,
    /// 摩擦焊机
    Friction,
    /// 钎焊设备
    Brazing,
    /// 锡焊设备
    Soldering,
}

impl MachineKind {
    pub const ALL: [MachineKind; 9] = [
        MachineKind::Arc,
        MachineKind::Plasma,
        MachineKind::GasCutting,
        MachineKind::GasWelding,
        MachineKind::Resistance,
        MachineKind::Spot,
        MachineKind::Friction,
        MachineKind::Brazing,
        MachineKind::Soldering,
    ];

    /// The licence category an operator of this kind of machine must hold.
    pub fn required_category(self) -> OperationCategory {
        match self {
            MachineKind::Arc
            | MachineKind::Plasma
            | MachineKind::GasCutting
            | MachineKind::GasWelding => OperationCategory::FusionWeldingAndCutting,
            MachineKind::Resistance | MachineKind::Spot | MachineKind::Friction => {
                OperationCategory::PressureWelding
            }
            MachineKind::Brazing | MachineKind::Soldering => OperationCategory::Brazing,
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            MachineKind::Arc => "电弧焊机",
            MachineKind::Plasma => "等离子切割机",
            MachineKind::GasCutting => "气割设备",
            MachineKind::GasWelding => "气焊设备",
            MachineKind::Resistance => "电阻焊机",
            MachineKind::Spot => "点焊机",
            MachineKind::Friction => "摩擦焊机",
            MachineKind::Brazing => "钎焊设备",
            MachineKind::Soldering => "锡焊设备",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            MachineKind::Arc => "arc welder",
            MachineKind::Plasma => "plasma cutter",
            MachineKind::GasCutting => "gas cutting set",
            MachineKind::GasWelding => "gas welding set",
            MachineKind::Resistance => "resistance welder",
            MachineKind::Spot => "spot welder",
            MachineKind::Friction => "friction welder",
            MachineKind::Brazing => "brazing equipment",
            MachineKind::Soldering => "soldering equipment",
        }
    }
}

/// How a machine is supervised (分类管控).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineClass {
    /// Retrofitted with a chip and QR code; every start is scanned (扫码开机).
    Mobile,
    /// Fixed work station under process control; exempt from scan-to-start (固定工位、纳入工序管理).
    FixedStation,
    /// Old machine that cannot be retrofitted; registered for key supervision (登记造册、重点监管).
    LegacyRegistered,
}

/// Registry status of a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineStatus {
    Active,
    /// Unsafe machines are retired (淘汰) and may never be switched on again.
    Retired,
}

/// Registry status of a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceStatus {
    Valid,
    Revoked,
}

/// A special-operation certificate (特种作业操作证) as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Licence {
    /// The certificate number: its own field, often "T" + the ID number but never derived from it.
    pub certificate_no: String,
    /// The holder's 18-character resident ID number.
    pub id_number: String,
    pub name: String,
    pub categories: Vec<OperationCategory>,
    pub issued_on: NaiveDate,
    pub expires_on: NaiveDate,
    /// The next review (复审) due date.
    pub next_review_on: NaiveDate,
    /// The holder has 10+ years of clean work on record, so the review interval may be extended.
    pub review_extended: bool,
    pub status: LicenceStatus,
    /// The organisation employing the holder, when the registry knows it (for 人机匹配).
    pub employer_org: Option<String>,
}

/// A welding machine as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub machine_id: String,
    pub kind: MachineKind,
    pub class: MachineClass,
    /// Owner organisation (unified social credit code or registry id).
    pub owner_org: String,
    /// GB/T 2260 region code, e.g. 370983 for 肥城市.
    pub region: u32,
    pub status: MachineStatus,
}

/// A person–machine binding (人机匹配): this welder may operate this machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Binding {
    pub machine_id: String,
    pub certificate_no: String,
}

/// What a revocation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationTarget {
    /// A licence, by certificate number.
    Licence,
    /// A welder credential code, by its credential id.
    Credential,
    /// An issuer key, by key id (hex).
    IssuerKey,
    /// A machine label, by machine id.
    Machine,
}

/// One revocation entry from the platform's list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revocation {
    pub target: RevocationTarget,
    pub id: String,
}

/// The claims of a machine label (设备码), as signed by an issuer and printed on the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineLabel {
    pub machine_id: String,
    pub kind: MachineKind,
    pub class: MachineClass,
    pub owner_org: String,
    /// GB/T 2260 region code.
    pub region: u32,
    /// Issue time, seconds since the Unix epoch (UTC).
    pub issued_at: i64,
}

/// The claims of a welder credential (人员码), as signed by an issuer and shown on the welder's phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelderCredential {
    /// The certificate number, its own field (never derived from the ID number).
    pub certificate_no: String,
    /// The 18-character resident ID number.
    pub id_number: String,
    pub name: String,
    pub categories: Vec<OperationCategory>,
    pub issued_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub next_review_on: NaiveDate,
    /// Digest of the holder's photo, so an inspector can compare with the registry's photo.
    pub photo_digest: Vec<u8>,
    /// The welder's device public key: SEC1-encoded P-256 point (compressed, 33 bytes).
    pub device_key: Vec<u8>,
}
