//! `cargo xtask bench store [--licences N] [--lookups N] [--dir DIR]`: the device store under a
//! city-sized registry.
//!
//! Generates N realistic licences (default 10^6: valid 18-character resident ID numbers with their
//! MOD 11-2 check character, Chinese names, certificate numbers "T" + ID number, dates spread over
//! 2019–2026), then prints:
//! - the import time through the store's bulk path (`Store::apply_registry_changes`),
//! - the same rows loaded by a bare rusqlite prepared-insert loop in one transaction (same table
//!   definition, SQLite defaults), and the ratio of the two (target ≤ 1.5×),
//! - the database size after loading licences, machines, bindings and revocations,
//! - p50/p99 of the whole start-work decision (`decide_start_work` reading the store) over random
//!   scans (target: under 1 ms at p99).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, NaiveDate};
use rusqlite::{Connection, params};
use weldguard_core::domain::{
    Binding, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel,
    MachineStatus, OperationCategory, Revocation, RevocationTarget, WelderCredential,
};
use weldguard_core::rules::id_number::check_character;
use weldguard_core::rules::{
    MachineEvidence, RegistryView, StartWorkRequest, WelderEvidence, WorkTime, decide_start_work,
};
use weldguard_core::store::schema::MIGRATIONS;
use weldguard_core::store::{RegistryChange, Store};

/// xorshift64*: deterministic, so every run loads the same registry.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// County-level codes (GB/T 2260) around 泰安, weighted towards 肥城市.
const REGIONS: &[&str] = &[
    "370983", "370983", "370983", "370983", "370902", "370911", "370921", "370923", "370982",
    "370102", "370112", "370181", "371402", "370303",
];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "欧阳", "司马",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀",
    "霞", "平", "刚", "桂", "英", "华", "建", "国", "志", "红", "海", "峰", "鹏", "辉", "东", "斌",
    "兵", "林", "波", "成", "亮", "新", "春", "文", "庆", "宝", "德", "福", "玉", "兰", "胜", "利",
];
const ORGS: &[&str] = &[
    "91370983MA3C8K2X1R",
    "91370983166451234Q",
    "91370900MA3D0B7F2K",
    "91370983MA94XYZ01L",
    "91370982706212345N",
];

fn days(n: u64) -> Days {
    Days::new(n)
}

/// A valid 18-character ID number: region, birth date 1962–2003, sequence, check character.
fn id_number(rng: &mut Rng) -> String {
    let birth = NaiveDate::from_ymd_opt(1962, 1, 1).unwrap() + days(rng.below(42 * 365));
    let mut first17 = format!(
        "{}{:04}{:02}{:02}{:03}",
        rng.pick(REGIONS),
        birth.year(),
        birth.month(),
        birth.day(),
        rng.below(1000)
    );
    let check = check_character(first17.as_bytes()).unwrap();
    first17.push(check);
    first17
}

fn licence(rng: &mut Rng, id: String) -> Licence {
    let name = format!(
        "{}{}{}",
        rng.pick(SURNAMES),
        rng.pick(GIVEN),
        if rng.below(3) == 0 {
            ""
        } else {
            *rng.pick(GIVEN)
        }
    );
    let categories = match rng.below(100) {
        0..=79 => vec![OperationCategory::FusionWeldingAndCutting],
        80..=89 => vec![OperationCategory::PressureWelding],
        90..=94 => vec![OperationCategory::Brazing],
        _ => vec![
            OperationCategory::FusionWeldingAndCutting,
            OperationCategory::Brazing,
        ],
    };
    // Issued 2019-01-01 .. 2026-12-31; valid six years, reviewed every three.
    let issued_on = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap() + days(rng.below(8 * 365 + 1));
    let expires_on = issued_on + chrono::Months::new(72);
    let review_extended = rng.below(20) == 0;
    let next_review_on = if review_extended {
        expires_on
    } else {
        issued_on + chrono::Months::new(36)
    };
    Licence {
        certificate_no: format!("T{id}"),
        id_number: id,
        name,
        categories,
        issued_on,
        expires_on,
        next_review_on,
        review_extended,
        status: if rng.below(50) == 0 {
            LicenceStatus::Revoked
        } else {
            LicenceStatus::Valid
        },
        employer_org: (rng.below(10) < 7).then(|| rng.pick(ORGS).to_string()),
    }
}

fn licences(n: usize, rng: &mut Rng) -> Vec<Licence> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let id = id_number(rng);
        if seen.insert(id.clone()) {
            out.push(licence(rng, id));
        }
    }
    out
}

fn machine_id(i: usize) -> String {
    format!("M-370983-{i:06}")
}

fn machine(rng: &mut Rng, i: usize) -> Machine {
    Machine {
        machine_id: machine_id(i),
        kind: *rng.pick(&MachineKind::ALL),
        class: match rng.below(10) {
            0..=7 => MachineClass::Mobile,
            8 => MachineClass::FixedStation,
            _ => MachineClass::LegacyRegistered,
        },
        owner_org: rng.pick(ORGS).to_string(),
        region: 370983,
        status: if rng.below(100) == 0 {
            MachineStatus::Retired
        } else {
            MachineStatus::Active
        },
    }
}

// The bare comparison converts exactly as the store does: days since 1970, category bits, names.
fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce() - 719_163)
}

fn category_bits(categories: &[OperationCategory]) -> i64 {
    categories.iter().fold(0, |bits, c| {
        bits | match c {
            OperationCategory::FusionWeldingAndCutting => 1,
            OperationCategory::PressureWelding => 2,
            OperationCategory::Brazing => 4,
        }
    })
}

fn bare_load(path: &Path, rows: &[Licence], wal: bool) -> Duration {
    let mut conn = Connection::open(path).unwrap();
    if wal {
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .unwrap();
    }
    // The same table definition as the store's schema.
    conn.execute_batch(MIGRATIONS[0].sql).unwrap();
    let started = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO licences VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
            .unwrap();
        for l in rows {
            stmt.execute(params![
                l.certificate_no,
                l.id_number,
                l.name,
                category_bits(&l.categories),
                day_number(l.issued_on),
                day_number(l.expires_on),
                day_number(l.next_review_on),
                l.review_extended,
                match l.status {
                    LicenceStatus::Valid => "valid",
                    LicenceStatus::Revoked => "revoked",
                },
                l.employer_org,
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    started.elapsed()
}

/// The credential a welder would present for this certificate number: the registry row's fields,
/// or a made-up holder when the number is unknown.
fn credential_for(store: &Store, certificate_no: &str) -> WelderCredential {
    let licence = store.licence(certificate_no).unwrap();
    let fallback = || WelderCredential {
        certificate_no: certificate_no.to_owned(),
        id_number: "11010519491231002X".to_owned(),
        name: "张伟".to_owned(),
        categories: vec![OperationCategory::FusionWeldingAndCutting],
        issued_on: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        expires_on: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
        next_review_on: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
        photo_digest: vec![0; 16],
        device_key: vec![2; 33],
    };
    licence.map_or_else(fallback, |l| WelderCredential {
        certificate_no: l.certificate_no,
        id_number: l.id_number,
        name: l.name,
        categories: l.categories,
        issued_on: l.issued_on,
        expires_on: l.expires_on,
        next_review_on: l.next_review_on,
        photo_digest: vec![0; 16],
        device_key: vec![2; 33],
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let mut n_licences = 1_000_000usize;
    let mut n_lookups = 100_000usize;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--licences" => {
                n_licences = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--licences N")
            }
            "--lookups" => {
                n_lookups = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--lookups N")
            }
            "--dir" => dir = args.next().map(PathBuf::from),
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other:?}; use --licences N --lookups N --dir DIR"),
        }
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("weldguard-bench-store-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).unwrap();
    let store_path = dir.join("store.sqlite");
    let bare_path = dir.join("bare.sqlite");
    for p in [&store_path, &bare_path] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut f = p.clone().into_os_string();
            f.push(suffix);
            let _ = std::fs::remove_file(f);
        }
    }

    let mut rng = Rng(0x5745_4c44_4755_4152);
    let started = Instant::now();
    let rows = licences(n_licences, &mut rng);
    let n_machines = (n_licences / 10).max(1);
    let machines: Vec<Machine> = (0..n_machines).map(|i| machine(&mut rng, i)).collect();
    println!(
        "generated {n_licences} licences, {n_machines} machines in {:.2?} (sample: {} {} {})",
        started.elapsed(),
        rows[0].certificate_no,
        rows[0].name,
        rows[0].issued_on
    );

    // 1. Bare rusqlite: one transaction, one prepared INSERT, SQLite defaults; the rows as given,
    //    and (for reference, since the store's bulk path sorts by key) in key order.
    let bare = bare_load(&bare_path, &rows, false);
    let bare_size = std::fs::metadata(&bare_path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&bare_path);
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| a.certificate_no.cmp(&b.certificate_no));
    let bare_sorted = bare_load(&bare_path, &sorted, false);
    for suffix in ["", "-wal", "-shm"] {
        let mut f = bare_path.clone().into_os_string();
        f.push(suffix);
        let _ = std::fs::remove_file(f);
    }
    let bare_sorted_wal = bare_load(&bare_path, &sorted, true);
    drop(sorted);

    // 2. The store's bulk path, same rows.
    let store = Store::open(&store_path).unwrap();
    let certificates: Vec<String> = rows.iter().map(|l| l.certificate_no.clone()).collect();
    let started = Instant::now();
    store
        .apply_registry_changes(rows.into_iter().map(RegistryChange::UpsertLicence), None, 0)
        .unwrap();
    let bulk = started.elapsed();

    println!(
        "licence import, store bulk path:      {bulk:>10.2?}  ({:.0} rows/s)",
        n_licences as f64 / bulk.as_secs_f64()
    );
    println!(
        "licence import, bare rusqlite loop:   {bare:>10.2?}  ({:.0} rows/s)",
        n_licences as f64 / bare.as_secs_f64()
    );
    println!(
        "  same, rows pre-sorted by key:       {bare_sorted:>10.2?}  ({:.0} rows/s)",
        n_licences as f64 / bare_sorted.as_secs_f64()
    );
    println!(
        "  same, key order, WAL + sync NORMAL:  {bare_sorted_wal:>10.2?}  ({:.0} rows/s)",
        n_licences as f64 / bare_sorted_wal.as_secs_f64()
    );
    println!(
        "ratio store / bare:                   {:>10.2}×  (target <= 1.5×)",
        bulk.as_secs_f64() / bare.as_secs_f64()
    );
    println!(
        "  (vs key-ordered bare: {:.2}×; vs key-ordered bare in WAL: {:.2}×)",
        bulk.as_secs_f64() / bare_sorted.as_secs_f64(),
        bulk.as_secs_f64() / bare_sorted_wal.as_secs_f64()
    );

    // The rest of a city registry: machines, one binding per welder, 1% revocations.
    let mut changes: Vec<RegistryChange> = machines
        .iter()
        .cloned()
        .map(RegistryChange::UpsertMachine)
        .collect();
    for (i, certificate_no) in certificates.iter().enumerate() {
        changes.push(RegistryChange::Bind(Binding {
            machine_id: machine_id(i % n_machines),
            certificate_no: certificate_no.clone(),
        }));
        if i % 100 == 7 {
            changes.push(RegistryChange::Revoke(Revocation {
                target: RevocationTarget::Licence,
                id: certificate_no.clone(),
            }));
        }
    }
    let n_other = changes.len();
    let started = Instant::now();
    store.apply_registry_changes(changes, None, 0).unwrap();
    println!(
        "machines + bindings + revocations:    {:>10.2?}  ({n_other} rows)",
        started.elapsed()
    );
    store.checkpoint().unwrap();
    let size = store.size_on_disk();
    println!(
        "database size (all of the above):     {:>10.1} MiB  ({} bytes; licences alone, bare: {:.1} MiB)",
        mib(size),
        size,
        mib(bare_size)
    );

    // 3. The start-work decision against this registry: the welder shows a live presentation of a
    // credential (built, untimed, from the registry row), the machine label is signed; 10% of scans
    // present an unknown certificate number. Timed: the whole `decide_start_work` call, which does
    // its own registry reads through the store.
    let at = WorkTime::china(chrono::DateTime::from_timestamp(1_785_000_000, 0).unwrap());
    let mut timings = Vec::with_capacity(n_lookups);
    let mut allowed = 0usize;
    for i in 0..n_lookups {
        let k = rng.below(certificates.len() as u64) as usize;
        let certificate_no = if i % 10 == 9 {
            format!("T{k:018}")
        } else {
            certificates[k].clone()
        };
        let machine = machines[k % n_machines].clone();
        let label = MachineLabel {
            machine_id: machine.machine_id.clone(),
            kind: machine.kind,
            class: machine.class,
            owner_org: machine.owner_org.clone(),
            region: machine.region,
            issued_at: 1_717_000_000,
        };
        let credential = credential_for(&store, &certificate_no);
        let request = StartWorkRequest {
            machine: MachineEvidence::Label(&label),
            welder: WelderEvidence::Presentation(&credential),
            time: at,
            external: &[],
        };
        let started = Instant::now();
        let decision = decide_start_work(&request, &store);
        timings.push(started.elapsed());
        allowed += usize::from(decision.allowed);
    }
    timings.sort();
    println!(
        "start-work decision (decide_start_work reading the store), {n_lookups} random scans:"
    );
    println!(
        "  p50 {:.1?}  p99 {:.1?}  max {:.1?}  ({allowed} allowed)  (target: p99 < 1 ms)",
        percentile(&timings, 0.50),
        percentile(&timings, 0.99),
        timings[timings.len() - 1]
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
