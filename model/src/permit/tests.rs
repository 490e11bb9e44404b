//! Life-cycle, rule and signature tests over whole permits.

use super::fixtures::*;
use super::profile::tests::H;
use super::*;
use crate::codes::signer::{DeviceSigner, SoftwareSigner};
use crate::domain::{Explain, MachineClass};

const M: i64 = 60;

fn blocked_codes(err: PermitError) -> Vec<FindingCode> {
    match err {
        PermitError::RuleBlocked { findings, .. } => findings.iter().map(|f| f.code).collect(),
        other => panic!("expected a rule refusal, got {other}"),
    }
}

#[test]
fn transition_table_is_exactly_the_documented_one() {
    use ActionKind as A;
    use PermitState as S;
    let allowed: &[(S, A, S)] = &[
        (S::Draft, A::Edit, S::Draft),
        (S::Draft, A::Submit, S::Submitted),
        (S::Draft, A::Cancel, S::Cancelled),
        (S::Submitted, A::SiteCheck, S::Checked),
        (S::Submitted, A::Reject, S::Rejected),
        (S::Submitted, A::Cancel, S::Cancelled),
        (S::Submitted, A::RecordGas, S::Submitted),
        (S::Checked, A::Approve, S::Approved),
        (S::Checked, A::Reject, S::Rejected),
        (S::Checked, A::Cancel, S::Cancelled),
        (S::Checked, A::RecordGas, S::Checked),
        (S::Approved, A::Start, S::Active),
        (S::Approved, A::Cancel, S::Cancelled),
        (S::Approved, A::Expire, S::Expired),
        (S::Approved, A::RecordGas, S::Approved),
        (S::Active, A::Suspend, S::Suspended),
        (S::Active, A::Complete, S::Completed),
        (S::Active, A::Expire, S::Expired),
        (S::Active, A::RecordGas, S::Active),
        (S::Suspended, A::Resume, S::Active),
        (S::Suspended, A::Complete, S::Completed),
        (S::Suspended, A::Cancel, S::Cancelled),
        (S::Suspended, A::Expire, S::Expired),
        (S::Suspended, A::RecordGas, S::Suspended),
        (S::Completed, A::Close, S::Closed),
    ];
    for s in PermitState::ALL {
        for a in ActionKind::ALL {
            let expected = allowed
                .iter()
                .find(|(from, act, _)| *from == s && *act == a)
                .map(|x| x.2);
            assert_eq!(next_state(s, a), expected, "{s:?} + {a:?}");
        }
    }
}

#[test]
fn every_allowed_transition_succeeds_and_verifies() {
    let fx = Fx::new("gb30871");
    let mut count = 0;
    for s in PermitState::ALL {
        for a in ActionKind::ALL {
            let Some(next) = next_state(s, a) else {
                continue;
            };
            let mut p = fx.in_state(s);
            if a == ActionKind::Start {
                fx.run(&mut p, &[ActionKind::RecordGas]);
            }
            p.apply(&fx.ctx(), fx.action(a))
                .unwrap_or_else(|e| panic!("{s:?} + {a:?}: {e}"));
            assert_eq!(p.state, next, "{s:?} + {a:?}");
            verify(&p).unwrap_or_else(|e| panic!("{s:?} + {a:?}: {e}"));
            count += 1;
        }
    }
    assert_eq!(count, 25);
}

#[test]
fn every_refused_transition_says_why_and_changes_nothing() {
    let fx = Fx::new("gb30871");
    let mut count = 0;
    for s in PermitState::ALL {
        let original = fx.in_state(s);
        for a in ActionKind::ALL {
            if next_state(s, a).is_some() {
                continue;
            }
            let mut p = original.clone();
            let err = p.apply(&fx.ctx(), fx.action(a)).unwrap_err();
            assert_eq!(
                err,
                PermitError::TransitionRefused { from: s, action: a },
                "{s:?} + {a:?}"
            );
            assert_eq!(err.code(), "permit.transition_refused");
            assert!(err.message_zh().contains(s.name_zh()));
            assert_eq!(p, original);
            count += 1;
        }
    }
    assert_eq!(count, 11 * 13 - 25);
}

#[test]
fn full_walk_from_draft_to_closed() {
    let fx = Fx::new("gb30871");
    let p = fx.in_state(PermitState::Closed);
    verify(&p).unwrap();
    assert_eq!(p.signatures.len(), 4);
    let steps: Vec<SignedStep> = p.signatures.iter().map(|s| s.step).collect();
    assert_eq!(steps, SignedStep::ORDER.to_vec());
    assert_eq!(p.level().clone(), PermitLevel::Level2);
    assert_eq!(p.flags().count(), 0);
    // The permit survives a JSON round trip (store, sync) and still verifies.
    let json = serde_json::to_string(&p).unwrap();
    let back: Permit = serde_json::from_str(&json).unwrap();
    verify(&back).unwrap();
}

#[test]
fn submit_rules() {
    let fx = Fx::new("gb30871");
    // Level 2 for 72 h exactly passes; one second more is refused with its clause.
    let mut c = fx.content();
    c.valid_until = c.valid_from + 72 * H;
    // Spanning nights and the weekend escalates to level 1 (8 h): refused.
    let mut p = fx.draft();
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c),
            at: t(6, 50),
        },
    )
    .unwrap();
    let err = p
        .apply(&fx.ctx(), fx.action(ActionKind::Submit))
        .unwrap_err();
    assert_eq!(
        blocked_codes(err.clone()),
        vec![FindingCode::ValidityExceeded]
    );
    if let PermitError::RuleBlocked { findings, .. } = &err {
        assert_eq!(findings[0].clause, "GB 30871-2022 5.5");
    }
    // Daytime on a plain weekday, level 1 requested: 8 h exactly is fine, 8 h + 1 s is not.
    for (extra, ok) in [(0, true), (1, false)] {
        let mut c = fx.content();
        c.requested_level = PermitLevel::Level1;
        c.valid_from = t(8, 0);
        c.valid_until = t(16, 0) + extra;
        let mut p = fx.draft();
        p.apply(
            &fx.ctx(),
            Action::Edit {
                content: Box::new(c),
                at: t(6, 50),
            },
        )
        .unwrap();
        let r = p.apply(&fx.ctx(), fx.action(ActionKind::Submit));
        assert_eq!(r.is_ok(), ok, "extra {extra}");
    }
    // Missing welder and fire watch: both reported.
    let mut c = fx.content();
    c.welders.clear();
    c.fire_watch.clear();
    let mut p = fx.draft();
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c),
            at: t(6, 50),
        },
    )
    .unwrap();
    let before = p.clone();
    let codes = blocked_codes(
        p.apply(&fx.ctx(), fx.action(ActionKind::Submit))
            .unwrap_err(),
    );
    assert_eq!(
        codes,
        vec![FindingCode::NoWelder, FindingCode::FireWatchMissing]
    );
    assert_eq!(p, before);
}

#[test]
fn submit_escalates_and_records_the_reasons() {
    let mut fx = Fx::new("gb30871");
    fx.calendar.sensitive_periods.push(SensitivePeriod {
        name: "重大活动保障期".into(),
        from: t(0, 0),
        until: t(23, 0),
    });
    let mut c = fx.content();
    c.valid_until = t(16, 0);
    let mut p = fx.draft();
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c),
            at: t(6, 50),
        },
    )
    .unwrap();
    p.apply(&fx.ctx(), fx.action(ActionKind::Submit)).unwrap();
    let d = p.level.clone().unwrap();
    assert_eq!(d.requested, PermitLevel::Level2);
    assert_eq!(d.required, PermitLevel::Level1);
    assert_eq!(
        d.reasons,
        vec![EscalationReason::SensitivePeriod {
            name: "重大活动保障期".into()
        }]
    );
    // Now the approver must be the level-1 approver (safety department), not the unit head.
    p.apply(&fx.ctx(), fx.action(ActionKind::SiteCheck))
        .unwrap();
    let err = p
        .apply(&fx.ctx(), fx.action(ActionKind::Approve))
        .unwrap_err();
    assert_eq!(blocked_codes(err), vec![FindingCode::ApproverRole]);
    p.apply(
        &fx.ctx(),
        Action::Approve {
            by: actor("吴九", "S-005", "safety_department"),
            signer: &fx.approver,
            at: t(7, 40),
            location: Some(fx.content().location),
        },
    )
    .unwrap();
}

#[test]
fn construction_site_rules() {
    let fx = Fx::new("construction");
    // Two hot-work points need two fire watches.
    let mut c = fx.content();
    c.requested_level = PermitLevel::Level3;
    c.hot_work_points = 2;
    let mut p = fx.draft();
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c.clone()),
            at: t(6, 50),
        },
    )
    .unwrap();
    let codes = blocked_codes(
        p.apply(&fx.ctx(), fx.action(ActionKind::Submit))
            .unwrap_err(),
    );
    assert_eq!(codes, vec![FindingCode::FireWatchPerPoint]);
    c.fire_watch.push(Person {
        name: "钱十".into(),
        id: "S-006".into(),
    });
    // Outdoor in wind force 5 without shields is refused; with shields it passes.
    c.conditions = WorkConditions {
        wind_force: Some(5),
        outdoor: true,
        shields: false,
        complex_environment: false,
    };
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c.clone()),
            at: t(6, 51),
        },
    )
    .unwrap();
    let err = p
        .apply(&fx.ctx(), fx.action(ActionKind::Submit))
        .unwrap_err();
    if let PermitError::RuleBlocked { findings, .. } = &err {
        assert_eq!(findings[0].code, FindingCode::OutdoorWind);
        assert_eq!(findings[0].clause, "GB 50720-2011 6.3.1");
    } else {
        panic!("{err}");
    }
    c.conditions.wind_force = Some(4);
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c.clone()),
            at: t(6, 52),
        },
    )
    .unwrap();
    assert!(
        p.clone()
            .apply(&fx.ctx(), fx.action(ActionKind::Submit))
            .is_ok()
    );
    c.conditions.wind_force = Some(6);
    c.conditions.shields = true;
    // Level 3 for 7 days exactly.
    c.valid_until = c.valid_from + 7 * 24 * H;
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c.clone()),
            at: t(6, 53),
        },
    )
    .unwrap();
    let mut ok = p.clone();
    ok.apply(&fx.ctx(), fx.action(ActionKind::Submit)).unwrap();
    assert_eq!(ok.level(), PermitLevel::Level3);
    // No gas rule and no machine distance rule on construction sites: start without readings.
    ok.apply(&fx.ctx(), fx.action(ActionKind::SiteCheck))
        .unwrap();
    ok.apply(
        &fx.ctx(),
        Action::Approve {
            by: actor("周八", "S-004", "project_safety_department"),
            signer: &fx.approver,
            at: t(7, 40),
            location: Some(c.location),
        },
    )
    .unwrap();
    ok.apply(&fx.ctx(), fx.action(ActionKind::Start)).unwrap();
    c.valid_until += 1;
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c),
            at: t(6, 54),
        },
    )
    .unwrap();
    let codes = blocked_codes(
        p.apply(&fx.ctx(), fx.action(ActionKind::Submit))
            .unwrap_err(),
    );
    assert_eq!(codes, vec![FindingCode::ValidityExceeded]);
}

#[test]
fn site_check_rules() {
    let fx = Fx::new("gb30871");
    let submitted = fx.in_state(PermitState::Submitted);
    let check = |answers: Vec<ChecklistAnswer>| {
        let mut p = submitted.clone();
        let r = p.apply(
            &fx.ctx(),
            Action::SiteCheck {
                by: actor("孙七", "S-003", "supervisor"),
                signer: &fx.checker,
                answers,
                at: t(7, 20),
                location: None,
            },
        );
        (p, r)
    };
    // One item missing.
    let mut a = fx.answers();
    a.retain(|x| x.item_id != "ban.08");
    let (p, r) = check(a);
    let err = r.unwrap_err();
    assert_eq!(blocked_codes(err.clone()), vec![FindingCode::Checklist]);
    assert!(err.message_zh().contains("ban.08"));
    // The finding names the item as data, for a screen to point at it.
    match &err {
        PermitError::RuleBlocked { findings, .. } => {
            assert_eq!(findings[0].item_id.as_deref(), Some("ban.08"));
        }
        other => panic!("expected a rule refusal, got {other}"),
    }
    assert_eq!(p, submitted);
    // The fire watch confirmed in must.03 must be the one named on the permit.
    let mut a = fx.answers();
    for x in a.iter_mut().filter(|x| x.item_id == "must.03") {
        x.evidence = vec![Evidence::Person {
            role: PersonRole::FireWatch,
            name: "冒名".into(),
            id: "S-999".into(),
        }];
    }
    let (_, r) = check(a);
    assert_eq!(
        blocked_codes(r.unwrap_err()),
        vec![FindingCode::PersonNotOnPermit]
    );
    // Welding machine at 10 m passes, 11 m is refused (GB 30871), missing distance is refused.
    for (d, expect) in [
        (Some(10), None),
        (Some(11), Some(FindingCode::MachineTooFar)),
        (None, Some(FindingCode::MachineDistanceMissing)),
    ] {
        let mut a = fx.answers();
        for x in a.iter_mut() {
            x.evidence.retain(
                |e| !matches!(e, Evidence::Number { key, .. } if key == MACHINE_DISTANCE_KEY),
            );
        }
        if let Some(d) = d {
            a[0].evidence.push(Evidence::Number {
                key: MACHINE_DISTANCE_KEY.into(),
                value: d,
            });
        }
        let (_, r) = check(a);
        match expect {
            None => assert!(r.is_ok(), "{d:?}"),
            Some(code) => assert_eq!(blocked_codes(r.unwrap_err()), vec![code]),
        }
    }
}

#[test]
fn approval_rules() {
    let fx = Fx::new("gb30871");
    let checked = fx.in_state(PermitState::Checked);
    let approve = |role: &str, at: i64, location: Option<GeoPoint>| {
        let mut p = checked.clone();
        let r = p.apply(
            &fx.ctx(),
            Action::Approve {
                by: actor("周八", "S-004", role),
                signer: &fx.approver,
                at,
                location,
            },
        );
        (p, r)
    };
    let role = fx.approver_role();
    // The wrong approver is refused.
    let (_, r) = approve(
        "safety_department",
        t(7, 40),
        Some(checked.content.location),
    );
    assert_eq!(
        blocked_codes(r.unwrap_err()),
        vec![FindingCode::ApproverRole]
    );
    // Signing from 1.1 km away is allowed but flagged, and the flag is covered by the signature.
    let far = GeoPoint::from_degrees(36.192, 116.772);
    let (p, r) = approve(&role, t(7, 40), Some(far));
    r.unwrap();
    let flags: Vec<&Finding> = p.flags().collect();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].code, FindingCode::ApproverOffSite);
    assert_eq!(flags[0].clause, "GB 30871-2022 4.11");
    assert!(!flags[0].blocking);
    verify(&p).unwrap();
    let mut hidden = p.clone();
    hidden
        .events
        .retain(|e| !matches!(e.kind, EventKind::Flagged { .. }));
    assert!(matches!(
        verify(&hidden),
        Err(PermitError::SignatureBroken {
            index: 2,
            step: SignedStep::Approve,
            ..
        })
    ));
    // Within the radius: no flag. No location: flagged as missing.
    let near = GeoPoint::from_degrees(36.1825, 116.772);
    assert_eq!(approve(&role, t(7, 40), Some(near)).0.flags().count(), 0);
    let (p, _) = approve(&role, t(7, 40), None);
    assert_eq!(
        p.flags().next().unwrap().code,
        FindingCode::ApproverLocationMissing
    );
    // Approving after the validity ended is refused.
    let (_, r) = approve(&role, t(17, 0), Some(near));
    assert_eq!(blocked_codes(r.unwrap_err()), vec![FindingCode::Expired]);
}

#[test]
fn start_rules_validity_and_gas() {
    let fx = Fx::new("gb30871");
    let approved = fx.in_state(PermitState::Approved);
    let with_gas = |readings: &[GasReading]| {
        let mut p = approved.clone();
        for r in readings {
            p.apply(
                &fx.ctx(),
                Action::RecordGas {
                    reading: r.clone(),
                    by: None,
                },
            )
            .unwrap();
        }
        p
    };
    let start = |p: &Permit, at: i64| {
        let mut p = p.clone();
        p.apply(
            &fx.ctx(),
            Action::Start {
                at,
                continuous_monitoring: false,
                by: None,
            },
        )
        .map(|_| p)
    };
    let p = with_gas(&[fx.gas(t(8, 30), 10)]);
    // 30 min exactly after the analysis is fine; 30 min + 1 s is stale.
    start(&p, t(9, 0)).unwrap();
    assert_eq!(
        blocked_codes(start(&p, t(9, 0) + 1).unwrap_err()),
        vec![FindingCode::GasAnalysisStale]
    );
    // Before the validity, and at its end.
    let early = with_gas(&[fx.gas(t(7, 50), 10)]);
    assert_eq!(
        blocked_codes(start(&early, t(7, 59)).unwrap_err()),
        vec![FindingCode::NotYetValid]
    );
    let late = with_gas(&[fx.gas(t(16, 50), 10)]);
    assert_eq!(
        blocked_codes(start(&late, t(17, 0)).unwrap_err()),
        vec![FindingCode::Expired]
    );
    start(&late, t(17, 0) - 1).unwrap();
    // No reading; a failing reading.
    assert_eq!(
        blocked_codes(start(&approved, t(9, 0)).unwrap_err()),
        vec![FindingCode::GasAnalysisMissing]
    );
    let bad = with_gas(&[fx.gas(t(8, 50), 51)]);
    assert_eq!(
        blocked_codes(start(&bad, t(9, 0)).unwrap_err()),
        vec![FindingCode::GasAnalysisFailed]
    );
}

#[test]
fn special_level_needs_continuous_monitoring() {
    let fx = Fx::new("gb30871");
    let mut c = fx.content();
    c.requested_level = PermitLevel::Special;
    c.valid_until = t(16, 0);
    let mut p = fx.draft();
    p.apply(
        &fx.ctx(),
        Action::Edit {
            content: Box::new(c),
            at: t(6, 50),
        },
    )
    .unwrap();
    fx.run(&mut p, &[ActionKind::Submit, ActionKind::SiteCheck]);
    p.apply(
        &fx.ctx(),
        Action::Approve {
            by: actor("郑一", "S-007", "leader_in_charge"),
            signer: &fx.approver,
            at: t(7, 40),
            location: Some(p.content.location),
        },
    )
    .unwrap();
    fx.run(&mut p, &[ActionKind::RecordGas]);
    let err = p
        .clone()
        .apply(&fx.ctx(), fx.action(ActionKind::Start))
        .unwrap_err();
    if let PermitError::RuleBlocked { findings, .. } = &err {
        assert_eq!(findings[0].code, FindingCode::ContinuousMonitoringRequired);
        assert_eq!(findings[0].clause, "GB 30871-2022 5.3");
    } else {
        panic!("{err}");
    }
    p.apply(
        &fx.ctx(),
        Action::Start {
            at: t(9, 0),
            continuous_monitoring: true,
            by: None,
        },
    )
    .unwrap();
}

#[test]
fn resume_after_interruption_needs_new_analysis_past_the_limit() {
    // Level 2: 60 min; level 1: 30 min.
    for (level, limit, role) in [
        (PermitLevel::Level2, 60 * M, "unit_head"),
        (PermitLevel::Level1, 30 * M, "safety_department"),
    ] {
        let fx = Fx::new("gb30871");
        let mut c = fx.content();
        c.requested_level = level;
        c.valid_until = t(16, 0);
        let mut p = fx.draft();
        p.apply(
            &fx.ctx(),
            Action::Edit {
                content: Box::new(c),
                at: t(6, 50),
            },
        )
        .unwrap();
        fx.run(&mut p, &[ActionKind::Submit, ActionKind::SiteCheck]);
        p.apply(
            &fx.ctx(),
            Action::Approve {
                by: actor("周八", "S-004", role),
                signer: &fx.approver,
                at: t(7, 40),
                location: Some(p.content.location),
            },
        )
        .unwrap();
        fx.run(
            &mut p,
            &[
                ActionKind::RecordGas,
                ActionKind::Start,
                ActionKind::Suspend,
            ],
        );
        let suspended_at = t(10, 0);
        let resume = |p: &Permit, at: i64| {
            let mut p = p.clone();
            p.apply(&fx.ctx(), Action::Resume { at }).map(|_| p)
        };
        // Exactly at the limit: no new analysis needed.
        resume(&p, suspended_at + limit).unwrap();
        // One second past: a reading taken after the suspension is needed.
        assert_eq!(
            blocked_codes(resume(&p, suspended_at + limit + 1).unwrap_err()),
            vec![FindingCode::GasAnalysisMissing],
            "{level:?}"
        );
        let mut fresh = p.clone();
        fresh
            .apply(
                &fx.ctx(),
                Action::RecordGas {
                    reading: fx.gas(suspended_at + limit - 5 * M, 5),
                    by: None,
                },
            )
            .unwrap();
        resume(&fresh, suspended_at + limit + 1).unwrap();
    }
}

#[test]
fn close_rules_post_work_watch() {
    let fx = Fx::new("gb30871");
    let completed = fx.in_state(PermitState::Completed);
    let close = |at: i64, post_work: Vec<ChecklistAnswer>| {
        let mut p = completed.clone();
        p.apply(
            &fx.ctx(),
            Action::Close {
                by: actor("王五", "S-002", "supervisor"),
                signer: &fx.closer,
                post_work,
                at,
                location: None,
            },
        )
        .map(|_| p)
    };
    // Completed at 12:00: closing at 12:29:59 is too early, 12:30 is fine.
    assert_eq!(
        blocked_codes(close(t(12, 30) - 1, fx.post_work()).unwrap_err()),
        vec![FindingCode::PostWorkWatchTooShort]
    );
    close(t(12, 30), fx.post_work()).unwrap();
    // A missing post-work item, and a watch of 29 minutes on the form.
    let mut pw = fx.post_work();
    pw.remove(0);
    assert_eq!(
        blocked_codes(close(t(13, 0), pw).unwrap_err()),
        vec![FindingCode::Checklist]
    );
    let mut pw = fx.post_work();
    for e in pw[2].evidence.iter_mut() {
        if let Evidence::Number { value, .. } = e {
            *value = 29;
        }
    }
    assert_eq!(
        blocked_codes(close(t(13, 0), pw).unwrap_err()),
        vec![FindingCode::Checklist]
    );
}

#[test]
fn reject_cancel_and_expire_need_their_conditions() {
    let fx = Fx::new("gb30871");
    let mut p = fx.in_state(PermitState::Submitted);
    let err = p
        .apply(
            &fx.ctx(),
            Action::Reject {
                by: actor("周八", "S-004", "unit_head"),
                at: t(7, 30),
                reason: " ".into(),
            },
        )
        .unwrap_err();
    assert_eq!(blocked_codes(err), vec![FindingCode::ReasonMissing]);
    let mut a = fx.in_state(PermitState::Active);
    assert_eq!(
        blocked_codes(
            a.apply(&fx.ctx(), Action::Expire { at: t(17, 0) - 1 })
                .unwrap_err()
        ),
        vec![FindingCode::StillValid]
    );
    assert_eq!(a.effective_state(t(17, 0) - 1), PermitState::Active);
    assert_eq!(a.effective_state(t(17, 0)), PermitState::Expired);
    a.apply(&fx.ctx(), Action::Expire { at: t(17, 0) }).unwrap();
    verify(&a).unwrap();
}

#[test]
fn version_mismatch_is_refused() {
    let fx = Fx::new("gb30871");
    let mut p = fx.draft();
    let other = profile("construction");
    let ctx = RuleContext {
        profile: &other,
        catalog: &fx.catalog,
    };
    let err = p.apply(&ctx, fx.action(ActionKind::Submit)).unwrap_err();
    assert_eq!(err.code(), "permit.version_mismatch");
    let mut c = fx.content();
    c.catalog_version = "fab-2024-21/0".into();
    assert_eq!(
        Permit::draft(c, &fx.ctx(), &actor("a", "b", "c"), 0)
            .unwrap_err()
            .code(),
        "permit.version_mismatch"
    );
}

/// Every leaf of a closed permit's JSON, changed in turn, must make verification fail.
#[test]
fn tampering_with_any_field_or_answer_breaks_verification() {
    let fx = Fx::new("gb30871");
    let p = fx.in_state(PermitState::Closed);
    let original = serde_json::to_value(&p).unwrap();

    fn leaves(v: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m {
                    path.push(k.clone());
                    leaves(child, path, out);
                    path.pop();
                }
            }
            serde_json::Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    path.push(i.to_string());
                    leaves(child, path, out);
                    path.pop();
                }
            }
            _ => out.push(path.clone()),
        }
    }
    let mut paths = Vec::new();
    leaves(&original, &mut Vec::new(), &mut paths);
    let (mut tried, mut answers_tried) = (0, 0);
    for path in &paths {
        let mut v = original.clone();
        let mut leaf = &mut v;
        for k in path {
            leaf = match leaf {
                serde_json::Value::Object(m) => m.get_mut(k).unwrap(),
                serde_json::Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                _ => unreachable!(),
            };
        }
        *leaf = match leaf.clone() {
            serde_json::Value::String(s) => serde_json::Value::String(format!("{s}x")),
            serde_json::Value::Bool(b) => serde_json::Value::Bool(!b),
            serde_json::Value::Number(n) => {
                let x = n.as_i64().unwrap();
                serde_json::json!(if x > 0 { x - 1 } else { x + 1 })
            }
            serde_json::Value::Null => continue,
            other => other,
        };
        let Ok(tampered) = serde_json::from_value::<Permit>(v) else {
            continue; // not representable (e.g. an unknown enum name)
        };
        tried += 1;
        if path
            .first()
            .is_some_and(|k| k == "answers" || k == "post_work")
        {
            answers_tried += 1;
        }
        assert!(
            verify(&tampered).is_err(),
            "tampering with {} went unnoticed",
            path.join(".")
        );
    }
    assert!(tried > 300, "only {tried} tamperings tried");
    assert!(answers_tried > 30);
}

#[test]
fn broken_signature_is_named() {
    let fx = Fx::new("gb30871");
    let p = fx.in_state(PermitState::Closed);
    // Change an answer: the site check (index 1) is the first signature covering answers.
    let mut q = p.clone();
    q.answers[4].value = AnswerValue::NotApplicable {
        reason: "容器未曾装过可燃物".into(),
    };
    let err = verify(&q).unwrap_err();
    assert_eq!(
        err,
        PermitError::SignatureBroken {
            index: 1,
            step: SignedStep::SiteCheck,
            signer: "孙七".into()
        }
    );
    assert_eq!(err.code(), "permit.signature_broken");
    assert!(err.message_zh().contains("现场检查"));
    // Change the content: the submission (index 0) breaks first.
    let mut q = p.clone();
    q.content.valid_until += 3600;
    assert!(matches!(
        verify(&q),
        Err(PermitError::SignatureBroken { index: 0, .. })
    ));
    // Change a post-work answer: only the close signature covers it.
    let mut q = p.clone();
    q.post_work.pop();
    assert!(matches!(
        verify(&q),
        Err(PermitError::SignatureBroken {
            index: 3,
            step: SignedStep::Close,
            ..
        })
    ));
    // Drop the approval signature, or re-sign a step with another key: caught.
    let mut q = p.clone();
    q.signatures.remove(2);
    assert_eq!(
        verify(&q).unwrap_err().code(),
        "permit.signatures_inconsistent"
    );
    let mut q = p.clone();
    q.signatures[2].public_key = SoftwareSigner::generate().unwrap().public_key();
    assert!(matches!(
        verify(&q),
        Err(PermitError::SignatureBroken { index: 2, .. })
    ));
    // Add answers to a submitted permit without a site-check signature.
    let mut q = fx.in_state(PermitState::Submitted);
    q.answers = fx.answers();
    assert_eq!(verify(&q).unwrap_err().code(), "permit.unsigned_data");
    // Append an event after closing.
    let mut q = p.clone();
    q.events.push(PermitEvent {
        at: t(13, 0),
        kind: EventKind::Resumed,
        by: None,
    });
    assert_eq!(verify(&q).unwrap_err().code(), "permit.unsigned_data");
}

#[test]
fn start_work_permit_findings() {
    let fx = Fx::new("gb30871");
    let p = fx.in_state(PermitState::Approved);
    let welder = "T370983199001011234";
    let site_id = p.content.site.site_id.clone();
    let check = |permit: Option<&Permit>, cert: &str, machine: &str, class, site: &str, at| {
        permit_findings(permit, cert, machine, class, site, at)
    };
    // A good permit: nothing found.
    let ok = check(
        Some(&p),
        welder,
        "M-370983-0001",
        MachineClass::Mobile,
        &site_id,
        t(9, 0),
    );
    assert!(ok.findings.is_empty() && !ok.exempt && !ok.denies());
    // Fixed station: exempt even without a permit.
    let fixed = check(
        None,
        welder,
        "M-1",
        MachineClass::FixedStation,
        &site_id,
        t(9, 0),
    );
    assert!(fixed.exempt && !fixed.denies());
    // Legacy machines still need one.
    let none = check(
        None,
        welder,
        "M-1",
        MachineClass::LegacyRegistered,
        &site_id,
        t(9, 0),
    );
    assert_eq!(none.findings, vec![PermitFinding::Missing]);
    assert_eq!(none.findings[0].code(), "permit.missing");
    // Expired at the end of validity, not yet valid before it.
    let at_end = check(
        Some(&p),
        welder,
        "M-370983-0001",
        MachineClass::Mobile,
        &site_id,
        t(17, 0),
    );
    assert_eq!(at_end.findings[0].code(), "permit.expired");
    let early = check(
        Some(&p),
        welder,
        "M-370983-0001",
        MachineClass::Mobile,
        &site_id,
        t(7, 59),
    );
    assert_eq!(early.findings[0].code(), "permit.not_yet_valid");
    // Another welder, another site, another machine: all reported; the machine only warns.
    let all = check(
        Some(&p),
        "T999",
        "M-X",
        MachineClass::Mobile,
        "site-other",
        t(9, 0),
    );
    let codes: Vec<&str> = all.findings.iter().map(|f| f.code()).collect();
    assert_eq!(
        codes,
        vec![
            "permit.welder_not_named",
            "permit.wrong_site",
            "permit.machine_not_named"
        ]
    );
    assert_eq!(all.findings[2].verdict(), Verdict::Warn);
    assert!(all.denies());
    // A checked but unapproved permit, and a closed one.
    for s in [
        PermitState::Checked,
        PermitState::Closed,
        PermitState::Suspended,
    ] {
        let q = fx.in_state(s);
        let r = check(
            Some(&q),
            welder,
            "M-370983-0001",
            MachineClass::Mobile,
            &site_id,
            t(9, 0),
        );
        assert_eq!(r.findings, vec![PermitFinding::NotApproved { state: s }]);
        assert!(!r.findings[0].message_zh().is_empty());
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Escalation raises by exactly one level when there is a reason and never otherwise, and
        /// never panics, whatever the times, offsets and wind.
        #[test]
        fn escalation_is_one_level_or_none(
            start in any::<i64>(),
            len in prop_oneof![0i64..(8 * 24 * H), any::<i64>()],
            offset in -50_000i32..50_000,
            wind in proptest::option::of(0u8..13),
            complex in any::<bool>(),
            level_ix in 0usize..3,
        ) {
            let fx = Fx::new("gb30871");
            let mut st = site("gb30871");
            st.utc_offset_secs = offset;
            let level = fx.profile.levels[level_ix].level;
            let end = start.saturating_add(len);
            let c = WorkConditions { wind_force: wind, outdoor: true, shields: false, complex_environment: complex };
            let d = fx.profile.decide_level(&st, &fx.calendar, level, start, end, &c).unwrap();
            prop_assert_eq!(d.requested, level);
            if d.reasons.is_empty() {
                prop_assert_eq!(d.required, level);
            } else {
                prop_assert_eq!(d.required, fx.profile.escalate(level));
            }
            let window = fx.profile.check_window(d.required, start, end);
            let max = fx.profile.level(d.required).unwrap().max_validity_secs;
            prop_assert_eq!(window.is_empty(), end > start && end.saturating_sub(start) <= max);
        }

        /// Arbitrary times through the whole life cycle: every step either succeeds or is refused
        /// with findings; nothing panics, and whatever succeeded still verifies.
        #[test]
        fn arbitrary_times_never_panic(
            from in any::<i64>(),
            len in any::<i64>(),
            times in proptest::collection::vec(any::<i64>(), 8),
        ) {
            let fx = Fx::new("gb30871");
            let mut c = fx.content();
            c.valid_from = from;
            c.valid_until = from.saturating_add(len);
            let mut p = fx.draft();
            p.apply(&fx.ctx(), Action::Edit { content: Box::new(c), at: times[0] }).unwrap();
            let _ = p.apply(&fx.ctx(), Action::Submit {
                by: actor("张三", "S-001", "applicant"), signer: &fx.applicant,
                calendar: &fx.calendar, at: times[1], location: None });
            let _ = p.apply(&fx.ctx(), fx.action(ActionKind::SiteCheck));
            let _ = p.apply(&fx.ctx(), Action::Approve {
                by: actor("周八", "S-004", "unit_head"), signer: &fx.approver,
                at: times[2], location: None });
            let _ = p.apply(&fx.ctx(), Action::RecordGas { reading: fx.gas(times[3], 10), by: None });
            let _ = p.apply(&fx.ctx(), Action::Start { at: times[4], continuous_monitoring: false, by: None });
            let _ = p.apply(&fx.ctx(), Action::Suspend { at: times[5], reason: "x".into() });
            let _ = p.apply(&fx.ctx(), Action::Resume { at: times[6] });
            let _ = p.apply(&fx.ctx(), Action::Complete { at: times[7] });
            prop_assert!(verify(&p).is_ok());
        }
    }
}

/// The signed bytes are a format: if this digest changes, permits signed before the change no
/// longer verify. Change it only together with `sign::FORMAT`.
#[test]
fn canonical_encoding_is_stable() {
    use sha2::{Digest, Sha256};
    let mut fx = Fx::new("gb30871");
    fx.applicant = SoftwareSigner::from_secret(&[1; 32]).unwrap();
    let p = fx.in_state(PermitState::Submitted);
    let sig = &p.signatures[0];
    let info = super::sign::StepInfo {
        step: sig.step,
        signer: &sig.signer,
        public_key: &sig.public_key,
        at: sig.at,
        location: sig.location.as_ref(),
        covers_events: sig.covers_events as usize,
        covers_gas_readings: sig.covers_gas_readings as usize,
        index: 0,
        // Format /1: the bytes every signature stored before format /2 covers.
        user_present: None,
    };
    let bytes = super::sign::message_bytes(&p, &info).unwrap();
    // Starts with a CBOR map whose first key is "format".
    assert_eq!(bytes[0] & 0xe0, 0xa0);
    assert_eq!(&bytes[2..8], b"format");
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        "c759ecc4e21b8be7dedd109e3999a807c2702786a318da458bc658907fe469be"
    );
}

#[test]
fn the_high_s_twin_of_any_step_signature_is_refused() {
    use crate::codes::{es256_is_low_s, es256_twin};
    let fx = Fx::new("gb30871");
    let p = fx.in_state(PermitState::Closed);
    verify(&p).unwrap();
    for (index, sig) in p.signatures.iter().enumerate() {
        assert!(es256_is_low_s(&sig.signature), "step {index} signed low-S");
        let mut q = p.clone();
        q.signatures[index].signature = es256_twin(&sig.signature).unwrap();
        assert!(
            matches!(verify(&q), Err(PermitError::SignatureBroken { index: i, .. }) if i == index),
            "step {index}: {:?}",
            verify(&q)
        );
    }
}

#[test]
fn a_phone_that_answers_high_s_still_signs_permits_that_verify() {
    use crate::codes::es256_is_low_s;
    use crate::codes::signer::HighSSigner;
    let fx = Fx::new("gb30871");
    let phone = HighSSigner(SoftwareSigner::generate().unwrap());
    let mut p = fx.draft();
    p.apply(
        &fx.ctx(),
        Action::Submit {
            by: actor("张三", "S-001", "applicant"),
            signer: &phone,
            calendar: &fx.calendar,
            at: t(7, 0),
            location: None,
        },
    )
    .unwrap();
    p.apply(
        &fx.ctx(),
        Action::SiteCheck {
            by: actor("孙七", "S-003", "supervisor"),
            signer: &phone,
            answers: fx.answers(),
            at: t(7, 20),
            location: Some(fx.content().location),
        },
    )
    .unwrap();
    verify(&p).unwrap();
    assert!(p.signatures.iter().all(|s| es256_is_low_s(&s.signature)));
}
