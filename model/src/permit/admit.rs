//! What the platform admits (and what a device admits when it pulls): a new permit version counts
//! only when it is exactly what its one action makes of the version before under the same permit
//! rules the device ran, every signature is an enrolled signer's with a role allowed for the step
//! ([`super::authority`]), and its time is plausible. The action is replayed with
//! [`Permit::apply`], the same code the device signs with, so a rule lives once: checklist
//! completeness for the level, gas readings, time windows, the level decision, the approver's role.
//!
//! The replay cannot sign; it hands `apply` the signature the version carries
//! ([`RecordedSignature`]), and [`super::verify`] (inside [`successor_action`]) has already proved
//! that signature genuine for the key the version names.

use super::catalog::Catalog;
use super::lifecycle::{Action, RuleContext};
use super::model::{ActionKind, Actor, EventKind, Permit, PermitError, PermitState, StepSignature};
use super::profile::{ProfileSet, RuleProfile, WorkCalendar};
use super::succession::successor_action;
use crate::codes::signer::{DeviceSigner, SignerError};
use crate::signers::SignerDirectory;

/// Everything a replay consults besides the two versions.
#[derive(Clone, Copy)]
pub struct Admission<'a> {
    pub profiles: &'a ProfileSet,
    pub catalog: &'a Catalog,
    /// The work calendar the level decision is made with (holidays, sensitive periods).
    pub calendar: &'a WorkCalendar,
    pub directory: &'a SignerDirectory,
    /// The checker's clock (Unix seconds), and how far past it an action may be dated.
    pub now: i64,
    pub skew_secs: i64,
}

/// A "signer" that returns the signature a version already carries, for the replay.
struct RecordedSignature<'s>(&'s StepSignature);

impl DeviceSigner for RecordedSignature<'_> {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key.clone()
    }

    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.0.signature.clone())
    }

    /// The replay rebuilds the bytes in the format the recorded signature used.
    fn presence_claim(&self) -> Option<bool> {
        self.0.user_present
    }
}

impl<'a> Admission<'a> {
    /// The profile version and catalog a permit records.
    pub fn context(
        &self,
        permit: &Permit,
    ) -> Result<(RuleContext<'a>, &'a RuleProfile), PermitError> {
        let c = &permit.content;
        let profile = self
            .profiles
            .get(&c.profile_id, &c.profile_version)
            .ok_or_else(|| PermitError::VersionMismatch {
                what: "rule profile",
                recorded: format!("{} {}", c.profile_id, c.profile_version),
                given: "no such profile version here".into(),
            })?;
        if c.catalog_version != self.catalog.version {
            return Err(PermitError::VersionMismatch {
                what: "checklist catalog",
                recorded: c.catalog_version.clone(),
                given: self.catalog.version.clone(),
            });
        }
        let ctx = RuleContext {
            profile,
            catalog: self.catalog,
        };
        Ok((ctx, profile))
    }

    fn check_time(&self, at: i64, not_before: Option<i64>) -> Result<(), PermitError> {
        if at > self.now.saturating_add(self.skew_secs) {
            return Err(PermitError::BadTime {
                at,
                en: "it lies in the future",
                zh: "时间在将来",
            });
        }
        // Two phones' clocks differ: a step may be dated up to the skew before the entry it follows.
        if not_before.is_some_and(|before| at < before.saturating_sub(self.skew_secs)) {
            return Err(PermitError::BadTime {
                at,
                en: "it is before the permit's previous entry",
                zh: "早于作业证的上一条记录",
            });
        }
        Ok(())
    }

    /// A permit's first version: a draft exactly as [`Permit::draft`] makes it, under a profile
    /// and catalog known here, dated plausibly.
    pub fn admit_first(&self, next: &Permit) -> Result<(), PermitError> {
        let (ctx, _) = self.context(next)?;
        let [first] = next.events.as_slice() else {
            return Err(PermitError::NotWhatTheRulesMake(
                "a first version holds only its drafting".into(),
            ));
        };
        self.check_time(first.at, None)?;
        let by = Actor {
            name: String::new(),
            id: first.by.clone().unwrap_or_default(),
            role: String::new(),
        };
        let mut made = Permit::draft(next.content.clone(), &ctx, &by, first.at)?;
        made.events[0].by = first.by.clone();
        if made != *next {
            return Err(PermitError::NotWhatTheRulesMake(
                "not a draft as drafting makes it".into(),
            ));
        }
        Ok(())
    }

    /// Whether `next` is what one action makes of `prev` under the rules, signed by people who may
    /// sign it; returns the action.
    pub fn admit(&self, prev: &Permit, next: &Permit) -> Result<ActionKind, PermitError> {
        let kind = successor_action(prev, next)?;
        let (ctx, profile) = self.context(prev)?;
        let last = next
            .events
            .last()
            .ok_or_else(|| PermitError::NotWhatTheRulesMake("no event".into()))?;
        self.check_time(last.at, prev.events.last().map(|e| e.at))?;
        let new_signature = next.signatures.get(prev.signatures.len());
        let signer = new_signature.map(RecordedSignature);
        let action = replayed_action(
            kind,
            next,
            last,
            new_signature,
            signer.as_ref().map(|s| s as &dyn DeviceSigner),
            self.calendar,
        )?;
        let mut made = prev.clone();
        match made.apply(&ctx, action) {
            Ok(()) => {}
            // The recorded signature does not sign what the rules make of this action: replay
            // with a stand-in key to say which part differs.
            Err(PermitError::SigningFailed(_)) => {
                let stand_in = crate::codes::signer::SoftwareSigner::from_secret(&[1; 32])
                    .map_err(|e| PermitError::SigningFailed(e.0))?;
                let action = replayed_action(
                    kind,
                    next,
                    last,
                    new_signature,
                    Some(&stand_in),
                    self.calendar,
                )?;
                let mut made = prev.clone();
                made.apply(&ctx, action)?;
                return Err(PermitError::NotWhatTheRulesMake(difference(&made, next)));
            }
            Err(e) => return Err(e),
        }
        if made != *next {
            return Err(PermitError::NotWhatTheRulesMake(difference(&made, next)));
        }
        if let Some(sig) = new_signature {
            // A new approval must record the approver's presence verified by the key store: format
            // `/2` with `user_present`. A `/1` approval records nothing about presence; one the
            // platform admitted before still counts (it is not judged again), a new one does not.
            if sig.step == super::model::SignedStep::Approve && sig.user_present != Some(true) {
                return Err(PermitError::PresenceMissing {
                    index: prev.signatures.len(),
                    step: sig.step,
                    signer: sig.signer.name.clone(),
                    legacy: sig.user_present.is_none(),
                });
            }
            // The key must be enrolled now, not only when the step claims it was signed.
            let entry = super::authority::check_signature(
                next,
                prev.signatures.len(),
                profile,
                self.directory,
            )?;
            if entry.valid_until.is_some_and(|until| self.now >= until) {
                return Err(PermitError::SignerNotValid {
                    index: prev.signatures.len(),
                    step: sig.step,
                    signer: sig.signer.name.clone(),
                });
            }
            super::authority::check_signers(next, profile, self.directory)?;
        }
        Ok(kind)
    }
}

/// The action `next` records, rebuilt from what it adds.
fn replayed_action<'s>(
    kind: ActionKind,
    next: &'s Permit,
    last: &'s super::model::PermitEvent,
    signature: Option<&'s StepSignature>,
    signer: Option<&'s dyn DeviceSigner>,
    calendar: &'s WorkCalendar,
) -> Result<Action<'s>, PermitError> {
    let at = last.at;
    let by_id = || Actor {
        name: String::new(),
        id: last.by.clone().unwrap_or_default(),
        role: String::new(),
    };
    let reason = || match &last.kind {
        EventKind::Suspended { reason }
        | EventKind::Rejected { reason }
        | EventKind::Cancelled { reason } => reason.clone(),
        _ => String::new(),
    };
    let signed = || -> Result<(&'s StepSignature, &'s dyn DeviceSigner), PermitError> {
        match (signature, signer) {
            (Some(s), Some(r)) => Ok((s, r)),
            _ => Err(PermitError::NotWhatTheRulesMake(
                "a signed step without its signature".into(),
            )),
        }
    };
    Ok(match kind {
        ActionKind::Edit => Action::Edit {
            content: Box::new(next.content.clone()),
            at,
        },
        ActionKind::Submit => {
            let (s, signer) = signed()?;
            Action::Submit {
                by: s.signer.clone(),
                signer,
                calendar,
                at: s.at,
                location: s.location,
            }
        }
        ActionKind::SiteCheck => {
            let (s, signer) = signed()?;
            Action::SiteCheck {
                by: s.signer.clone(),
                signer,
                answers: next.answers.clone(),
                at: s.at,
                location: s.location,
            }
        }
        ActionKind::Approve => {
            let (s, signer) = signed()?;
            Action::Approve {
                by: s.signer.clone(),
                signer,
                at: s.at,
                location: s.location,
            }
        }
        ActionKind::Close => {
            let (s, signer) = signed()?;
            Action::Close {
                by: s.signer.clone(),
                signer,
                post_work: next.post_work.clone(),
                at: s.at,
                location: s.location,
            }
        }
        ActionKind::Start => Action::Start {
            at,
            continuous_monitoring: matches!(
                last.kind,
                EventKind::Started {
                    continuous_monitoring: true
                }
            ),
            by: last.by.clone(),
        },
        ActionKind::Suspend => Action::Suspend {
            at,
            reason: reason(),
        },
        ActionKind::Resume => Action::Resume { at },
        ActionKind::Complete => Action::Complete { at },
        ActionKind::Reject => Action::Reject {
            by: by_id(),
            at,
            reason: reason(),
        },
        ActionKind::Cancel => Action::Cancel {
            by: by_id(),
            at,
            reason: reason(),
        },
        ActionKind::Expire => Action::Expire { at },
        ActionKind::RecordGas => Action::RecordGas {
            reading: next
                .gas_readings
                .last()
                .cloned()
                .ok_or_else(|| PermitError::NotWhatTheRulesMake("no gas reading".into()))?,
            by: last.by.clone(),
        },
    })
}

/// Which part of the replayed version differs from the one given.
fn difference(made: &Permit, given: &Permit) -> String {
    let parts: [(&str, bool); 6] = [
        ("state", made.state != given.state),
        ("level decision", made.level != given.level),
        ("event log", made.events != given.events),
        ("checklist answers", made.answers != given.answers),
        ("gas readings", made.gas_readings != given.gas_readings),
        ("content", made.content != given.content),
    ];
    let differing: Vec<&str> = parts.iter().filter(|(_, d)| *d).map(|(n, _)| *n).collect();
    if made.state == PermitState::Submitted && made.level != given.level {
        return format!(
            "the level decision is not the platform's ({:?} signed, {:?} by the platform's work \
             calendar): sync, then submit again",
            given.level.as_ref().map(|l| l.required),
            made.level.as_ref().map(|l| l.required)
        );
    }
    if differing.is_empty() {
        return "differs in its signatures".into();
    }
    format!("differs in: {}", differing.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Explain;
    use crate::permit::fixtures::{Fx, actor, t};
    use crate::permit::model::{PermitEvent, SignedStep};
    use crate::permit::sign::sign_step;

    struct Setup {
        f: Fx,
        profiles: ProfileSet,
        directory: SignerDirectory,
    }

    impl Setup {
        fn new() -> Self {
            let f = Fx::new("gb30871");
            let directory = f.directory();
            Setup {
                f,
                profiles: ProfileSet::builtin().unwrap(),
                directory,
            }
        }

        fn admission(&self, now: i64) -> Admission<'_> {
            Admission {
                profiles: &self.profiles,
                catalog: &self.f.catalog,
                calendar: self.f.calendar(),
                directory: &self.directory,
                now,
                skew_secs: 600,
            }
        }
    }

    fn code<T>(r: Result<T, PermitError>) -> &'static str {
        r.map_or_else(|e| e.code(), |_| "ok")
    }

    #[test]
    fn every_step_of_the_standard_timeline_is_admitted() {
        use ActionKind as A;
        let s = Setup::new();
        let a = s.admission(t(23, 0));
        let mut p = s.f.draft();
        a.admit_first(&p).unwrap();
        for kind in [
            A::Edit,
            A::Submit,
            A::SiteCheck,
            A::Approve,
            A::RecordGas,
            A::Start,
            A::Suspend,
            A::Resume,
            A::Complete,
            A::Close,
        ] {
            let before = p.clone();
            s.f.run(&mut p, &[kind]);
            assert_eq!(a.admit(&before, &p), Ok(kind), "{kind:?}");
        }
        for (state, kind) in [
            (PermitState::Submitted, A::Reject),
            (PermitState::Approved, A::Cancel),
            (PermitState::Approved, A::Expire),
        ] {
            let before = s.f.in_state(state);
            let mut after = before.clone();
            s.f.run(&mut after, &[kind]);
            assert_eq!(a.admit(&before, &after), Ok(kind), "{kind:?}");
        }
    }

    /// The checked permit approved by the enrolled approver's key, signed through `signer`
    /// (which decides what the signature records about presence), as the rules make it.
    fn approved_through(s: &Setup, signer: &dyn DeviceSigner) -> (Permit, Permit) {
        let checked = s.f.in_state(PermitState::Checked);
        let mut approved = checked.clone();
        let Action::Approve {
            by, at, location, ..
        } = s.f.action(ActionKind::Approve)
        else {
            unreachable!()
        };
        approved
            .apply(
                &s.f.ctx(),
                Action::Approve {
                    by,
                    signer,
                    at,
                    location,
                },
            )
            .unwrap();
        (checked, approved)
    }

    /// A stand-in for a phone that signs in the legacy format /1 (an old app version, or a forger
    /// hoping the old format skips the presence check).
    struct LegacyFormat<'a>(&'a dyn DeviceSigner);

    impl DeviceSigner for LegacyFormat<'_> {
        fn public_key(&self) -> Vec<u8> {
            self.0.public_key()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
            self.0.sign(message)
        }
        fn presence_claim(&self) -> Option<bool> {
            None
        }
    }

    #[test]
    fn an_approval_without_the_approvers_presence_is_not_admitted() {
        let s = Setup::new();
        let a = s.admission(t(23, 0));
        // Signed with presence verified (format /2): admitted.
        let present = crate::codes::PresenceConfirmed(s.f.approver());
        let (checked, approved) = approved_through(&s, &present);
        assert_eq!(approved.signatures[2].user_present, Some(true));
        assert_eq!(a.admit(&checked, &approved), Ok(ActionKind::Approve));

        // The same key without presence (format /2, user_present false): refused here and void
        // wherever its signers are checked.
        let (checked, absent) = approved_through(&s, s.f.approver());
        crate::permit::verify(&absent).unwrap();
        assert_eq!(absent.signatures[2].user_present, Some(false));
        assert_eq!(
            a.admit(&checked, &absent),
            Err(PermitError::PresenceMissing {
                index: 2,
                step: SignedStep::Approve,
                signer: "周八".into(),
                legacy: false,
            })
        );
        assert_eq!(
            code(crate::permit::check_signers(
                &absent,
                &s.f.profile,
                &s.directory
            )),
            "permit.presence_missing"
        );

        // The attack: a relaying device flips user_present to true. The signature covers it.
        let mut flipped = absent.clone();
        flipped.signatures[2].user_present = Some(true);
        assert_eq!(
            code(crate::permit::verify(&flipped)),
            "permit.signature_broken"
        );
        assert_ne!(code(a.admit(&checked, &flipped)), "ok");
        // …or drops the field, passing the approval off as format /1.
        let mut dropped = absent.clone();
        dropped.signatures[2].user_present = None;
        assert_eq!(
            code(crate::permit::verify(&dropped)),
            "permit.signature_broken"
        );
        assert_ne!(code(a.admit(&checked, &dropped)), "ok");

        // A new approval genuinely signed in the old format /1 says nothing about presence: a
        // stored one keeps verifying and its signers keep counting, but the platform admits no
        // new one.
        let legacy = LegacyFormat(s.f.approver());
        let (checked, old) = approved_through(&s, &legacy);
        assert_eq!(old.signatures[2].user_present, None);
        assert_eq!(old.signatures[2].format(), crate::permit::sign::FORMAT_V1);
        crate::permit::verify(&old).unwrap();
        crate::permit::check_signers(&old, &s.f.profile, &s.directory).unwrap();
        assert_eq!(
            a.admit(&checked, &old),
            Err(PermitError::PresenceMissing {
                index: 2,
                step: SignedStep::Approve,
                signer: "周八".into(),
                legacy: true,
            })
        );
        // A later step over a permit whose /1 approval was admitted before is still admitted.
        let mut gas = old.clone();
        s.f.run(&mut gas, &[ActionKind::RecordGas]);
        assert_eq!(a.admit(&old, &gas), Ok(ActionKind::RecordGas));
    }

    #[test]
    fn a_site_check_with_no_answers_is_refused_by_the_rules() {
        // The attack: a device skips the rules and signs a "checked" permit with no answer.
        let s = Setup::new();
        let submitted = s.f.in_state(PermitState::Submitted);
        let mut forged = submitted.clone();
        forged.events.push(PermitEvent {
            at: t(7, 20),
            kind: EventKind::Checked,
            by: Some("S-003".into()),
        });
        forged.state = PermitState::Checked;
        sign_step(
            &mut forged,
            SignedStep::SiteCheck,
            &actor("孙七", "S-003", "supervisor"),
            s.f.checker(),
            t(7, 20),
            None,
        )
        .unwrap();
        // The chain verifies and the step is a successor by one action…
        assert_eq!(
            successor_action(&submitted, &forged),
            Ok(ActionKind::SiteCheck)
        );
        // …but the rules the device should have run refuse it.
        let err = s
            .admission(t(23, 0))
            .admit(&submitted, &forged)
            .unwrap_err();
        assert_eq!(err.code(), "permit.rule_blocked", "{err}");
        assert!(err.message_zh().contains("检查"), "{}", err.message_zh());
    }

    #[test]
    fn a_level_lower_than_the_rules_decide_is_refused() {
        let s = Setup::new();
        let draft = s.f.draft();
        let mut submitted = draft.clone();
        s.f.run(&mut submitted, &[ActionKind::Submit]);
        // Re-sign the submission with the level decision lowered to one the profile lacks.
        let mut forged = draft.clone();
        forged.events.push(submitted.events[1].clone());
        forged.state = PermitState::Submitted;
        let mut level = submitted.level.clone().unwrap();
        level.required = crate::permit::PermitLevel::Level3;
        forged.level = Some(level);
        sign_step(
            &mut forged,
            SignedStep::Submit,
            &actor("张三", "S-001", "applicant"),
            s.f.applicant(),
            t(7, 0),
            None,
        )
        .unwrap();
        assert_eq!(successor_action(&draft, &forged), Ok(ActionKind::Submit));
        let err = s.admission(t(23, 0)).admit(&draft, &forged).unwrap_err();
        assert_eq!(err.code(), "permit.not_what_rules_make", "{err}");
        assert!(err.to_string().contains("level decision"), "{err}");
    }

    #[test]
    fn an_approval_without_its_flag_is_not_what_the_rules_make() {
        // Approving away from the site is flagged on the permit; dropping the flag is refused.
        let s = Setup::new();
        let checked = s.f.in_state(PermitState::Checked);
        let mut forged = checked.clone();
        forged.events.push(PermitEvent {
            at: t(7, 40),
            kind: EventKind::Approved,
            by: Some("S-004".into()),
        });
        forged.state = PermitState::Approved;
        sign_step(
            &mut forged,
            SignedStep::Approve,
            &actor("周八", "S-004", "unit_head"),
            s.f.approver(),
            t(7, 40),
            None,
        )
        .unwrap();
        assert_eq!(successor_action(&checked, &forged), Ok(ActionKind::Approve));
        let err = s.admission(t(23, 0)).admit(&checked, &forged).unwrap_err();
        assert_eq!(err.code(), "permit.not_what_rules_make", "{err}");
    }

    #[test]
    fn steps_dated_in_the_future_or_before_the_log_are_refused() {
        let s = Setup::new();
        let approved = s.f.in_state(PermitState::Approved);
        let mut started = approved.clone();
        s.f.run(&mut started, &[ActionKind::RecordGas, ActionKind::Start]);
        let mut gas = approved.clone();
        s.f.run(&mut gas, &[ActionKind::RecordGas]);
        // The platform's clock reads 08:00: a start at 09:00 lies in the future.
        assert_eq!(
            code(s.admission(t(8, 0)).admit(&gas, &started)),
            "permit.bad_time"
        );
        assert_eq!(code(s.admission(t(8, 55)).admit(&gas, &started)), "ok");
        // A draft dated in the year 2999.
        let mut far = s.f.draft();
        far.events[0].at = 32_503_680_000;
        assert_eq!(
            code(s.admission(t(8, 0)).admit_first(&far)),
            "permit.bad_time"
        );
    }

    #[test]
    fn a_step_signed_by_someone_not_enrolled_is_refused_even_when_the_rules_pass() {
        let mut s = Setup::new();
        let checked = s.f.in_state(PermitState::Checked);
        let mut approved = checked.clone();
        s.f.run(&mut approved, &[ActionKind::Approve]);
        s.directory = SignerDirectory::default();
        assert_eq!(
            code(s.admission(t(23, 0)).admit(&checked, &approved)),
            "permit.signer_unknown"
        );
    }
}
