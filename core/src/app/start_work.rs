//! Scan-to-start (扫码开机): from the machine label's and the welder's scanned texts, the site, the
//! time and (when the shell has one) the device's position, decide whether work may start
//! ([`crate::startwork::scan_to_start`]) and record the answer, allowed or not, as a work session
//! with its outbox entry in one transaction, the position with it. The one decide-and-record path
//! of the FFI, the CLI's `decide` and the demo.
//!
//! Bad input (a time or position out of range) is refused before anything is read or consumed: no
//! presentation is marked as seen and nothing is saved.

use serde::Serialize;

use super::device::time;
use super::{AppError, Device, Lang};
use crate::domain::Explain;
use crate::rules::{Finding, RuleSetId, Severity};
use crate::startwork::{MachineSource, PermitContext, ScanToStart, WelderSource, scan_to_start};
use crate::store::{NewWorkSession, ScanPosition};

/// The device's position as the shell's location service gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PositionInput {
    /// Degrees (WGS-84) and the accuracy radius in metres.
    Degrees {
        latitude: f64,
        longitude: f64,
        accuracy_m: f64,
    },
    /// Integer 1e-7 degrees and the accuracy radius in metres.
    E7 {
        latitude_e7: i64,
        longitude_e7: i64,
        accuracy_m: f64,
    },
}

impl PositionInput {
    /// The position as recorded, or an input error when any part is out of range or not a number.
    pub fn to_scan_position(self) -> Result<ScanPosition, AppError> {
        let (lat_e7, lon_e7, accuracy_m) = match self {
            PositionInput::Degrees {
                latitude,
                longitude,
                accuracy_m,
            } => {
                if !latitude.is_finite()
                    || !longitude.is_finite()
                    || !(-90.0..=90.0).contains(&latitude)
                    || !(-180.0..=180.0).contains(&longitude)
                {
                    return Err(bad_position(&format!("{latitude}, {longitude}")));
                }
                (
                    (latitude * 1e7).round() as i64,
                    (longitude * 1e7).round() as i64,
                    accuracy_m,
                )
            }
            PositionInput::E7 {
                latitude_e7,
                longitude_e7,
                accuracy_m,
            } => (latitude_e7, longitude_e7, accuracy_m),
        };
        let max = f64::from(ScanPosition::MAX_ACCURACY_M);
        if !accuracy_m.is_finite() || !(0.0..=max).contains(&accuracy_m) {
            return Err(AppError::input(
                "input.position",
                format!("定位精度超出范围（0–{max} 米）：{accuracy_m}"),
                format!("The position's accuracy is out of range (0–{max} m): {accuracy_m}"),
            ));
        }
        let position = match (i32::try_from(lat_e7), i32::try_from(lon_e7)) {
            (Ok(latitude_e7), Ok(longitude_e7)) => ScanPosition {
                latitude_e7,
                longitude_e7,
                // In range and finite, checked above: the cast cannot wrap.
                accuracy_m: accuracy_m.ceil() as u32,
            },
            _ => return Err(bad_position(&format!("{lat_e7}e-7, {lon_e7}e-7"))),
        };
        if !position.in_range() {
            return Err(bad_position(&format!("{lat_e7}e-7, {lon_e7}e-7")));
        }
        Ok(position)
    }
}

fn bad_position(what: &str) -> AppError {
    AppError::input(
        "input.position",
        format!("位置超出范围（纬度 −90–90，经度 −180–180）：{what}"),
        format!("The position is out of range (latitude −90–90, longitude −180–180): {what}"),
    )
}

/// One scan-to-start question.
#[derive(Debug, Clone, PartialEq)]
pub struct StartWorkInput {
    /// The text scanned from the machine's label (or a typed machine id).
    pub machine_text: String,
    /// The welder's scanned text: a live presentation, a credential, or an unsigned certificate
    /// number.
    pub welder_text: String,
    /// The site where the work happens (checked against the hot-work permit).
    pub site_id: String,
    /// The time of the scan, Unix seconds.
    pub now: i64,
    /// The device's position at the scan, when the shell has one.
    pub position: Option<PositionInput>,
    /// The language of [`Reason::text`].
    pub lang: Lang,
}

/// One reason of a decision or a check: its stable code, weight, and text in the chosen language
/// and in both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: String,
    pub severity: Severity,
    /// The text in the language asked for.
    pub text: String,
    pub zh: String,
    pub en: String,
}

impl Reason {
    /// A rules finding in `lang`.
    pub fn of(finding: &Finding, lang: Lang) -> Self {
        Self {
            code: finding.code.to_owned(),
            severity: finding.severity,
            text: lang.pick(&finding.zh, &finding.en).to_owned(),
            zh: finding.zh.clone(),
            en: finding.en.clone(),
        }
    }

    /// Any explained error or finding in `lang`, with the given weight.
    pub fn explained(e: &dyn Explain, severity: Severity, lang: Lang) -> Self {
        Self {
            code: e.code().to_owned(),
            severity,
            text: lang.explain(e),
            zh: e.message_zh(),
            en: e.message_en(),
        }
    }
}

/// The answer to a scan-to-start question, as a screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartWorkView {
    /// Work may start.
    pub allowed: bool,
    /// A fixed station under process control: scanning to start is not required.
    pub scan_exempt: bool,
    /// The licence rule set chosen by the date of the work.
    pub rule_set: RuleSetId,
    pub machine_id: Option<String>,
    pub certificate_no: Option<String>,
    /// The hot-work permit checked, if any.
    pub permit_id: Option<String>,
    /// Every reason, deny first, then warn, then info.
    pub reasons: Vec<Reason>,
    /// The recorded work session (also its outbox idempotency key); `None` when nothing was
    /// recorded (nothing identified the machine or the welder, or only a decision was asked).
    pub session_id: Option<String>,
    /// The position recorded with the session.
    pub position: Option<ScanPosition>,
    /// What the machine's scanned text turned out to be.
    pub machine: MachineSource,
    /// What the welder's scanned text turned out to be.
    pub welder: WelderSource,
}

/// Scan to start: decide, and record the answer as a work session with its outbox entry (and the
/// position) in one transaction. Nothing is recorded when the scans identify no machine or no
/// welder: there is no one to record it for; the view still lists every reason.
pub fn start_work(device: &Device, input: StartWorkInput) -> Result<StartWorkView, AppError> {
    run(device, input, true)
}

/// The same decision without recording it (the desktop CLI's `decide` without `--record`).
pub fn decide(device: &Device, input: StartWorkInput) -> Result<StartWorkView, AppError> {
    run(device, input, false)
}

fn run(device: &Device, input: StartWorkInput, record: bool) -> Result<StartWorkView, AppError> {
    // Every input is checked before a presentation is consumed or anything is written.
    let at = time(input.now)?;
    let position = input
        .position
        .map(PositionInput::to_scan_position)
        .transpose()?;
    let store = device.store();
    let outcome = device.with_verifier(|verifier, replay| {
        let question = ScanToStart {
            machine_text: &input.machine_text,
            welder_text: &input.welder_text,
            permit: PermitContext {
                source: store,
                site_id: &input.site_id,
            },
            at,
        };
        scan_to_start(&question, verifier, replay, store)
    });
    let decision = &outcome.decision;
    let recorded = match (&outcome.machine_id, &outcome.certificate_no, record) {
        (Some(machine_id), Some(certificate_no), true) => {
            let at_ms = input.now.saturating_mul(1000);
            Some(store.record_work_session(
                NewWorkSession {
                    machine_id: machine_id.clone(),
                    certificate_no: certificate_no.clone(),
                    started_at_ms: at_ms,
                    allowed: decision.allowed,
                    reason_codes: decision.denials().map(|f| f.code.to_owned()).collect(),
                    permit_id: outcome.permit_id.clone(),
                    position,
                },
                at_ms,
            )?)
        }
        _ => None,
    };
    Ok(StartWorkView {
        allowed: decision.allowed,
        scan_exempt: decision.scan_exempt,
        rule_set: decision.rule_set,
        machine_id: outcome.machine_id.clone(),
        certificate_no: outcome.certificate_no.clone(),
        permit_id: outcome.permit_id.clone(),
        reasons: decision
            .findings
            .iter()
            .map(|f| Reason::of(f, input.lang))
            .collect(),
        session_id: recorded.as_ref().map(|s| s.id.clone()),
        position: recorded.and_then(|s| s.position),
        machine: outcome.machine,
        welder: outcome.welder,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::codes::{
        DeviceSigner, IssuerAlg, IssuerKey, SoftwareSigner, TrustStore, TrustedKey,
        issue_credential, issue_machine_label, present,
    };
    use crate::domain::{
        Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel, MachineStatus,
        OperationCategory, WelderCredential,
    };
    use crate::store::test_support::TempDir;
    use crate::store::{RegistryChange, Store, WorkSession};

    /// 2026-11-30 09:00 China time.
    pub(crate) const NOW: i64 = 1_796_000_400;
    pub(crate) const ORG: &str = "91370983MA3C4X1Y2K";
    pub(crate) const CERT: &str = "T11010519491231002X";
    pub(crate) const FIXED: &str = "370983-DH-2024-000123";
    pub(crate) const MOBILE: &str = "370983-DH-2024-000456";

    /// A profile database with a registry (one licence, a fixed station and a mobile machine), an
    /// issuer the device trusts, and the welder's phone key.
    pub(crate) struct World {
        pub(crate) _dir: TempDir,
        pub(crate) device: Device,
        pub(crate) issuer: IssuerKey,
        pub(crate) phone: SoftwareSigner,
    }

    pub(crate) fn credential(phone: &SoftwareSigner) -> WelderCredential {
        WelderCredential {
            certificate_no: CERT.into(),
            id_number: "11010519491231002X".into(),
            name: "赵六".into(),
            categories: vec![OperationCategory::FusionWeldingAndCutting],
            issued_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            expires_on: NaiveDate::from_ymd_opt(2030, 2, 28).unwrap(),
            next_review_on: NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
            photo_digest: vec![1; 16],
            device_key: phone.public_key(),
        }
    }

    pub(crate) fn licence_of(c: &WelderCredential) -> Licence {
        Licence {
            certificate_no: c.certificate_no.clone(),
            id_number: c.id_number.clone(),
            name: c.name.clone(),
            categories: c.categories.clone(),
            issued_on: c.issued_on,
            expires_on: c.expires_on,
            next_review_on: c.next_review_on,
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: Some(ORG.into()),
        }
    }

    pub(crate) fn label(machine_id: &str, class: MachineClass) -> MachineLabel {
        MachineLabel {
            machine_id: machine_id.into(),
            kind: MachineKind::Arc,
            class,
            owner_org: ORG.into(),
            region: 370983,
            issued_at: NOW - 86_400,
        }
    }

    fn machine(l: MachineLabel) -> Machine {
        Machine {
            machine_id: l.machine_id,
            kind: l.kind,
            class: l.class,
            owner_org: l.owner_org,
            region: l.region,
            status: MachineStatus::Active,
        }
    }

    pub(crate) fn world() -> World {
        let dir = TempDir::new();
        let store = Store::open(dir.path().join("profile.db")).unwrap();
        let issuer = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        let mut trust = TrustStore::new();
        trust.add(TrustedKey::for_key(&issuer, 0, None)).unwrap();
        let phone = SoftwareSigner::generate().unwrap();
        store
            .apply_registry_changes(
                [
                    RegistryChange::UpsertLicence(licence_of(&credential(&phone))),
                    RegistryChange::UpsertMachine(machine(label(
                        FIXED,
                        MachineClass::FixedStation,
                    ))),
                    RegistryChange::UpsertMachine(machine(label(MOBILE, MachineClass::Mobile))),
                ],
                None,
                0,
            )
            .unwrap();
        let device = Device::with_store(store).unwrap();
        device.set_trust(trust);
        World {
            _dir: dir,
            device,
            issuer,
            phone,
        }
    }

    impl World {
        pub(crate) fn presentation(&self, at: i64) -> String {
            let code = issue_credential(&self.issuer, &credential(&self.phone), NOW - 86_400, NOW)
                .unwrap();
            present(&code, &self.phone, at).unwrap()
        }

        fn label_code(&self, machine_id: &str, class: MachineClass) -> String {
            issue_machine_label(&self.issuer, &label(machine_id, class)).unwrap()
        }

        fn input(&self, machine_id: &str, class: MachineClass, lang: Lang) -> StartWorkInput {
            StartWorkInput {
                machine_text: self.label_code(machine_id, class),
                welder_text: self.presentation(NOW),
                site_id: "site-370983-001".into(),
                now: NOW,
                position: None,
                lang,
            }
        }
    }

    #[test]
    fn allowed_work_is_recorded_with_its_outbox_entry_in_one_transaction() {
        let w = world();
        let view = start_work(
            &w.device,
            w.input(FIXED, MachineClass::FixedStation, Lang::En),
        )
        .unwrap();
        assert!(view.allowed, "{:?}", view.reasons);
        assert!(view.scan_exempt);
        assert_eq!(view.machine_id.as_deref(), Some(FIXED));
        assert_eq!(view.certificate_no.as_deref(), Some(CERT));
        assert!(matches!(view.welder, WelderSource::Presentation { .. }));
        let info = view
            .reasons
            .iter()
            .find(|r| r.code == "machine.fixed_station_exempt")
            .unwrap();
        assert_eq!(info.text, info.en);
        assert_ne!(info.zh, info.en);
        let id = view.session_id.unwrap();
        let store = w.device.store();
        let session = store.work_session(&id).unwrap().unwrap();
        assert!(session.allowed);
        assert_eq!(session.started_at_ms, NOW * 1000);
        assert_eq!(session.position, None);
        let entry = store.outbox_entry(&id).unwrap().unwrap();
        assert_eq!(entry.kind, "work_session");
        let payload: WorkSession = serde_json::from_str(&entry.payload).unwrap();
        assert_eq!(payload, session);
        assert_eq!(store.outbox_counts().unwrap().pending, 1);
        assert_eq!(store.recent_work_sessions(10).unwrap().len(), 1);
    }

    #[test]
    fn refused_work_lists_every_reason_in_both_languages_and_is_recorded() {
        let w = world();
        // A mobile machine needs a hot-work permit; none is stored.
        let zh = start_work(&w.device, w.input(MOBILE, MachineClass::Mobile, Lang::Zh)).unwrap();
        assert!(!zh.allowed);
        let missing = zh
            .reasons
            .iter()
            .find(|r| r.code == "permit.missing")
            .unwrap_or_else(|| panic!("{:?}", zh.reasons));
        assert_eq!(missing.severity, Severity::Deny);
        assert_eq!(missing.text, missing.zh);
        assert!(!missing.en.is_empty() && missing.en != missing.zh);
        let session = w
            .device
            .store()
            .work_session(zh.session_id.as_deref().unwrap())
            .unwrap()
            .unwrap();
        assert!(!session.allowed);
        assert!(session.reason_codes.contains(&"permit.missing".to_owned()));

        let en = start_work(&w.device, w.input(MOBILE, MachineClass::Mobile, Lang::En)).unwrap();
        let missing = en
            .reasons
            .iter()
            .find(|r| r.code == "permit.missing")
            .unwrap();
        assert_eq!(missing.text, missing.en);
        assert_eq!(w.device.store().outbox_counts().unwrap().pending, 2);
    }

    #[test]
    fn nothing_identifiable_is_refused_and_not_recorded() {
        let w = world();
        let mut input = w.input(FIXED, MachineClass::FixedStation, Lang::En);
        input.welder_text = "WG1:NOT-A-CODE".into();
        let view = start_work(&w.device, input).unwrap();
        assert!(!view.allowed);
        assert!(view.reasons.iter().any(|r| r.code == "code.malformed"));
        assert_eq!(view.session_id, None);
        assert_eq!(w.device.store().outbox_counts().unwrap().pending, 0);
    }

    #[test]
    fn the_position_is_recorded_with_the_session() {
        let w = world();
        let mut input = w.input(FIXED, MachineClass::FixedStation, Lang::Zh);
        input.position = Some(PositionInput::Degrees {
            latitude: 36.182,
            longitude: -116.772_000_04,
            accuracy_m: 7.2,
        });
        let view = start_work(&w.device, input).unwrap();
        let expected = ScanPosition {
            latitude_e7: 361_820_000,
            longitude_e7: -1_167_720_000,
            accuracy_m: 8,
        };
        assert_eq!(view.position, Some(expected));
        let store = w.device.store();
        let id = view.session_id.unwrap();
        assert_eq!(
            store.work_session(&id).unwrap().unwrap().position,
            Some(expected)
        );
        let payload = store.outbox_entry(&id).unwrap().unwrap().payload;
        let sent: WorkSession = serde_json::from_str(&payload).unwrap();
        assert_eq!(sent.position, Some(expected));

        let mut input = w.input(FIXED, MachineClass::FixedStation, Lang::Zh);
        input.position = Some(PositionInput::E7 {
            latitude_e7: -900_000_000,
            longitude_e7: 1_800_000_000,
            accuracy_m: 0.0,
        });
        let view = start_work(&w.device, input).unwrap();
        assert_eq!(view.position.unwrap().latitude_e7, -900_000_000);
    }

    #[test]
    fn a_bad_position_is_refused_and_nothing_is_saved_or_consumed() {
        let w = world();
        let presentation = w.presentation(NOW);
        let bad = [
            PositionInput::Degrees {
                latitude: 90.5,
                longitude: 0.0,
                accuracy_m: 5.0,
            },
            PositionInput::Degrees {
                latitude: f64::NAN,
                longitude: 0.0,
                accuracy_m: 5.0,
            },
            PositionInput::Degrees {
                latitude: 36.0,
                longitude: 116.0,
                accuracy_m: -1.0,
            },
            PositionInput::Degrees {
                latitude: 36.0,
                longitude: 116.0,
                accuracy_m: f64::INFINITY,
            },
            PositionInput::E7 {
                latitude_e7: 0,
                longitude_e7: 1_800_000_001,
                accuracy_m: 5.0,
            },
            PositionInput::E7 {
                latitude_e7: i64::MAX,
                longitude_e7: 0,
                accuracy_m: 5.0,
            },
        ];
        for position in bad {
            let mut input = w.input(FIXED, MachineClass::FixedStation, Lang::En);
            input.welder_text = presentation.clone();
            input.position = Some(position);
            let err = start_work(&w.device, input).unwrap_err();
            assert_eq!(err.code(), "input.position", "{position:?}");
            assert!(!err.message_zh().is_empty() && !err.message_en().is_empty());
        }
        let mut input = w.input(FIXED, MachineClass::FixedStation, Lang::En);
        input.now = i64::MAX;
        assert_eq!(
            start_work(&w.device, input).unwrap_err().code(),
            "input.time"
        );
        let store = w.device.store();
        assert_eq!(store.outbox_counts().unwrap().pending, 0);
        assert!(store.recent_work_sessions(10).unwrap().is_empty());
        // The refused attempts did not consume the presentation.
        let mut input = w.input(FIXED, MachineClass::FixedStation, Lang::En);
        input.welder_text = presentation;
        assert!(start_work(&w.device, input).unwrap().allowed);
    }

    #[test]
    fn a_session_that_cannot_be_written_leaves_no_outbox_entry() {
        let w = world();
        // Another writer makes every work session insert fail, after the outbox row went in.
        let db = w._dir.path().join("profile.db");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse_sessions BEFORE INSERT ON work_sessions \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let err = start_work(
            &w.device,
            w.input(FIXED, MachineClass::FixedStation, Lang::En),
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::app::error::ErrorKind::Storage, "{err:?}");
        let store = w.device.store();
        assert_eq!(store.outbox_counts().unwrap(), Default::default());
        assert!(store.recent_work_sessions(10).unwrap().is_empty());
    }

    #[test]
    fn deciding_without_recording_saves_nothing() {
        let w = world();
        let view = decide(
            &w.device,
            w.input(FIXED, MachineClass::FixedStation, Lang::En),
        )
        .unwrap();
        assert!(view.allowed);
        assert_eq!((view.session_id, view.position), (None, None));
        assert_eq!(w.device.store().outbox_counts().unwrap().pending, 0);
    }
}
