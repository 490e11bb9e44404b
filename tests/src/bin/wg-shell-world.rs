//! `wg-shell-world`: the bureau's desk for the phone shells' tests (Kotlin on the JVM, Swift on
//! Linux). The tests start a real `weldguard-server` themselves; this tool does what the platform's
//! administrator would do from a desktop, through the server's admin API (the core's admin client):
//!
//! - `setup`: write the registry (a machine, a welder bound to it, a welder whose licence expired),
//!   have the platform issue the machine label and the two credentials, render them as PNG labels
//!   with the project's CLI (`weldguard code render`), and make one enrolment code per person the
//!   flows need (welder, inspector, and the four people who sign a permit);
//! - `enrol-code`: another one-time enrolment code for one of those people;
//! - `held`: the records the platform holds (of one kind);
//! - `permit`: what the platform admitted of one permit (steps, state, who signed as what).
//!
//! Output is `key=value` lines (UTF-8, no escaping: no value holds a newline), which Kotlin reads
//! with `java.util.Properties.load(Reader)` and Swift with a split on the first `=`. Any failure
//! exits non-zero with the reason on standard error. The keys are listed in
//! `docs/shell-tests.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use chrono::NaiveDate;
use weldguard_core::codes::{DeviceSigner, SoftwareSigner};
use weldguard_core::domain::{
    Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, WelderCredential,
};
use weldguard_core::permit::{PermitLevel, ProfileSet};
use weldguard_core::records::PermitStepRecord;
use weldguard_core::store::RegistryChange;
use weldguard_core::sync::protocol::{NewEnrolment, Role};
use weldguard_core::sync::{RetryPolicy, SyncClient};

const ORG: &str = "91370983MA3C4X1Y2K";
const REGION: u32 = 370983;
const MACHINE: &str = "370983-DH-2024-000777";
const SITE: &str = "site-370983-001";
const SITE_NAME: &str = "肥城某化工厂三车间";
const WELDER: (&str, &str, &str) = ("李四", "T370983199001011233", "370983199001011233");
const EXPIRED: (&str, &str, &str) = ("赵九", "T11010519491231002X", "11010519491231002X");

/// The people the flows enrol: slot, name, person id, role, permit roles (`APPROVER` is replaced
/// by the role that approves a level-2 permit under GB 30871 today).
const PEOPLE: [(&str, &str, &str, Role, &[&str]); 6] = [
    ("welder", WELDER.0, WELDER.1, Role::Welder, &[]),
    ("inspector", "钱二", "I-001", Role::Inspector, &[]),
    (
        "applicant",
        "张三",
        "S-001",
        Role::Supervisor,
        &["applicant"],
    ),
    (
        "fire_watch",
        "王五",
        "S-002",
        Role::Supervisor,
        &["fire_watch"],
    ),
    (
        "supervisor",
        "孙七",
        "S-003",
        Role::Supervisor,
        &["supervisor"],
    ),
    ("approver", "周八", "S-004", Role::Supervisor, &["APPROVER"]),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(lines) => {
            for (key, value) in lines {
                println!("{key}={value}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wg-shell-world: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:
  wg-shell-world setup --server URL --admin-token T --out DIR [--cli PATH]
  wg-shell-world enrol-code --server URL --admin-token T --slot SLOT
  wg-shell-world held --server URL --admin-token T [--kind KIND]
  wg-shell-world permit --server URL --admin-token T --id PERMIT_ID";

type Lines = Vec<(String, String)>;

fn run(args: &[String]) -> Result<Lines, String> {
    let (command, rest) = args.split_first().ok_or(USAGE)?;
    let options = options(rest)?;
    let get = |name: &str| options.get(name).cloned();
    let need = |name: &str| get(name).ok_or_else(|| format!("--{name} is required\n{USAGE}"));
    let server = need("server")?;
    let admin = SyncClient::new(&server, Some(need("admin-token")?), policy())
        .map_err(|e| format!("admin client: {e}"))?;
    match command.as_str() {
        "setup" => {
            let out = PathBuf::from(need("out")?);
            let cli = match get("cli") {
                Some(path) => PathBuf::from(path),
                None => beside_me("weldguard")?,
            };
            let mut lines = setup(&admin, &out, &cli)?;
            lines.insert(0, ("server".into(), server));
            lines.insert(1, ("admin_token".into(), need("admin-token")?));
            let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            std::fs::write(out.join("world.properties"), text)
                .map_err(|e| format!("cannot write world.properties: {e}"))?;
            Ok(lines)
        }
        "enrol-code" => {
            let slot = need("slot")?;
            let person = PEOPLE
                .iter()
                .find(|p| p.0 == slot)
                .ok_or_else(|| format!("no slot {slot}"))?;
            let code = enrolment(&admin, person, &approver_role()?)?;
            Ok(vec![("code".into(), code)])
        }
        "held" => held(&admin, get("kind").as_deref()),
        "permit" => permit(&admin, &need("id")?),
        other => Err(format!("unknown command {other}\n{USAGE}")),
    }
}

/// `--name value` pairs.
fn options(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag}\n{USAGE}"))?;
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..RetryPolicy::default()
    }
}

/// A binary built beside this one (`target/<profile>/NAME`).
fn beside_me(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let path = me
        .parent()
        .ok_or("no folder around this binary")?
        .join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: build it (cargo build -p weldguard-cli) or pass --cli",
            path.display()
        ))
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| format!("bad date {y}-{m}-{d}"))
}

fn licence(who: (&str, &str, &str), expires_on: NaiveDate) -> Result<Licence, String> {
    Ok(Licence {
        certificate_no: who.1.into(),
        id_number: who.2.into(),
        name: who.0.into(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: date(2022, 3, 1)?,
        expires_on,
        next_review_on: date(2028, 3, 1)?,
        review_extended: false,
        status: LicenceStatus::Valid,
        employer_org: Some(ORG.into()),
    })
}

/// The credential a welder carries: it says valid until `expires_on` (the registry decides).
fn credential(l: &Licence, expires_on: NaiveDate) -> Result<WelderCredential, String> {
    let key = SoftwareSigner::generate().map_err(|e| format!("key: {e}"))?;
    Ok(WelderCredential {
        certificate_no: l.certificate_no.clone(),
        id_number: l.id_number.clone(),
        name: l.name.clone(),
        categories: l.categories.clone(),
        issued_on: l.issued_on,
        expires_on,
        next_review_on: l.next_review_on,
        photo_digest: vec![7; 32],
        device_key: key.public_key(),
    })
}

/// The permit role that approves a level-2 permit under GB 30871 on today's date.
fn approver_role() -> Result<String, String> {
    let today = chrono::DateTime::from_timestamp(now_unix(), 0)
        .ok_or("bad clock")?
        .date_naive();
    let profiles = ProfileSet::builtin().map_err(|e| format!("profiles: {e}"))?;
    let profile = profiles
        .select("gb30871", today)
        .ok_or("no GB 30871 profile in force today")?;
    let level = profile
        .level(PermitLevel::Level2)
        .ok_or("no level-2 rules in the profile")?;
    Ok(level.approver.id.clone())
}

fn enrolment(
    admin: &SyncClient,
    person: &(&str, &str, &str, Role, &[&str]),
    approver: &str,
) -> Result<String, String> {
    let permit_roles = person
        .4
        .iter()
        .map(|r| if *r == "APPROVER" { approver } else { r })
        .map(str::to_owned)
        .collect();
    admin
        .enrolment(&NewEnrolment {
            person: person.1.into(),
            role: person.3,
            person_id: Some(person.2.into()),
            permit_roles,
        })
        .map(|c| c.code)
        .map_err(|e| format!("enrolment code for {}: {e}", person.0))
}

/// Render `text` as a PNG label with `weldguard code render`.
fn render(cli: &Path, text: &str, ec: &str, png: &Path) -> Result<(), String> {
    let output = Command::new(cli)
        .args(["code", "render", text, "--ec", ec, "--png"])
        .arg(png)
        .env("LANG", "en_US.UTF-8")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    if !output.status.success() || !png.is_file() {
        return Err(format!(
            "weldguard code render failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn setup(admin: &SyncClient, out: &Path, cli: &Path) -> Result<Lines, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot make {}: {e}", out.display()))?;
    let valid = licence(WELDER, date(2030, 3, 1)?)?;
    let expired = licence(EXPIRED, date(2025, 12, 1)?)?;
    admin
        .write_registry(&[
            RegistryChange::UpsertLicence(valid.clone()),
            RegistryChange::UpsertLicence(expired.clone()),
            RegistryChange::UpsertMachine(Machine {
                machine_id: MACHINE.into(),
                kind: MachineKind::Arc,
                class: MachineClass::FixedStation,
                owner_org: ORG.into(),
                region: REGION,
                status: MachineStatus::Active,
            }),
            RegistryChange::Bind(Binding {
                machine_id: MACHINE.into(),
                certificate_no: WELDER.1.into(),
            }),
        ])
        .map_err(|e| format!("registry: {e}"))?;
    let label = admin
        .issue_machine_label(&MachineLabel {
            machine_id: MACHINE.into(),
            kind: MachineKind::Arc,
            class: MachineClass::FixedStation,
            owner_org: ORG.into(),
            region: REGION,
            issued_at: now_unix() - 60,
        })
        .map_err(|e| format!("machine label: {e}"))?
        .code;
    let own = admin
        .issue_credential(&credential(&valid, valid.expires_on)?)
        .map_err(|e| format!("credential: {e}"))?
        .code;
    // The expired welder's credential still says 2030: the registry decides.
    let theirs = admin
        .issue_credential(&credential(&expired, date(2030, 3, 1)?)?)
        .map_err(|e| format!("credential: {e}"))?
        .code;

    let mut lines: Lines = vec![
        ("machine_id".into(), MACHINE.into()),
        ("site_id".into(), SITE.into()),
        ("site_name".into(), SITE_NAME.into()),
    ];
    for (prefix, who) in [("welder", WELDER), ("expired", EXPIRED)] {
        lines.push((format!("{prefix}.name"), who.0.into()));
        lines.push((format!("{prefix}.certificate_no"), who.1.into()));
        lines.push((format!("{prefix}.id_number"), who.2.into()));
    }
    for (name, text, ec) in [
        ("machine_label", &label, "q"),
        ("credential", &own, "m"),
        ("expired_credential", &theirs, "m"),
    ] {
        let png = out.join(format!("{}.png", name.replace('_', "-")));
        render(cli, text, ec, &png)?;
        lines.push((format!("code.{name}"), text.clone()));
        lines.push((format!("image.{name}"), png.display().to_string()));
    }
    let approver = approver_role()?;
    lines.push(("approver_role".into(), approver.clone()));
    for person in &PEOPLE {
        let code = enrolment(admin, person, &approver)?;
        let slot = person.0;
        let roles: Vec<&str> = person
            .4
            .iter()
            .map(|r| {
                if *r == "APPROVER" {
                    approver.as_str()
                } else {
                    r
                }
            })
            .collect();
        lines.push((format!("enrol.{slot}.code"), code));
        lines.push((format!("enrol.{slot}.person"), person.1.into()));
        lines.push((format!("enrol.{slot}.person_id"), person.2.into()));
        lines.push((format!("enrol.{slot}.role"), person.3.as_str().into()));
        lines.push((format!("enrol.{slot}.permit_roles"), roles.join(",")));
    }
    Ok(lines)
}

fn held(admin: &SyncClient, kind: Option<&str>) -> Result<Lines, String> {
    let list = admin.records(kind).map_err(|e| format!("records: {e}"))?;
    let mut lines: Lines = vec![("count".into(), list.records.len().to_string())];
    for (i, r) in list.records.iter().enumerate() {
        lines.push((format!("record.{i}.key"), r.idempotency_key.clone()));
        lines.push((format!("record.{i}.kind"), r.kind.clone()));
        lines.push((format!("record.{i}.device"), r.device_id.clone()));
    }
    Ok(lines)
}

fn permit(admin: &SyncClient, id: &str) -> Result<Lines, String> {
    let list = admin
        .records(Some("permit_step"))
        .map_err(|e| format!("records: {e}"))?;
    let mut steps: Vec<PermitStepRecord> = Vec::new();
    for r in &list.records {
        let step: PermitStepRecord = serde_json::from_str(&r.payload)
            .map_err(|e| format!("stored step {}: {e}", r.idempotency_key))?;
        if step.permit_id == id {
            steps.push(step);
        }
    }
    let last = steps
        .iter()
        .max_by_key(|s| (s.permit.events.len(), s.permit.signatures.len()))
        .ok_or_else(|| format!("the platform holds no step of permit {id}"))?;
    let signers: Vec<String> = last
        .permit
        .signatures
        .iter()
        .map(|s| format!("{}:{}", s.signer.id, s.signer.role))
        .collect();
    let actions: Vec<&str> = steps.iter().map(|s| s.action.as_str()).collect();
    Ok(vec![
        ("steps".into(), steps.len().to_string()),
        ("actions".into(), actions.join(",")),
        (
            "state".into(),
            weldguard_core::records::state_name(last.state).into(),
        ),
        (
            "signatures".into(),
            last.permit.signatures.len().to_string(),
        ),
        ("signers".into(), signers.join(",")),
    ])
}
