//! Who may sign what (issue 14, docs/adr/0014-who-may-sign-what.md), attacked against the real
//! server binary on SQLite and on PostgreSQL: permit chains signed by keys nobody enrolled, a
//! welder approving their own permit with their own enrolled key, an approver named in a role
//! they do not hold, a site check without a single answer (a modified app's empty checklist), one
//! person applying and approving, a disabled phone's key, and a welder's permits shown to another
//! person of the same name. Each is refused and changes nothing that other phones pull; the
//! legitimate permit from draft to close passes, and a phone that synced the signed directory
//! vouches for its signers offline.

use weldguard_core::codes::signer::{DeviceSigner, SoftwareSigner};
use weldguard_core::permit::{
    Action, Catalog, Permit, PermitState, ProfileSet, RuleContext, vouch,
};
use weldguard_core::store::OutboxState;
use weldguard_core::sync::protocol::{PermitPage, Role, SignerDirectoryResponse};
use weldguard_tests::permits::{DAY, Device, Enrolment, H, Rules, actor, enrol, key, person, sync};
use weldguard_tests::{ServerBackend, ServerData, ServerProcess, raw_call};

const SERVER: &str = env!("CARGO_BIN_EXE_wg-server-e2e");
const ADMIN: &str = "security-signers-admin-token-0001";

/// The people of the story, each with a phone.
struct Crew {
    applicant: Device,
    checker: Device,
    approver: Device,
    closer: Device,
    /// A welder enrolled as an applicant of their own permits: the attacker.
    welder: Device,
    /// A second approver whose phone the admin disables.
    lost: Device,
    keys: Keys,
}

struct Keys {
    applicant: SoftwareSigner,
    checker: SoftwareSigner,
    approver: SoftwareSigner,
    closer: SoftwareSigner,
    welder: SoftwareSigner,
    lost: SoftwareSigner,
}

fn crew(server: &ServerProcess, rules: &Rules) -> Crew {
    let keys = Keys {
        applicant: key(11),
        checker: key(12),
        approver: key(13),
        closer: key(14),
        welder: key(15),
        lost: key(16),
    };
    let approver_role = rules.approver_role();
    let who = |name, person_id, role, permit_roles, key| Enrolment {
        name,
        person_id,
        role,
        permit_roles,
        key: Some(key),
    };
    Crew {
        applicant: enrol(
            server,
            who(
                "张三",
                "S-001",
                Role::Welder,
                &["applicant"],
                &keys.applicant,
            ),
        ),
        checker: enrol(
            server,
            who(
                "孙七",
                "S-003",
                Role::Supervisor,
                &["supervisor"],
                &keys.checker,
            ),
        ),
        approver: enrol(
            server,
            who(
                "周八",
                "S-004",
                Role::Supervisor,
                &[approver_role.as_str(), "applicant"],
                &keys.approver,
            ),
        ),
        closer: enrol(
            server,
            who(
                "王五",
                "S-002",
                Role::Supervisor,
                &["supervisor", "fire_watch"],
                &keys.closer,
            ),
        ),
        welder: enrol(
            server,
            who(
                "李四",
                "T370983199001011234",
                Role::Welder,
                &["applicant"],
                &keys.welder,
            ),
        ),
        lost: enrol(
            server,
            who(
                "吴九",
                "S-009",
                Role::Supervisor,
                &[approver_role.as_str()],
                &keys.lost,
            ),
        ),
        keys,
    }
}

/// Apply `action` on `device` (its own rules context `ctx`), sync, and say how the platform
/// answered the step: `Ok(())` applied, `Err(reason)` rejected.
fn step(
    device: &Device,
    permit_id: &str,
    ctx: &RuleContext<'_>,
    action: Action<'_>,
    at: i64,
) -> Result<(), String> {
    let (_, stored) = device
        .store
        .apply_permit_action(permit_id, ctx, action, at * 1000)
        .expect("the device's own rules let the step through");
    sync(device);
    let entry = device
        .store
        .outbox_entry(&stored.id)
        .expect("outbox")
        .expect("the step's entry");
    match entry.state {
        OutboxState::Applied => Ok(()),
        OutboxState::Rejected => Err(entry.last_error.unwrap_or_default()),
        other => panic!("the step is still {other:?}"),
    }
}

/// Draft a permit on `device` and have the platform take its first version.
fn draft(device: &Device, rules: &Rules, permit_id: &str, applicant: (&str, &str)) {
    let mut content = rules.content(permit_id);
    content.applicant = person(applicant.0, applicant.1);
    if applicant.1.starts_with('T') {
        content.welders = vec![person(applicant.0, applicant.1)];
    }
    let by = actor(applicant.0, applicant.1, "applicant");
    let permit = Permit::draft(content, &rules.ctx(), &by, DAY + 6 * H).expect("draft");
    device
        .store
        .save_permit(None, &permit, None, (DAY + 6 * H) * 1000)
        .expect("save the draft");
    let report = sync(device);
    assert_eq!((report.applied, report.rejected), (1, 0), "{report:?}");
}

fn submit(device: &Device, rules: &Rules, id: &str, by: (&str, &str), key: &SoftwareSigner) {
    let action = Action::Submit {
        by: actor(by.0, by.1, "applicant"),
        signer: key,
        calendar: &rules.calendar,
        at: DAY + 7 * H,
        location: None,
    };
    step(device, id, &rules.ctx(), action, DAY + 7 * H).expect("a genuine submission");
}

fn check(device: &Device, rules: &Rules, id: &str, key: &SoftwareSigner) {
    sync(device);
    let action = Action::SiteCheck {
        by: actor("孙七", "S-003", "supervisor"),
        signer: key,
        answers: rules.answers(DAY + 7 * H + 600),
        at: DAY + 7 * H + 900,
        location: Some(rules.location()),
    };
    step(device, id, &rules.ctx(), action, DAY + 7 * H + 900).expect("a genuine site check");
}

fn approve<'a>(rules: &Rules, by: (&str, &str, &str), key: &'a SoftwareSigner) -> Action<'a> {
    Action::Approve {
        by: actor(by.0, by.1, by.2),
        // The approver's presence verified, as a phone's key store says it (approvals must
        // record it); leaked so the action can hold it (a test process).
        signer: Box::leak(Box::new(weldguard_core::codes::PresenceConfirmed(key))),
        at: DAY + 7 * H + 1800,
        location: Some(rules.location()),
    }
}

/// The platform's current version of a permit, as an admin pulls it.
fn head(server: &ServerProcess, permit_id: &str) -> Option<Permit> {
    let (status, body) = raw_call(server.addr, "GET", "/v1/permits", Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    let page: PermitPage = serde_json::from_str(&body).expect("a permit page");
    page.heads
        .into_iter()
        .find(|h| h.permit_id == permit_id)
        .map(|h| h.permit)
}

fn assert_refused(result: Result<(), String>, code: &str) {
    let reason = result.expect_err("the platform must refuse this step");
    assert!(reason.contains(code), "expected {code}, got: {reason}");
}

fn run(backend: ServerBackend) {
    let Some(data) = ServerData::new(backend, "security-signers") else {
        return;
    };
    let server = ServerProcess::start_on(SERVER, data, ADMIN);
    let rules = Rules::new();
    let ctx = rules.ctx();
    let c = crew(&server, &rules);
    let k = &c.keys;

    // 1. A chain signed by keys the welder's phone made itself, every step named as the right
    // person in the right role: the draft is taken, the submission is not, nothing after it.
    let p1 = "0193a1b2-0000-7000-8000-00000000a001";
    draft(&c.welder, &rules, p1, ("李四", "T370983199001011234"));
    let (own1, own2, own3) = (
        SoftwareSigner::generate().unwrap(),
        SoftwareSigner::generate().unwrap(),
        SoftwareSigner::generate().unwrap(),
    );
    let forged = Action::Submit {
        by: actor("李四", "T370983199001011234", "applicant"),
        signer: &own1,
        calendar: &rules.calendar,
        at: DAY + 7 * H,
        location: None,
    };
    assert_refused(
        step(&c.welder, p1, &ctx, forged, DAY + 7 * H),
        "permit.signer_unknown",
    );
    // The rest of the forged chain, made offline on the phone, follows no version the platform
    // holds (its local copy went back to the platform's draft at that sync: re-forge it whole).
    let mut chain = head(&server, p1).expect("the draft");
    assert_eq!(chain.state, PermitState::Draft);
    for action in [
        Action::Submit {
            by: actor("李四", "T370983199001011234", "applicant"),
            signer: &own1,
            calendar: &rules.calendar,
            at: DAY + 7 * H,
            location: None,
        },
        Action::SiteCheck {
            by: actor("孙七", "S-003", "supervisor"),
            signer: &own2,
            answers: rules.answers(DAY + 7 * H + 600),
            at: DAY + 7 * H + 900,
            location: Some(rules.location()),
        },
        approve(&rules, ("周八", "S-004", &rules.approver_role()), &own3),
    ] {
        chain
            .apply(&ctx, action)
            .expect("the rules pass on the phone");
    }
    assert_eq!(chain.state, PermitState::Approved);
    c.welder
        .store
        .save_permit(
            Some(&head(&server, p1).unwrap()),
            &chain,
            None,
            (DAY + 8 * H) * 1000,
        )
        .ok();
    sync(&c.welder);
    assert_eq!(head(&server, p1).unwrap().state, PermitState::Draft);
    // Every other phone pulls the draft, never an approval; offline, nobody vouches for it.
    sync(&c.checker);
    let pulled = c.checker.store.permit(p1).unwrap().expect("pulled");
    assert_eq!(pulled.state, PermitState::Draft);
    let directory = c.checker.store.signer_directory().unwrap();
    assert!(
        vouch(
            &chain,
            ProfileSet::builtin_shared().unwrap(),
            directory.as_ref()
        )
        .is_err(),
        "an offline phone refuses the forged approval too"
    );

    // 2. The welder approves their own permit with their own enrolled key: the directory refuses
    // the role (and a welder's phone may not report an approval at all), also when a
    // supervisor's phone carries the step.
    let p2 = "0193a1b2-0000-7000-8000-00000000a002";
    draft(&c.welder, &rules, p2, ("李四", "T370983199001011234"));
    submit(
        &c.welder,
        &rules,
        p2,
        ("李四", "T370983199001011234"),
        &k.welder,
    );
    check(&c.checker, &rules, p2, &k.checker);
    sync(&c.welder);
    let self_approval = approve(
        &rules,
        ("李四", "T370983199001011234", &rules.approver_role()),
        &k.welder,
    );
    let refused = step(&c.welder, p2, &ctx, self_approval, DAY + 8 * H).unwrap_err();
    assert!(
        refused.contains("permit.signer_role") || refused.contains("permit.device_not_allowed"),
        "{refused}"
    );
    // A welder's phone never decides for a supervisor: not even a rejection (unsigned).
    let reject = Action::Reject {
        by: actor("李四", "T370983199001011234", "applicant"),
        at: DAY + 8 * H,
        reason: "不干了".into(),
    };
    assert_refused(
        step(&c.welder, p2, &ctx, reject, DAY + 8 * H),
        "permit.device_not_allowed",
    );
    sync(&c.checker);
    let relayed = approve(
        &rules,
        ("李四", "T370983199001011234", &rules.approver_role()),
        &k.welder,
    );
    assert_refused(
        step(&c.checker, p2, &ctx, relayed, DAY + 8 * H),
        "permit.signer_role",
    );
    // 3. …or named as the approver in the role `welder` (a modified app's profile lets it).
    let mut welder_profile = rules.profile.clone();
    for level in &mut welder_profile.levels {
        level.approver.id = "welder".into();
    }
    let modified = RuleContext {
        profile: &welder_profile,
        catalog: &rules.catalog,
    };
    sync(&c.checker);
    let as_welder = approve(&rules, ("李四", "T370983199001011234", "welder"), &k.welder);
    assert!(step(&c.checker, p2, &modified, as_welder, DAY + 8 * H).is_err());
    assert_eq!(head(&server, p2).unwrap().state, PermitState::Checked);

    // 4. A site check without a single answer, signed by the real checker on an app whose
    // checklist is empty: the platform's replay of the rules refuses it.
    let p4 = "0193a1b2-0000-7000-8000-00000000a004";
    draft(&c.applicant, &rules, p4, ("张三", "S-001"));
    submit(&c.applicant, &rules, p4, ("张三", "S-001"), &k.applicant);
    sync(&c.checker);
    let empty = Catalog {
        items: Vec::new(),
        ..rules.catalog.clone()
    };
    let mut lax = rules.profile.clone();
    lax.machine_max_distance = None;
    let hollow = RuleContext {
        profile: &lax,
        catalog: &empty,
    };
    let no_answers = Action::SiteCheck {
        by: actor("孙七", "S-003", "supervisor"),
        signer: &k.checker,
        answers: Vec::new(),
        at: DAY + 7 * H + 900,
        location: Some(rules.location()),
    };
    assert_refused(
        step(&c.checker, p4, &hollow, no_answers, DAY + 7 * H + 900),
        "permit.rule_blocked",
    );
    assert_eq!(head(&server, p4).unwrap().state, PermitState::Submitted);

    // 5. One person applies and approves (周八 holds both roles).
    let p5 = "0193a1b2-0000-7000-8000-00000000a005";
    draft(&c.approver, &rules, p5, ("周八", "S-004"));
    submit(&c.approver, &rules, p5, ("周八", "S-004"), &k.approver);
    check(&c.checker, &rules, p5, &k.checker);
    sync(&c.approver);
    let own = approve(
        &rules,
        ("周八", "S-004", &rules.approver_role()),
        &k.approver,
    );
    assert_refused(
        step(&c.approver, p5, &ctx, own, DAY + 8 * H),
        "permit.same_signer",
    );

    // 6. A lost phone: the admin disables it, and its key approves nothing from then on.
    let p6 = "0193a1b2-0000-7000-8000-00000000a006";
    draft(&c.applicant, &rules, p6, ("张三", "S-001"));
    submit(&c.applicant, &rules, p6, ("张三", "S-001"), &k.applicant);
    check(&c.checker, &rules, p6, &k.checker);
    let (status, body) = raw_call(
        server.addr,
        "POST",
        &format!("/v1/admin/devices/{}/disable", c.lost.device_id),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    sync(&c.approver);
    let stolen = approve(&rules, ("吴九", "S-009", &rules.approver_role()), &k.lost);
    assert_refused(
        step(&c.approver, p6, &ctx, stolen, DAY + 8 * H),
        "permit.signer_not_valid",
    );

    // 7. The enrolled approver's own key, but signed without the key store verifying the
    // approver's presence (no biometric or PIN prompt, format /2 with user_present false): the
    // platform refuses the approval; the permit stays checked.
    let p8 = "0193a1b2-0000-7000-8000-00000000a0f8";
    draft(&c.applicant, &rules, p8, ("张三", "S-001"));
    submit(&c.applicant, &rules, p8, ("张三", "S-001"), &k.applicant);
    check(&c.checker, &rules, p8, &k.checker);
    sync(&c.approver);
    let absent = Action::Approve {
        by: actor("周八", "S-004", &rules.approver_role()),
        signer: &k.approver,
        at: DAY + 7 * H + 1800,
        location: Some(rules.location()),
    };
    assert_refused(
        step(&c.approver, p8, &ctx, absent, DAY + 7 * H + 1800),
        "permit.presence_missing",
    );
    assert_eq!(head(&server, p8).unwrap().state, PermitState::Checked);

    // The genuine permit, draft to close, every step by the person and role that may sign it.
    let p7 = "0193a1b2-0000-7000-8000-00000000a007";
    draft(&c.applicant, &rules, p7, ("张三", "S-001"));
    submit(&c.applicant, &rules, p7, ("张三", "S-001"), &k.applicant);
    check(&c.checker, &rules, p7, &k.checker);
    sync(&c.approver);
    let genuine = approve(
        &rules,
        ("周八", "S-004", &rules.approver_role()),
        &k.approver,
    );
    step(&c.approver, p7, &ctx, genuine, DAY + 7 * H + 1800).expect("the approval");
    sync(&c.applicant);
    let reading = weldguard_core::permit::GasReading {
        taken_at: DAY + 8 * H + 3000,
        lel_centi_pct: 500,
        concentration_centi_pct: 10,
        point: "动火点".into(),
        analyst: "赵六".into(),
    };
    for (action, at) in [
        (
            Action::RecordGas {
                reading,
                by: Some("赵六".into()),
            },
            DAY + 8 * H + 3000,
        ),
        (
            Action::Start {
                at: DAY + 9 * H,
                continuous_monitoring: false,
                by: Some("T370983199001011234".into()),
            },
            DAY + 9 * H,
        ),
        (Action::Complete { at: DAY + 12 * H }, DAY + 12 * H),
    ] {
        step(&c.applicant, p7, &ctx, action, at).expect("the applicant's phone reports the work");
    }
    sync(&c.closer);
    let post_work = weldguard_core::permit::sample_answers(
        &rules.catalog,
        &[weldguard_core::permit::Section::PostWork],
        &weldguard_core::permit::SampleEvidence::crew(DAY + 12 * H),
    );
    let close = Action::Close {
        by: actor("王五", "S-002", "fire_watch"),
        signer: &k.closer,
        post_work,
        at: DAY + 12 * H + 1800,
        location: Some(rules.location()),
    };
    step(&c.closer, p7, &ctx, close, DAY + 12 * H + 1800).expect("the fire watch closes");
    let closed = head(&server, p7).expect("the platform holds it");
    assert_eq!(closed.state, PermitState::Closed);
    assert_eq!(closed.signatures.len(), 4);

    // A phone that synced the signed directory vouches for every signer offline; the directory
    // verifies with the platform's trust file and shows the disabled phone's end.
    let inspector = enrol(
        &server,
        Enrolment {
            name: "网格员刘",
            person_id: "G-0042",
            role: Role::Inspector,
            permit_roles: &[],
            key: None,
        },
    );
    sync(&inspector);
    let held = inspector.store.permit(p7).unwrap().expect("pulled");
    assert_eq!(held, closed);
    let directory = inspector.store.signer_directory().unwrap().expect("synced");
    vouch(
        &held,
        ProfileSet::builtin_shared().unwrap(),
        Some(&directory),
    )
    .expect("vouched");
    assert_eq!(
        directory.entries.len(),
        6,
        "the six who sign; not the inspector"
    );
    let lost = directory.entry(&k.lost.public_key()).expect("listed");
    assert!(lost.valid_until.is_some());
    let (status, body) = raw_call(server.addr, "GET", "/v1/signers", Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    let response: SignerDirectoryResponse = serde_json::from_str(&body).unwrap();
    assert!(!response.document.is_empty());

    // 7. Two welders named 张三: each phone pulls the permits naming its own certificate, never
    // the other's.
    let first = enrol(
        &server,
        Enrolment {
            name: "张三",
            person_id: "T370983198001011111",
            role: Role::Welder,
            permit_roles: &["applicant"],
            key: Some(&key(21)),
        },
    );
    let second = enrol(
        &server,
        Enrolment {
            name: "张三",
            person_id: "T370983198502022222",
            role: Role::Welder,
            permit_roles: &[],
            key: None,
        },
    );
    let p8 = "0193a1b2-0000-7000-8000-00000000a008";
    draft(&first, &rules, p8, ("张三", "T370983198001011111"));
    sync(&second);
    assert!(second.store.permit(p8).unwrap().is_none());
    sync(&first);
    assert!(first.store.permit(p8).unwrap().is_some());
}

#[test]
fn who_may_sign_what_holds_on_sqlite() {
    run(ServerBackend::Sqlite);
}

#[test]
fn who_may_sign_what_holds_on_postgres() {
    run(ServerBackend::Postgres);
}
