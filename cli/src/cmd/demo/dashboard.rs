//! `weldguard demo --dashboard`: after the demo's usual run its local platform keeps running with
//! something to look at. The administrator places four sites of 肥城市 (Feicheng, Shandong:
//! district 370983, towns 新城街道 and 老城街道) with their coordinates and the machines at them;
//! the registry learns a welder whose licence has expired; the demo's phone scans to start at
//! those machines through the start-work service (a refusal for the expired licence, then more
//! at the same machine, and a scan 29 km from the machine), and syncs, so the platform raises its
//! warnings; a city-wide monitoring account's enrolment code is made, and the dashboard's
//! address with that code is printed. The server runs until Ctrl-C.

use chrono::{DateTime, Days, Duration, Utc};
use serde::Serialize;
use weldguard_core::app::Device;
use weldguard_core::app::Lang as AppLang;
use weldguard_core::app::start_work::{PositionInput, StartWorkInput, start_work};
use weldguard_core::codes::{
    DeviceSigner, IssuerKey, SoftwareSigner, issue_credential, issue_machine_label, present,
};
use weldguard_core::domain::{
    Explain, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, WelderCredential,
};
use weldguard_core::rules::WorkTime;
use weldguard_core::rules::id_number::check_character;
use weldguard_core::store::RegistryChange;
use weldguard_core::sync::{RetryPolicy, SyncClient};
use weldguard_model::warnings::{
    GeoPoint, LicencePlace, MachinePlace, MachineWatch, NewMonitor, Place, PlaceChange, Scope, Site,
};

use super::{DEMO_ADMIN, LocalPlatform, MACHINE_ID, ORG, SITE, fail, say};
use crate::data_dir::app_failure;
use crate::output::{Failure, Output};

/// 肥城市 and two of its streets (GB/T 2260 and its town-level codes).
const DISTRICT: &str = "370983";
const XINCHENG: &str = "370983001";
const LAOCHENG: &str = "370983002";
/// Where the far scan happens: 泰安市泰山区, about 29 km from the machine it names.
const FAR_AWAY: (f64, f64) = (36.1941, 117.1290);

/// The demo's sites: id, name, town, grid, latitude, longitude, the machine placed there.
const SITES: [(&str, &str, &str, &str, f64, f64, &str); 4] = [
    (
        SITE,
        "肥城市某商业综合体项目 3号楼",
        XINCHENG,
        "XC-03",
        36.182,
        116.772,
        MACHINE_ID,
    ),
    (
        "site-370983-002",
        "肥城高铁站片区安置房二期",
        XINCHENG,
        "XC-07",
        36.1950,
        116.7480,
        "370983-DH-2024-000124",
    ),
    (
        "site-370983-003",
        "肥城经济开发区化工园管廊改造",
        LAOCHENG,
        "LC-02",
        36.2210,
        116.8060,
        "370983-DH-2024-000125",
    ),
    (
        "site-370983-004",
        "龙山河综合整治工程",
        LAOCHENG,
        "LC-05",
        36.1700,
        116.7600,
        "370983-DH-2024-000126",
    ),
];

/// What `--dashboard` set up, for `--json`.
#[derive(Serialize)]
pub(super) struct DashboardReport {
    /// `http://127.0.0.1:PORT/dashboard/#code=CODE`.
    pub url: String,
    /// The city-wide monitoring account's one-time enrolment code.
    pub monitor_code: String,
    pub sites: usize,
    /// Scan-to-starts recorded and pushed for the dashboard.
    pub starts: usize,
    pub refused: usize,
}

fn e7(degrees: f64) -> i32 {
    // Coordinates of this module's constants: always in range.
    (degrees * 1e7).round() as i32
}

fn place(town: &str, grid: &str) -> Place {
    Place {
        district: DISTRICT.into(),
        town: Some(town.into()),
        grid: Some(grid.into()),
    }
}

fn places(welders: &[&str]) -> Vec<PlaceChange> {
    let mut changes = Vec::new();
    for (site_id, name, town, grid, lat, lon, machine) in SITES {
        changes.push(PlaceChange::UpsertSite(Site {
            site_id: site_id.into(),
            name: name.into(),
            place: place(town, grid),
            location: GeoPoint {
                latitude_e7: e7(lat),
                longitude_e7: e7(lon),
            },
        }));
        changes.push(PlaceChange::PlaceMachine(MachinePlace {
            machine_id: machine.into(),
            place: place(town, grid),
            site_id: Some(site_id.into()),
            location: None,
            watch: MachineWatch::Normal,
        }));
    }
    for cert in welders {
        changes.push(PlaceChange::PlaceLicence(LicencePlace {
            certificate_no: (*cert).into(),
            place: place(XINCHENG, "XC-03"),
        }));
    }
    changes
}

fn machine(machine_id: &str) -> Machine {
    Machine {
        machine_id: machine_id.into(),
        kind: MachineKind::Arc,
        class: MachineClass::Mobile,
        owner_org: ORG.into(),
        region: 370983,
        status: MachineStatus::Active,
    }
}

/// A welder whose licence the registry now records as expired ten days ago, although the code
/// the welder carries was issued while it was valid.
struct Lapsed {
    credential: WelderCredential,
    key: SoftwareSigner,
    licence: Licence,
}

fn lapsed(today: chrono::NaiveDate) -> Result<Lapsed, Failure> {
    let first17 = "37098319880505123";
    let bytes: [u8; 17] = first17
        .as_bytes()
        .try_into()
        .map_err(|_| fail("demo.id", "an ID number needs 17 digits before its check"))?;
    let check = check_character(&bytes)
        .ok_or_else(|| fail("demo.id", "no check character for the ID number"))?;
    let id_number = format!("{first17}{check}");
    let key = SoftwareSigner::generate().map_err(|e| fail("demo.key", e))?;
    let back = |days: u64| today.checked_sub_days(Days::new(days)).unwrap_or(today);
    let ahead = |days: u64| today.checked_add_days(Days::new(days)).unwrap_or(today);
    let credential = WelderCredential {
        certificate_no: format!("T{id_number}"),
        id_number: id_number.clone(),
        name: "王强".into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: back(6 * 365 - 20),
        expires_on: ahead(20),
        next_review_on: back(3 * 365),
        photo_digest: vec![0x6b; 16],
        device_key: key.public_key(),
    };
    let licence = Licence {
        certificate_no: credential.certificate_no.clone(),
        id_number,
        name: credential.name.clone(),
        categories: credential.categories.clone(),
        issued_on: credential.issued_on,
        expires_on: back(10),
        next_review_on: credential.next_review_on,
        review_extended: false,
        status: LicenceStatus::Valid,
        employer_org: Some(ORG.into()),
    };
    Ok(Lapsed {
        credential,
        key,
        licence,
    })
}

/// One scan-to-start through the start-work service: whether it was allowed.
fn scan(
    device: &Device,
    (machine_text, welder_text): (&str, &str),
    site_id: &str,
    at: DateTime<Utc>,
    (latitude, longitude): (f64, f64),
    out: &Output,
) -> Result<bool, Failure> {
    let view = start_work(
        device,
        StartWorkInput {
            machine_text: machine_text.to_owned(),
            welder_text: welder_text.to_owned(),
            site_id: site_id.to_owned(),
            now: at.timestamp(),
            position: Some(PositionInput::Degrees {
                latitude,
                longitude,
                accuracy_m: 10.0,
            }),
            lang: AppLang::Zh,
        },
    )
    .map_err(|e| app_failure(&e, out))?;
    Ok(view.allowed)
}

/// The demo's welder: the credential code and the phone key it is bound to.
pub(super) struct Welder<'a> {
    pub credential: &'a str,
    pub key: &'a SoftwareSigner,
    pub certificate_no: &'a str,
}

/// Places, a lapsed licence, starts that raise warnings, a city-wide monitoring code; then the
/// dashboard's address and how to stop. Listens for Ctrl-C before it says so.
pub(super) fn set_up(
    platform: &LocalPlatform,
    device: &Device,
    issuer: &IssuerKey,
    welder: &Welder<'_>,
    out: &Output,
) -> Result<(DashboardReport, weldguard_server::ShutdownSignal), Failure> {
    let net = |e: weldguard_core::sync::SyncError| fail("demo.sync", e.message_en());
    let url = platform.server.url.clone();
    let admin =
        SyncClient::new(&url, Some(DEMO_ADMIN.into()), RetryPolicy::default()).map_err(net)?;
    let now = Utc::now();
    let today = WorkTime::china(now).local_date;
    let lapsed = lapsed(today)?;
    let mut changes: Vec<RegistryChange> = SITES
        .iter()
        .skip(1)
        .map(|s| RegistryChange::UpsertMachine(machine(s.6)))
        .collect();
    changes.push(RegistryChange::UpsertLicence(lapsed.licence.clone()));
    admin.write_registry(&changes).map_err(net)?;
    admin
        .write_places(&places(&[
            welder.certificate_no,
            &lapsed.credential.certificate_no,
        ]))
        .map_err(net)?;
    // The phone pulls the new machines and the lapsed licence before it scans.
    platform.sync(device, out)?;
    say(
        out,
        &format!(
            "10. 看板数据：肥城市（{DISTRICT}）新城街道、老城街道 {} 个工地及其焊机已落图；登记簿记录王强的操作证已于 {} 到期",
            SITES.len(),
            lapsed.licence.expires_on
        ),
        &format!(
            "10. Dashboard data: {} sites of Feicheng ({DISTRICT}), Xincheng and Laocheng streets, placed on the map with their machines; the registry records Wang Qiang's licence as expired on {}",
            SITES.len(),
            lapsed.licence.expires_on
        ),
    );

    let at = |minutes: i64| now - Duration::minutes(minutes);
    let signed = (now - Duration::hours(1)).timestamp();
    let lapsed_code = issue_credential(issuer, &lapsed.credential, signed, now.timestamp())
        .map_err(|e| fail("demo.issue", e))?;
    let label = |machine_id: &str| {
        issue_machine_label(
            issuer,
            &MachineLabel {
                machine_id: machine_id.into(),
                kind: MachineKind::Arc,
                class: MachineClass::Mobile,
                owner_org: ORG.into(),
                region: 370983,
                issued_at: signed,
            },
        )
        .map_err(|e| fail("demo.issue", e))
    };
    let (site2, site3) = (SITES[1], SITES[2]);
    let (label2, label3) = (label(site2.6)?, label(site3.6)?);
    // (whose code, which key, machine label, site, minutes ago, where the phone is)
    let starts = [
        (
            welder.credential,
            welder.key,
            &label2,
            site2.0,
            25,
            (site2.4, site2.5),
        ),
        (
            lapsed_code.as_str(),
            &lapsed.key,
            &label2,
            site2.0,
            20,
            (site2.4, site2.5),
        ),
        (
            lapsed_code.as_str(),
            &lapsed.key,
            &label2,
            site2.0,
            18,
            (site2.4, site2.5),
        ),
        (
            welder.credential,
            welder.key,
            &label3,
            site3.0,
            12,
            FAR_AWAY,
        ),
    ];
    let mut refused = 0;
    for (code, key, machine_text, site, minutes, position) in starts {
        let when = at(minutes);
        let shown = present(code, key, when.timestamp()).map_err(|e| fail("demo.issue", e))?;
        if !scan(device, (machine_text, &shown), site, when, position, out)? {
            refused += 1;
        }
    }
    platform.sync(device, out)?;
    say(
        out,
        &format!(
            "11. 手机又扫码开机 {} 次（{refused} 次被拒：操作证过期、同一焊机反复被拒、离焊机 29 公里扫码），已上传，平台据此产生预警",
            starts.len()
        ),
        &format!(
            "11. The phone scanned to start {} more times ({refused} refused: an expired licence, repeated refusals at one machine, a scan 29 km from the machine), synced; the platform raised its warnings",
            starts.len()
        ),
    );

    let made = admin
        .create_monitor(&NewMonitor {
            person: "泰安市应急管理局值班室（演示）".into(),
            scope: Scope::City,
        })
        .map_err(net)?;
    let address = format!("{url}/dashboard/#code={}", made.code);
    let signal = weldguard_server::ShutdownSignal::listen().map_err(|e| fail("demo.signal", e))?;
    say(
        out,
        &format!("12. 监管看板（全市监管账号，用一次性注册码登录）：{address}"),
        &format!(
            "12. Supervision dashboard (a city-wide monitoring account; signs in with a one-time code): {address}"
        ),
    );
    say(
        out,
        "平台保持运行；按 Ctrl-C 停止。",
        "The platform keeps running; press Ctrl-C to stop.",
    );
    Ok((
        DashboardReport {
            url: address,
            monitor_code: made.code,
            sites: SITES.len(),
            starts: starts.len(),
            refused,
        },
        signal,
    ))
}
