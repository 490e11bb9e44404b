//! Scanned texts that are not `WG1:` codes: a URL (printed on national certificates, and on forged ones
//! pointing at look-alike pages) or a bare machine id or certificate number. Such a text proves nothing
//! by itself: the URL is never followed or trusted; at most an id is extracted to look up in the registry.

use serde::{Deserialize, Serialize};

use crate::domain::{Explain, Licence, Machine};
use crate::rules::registry::{RegistryError, RegistryView};

use super::envelope::{PREFIX, other_version};

/// What an unsigned text looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum UnsignedForm {
    /// A web address. `host` is shown so a person can judge it; it is not checked or trusted.
    Url { host: String },
    /// A bare certificate number ("T" + an 18-character ID number, or the ID number alone).
    CertificateNumber,
    /// A bare machine id (letters, digits and dashes).
    MachineId,
    /// Anything else.
    Other,
}

/// What to look up in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupTarget {
    Licence,
    Machine,
}

/// A registry lookup suggested by an unsigned text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    pub target: LookupTarget,
    pub id: String,
}

/// An unsigned scanned text. `proves_nothing` is always true: only a registry answer may be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsignedCode {
    pub form: UnsignedForm,
    pub lookup: Option<Lookup>,
    pub proves_nothing: bool,
}

impl Explain for UnsignedCode {
    fn code(&self) -> &'static str {
        "code.unsigned"
    }

    fn message_zh(&self) -> String {
        let what = match &self.form {
            UnsignedForm::Url { host } => {
                format!("这是一个网址（{host}），不是签名码；网址不会被打开，也不能证明证件真伪")
            }
            UnsignedForm::CertificateNumber => "这是一个证号，不是签名码".into(),
            UnsignedForm::MachineId => "这是一个设备编号，不是签名码".into(),
            UnsignedForm::Other => "这不是 WeldGuard 签名码".into(),
        };
        match &self.lookup {
            Some(l) => format!("{what}。本身不证明任何事，须以登记库查询结果为准：{}", l.id),
            None => format!("{what}。本身不证明任何事。"),
        }
    }

    fn message_en(&self) -> String {
        let what = match &self.form {
            UnsignedForm::Url { host } => format!(
                "This is a web address ({host}), not a signed code; it is not opened and proves nothing about the certificate"
            ),
            UnsignedForm::CertificateNumber => {
                "This is a certificate number, not a signed code".into()
            }
            UnsignedForm::MachineId => "This is a machine id, not a signed code".into(),
            UnsignedForm::Other => "This is not a WeldGuard signed code".into(),
        };
        match &self.lookup {
            Some(l) => format!(
                "{what}. It proves nothing by itself; only the registry lookup of {} counts",
                l.id
            ),
            None => format!("{what}. It proves nothing by itself."),
        }
    }
}

/// What a scanned text is, before any verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScannedText {
    /// Looks like a WeldGuard code (`WG1:` or another version): verify it.
    Signed,
    /// Not a signed code.
    Unsigned(UnsignedCode),
}

/// Classify a scanned text. Never does I/O.
pub fn classify(text: &str) -> ScannedText {
    let text = text.trim();
    if text.starts_with(PREFIX) || other_version(text).is_some() {
        return ScannedText::Signed;
    }
    let (form, lookup) = if let Some(host) = url_host(text) {
        let lookup = certificate_candidate(text).map(|id| Lookup {
            target: LookupTarget::Licence,
            id,
        });
        (UnsignedForm::Url { host }, lookup)
    } else if let Some(id) = whole_certificate_number(text) {
        (
            UnsignedForm::CertificateNumber,
            Some(Lookup {
                target: LookupTarget::Licence,
                id,
            }),
        )
    } else if is_machine_id(text) {
        (
            UnsignedForm::MachineId,
            Some(Lookup {
                target: LookupTarget::Machine,
                id: text.to_owned(),
            }),
        )
    } else {
        (UnsignedForm::Other, None)
    };
    ScannedText::Unsigned(UnsignedCode {
        form,
        lookup,
        proves_nothing: true,
    })
}

/// What the registry says about an unsigned text's lookup. Only this answer counts, never the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum RegistryAnswer {
    Licence(Licence),
    Machine(Machine),
    /// The registry does not know this id: treat the scanned text as unverified (possibly forged).
    NotFound {
        id: String,
    },
    /// Nothing in the text to look up.
    NothingToLookUp,
}

/// Look up an unsigned text's candidate id in the registry.
pub fn look_up(
    code: &UnsignedCode,
    registry: &dyn RegistryView,
) -> Result<RegistryAnswer, RegistryError> {
    let Some(lookup) = &code.lookup else {
        return Ok(RegistryAnswer::NothingToLookUp);
    };
    let found = match lookup.target {
        LookupTarget::Licence => registry.licence(&lookup.id)?.map(RegistryAnswer::Licence),
        LookupTarget::Machine => registry.machine(&lookup.id)?.map(RegistryAnswer::Machine),
    };
    Ok(found.unwrap_or_else(|| RegistryAnswer::NotFound {
        id: lookup.id.clone(),
    }))
}

/// The host of an http(s) URL, lowercased, without credentials or port.
fn url_host(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = host_port.split(':').next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_owned())
}

/// Is `s` an 18-character resident ID number shape (17 digits and a digit or X)?
fn is_id_shape(s: &[u8]) -> bool {
    s.len() == 18
        && s.iter().take(17).all(u8::is_ascii_digit)
        && s.get(17)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'X' || *c == b'x')
}

fn normalise(candidate: &str) -> String {
    candidate.to_ascii_uppercase()
}

/// The whole text is a certificate number: "T" + ID shape, or an ID shape.
fn whole_certificate_number(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let ok = match b.first() {
        Some(b'T' | b't') => is_id_shape(b.get(1..).unwrap_or_default()),
        _ => is_id_shape(b),
    };
    ok.then(|| normalise(text))
}

/// A certificate number inside a longer text (a URL's path or query): the first run of 17 digits
/// and a check character not embedded in a longer run of digits, with a preceding "T" kept.
fn certificate_candidate(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start_ok = i == 0 || !b.get(i - 1).is_some_and(u8::is_ascii_digit);
        if start_ok
            && let Some(window) = b.get(i..i + 18)
            && is_id_shape(window)
            && !b.get(i + 18).is_some_and(u8::is_ascii_alphanumeric)
        {
            let with_t = i > 0 && matches!(b.get(i - 1), Some(b'T' | b't'));
            let start = if with_t { i - 1 } else { i };
            return text.get(start..i + 18).map(normalise);
        }
        i += 1;
    }
    None
}

/// A plausible machine id: 4 to 40 ASCII letters, digits and dashes, with at least one digit.
fn is_machine_id(text: &str) -> bool {
    (4..=40).contains(&text.len())
        && text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        && text.bytes().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(text: &str) -> UnsignedCode {
        match classify(text) {
            ScannedText::Unsigned(u) => u,
            ScannedText::Signed => panic!("{text} classified as signed"),
        }
    }

    #[test]
    fn urls_are_never_trusted_but_yield_a_certificate_candidate() {
        let u = unsigned(
            "http://cx.mem.gov.cn.example-lookalike.com/query?zh=T37098319900101123X&lx=1",
        );
        assert_eq!(
            u.form,
            UnsignedForm::Url {
                host: "cx.mem.gov.cn.example-lookalike.com".into()
            }
        );
        assert_eq!(
            u.lookup,
            Some(Lookup {
                target: LookupTarget::Licence,
                id: "T37098319900101123X".into()
            })
        );
        assert!(u.proves_nothing);
        assert!(u.message_en().contains("proves nothing"));
        assert!(u.message_zh().contains("本身不证明任何事"));

        let u = unsigned("https://user@Example.COM:8443/cert/370983199001011234");
        assert_eq!(
            u.form,
            UnsignedForm::Url {
                host: "example.com".into()
            }
        );
        assert_eq!(u.lookup.unwrap().id, "370983199001011234");
        // A longer digit run is not a certificate number.
        assert_eq!(unsigned("https://x.cn/?n=1370983199001011234").lookup, None);
        assert_eq!(unsigned("https://x.cn/").lookup, None);
    }

    #[test]
    fn bare_ids_are_classified_for_lookup() {
        let u = unsigned("t37098319900101123x");
        assert_eq!(u.form, UnsignedForm::CertificateNumber);
        assert_eq!(u.lookup.unwrap().id, "T37098319900101123X");
        let u = unsigned(" 370983-DH-2024-000123\n");
        assert_eq!(u.form, UnsignedForm::MachineId);
        assert_eq!(
            u.lookup,
            Some(Lookup {
                target: LookupTarget::Machine,
                id: "370983-DH-2024-000123".into()
            })
        );
        let u = unsigned("你好，世界");
        assert_eq!(u.form, UnsignedForm::Other);
        assert_eq!(u.lookup, None);
        assert!(u.proves_nothing);
    }

    #[test]
    fn only_the_registry_answers_for_an_unsigned_text() {
        use crate::domain::{MachineClass, MachineKind, MachineStatus};
        use crate::rules::registry::MemoryRegistry;
        let mut registry = MemoryRegistry::default();
        let machine = Machine {
            machine_id: "370983-DH-2024-000123".into(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: "91370983MA3C4X1Y2K".into(),
            region: 370983,
            status: MachineStatus::Active,
        };
        registry.add_machine(machine.clone());
        let known = unsigned("370983-DH-2024-000123");
        assert_eq!(
            look_up(&known, &registry),
            Ok(RegistryAnswer::Machine(machine))
        );
        let forged = unsigned("https://fake.example/?zh=T370983199001011233");
        assert_eq!(
            look_up(&forged, &registry),
            Ok(RegistryAnswer::NotFound {
                id: "T370983199001011233".into()
            })
        );
        assert_eq!(
            look_up(&unsigned("???"), &registry),
            Ok(RegistryAnswer::NothingToLookUp)
        );
    }

    #[test]
    fn weldguard_codes_are_signed_texts() {
        assert_eq!(classify("WG1:ABC"), ScannedText::Signed);
        assert_eq!(classify("WG7:ABC"), ScannedText::Signed);
    }
}
