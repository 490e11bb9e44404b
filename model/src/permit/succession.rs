//! Permit versions over time: whether one version is the legal successor of another by exactly one
//! action (what the platform checks before it moves a permit's current version), and the
//! deterministic rule that picks one of two different successors of the same version (two
//! supervisors acting on the same permit offline). See docs/adr/0011-permit-conflicts.md.
//!
//! A successor keeps everything of the earlier version and adds what its one action adds: the
//! event log, the gas readings and the signatures of the earlier version are prefixes of the
//! successor's; the content changes only by an edit of a draft, the level decision only on
//! submission, the checklist answers only on the site check, the post-work answers only on closing;
//! the state is the transition table's ([`next_state`]); and the whole signature chain, the new
//! signature included, verifies.
//!
//! The conflict rule ([`ForkStep::beats`]): the safer action wins ([`safety_rank`]), then the
//! earlier action time, then the smaller digest. It is a total order on distinct steps, so the
//! same winner comes out whichever of the two the platform sees first.

use std::cmp::{Ordering, Reverse};

use super::lifecycle::next_state;
use super::model::{ActionKind, EventKind, Permit, PermitError, SignedStep};
use super::sign::{digest, verify};

fn gap(en: &'static str, zh: &'static str) -> PermitError {
    PermitError::NotASuccessor { en, zh }
}

/// The action an event records; `None` for events that are not an action (drafting, flags).
fn action_of(kind: &EventKind) -> Option<ActionKind> {
    Some(match kind {
        EventKind::Drafted | EventKind::Flagged { .. } => return None,
        EventKind::Edited => ActionKind::Edit,
        EventKind::Submitted => ActionKind::Submit,
        EventKind::Checked => ActionKind::SiteCheck,
        EventKind::Approved => ActionKind::Approve,
        EventKind::Started { .. } => ActionKind::Start,
        EventKind::Suspended { .. } => ActionKind::Suspend,
        EventKind::Resumed => ActionKind::Resume,
        EventKind::Completed => ActionKind::Complete,
        EventKind::Closed => ActionKind::Close,
        EventKind::Rejected { .. } => ActionKind::Reject,
        EventKind::Cancelled { .. } => ActionKind::Cancel,
        EventKind::Expired => ActionKind::Expire,
        EventKind::GasRecorded => ActionKind::RecordGas,
    })
}

/// The signature an action adds, if it is a signed step.
fn signed_step(kind: ActionKind) -> Option<SignedStep> {
    match kind {
        ActionKind::Submit => Some(SignedStep::Submit),
        ActionKind::SiteCheck => Some(SignedStep::SiteCheck),
        ActionKind::Approve => Some(SignedStep::Approve),
        ActionKind::Close => Some(SignedStep::Close),
        _ => None,
    }
}

/// Whether `next` follows `prev` by exactly one action, and which. Pure; verifies the whole
/// signature chain of `next`. Errors: [`PermitError::NotASuccessor`] (what differs),
/// [`PermitError::TransitionRefused`] (the action is not allowed from `prev`'s state), or the
/// signature errors of [`verify`].
pub fn successor_action(prev: &Permit, next: &Permit) -> Result<ActionKind, PermitError> {
    if prev.content.permit_id != next.content.permit_id {
        return Err(gap("another permit id", "作业证编号不同"));
    }
    let added = next
        .events
        .strip_prefix(prev.events.as_slice())
        .ok_or_else(|| {
            gap(
                "the earlier event log is not a prefix of this one",
                "前一版本的记录不是本版本记录的开头部分",
            )
        })?;
    let (last, before) = added
        .split_last()
        .ok_or_else(|| gap("no action was added", "没有新增操作"))?;
    let kind = action_of(&last.kind).ok_or_else(|| {
        gap(
            "the last new event is not an action",
            "最后一条新记录不是一项操作",
        )
    })?;
    // Only the approval logs flags (approver away from the site) before its own event.
    let flags_ok = before
        .iter()
        .all(|e| matches!(e.kind, EventKind::Flagged { .. }))
        && (before.is_empty() || kind == ActionKind::Approve);
    if !flags_ok {
        return Err(gap("more than one action was added", "一次新增了多项操作"));
    }
    let expected = next_state(prev.state, kind).ok_or(PermitError::TransitionRefused {
        from: prev.state,
        action: kind,
    })?;
    if next.state != expected {
        return Err(gap(
            "the state is not the one the action leads to",
            "状态与该操作应达到的状态不符",
        ));
    }
    if kind != ActionKind::Edit && next.content != prev.content {
        return Err(gap(
            "the content changed outside an edit of a draft",
            "非草稿修改时作业证内容被改动",
        ));
    }
    if kind != ActionKind::Submit && next.level != prev.level {
        return Err(gap(
            "the level decision changed outside submission",
            "非提交时作业级别被改动",
        ));
    }
    if kind != ActionKind::SiteCheck && next.answers != prev.answers {
        return Err(gap(
            "the checklist answers changed outside the site check",
            "非现场检查时检查表答案被改动",
        ));
    }
    if kind != ActionKind::Close && next.post_work != prev.post_work {
        return Err(gap(
            "the post-work answers changed outside closing",
            "非关闭时作业后检查被改动",
        ));
    }
    let new_readings = next
        .gas_readings
        .strip_prefix(prev.gas_readings.as_slice())
        .ok_or_else(|| {
            gap(
                "the earlier gas readings are not a prefix of these",
                "前一版本的气体分析记录被改动",
            )
        })?;
    let readings_ok = if kind == ActionKind::RecordGas {
        new_readings.len() == 1
    } else {
        new_readings.is_empty()
    };
    if !readings_ok {
        return Err(gap(
            "gas readings were added outside recording one",
            "气体分析记录的增加与操作不符",
        ));
    }
    let new_signatures = next
        .signatures
        .strip_prefix(prev.signatures.as_slice())
        .ok_or_else(|| {
            gap(
                "the earlier signatures are not a prefix of these",
                "前一版本的签名被改动",
            )
        })?;
    let signatures_ok = match (signed_step(kind), new_signatures) {
        (None, []) => true,
        (Some(step), [one]) => one.step == step,
        _ => false,
    };
    if !signatures_ok {
        return Err(gap(
            "the signatures added do not match the action",
            "新增签名与操作不符",
        ));
    }
    verify(next)?;
    Ok(kind)
}

/// How strongly an action stops hot work: the higher, the safer. Ending the permit (reject, cancel,
/// expire) over interrupting the work (suspend) over ending the work (complete, close) over
/// recording facts (submit, site check, gas, edit) over allowing or starting work (approve, start,
/// resume).
pub fn safety_rank(kind: ActionKind) -> u8 {
    match kind {
        ActionKind::Reject | ActionKind::Cancel | ActionKind::Expire => 4,
        ActionKind::Suspend => 3,
        ActionKind::Complete | ActionKind::Close => 2,
        ActionKind::Submit | ActionKind::SiteCheck | ActionKind::RecordGas | ActionKind::Edit => 1,
        ActionKind::Approve | ActionKind::Start | ActionKind::Resume => 0,
    }
}

/// One successor of a version, as the conflict rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkStep {
    pub action: ActionKind,
    /// When the action was taken (its event's time), Unix seconds.
    pub at: i64,
    /// Hex SHA-256 of the resulting version ([`digest`]).
    pub digest: String,
}

impl ForkStep {
    /// Check that `next` follows `prev` by one action ([`successor_action`]) and describe the step.
    pub fn of(prev: &Permit, next: &Permit) -> Result<ForkStep, PermitError> {
        ForkStep::new(successor_action(prev, next)?, next)
    }

    /// Describe the step that made `next` by `action`, already admitted by the caller's own
    /// successor check (the platform's checks may be stricter than [`successor_action`]): the
    /// action's time is that of `next`'s last event, the digest is `next`'s. Errors only when
    /// `next` cannot be digested.
    pub fn new(action: ActionKind, next: &Permit) -> Result<ForkStep, PermitError> {
        let at = next.events.last().map_or(i64::MAX, |e| e.at);
        Ok(ForkStep {
            action,
            at,
            digest: crate::codes::to_hex(&digest(next)?),
        })
    }

    /// Lower is better: the safer action, then the earlier time, then the smaller digest.
    fn key(&self) -> (Reverse<u8>, i64, &str) {
        (Reverse(safety_rank(self.action)), self.at, &self.digest)
    }

    /// The rule's order: `Less` when `self` wins over `other`.
    pub fn compare(&self, other: &ForkStep) -> Ordering {
        self.key().cmp(&other.key())
    }

    /// Whether `self` wins over `other` (two different successors of the same version).
    pub fn beats(&self, other: &ForkStep) -> bool {
        self.compare(other) == Ordering::Less
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Explain;
    use crate::permit::fixtures::Fx;
    use crate::permit::{Action, PermitState, lifecycle::next_state as table};

    fn fx() -> Fx {
        Fx::new("gb30871")
    }

    #[test]
    fn every_step_of_the_standard_timeline_is_a_successor_by_its_action() {
        use ActionKind as A;
        let f = fx();
        let mut p = f.draft();
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
            f.run(&mut p, &[kind]);
            assert_eq!(successor_action(&before, &p), Ok(kind), "{kind:?}");
            // Not the other way round, and not a version of itself.
            assert!(successor_action(&p, &before).is_err());
            assert!(successor_action(&p, &p).is_err());
        }
        for (path, kind) in [
            (PermitState::Submitted, A::Reject),
            (PermitState::Approved, A::Cancel),
            (PermitState::Approved, A::Expire),
        ] {
            let before = f.in_state(path);
            let mut after = before.clone();
            f.run(&mut after, &[kind]);
            assert_eq!(successor_action(&before, &after), Ok(kind));
        }
    }

    #[test]
    fn two_steps_at_once_are_not_one_successor() {
        let f = fx();
        let submitted = f.in_state(PermitState::Submitted);
        let approved = f.in_state(PermitState::Approved);
        let err = successor_action(&submitted, &approved).unwrap_err();
        assert_eq!(err.code(), "permit.not_successor", "{err}");
    }

    #[test]
    fn a_changed_earlier_part_is_not_a_successor() {
        let f = fx();
        let checked = f.in_state(PermitState::Checked);
        let approved = f.in_state(PermitState::Approved);
        // Content changed after submission (and re-signed nothing): refused before the signatures.
        let mut moved = approved.clone();
        moved.content.hot_work_point = "2号储罐".into();
        let err = successor_action(&checked, &moved).unwrap_err();
        assert_eq!(err.code(), "permit.not_successor", "{err}");
        // An earlier event rewritten.
        let mut rewritten = approved.clone();
        rewritten.events[0].at -= 60;
        assert_eq!(
            successor_action(&checked, &rewritten).unwrap_err().code(),
            "permit.not_successor"
        );
        // The state claimed is not the table's.
        let mut wrong_state = approved.clone();
        wrong_state.state = PermitState::Active;
        assert_eq!(
            successor_action(&checked, &wrong_state).unwrap_err().code(),
            "permit.not_successor"
        );
    }

    #[test]
    fn a_forged_new_signature_is_refused() {
        let f = fx();
        let checked = f.in_state(PermitState::Checked);
        let mut approved = f.in_state(PermitState::Approved);
        let last = approved.signatures.last_mut().unwrap();
        last.signature[5] ^= 0x40;
        let err = successor_action(&checked, &approved).unwrap_err();
        assert_eq!(err.code(), "permit.signature_broken", "{err}");
    }

    #[test]
    fn an_action_the_table_does_not_allow_is_a_refused_transition() {
        let f = fx();
        let submitted = f.in_state(PermitState::Submitted);
        let mut approved = f.in_state(PermitState::Approved);
        // Pretend the approval followed the submission directly: drop the site check's parts.
        approved.events.remove(2);
        approved.signatures.remove(1);
        approved.answers.clear();
        assert_eq!(table(PermitState::Submitted, ActionKind::Approve), None);
        let err = successor_action(&submitted, &approved).unwrap_err();
        assert_eq!(
            err,
            PermitError::TransitionRefused {
                from: PermitState::Submitted,
                action: ActionKind::Approve
            }
        );
    }

    /// The two supervisors' case: one approves, the other rejects the same checked permit.
    fn approve_and_reject(f: &Fx) -> (Permit, Permit, Permit) {
        let checked = f.in_state(PermitState::Checked);
        let mut approved = checked.clone();
        f.run(&mut approved, &[ActionKind::Approve]);
        let mut rejected = checked.clone();
        rejected
            .apply(
                &f.ctx(),
                Action::Reject {
                    by: crate::permit::fixtures::actor("吴九", "S-009", "supervisor"),
                    // Later than the approval (07:40): safety still wins over time.
                    at: crate::permit::fixtures::t(7, 50),
                    reason: "动火点周边可燃物未清理".into(),
                },
            )
            .unwrap();
        (checked, approved, rejected)
    }

    #[test]
    fn the_safer_action_wins_whichever_arrives_first() {
        let f = fx();
        let (checked, approved, rejected) = approve_and_reject(&f);
        let a = ForkStep::of(&checked, &approved).unwrap();
        let r = ForkStep::of(&checked, &rejected).unwrap();
        assert_eq!(a.action, ActionKind::Approve);
        assert_eq!(r.action, ActionKind::Reject);
        assert!(a.at < r.at);
        assert!(r.beats(&a));
        assert!(!a.beats(&r));
        // Built from an action admitted elsewhere: the same step.
        assert_eq!(ForkStep::new(ActionKind::Reject, &rejected).unwrap(), r);
        // Arrival order does not matter: the winner of (x, y) is the winner of (y, x).
        let winner = |x: &ForkStep, y: &ForkStep| if y.beats(x) { y.clone() } else { x.clone() };
        assert_eq!(winner(&a, &r), winner(&r, &a));
        assert_eq!(winner(&a, &r), r);
    }

    #[test]
    fn equal_safety_is_decided_by_time_then_digest() {
        let f = fx();
        let approved = f.in_state(PermitState::Approved);
        let step = |action, at, digest: &str| ForkStep {
            action,
            at,
            digest: digest.into(),
        };
        // Same rank (approve/start/resume): the earlier wins.
        let early = step(ActionKind::Start, 100, "ff");
        let late = step(ActionKind::Start, 200, "00");
        assert!(early.beats(&late) && !late.beats(&early));
        // Same rank and time: the smaller digest wins; a step never beats itself.
        let x = step(ActionKind::Cancel, 100, "0a");
        let y = step(ActionKind::Reject, 100, "0b");
        assert!(x.beats(&y) && !y.beats(&x));
        assert!(!x.beats(&x));
        // Suspend beats complete (both from an active permit), whatever the times.
        assert!(step(ActionKind::Suspend, 900, "ff").beats(&step(ActionKind::Complete, 1, "00")));
        // A real pair: a gas reading recorded vs the work started on the same approved permit.
        let mut gas = approved.clone();
        f.run(&mut gas, &[ActionKind::RecordGas]);
        let mut started = gas.clone();
        f.run(&mut started, &[ActionKind::Start]);
        let g = ForkStep::of(&approved, &gas).unwrap();
        assert_eq!(g.action, ActionKind::RecordGas);
        assert!(ForkStep::of(&approved, &started).is_err(), "two actions");
    }

    #[test]
    fn safety_ranks_follow_the_documented_order() {
        use ActionKind as A;
        let r = safety_rank;
        assert!(r(A::Reject) > r(A::Suspend) && r(A::Cancel) > r(A::Suspend));
        assert!(r(A::Suspend) > r(A::Complete) && r(A::Suspend) > r(A::Resume));
        assert!(r(A::Complete) > r(A::Approve) && r(A::Close) > r(A::Start));
        assert!(r(A::SiteCheck) > r(A::Approve));
        assert_eq!(r(A::Approve), 0);
    }
}
