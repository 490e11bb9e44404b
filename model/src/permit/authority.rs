//! Who may sign what (docs/adr/0014-who-may-sign-what.md): every signature of a permit checked
//! against the platform's signer directory ([`crate::signers`]) and the profile's signer rules
//! ([`super::SignerRules`], each level's approver). Pure: the directory and the profile are passed
//! in; the device checks with the directory it synced, the server with the one it publishes.
//!
//! Whose key is trusted, and why: [`super::verify`] proves that each signature was made by the key
//! the permit carries; this module decides whether that key may speak for the step. It must be an
//! enrolled signer's key (an entry of the directory, which the platform's issuer key signed), valid
//! when the step was signed; the person the step names must be the key's person; the role the step
//! claims must be held by that person and be one that may sign this step at the permit's level.
//! The applicant's submission must come from the applicant the permit names, a fire watch may
//! close only a permit naming them, and the profile's `distinct` pairs of steps need two people.

use super::model::{Permit, PermitError, StepSignature};
use super::profile::{ProfileSet, RuleProfile};
use crate::signers::{SignerDirectory, SignerEntry};

/// The permit role of whoever submits for the applicant the permit names.
pub const ROLE_APPLICANT: &str = "applicant";
/// The permit role of a fire watch (监护人), who may close only a permit naming them.
pub const ROLE_FIRE_WATCH: &str = "fire_watch";

/// Check one signature (by index) of `permit`: returns the directory entry that vouches for it.
pub fn check_signature<'d>(
    permit: &Permit,
    index: usize,
    profile: &RuleProfile,
    directory: &'d SignerDirectory,
) -> Result<&'d SignerEntry, PermitError> {
    let Some(sig) = permit.signatures.get(index) else {
        return Err(PermitError::Encoding(format!("no signature {index}")));
    };
    let StepSignature {
        step, signer, at, ..
    } = sig;
    let entry = directory
        .entry(&sig.public_key)
        .ok_or_else(|| PermitError::SignerUnknown {
            index,
            step: *step,
            signer: signer.name.clone(),
        })?;
    if !entry.valid_at(*at) {
        return Err(PermitError::SignerNotValid {
            index,
            step: *step,
            signer: signer.name.clone(),
        });
    }
    if signer.id != entry.person_id || signer.name != entry.name {
        return Err(PermitError::SignerNotPerson {
            index,
            step: *step,
            named: format!("{} ({})", signer.name, signer.id),
            holder: entry.name.clone(),
            holder_id: entry.person_id.clone(),
        });
    }
    let allowed = profile.signer_roles(*step, permit.level());
    if !allowed.contains(&signer.role.as_str()) || !entry.roles.contains(&signer.role) {
        return Err(PermitError::SignerRole {
            index,
            step: *step,
            signer: signer.name.clone(),
            role: signer.role.clone(),
            allowed: allowed.into_iter().map(str::to_owned).collect(),
            held: entry.roles.clone(),
        });
    }
    let content = &permit.content;
    let not_on_permit = |en, zh| PermitError::SignerNotOnPermit {
        index,
        step: *step,
        signer: signer.name.clone(),
        en,
        zh,
    };
    if signer.role == ROLE_APPLICANT && content.applicant.id != signer.id {
        return Err(not_on_permit(
            "only the applicant the permit names signs as applicant",
            "只有作业证上的申请人可以申请人身份签署",
        ));
    }
    if signer.role == ROLE_FIRE_WATCH && !content.fire_watch.iter().any(|p| p.id == signer.id) {
        return Err(not_on_permit(
            "only a fire watch the permit names signs as fire watch",
            "只有作业证上指定的监护人可以监护人身份签署",
        ));
    }
    // An approval in format `/2` says whether the approver was present; one made without is
    // void wherever it is checked. (`/1` approvals say nothing: stored ones keep counting here,
    // and the platform admits no new one, see `super::admit`.)
    if *step == super::model::SignedStep::Approve && sig.user_present == Some(false) {
        return Err(PermitError::PresenceMissing {
            index,
            step: *step,
            signer: signer.name.clone(),
            legacy: false,
        });
    }
    Ok(entry)
}

/// Check every signature of `permit` and the profile's pairs of steps that need two people.
pub fn check_signers(
    permit: &Permit,
    profile: &RuleProfile,
    directory: &SignerDirectory,
) -> Result<(), PermitError> {
    let mut people = Vec::with_capacity(permit.signatures.len());
    for index in 0..permit.signatures.len() {
        let entry = check_signature(permit, index, profile, directory)?;
        people.push((permit.signatures[index].step, entry.person_id.as_str()));
    }
    for [first, second] in &profile.signers.distinct {
        let person = |step| people.iter().find(|(s, _)| *s == step).map(|(_, p)| *p);
        if let (Some(a), Some(b)) = (person(*first), person(*second))
            && a == b
        {
            return Err(PermitError::SameSigner {
                first: *first,
                second: *second,
                person: a.to_owned(),
            });
        }
    }
    Ok(())
}

/// What a device concludes offline about who signed `permit`: every signature vouched for by the
/// directory it synced, under the profile version the permit records. No directory (never
/// synced) vouches for nobody.
pub fn vouch(
    permit: &Permit,
    profiles: &ProfileSet,
    directory: Option<&SignerDirectory>,
) -> Result<(), PermitError> {
    let directory = directory.ok_or(PermitError::DirectoryMissing)?;
    let c = &permit.content;
    let profile = profiles
        .get(&c.profile_id, &c.profile_version)
        .ok_or_else(|| PermitError::VersionMismatch {
            what: "rule profile",
            recorded: format!("{} {}", c.profile_id, c.profile_version),
            given: "no such profile version on this device".into(),
        })?;
    check_signers(permit, profile, directory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::signer::{DeviceSigner, SoftwareSigner};
    use crate::domain::Explain;
    use crate::permit::PermitState;
    use crate::permit::fixtures::{Fx, actor, t};

    fn code(r: Result<(), PermitError>) -> &'static str {
        r.map_or_else(|e| e.code(), |()| "ok")
    }

    /// A checked permit approved with `signer` as `by`, signed as a forger's device would (no
    /// rule run on the device): only who signed is checked here.
    fn approved_by(f: &Fx, by: crate::permit::Actor, signer: &dyn DeviceSigner) -> Permit {
        let mut p = f.in_state(PermitState::Checked);
        p.events.push(crate::permit::PermitEvent {
            at: t(7, 40),
            kind: crate::permit::EventKind::Approved,
            by: Some(by.id.clone()),
        });
        p.state = PermitState::Approved;
        crate::permit::sign::sign_step(
            &mut p,
            crate::permit::SignedStep::Approve,
            &by,
            // With the person present: only who signed is checked here.
            &crate::codes::PresenceConfirmed(signer),
            t(7, 40),
            None,
        )
        .unwrap();
        p
    }

    #[test]
    fn the_standard_timeline_is_signed_by_enrolled_people_in_their_roles() {
        let f = Fx::new("gb30871");
        let closed = f.in_state(PermitState::Closed);
        assert_eq!(
            code(check_signers(&closed, &f.profile, &f.directory())),
            "ok"
        );
    }

    #[test]
    fn without_a_directory_no_signer_counts() {
        let f = Fx::new("gb30871");
        let submitted = f.in_state(PermitState::Submitted);
        let empty = SignerDirectory::default();
        assert_eq!(
            code(check_signers(&submitted, &f.profile, &empty)),
            "permit.signer_unknown"
        );
    }

    #[test]
    fn an_approval_by_a_key_nobody_enrolled_is_refused() {
        // The attack: a welder's phone makes a key of its own and signs as the approver.
        let f = Fx::new("gb30871");
        let forger = SoftwareSigner::generate().unwrap();
        let p = approved_by(&f, actor("周八", "S-004", "unit_head"), &forger);
        crate::permit::verify(&p).unwrap();
        assert_eq!(
            code(check_signers(&p, &f.profile, &f.directory())),
            "permit.signer_unknown"
        );
    }

    #[test]
    fn an_enrolled_key_cannot_sign_in_a_role_its_person_does_not_hold() {
        // The applicant's own enrolled key approves, claiming the approver's role and name.
        let f = Fx::new("gb30871");
        let p = approved_by(&f, actor("张三", "S-001", "unit_head"), f.applicant());
        assert_eq!(
            code(check_signers(&p, &f.profile, &f.directory())),
            "permit.signer_role"
        );
        // …or claiming to be the approver.
        let p = approved_by(&f, actor("周八", "S-004", "unit_head"), f.applicant());
        assert_eq!(
            code(check_signers(&p, &f.profile, &f.directory())),
            "permit.signer_not_person"
        );
        // A role the person holds but that may not sign this step at this level: welder-level
        // roles never approve, and a level 1 approver role does not approve a level 2 permit.
        let p = approved_by(&f, actor("孙七", "S-003", "supervisor"), f.checker());
        assert_eq!(
            code(check_signers(&p, &f.profile, &f.directory())),
            "permit.signer_role"
        );
        let p = approved_by(
            &f,
            actor("周八", "S-004", "safety_department"),
            f.approver(),
        );
        assert_eq!(
            code(check_signers(&p, &f.profile, &f.directory())),
            "permit.signer_role"
        );
    }

    #[test]
    fn nobody_approves_what_they_applied_for() {
        let f = Fx::new("gb30871");
        let mut directory = f.directory();
        // 张三 also holds the approver's role.
        for e in &mut directory.entries {
            if e.person_id == "S-001" {
                e.roles.push("unit_head".into());
            }
        }
        let p = approved_by(&f, actor("张三", "S-001", "unit_head"), f.applicant());
        assert_eq!(
            code(check_signers(&p, &f.profile, &directory)),
            "permit.same_signer"
        );
    }

    #[test]
    fn a_key_counts_only_inside_its_validity() {
        let f = Fx::new("gb30871");
        let approved = f.in_state(PermitState::Approved);
        let mut directory = f.directory();
        let key = f.approver().public_key();
        for e in &mut directory.entries {
            if e.public_key == key {
                // Disabled at 07:30, before the approval at 07:40.
                e.valid_until = Some(t(7, 30));
            }
        }
        assert_eq!(
            code(check_signers(&approved, &f.profile, &directory)),
            "permit.signer_not_valid"
        );
        for e in &mut directory.entries {
            if e.public_key == key {
                e.valid_until = Some(t(7, 41));
            }
        }
        assert_eq!(code(check_signers(&approved, &f.profile, &directory)), "ok");
    }

    #[test]
    fn the_applicant_role_is_for_the_applicant_the_permit_names() {
        let f = Fx::new("gb30871");
        let mut directory = f.directory();
        let mut p = f.draft();
        p.content.applicant.id = "S-999".into();
        p.apply(&f.ctx(), f.action(crate::permit::ActionKind::Submit))
            .unwrap();
        assert_eq!(
            code(check_signers(&p, &f.profile, &directory)),
            "permit.signer_not_on_permit"
        );
        // A fire watch closes only a permit naming them.
        directory.entries.retain(|e| e.person_id != "S-999");
        let closed = f.in_state(PermitState::Closed);
        let mut as_watch = closed.clone();
        as_watch.signatures.last_mut().unwrap().signer.role = ROLE_FIRE_WATCH.into();
        // (The signature no longer verifies, but who may sign is checked on its own here.)
        assert_eq!(code(check_signers(&as_watch, &f.profile, &directory)), "ok");
        as_watch.content.fire_watch[0].id = "S-777".into();
        assert_eq!(
            code(check_signers(&as_watch, &f.profile, &directory)),
            "permit.signer_not_on_permit"
        );
    }
}
