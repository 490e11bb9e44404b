//! Findings: what a rule found, as a stable code, a severity and a message in Chinese and English.
//!
//! [`RuleCode`] lists every code the rules in this module can produce, each with a fixed severity, so
//! shells and the server can match on codes and a test can check each one is reachable. Other modules
//! (hot-work permits, later) make [`Finding`]s with their own codes through [`Finding::new`].

use serde::Serialize;

use crate::domain::Explain;

/// How much a finding weighs in a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Work may not start.
    Deny,
    /// Work may start, but someone should act (apply for review, supervise closely, check identity).
    Warn,
    /// For the record: how the decision was reached.
    Info,
}

/// One finding of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable, lowercase, dot-separated code, e.g. `licence.expired`.
    pub code: &'static str,
    pub severity: Severity,
    /// The reason in Chinese.
    pub zh: String,
    /// The reason in English.
    pub en: String,
}

impl Finding {
    /// A finding with any code (for modules outside the rules, e.g. hot-work permits).
    pub fn new(
        code: &'static str,
        severity: Severity,
        zh: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        Self {
            code,
            severity,
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// A finding carrying an explained error or problem, with the given severity.
    pub fn from_explain(e: &dyn Explain, severity: Severity) -> Self {
        Self::new(e.code(), severity, e.message_zh(), e.message_en())
    }

    pub fn is_deny(&self) -> bool {
        self.severity == Severity::Deny
    }
}

impl Explain for Finding {
    fn code(&self) -> &'static str {
        self.code
    }
    fn message_zh(&self) -> String {
        self.zh.clone()
    }
    fn message_en(&self) -> String {
        self.en.clone()
    }
}

macro_rules! rule_codes {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, $sev:ident; )*) => {
        /// Every code the start-work, licence and machine rules produce, with its fixed severity.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum RuleCode {
            $( $(#[$doc])* #[serde(rename = $code)] $variant, )*
        }

        impl RuleCode {
            /// All codes, in declaration order.
            pub const ALL: &'static [RuleCode] = &[$(RuleCode::$variant),*];

            /// The stable code text.
            pub const fn as_str(self) -> &'static str {
                match self { $(RuleCode::$variant => $code,)* }
            }

            /// The severity every finding with this code has.
            pub const fn severity(self) -> Severity {
                match self { $(RuleCode::$variant => Severity::$sev,)* }
            }
        }
    };
}

rule_codes! {
    /// A registry read failed; nothing it would have said can be relied on.
    RegistryUnavailable => "registry.unavailable", Deny;

    /// The machine id is not in the registry.
    MachineUnknown => "machine.unknown", Deny;
    /// The machine was retired (淘汰) and may never be switched on again.
    MachineRetired => "machine.retired", Deny;
    /// The platform revoked this machine's label.
    MachineLabelRevoked => "machine.label_revoked", Deny;
    /// The signed label's kind, class or owner differs from the registry: forged or relabelled machine.
    MachineLabelMismatch => "machine.label_mismatch", Deny;
    /// The signed label's region differs from the registry (moved machine or stale label).
    MachineLabelRegionMismatch => "machine.label_region_mismatch", Warn;
    /// Fixed work station under process control: exempt from scan-to-start.
    MachineFixedStationExempt => "machine.fixed_station_exempt", Info;
    /// Legacy machine that cannot be retrofitted: allowed under key supervision.
    MachineLegacyKeySupervision => "machine.legacy_key_supervision", Warn;
    /// The machine was named by a bare id (unsigned): the registry answered, the code proved nothing.
    MachineUnsignedSource => "machine.unsigned_source", Info;

    /// A certificate number from an unsigned source that the registry does not know.
    WelderUnknownCertificate => "welder.unknown_certificate", Deny;
    /// A certificate number from an unsigned source: the registry answered, the code proved nothing.
    /// A warning (unlike a bare machine id, info): anyone can type someone else's number, so the
    /// person must be checked against the registry's holder.
    WelderUnsignedSource => "welder.unsigned_source", Warn;
    /// A signed credential shown without a live presentation (could be a screenshot).
    WelderNotLive => "welder.not_live", Warn;
    /// A signed credential the registry does not (yet) know; judged on its signed claims.
    WelderNotInRegistry => "welder.not_in_registry", Warn;
    /// The credential's holder (ID number or name) differs from the registry's for that certificate.
    WelderRegistryMismatch => "welder.registry_mismatch", Deny;
    /// The credential's dates or categories differ from the registry's; the registry's were used.
    WelderCredentialOutdated => "welder.credential_outdated", Info;
    /// The holder's ID number fails GB 11643-1999 (or is a legacy 15-digit number).
    WelderIdNumberInvalid => "welder.id_number_invalid", Deny;

    /// The licence was revoked.
    LicenceRevoked => "licence.revoked", Deny;
    /// The licence's validity has not started on the date of the work.
    LicenceNotYetValid => "licence.not_yet_valid", Deny;
    /// The licence expired before the date of the work.
    LicenceExpired => "licence.expired", Deny;
    /// The licence expires within the renewal window: apply for renewal now.
    LicenceExpiringSoon => "licence.expiring_soon", Warn;
    /// The review (复审) was due before the date of the work and is not recorded as done.
    LicenceReviewOverdue => "licence.review_overdue", Deny;
    /// The review is due within the application window: apply now.
    LicenceReviewDueSoon => "licence.review_due_soon", Warn;
    /// The recorded expiry is later than the rules allow; the rule's date was used.
    LicenceValidityBeyondRule => "licence.validity_beyond_rule", Warn;
    /// The recorded next review is further away than the review interval allows.
    LicenceReviewScheduleImplausible => "licence.review_schedule_implausible", Warn;
    /// The licence does not cover the category the machine's kind requires.
    LicenceCategoryMismatch => "licence.category_mismatch", Deny;

    /// The welder is neither bound to the machine nor employed by its owner (人机匹配 failed).
    MatchNotMatched => "match.not_matched", Deny;
    /// Matched through a registered person–machine binding.
    MatchByBinding => "match.by_binding", Info;
    /// Matched because the welder's employer owns the machine.
    MatchByEmployer => "match.by_employer", Info;
}

impl RuleCode {
    /// A finding with this code and its fixed severity.
    pub fn finding(self, zh: impl Into<String>, en: impl Into<String>) -> Finding {
        Finding::new(self.as_str(), self.severity(), zh, en)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_lowercase_and_dotted() {
        let mut seen = std::collections::HashSet::new();
        for c in RuleCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate {s}");
            assert!(s.contains('.'), "{s}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{s}"
            );
        }
    }

    #[test]
    fn serialises_code_as_text() {
        let f = RuleCode::LicenceExpired.finding("过期", "expired");
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["code"], "licence.expired");
        assert_eq!(v["severity"], "deny");
        assert_eq!(
            serde_json::to_value(RuleCode::MatchByBinding).unwrap(),
            "match.by_binding"
        );
    }
}
