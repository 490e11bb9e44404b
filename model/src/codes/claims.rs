//! The compact CBOR claims inside a `WG1:` code: one map with small integer keys, dates as day
//! numbers, enums as small integers. Decoding is strict (every key known, no duplicates, no trailing
//! bytes) so that any change to the bytes is either rejected here or by the signature.
//!
//! Keys: 1 = kind (1 machine label, 2 welder credential, 3 presentation), 2 = signed/presented at
//! (Unix seconds). Machine label: 3 machine id, 4 machine kind, 5 class, 6 owner org, 7 region.
//! Welder credential: 3 certificate no, 4 ID number, 5 name, 6 categories, 7 issued on, 8 expires on,
//! 9 next review on (days since 1970-01-01), 10 photo digest, 11 device key. Presentation:
//! 3 credential digest (SHA-256 of the credential's COSE bytes), 4 nonce.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use ciborium::value::{Integer, Value};

use crate::domain::{MachineClass, MachineKind, MachineLabel, OperationCategory, WelderCredential};

use super::CodeError;

/// The three kinds of `WG1:` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// 设备码, signed by an issuer, printed on the machine.
    MachineLabel,
    /// 人员码, signed by an issuer, kept on the welder's phone.
    WelderCredential,
    /// A short-lived presentation of a credential, signed by the welder's device key.
    Presentation,
}

impl CodeKind {
    fn number(self) -> u8 {
        match self {
            CodeKind::MachineLabel => 1,
            CodeKind::WelderCredential => 2,
            CodeKind::Presentation => 3,
        }
    }

    fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(CodeKind::MachineLabel),
            2 => Some(CodeKind::WelderCredential),
            3 => Some(CodeKind::Presentation),
            _ => None,
        }
    }
}

/// A welder credential's claims plus the moment the issuer signed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CredentialClaims {
    pub credential: WelderCredential,
    /// When the issuer signed the code, Unix seconds (checked against the issuer key's validity).
    pub signed_at: i64,
}

/// What a device signs when presenting its credential.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PresentationClaims {
    /// SHA-256 of the presented credential's COSE_Sign1 bytes.
    pub credential_digest: Vec<u8>,
    /// When the device signed, Unix seconds.
    pub presented_at: i64,
    /// A random value, different for every presentation.
    pub nonce: Vec<u8>,
}

/// The decoded payload of a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    Machine(MachineLabel),
    Welder(CredentialClaims),
    Presentation(PresentationClaims),
}

impl Payload {
    pub(crate) fn kind(&self) -> CodeKind {
        match self {
            Payload::Machine(_) => CodeKind::MachineLabel,
            Payload::Welder(_) => CodeKind::WelderCredential,
            Payload::Presentation(_) => CodeKind::Presentation,
        }
    }
}

/// Longest text claim accepted (bytes); keeps codes small and decoding bounded.
pub(crate) const MAX_TEXT: usize = 64;
/// Longest photo digest accepted (bytes).
pub(crate) const MAX_DIGEST: usize = 64;
/// Nonce lengths accepted in presentations (bytes).
pub(crate) const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=32;

const DAYS_CE_TO_UNIX: i64 = 719_163;

pub(crate) fn date_to_days(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - DAYS_CE_TO_UNIX
}

pub(crate) fn days_to_date(days: i64) -> Option<NaiveDate> {
    let ce = i32::try_from(days.checked_add(DAYS_CE_TO_UNIX)?).ok()?;
    NaiveDate::from_num_days_from_ce_opt(ce)
}

fn machine_kind_number(kind: MachineKind) -> u8 {
    match kind {
        MachineKind::Arc => 1,
        MachineKind::Plasma => 2,
        MachineKind::GasCutting => 3,
        MachineKind::GasWelding => 4,
        MachineKind::Resistance => 5,
        MachineKind::Spot => 6,
        MachineKind::Friction => 7,
        MachineKind::Brazing => 8,
        MachineKind::Soldering => 9,
    }
}

fn machine_kind_from(n: u8) -> Option<MachineKind> {
    MachineKind::ALL
        .into_iter()
        .find(|k| machine_kind_number(*k) == n)
}

fn class_number(class: MachineClass) -> u8 {
    match class {
        MachineClass::Mobile => 1,
        MachineClass::FixedStation => 2,
        MachineClass::LegacyRegistered => 3,
    }
}

fn class_from(n: u8) -> Option<MachineClass> {
    [
        MachineClass::Mobile,
        MachineClass::FixedStation,
        MachineClass::LegacyRegistered,
    ]
    .into_iter()
    .find(|c| class_number(*c) == n)
}

fn category_number(category: OperationCategory) -> u8 {
    match category {
        OperationCategory::FusionWeldingAndCutting => 1,
        OperationCategory::PressureWelding => 2,
        OperationCategory::Brazing => 3,
    }
}

fn category_from(n: u8) -> Option<OperationCategory> {
    OperationCategory::ALL
        .into_iter()
        .find(|c| category_number(*c) == n)
}

fn int(n: i64) -> Value {
    Value::Integer(Integer::from(n))
}

fn small(n: u8) -> Value {
    Value::Integer(Integer::from(n))
}

fn check_text(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_TEXT {
        return Err(format!("{name} must be 1 to {MAX_TEXT} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name} contains control characters"));
    }
    Ok(())
}

/// Check claims before signing, with the same limits the decoder applies.
pub(crate) fn validate(payload: &Payload) -> Result<(), String> {
    match payload {
        Payload::Machine(label) => {
            check_text("machine id", &label.machine_id)?;
            check_text("owner organisation", &label.owner_org)?;
            Ok(())
        }
        Payload::Welder(claims) => {
            let c = &claims.credential;
            check_text("certificate number", &c.certificate_no)?;
            check_text("ID number", &c.id_number)?;
            check_text("name", &c.name)?;
            if c.categories.is_empty() {
                return Err("at least one operation category is required".into());
            }
            for (i, cat) in c.categories.iter().enumerate() {
                if c.categories.iter().skip(i + 1).any(|other| other == cat) {
                    return Err("duplicate operation category".into());
                }
            }
            if c.expires_on < c.issued_on {
                return Err("expiry date is before the issue date".into());
            }
            if c.photo_digest.len() > MAX_DIGEST {
                return Err(format!("photo digest longer than {MAX_DIGEST} bytes"));
            }
            let compressed = c.device_key.len() == 33
                && matches!(c.device_key.first(), Some(2 | 3))
                && p256::ecdsa::VerifyingKey::from_sec1_bytes(&c.device_key).is_ok();
            if !compressed {
                return Err("device key must be a compressed P-256 public key (33 bytes)".into());
            }
            Ok(())
        }
        Payload::Presentation(p) => {
            if p.credential_digest.len() != 32 {
                return Err("credential digest must be 32 bytes".into());
            }
            if !NONCE_LEN.contains(&p.nonce.len()) {
                return Err("nonce must be 8 to 32 bytes".into());
            }
            Ok(())
        }
    }
}

/// Encode claims as CBOR (keys ascending, minimal integers).
pub(crate) fn encode(payload: &Payload) -> Result<Vec<u8>, String> {
    let mut map: Vec<(Value, Value)> = vec![(small(1), small(payload.kind().number()))];
    let mut put = |key: u8, value: Value| map.push((small(key), value));
    match payload {
        Payload::Machine(label) => {
            put(2, int(label.issued_at));
            put(3, Value::Text(label.machine_id.clone()));
            put(4, small(machine_kind_number(label.kind)));
            put(5, small(class_number(label.class)));
            put(6, Value::Text(label.owner_org.clone()));
            put(7, Value::Integer(Integer::from(label.region)));
        }
        Payload::Welder(claims) => {
            let c = &claims.credential;
            put(2, int(claims.signed_at));
            put(3, Value::Text(c.certificate_no.clone()));
            put(4, Value::Text(c.id_number.clone()));
            put(5, Value::Text(c.name.clone()));
            put(
                6,
                Value::Array(
                    c.categories
                        .iter()
                        .map(|cat| small(category_number(*cat)))
                        .collect(),
                ),
            );
            put(7, int(date_to_days(c.issued_on)));
            put(8, int(date_to_days(c.expires_on)));
            put(9, int(date_to_days(c.next_review_on)));
            put(10, Value::Bytes(c.photo_digest.clone()));
            put(11, Value::Bytes(c.device_key.clone()));
        }
        Payload::Presentation(p) => {
            put(2, int(p.presented_at));
            put(3, Value::Bytes(p.credential_digest.clone()));
            put(4, Value::Bytes(p.nonce.clone()));
        }
    }
    let mut out = Vec::new();
    ciborium::ser::into_writer(&Value::Map(map), &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The claims map being taken apart; every key must be consumed.
struct Fields(BTreeMap<u8, Value>);

impl Fields {
    fn take(&mut self, key: u8) -> Result<Value, CodeError> {
        self.0
            .remove(&key)
            .ok_or_else(|| CodeError::malformed(format!("claim {key} missing")))
    }

    fn i64(&mut self, key: u8) -> Result<i64, CodeError> {
        match self.take(key)? {
            Value::Integer(i) => i64::try_from(i128::from(i))
                .map_err(|_| CodeError::malformed(format!("claim {key} out of range"))),
            _ => Err(CodeError::malformed(format!(
                "claim {key} is not an integer"
            ))),
        }
    }

    fn u8(&mut self, key: u8) -> Result<u8, CodeError> {
        u8::try_from(self.i64(key)?)
            .map_err(|_| CodeError::malformed(format!("claim {key} out of range")))
    }

    fn text(&mut self, key: u8) -> Result<String, CodeError> {
        match self.take(key)? {
            Value::Text(t) => {
                check_text("text claim", &t).map_err(CodeError::malformed)?;
                Ok(t)
            }
            _ => Err(CodeError::malformed(format!("claim {key} is not text"))),
        }
    }

    fn bytes(&mut self, key: u8, max: usize) -> Result<Vec<u8>, CodeError> {
        match self.take(key)? {
            Value::Bytes(b) if b.len() <= max => Ok(b),
            Value::Bytes(_) => Err(CodeError::malformed(format!("claim {key} too long"))),
            _ => Err(CodeError::malformed(format!("claim {key} is not bytes"))),
        }
    }

    fn date(&mut self, key: u8) -> Result<NaiveDate, CodeError> {
        days_to_date(self.i64(key)?)
            .ok_or_else(|| CodeError::malformed(format!("claim {key} is not a date")))
    }

    fn finish(self) -> Result<(), CodeError> {
        match self.0.keys().next() {
            Some(key) => Err(CodeError::malformed(format!("unknown claim {key}"))),
            None => Ok(()),
        }
    }
}

/// Decode claims strictly.
pub(crate) fn decode(bytes: &[u8]) -> Result<Payload, CodeError> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader(&mut rest)
        .map_err(|e| CodeError::malformed(format!("claims are not CBOR: {e}")))?;
    if !rest.is_empty() {
        return Err(CodeError::malformed("trailing bytes after claims"));
    }
    let Value::Map(entries) = value else {
        return Err(CodeError::malformed("claims are not a map"));
    };
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        let key = match key {
            Value::Integer(i) => u8::try_from(i128::from(i)).ok(),
            _ => None,
        }
        .ok_or_else(|| CodeError::malformed("claim key is not a small integer"))?;
        if map.insert(key, value).is_some() {
            return Err(CodeError::malformed(format!("claim {key} repeated")));
        }
    }
    let mut f = Fields(map);
    let kind =
        CodeKind::from_number(f.u8(1)?).ok_or_else(|| CodeError::malformed("unknown code kind"))?;
    let payload = match kind {
        CodeKind::MachineLabel => {
            let issued_at = f.i64(2)?;
            let machine_id = f.text(3)?;
            let kind = machine_kind_from(f.u8(4)?)
                .ok_or_else(|| CodeError::malformed("unknown machine kind"))?;
            let class = class_from(f.u8(5)?)
                .ok_or_else(|| CodeError::malformed("unknown machine class"))?;
            let owner_org = f.text(6)?;
            let region = u32::try_from(f.i64(7)?)
                .map_err(|_| CodeError::malformed("region out of range"))?;
            Payload::Machine(MachineLabel {
                machine_id,
                kind,
                class,
                owner_org,
                region,
                issued_at,
            })
        }
        CodeKind::WelderCredential => {
            let signed_at = f.i64(2)?;
            let certificate_no = f.text(3)?;
            let id_number = f.text(4)?;
            let name = f.text(5)?;
            let Value::Array(items) = f.take(6)? else {
                return Err(CodeError::malformed("categories are not an array"));
            };
            let mut categories = Vec::new();
            for item in items {
                let category = match item {
                    Value::Integer(i) => u8::try_from(i128::from(i)).ok().and_then(category_from),
                    _ => None,
                }
                .ok_or_else(|| CodeError::malformed("unknown operation category"))?;
                if categories.contains(&category) {
                    return Err(CodeError::malformed("duplicate operation category"));
                }
                categories.push(category);
            }
            if categories.is_empty() {
                return Err(CodeError::malformed("no operation category"));
            }
            let issued_on = f.date(7)?;
            let expires_on = f.date(8)?;
            let next_review_on = f.date(9)?;
            let photo_digest = f.bytes(10, MAX_DIGEST)?;
            let device_key = f.bytes(11, 33)?;
            Payload::Welder(CredentialClaims {
                credential: WelderCredential {
                    certificate_no,
                    id_number,
                    name,
                    categories,
                    issued_on,
                    expires_on,
                    next_review_on,
                    photo_digest,
                    device_key,
                },
                signed_at,
            })
        }
        CodeKind::Presentation => {
            let presented_at = f.i64(2)?;
            let credential_digest = f.bytes(3, 32)?;
            if credential_digest.len() != 32 {
                return Err(CodeError::malformed("credential digest is not 32 bytes"));
            }
            let nonce = f.bytes(4, *NONCE_LEN.end())?;
            if !NONCE_LEN.contains(&nonce.len()) {
                return Err(CodeError::malformed("nonce length"));
            }
            Payload::Presentation(PresentationClaims {
                credential_digest,
                presented_at,
                nonce,
            })
        }
    };
    f.finish()?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_and_refuse_absurd_values() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 15).unwrap();
        assert_eq!(days_to_date(date_to_days(d)), Some(d));
        assert_eq!(
            date_to_days(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()),
            0
        );
        assert_eq!(days_to_date(i64::MAX), None);
        assert_eq!(days_to_date(i64::MIN), None);
    }

    #[test]
    fn strict_decoding_refuses_unknown_repeated_and_trailing() {
        let label = Payload::Machine(MachineLabel {
            machine_id: "370983-DH-2024-000123".into(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: "91370983MA3C4X1Y2K".into(),
            region: 370983,
            issued_at: 1_730_000_000,
        });
        let bytes = encode(&label).unwrap();
        assert_eq!(decode(&bytes).unwrap(), label);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        // A map with one more (unknown) key.
        let mut value: Value = ciborium::de::from_reader(&bytes[..]).unwrap();
        if let Value::Map(m) = &mut value {
            m.push((small(99), small(1)));
        }
        let mut extra = Vec::new();
        ciborium::ser::into_writer(&value, &mut extra).unwrap();
        assert!(matches!(decode(&extra), Err(CodeError::Malformed { .. })));
        // A repeated key.
        if let Value::Map(m) = &mut value {
            m.pop();
            m.push((small(3), Value::Text("x".into())));
        }
        let mut repeated = Vec::new();
        ciborium::ser::into_writer(&value, &mut repeated).unwrap();
        assert!(matches!(
            decode(&repeated),
            Err(CodeError::Malformed { .. })
        ));
    }
}
