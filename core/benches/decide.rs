//! Start-work decision latency against a SQLite registry of 10^6 licences (target: p99 under 1 ms).
//!
//! Builds a throwaway registry database (a bench-local schema: the real one belongs to `store`),
//! answers `RegistryView` with cached prepared statements, and times `decide_start_work` for a mix
//! of questions (mostly valid, some unknown certificates, unknown machines, unsigned numbers).
//!
//! Run: `cargo xtask bench decide [--licences N] [--decisions M]`.

use std::time::Instant;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use weldguard_core::domain::{
    Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineLabel, MachineStatus,
    OperationCategory, RevocationTarget, WelderCredential,
};
use weldguard_core::rules::{
    MachineEvidence, RegistryError, RegistryView, StartWorkRequest, WelderEvidence, WorkTime,
    decide_start_work,
};

struct SqliteRegistry {
    conn: Connection,
}

fn err(e: rusqlite::Error) -> RegistryError {
    RegistryError(e.to_string())
}

fn cats_to_bits(c: &[OperationCategory]) -> i64 {
    c.iter().map(|c| 1i64 << (*c as u8)).sum()
}

fn bits_to_cats(b: i64) -> Vec<OperationCategory> {
    OperationCategory::ALL
        .iter()
        .copied()
        .filter(|c| b & (1 << (*c as u8)) != 0)
        .collect()
}

fn day(n: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(n).unwrap_or(NaiveDate::MIN)
}

impl RegistryView for SqliteRegistry {
    fn licence(&self, certificate_no: &str) -> Result<Option<Licence>, RegistryError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id_number, name, categories, issued_on, expires_on, next_review_on, \
                 review_extended, revoked, employer_org FROM licences WHERE certificate_no = ?1",
            )
            .map_err(err)?;
        st.query_row([certificate_no], |r| {
            Ok(Licence {
                certificate_no: certificate_no.to_owned(),
                id_number: r.get(0)?,
                name: r.get(1)?,
                categories: bits_to_cats(r.get(2)?),
                issued_on: day(r.get(3)?),
                expires_on: day(r.get(4)?),
                next_review_on: day(r.get(5)?),
                review_extended: r.get(6)?,
                status: if r.get::<_, bool>(7)? {
                    LicenceStatus::Revoked
                } else {
                    LicenceStatus::Valid
                },
                employer_org: r.get(8)?,
            })
        })
        .optional()
        .map_err(err)
    }

    fn machine(&self, machine_id: &str) -> Result<Option<Machine>, RegistryError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT owner_org, region, retired FROM machines WHERE machine_id = ?1")
            .map_err(err)?;
        st.query_row([machine_id], |r| {
            Ok(Machine {
                machine_id: machine_id.to_owned(),
                kind: MachineKind::Arc,
                class: MachineClass::Mobile,
                owner_org: r.get(0)?,
                region: r.get(1)?,
                status: if r.get::<_, bool>(2)? {
                    MachineStatus::Retired
                } else {
                    MachineStatus::Active
                },
            })
        })
        .optional()
        .map_err(err)
    }

    fn is_bound(&self, machine_id: &str, certificate_no: &str) -> Result<bool, RegistryError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM bindings WHERE machine_id = ?1 AND certificate_no = ?2")
            .map_err(err)?;
        st.exists(params![machine_id, certificate_no]).map_err(err)
    }

    fn is_revoked(&self, target: RevocationTarget, id: &str) -> Result<bool, RegistryError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM revocations WHERE target = ?1 AND id = ?2")
            .map_err(err)?;
        st.exists(params![target as u8, id]).map_err(err)
    }
}

/// GB 11643 check character (independent of the library's, to keep the bench honest).
fn id_number(n: u64) -> String {
    let first17 = format!(
        "370983{:04}{:02}{:02}{:03}",
        1960 + n % 40,
        1 + n % 12,
        1 + n % 28,
        n % 1000
    );
    let sum: u32 = first17
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * ((1u32 << (17 - i)) % 11))
        .sum();
    let c = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{c}")
}

fn cert_no(n: u64) -> String {
    // Unique per n even when ID numbers repeat (the ID pattern above has fewer combinations).
    format!("T{}-{n}", id_number(n))
}

fn org(n: u64) -> String {
    format!("9137098300000{:05}", n % 20_000)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let licences = arg(&args, "--licences", 1_000_000);
    let decisions = arg(&args, "--decisions", 200_000) as usize;
    let machines = (licences / 10).max(1);

    let path =
        std::env::temp_dir().join(format!("weldguard-bench-decide-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut conn = Connection::open(&path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
         CREATE TABLE licences(certificate_no TEXT PRIMARY KEY, id_number TEXT NOT NULL,
           name TEXT NOT NULL, categories INTEGER NOT NULL, issued_on INTEGER NOT NULL,
           expires_on INTEGER NOT NULL, next_review_on INTEGER NOT NULL,
           review_extended INTEGER NOT NULL, revoked INTEGER NOT NULL, employer_org TEXT) WITHOUT ROWID;
         CREATE TABLE machines(machine_id TEXT PRIMARY KEY, owner_org TEXT NOT NULL,
           region INTEGER NOT NULL, retired INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE bindings(machine_id TEXT, certificate_no TEXT,
           PRIMARY KEY(machine_id, certificate_no)) WITHOUT ROWID;
         CREATE TABLE revocations(target INTEGER, id TEXT, PRIMARY KEY(target, id)) WITHOUT ROWID;",
    )?;
    let t0 = Instant::now();
    let issued = NaiveDate::from_ymd_opt(2024, 3, 15).ok_or("date")?;
    let fusion = cats_to_bits(&[OperationCategory::FusionWeldingAndCutting]);
    {
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO licences VALUES (?1, ?2, '张三', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for n in 0..licences {
                let i = issued.num_days_from_ce() - (n % 700) as i32;
                ins.execute(params![
                    cert_no(n),
                    id_number(n),
                    fusion,
                    i,
                    i + 2191,
                    i + 1095,
                    n % 7 == 0,
                    n % 97 == 0,
                    // Two in three work for the machine's owner; the others are matched by binding.
                    if n % 3 == 0 {
                        org(n)
                    } else {
                        org(n % machines)
                    },
                ])?;
            }
            let mut ins = tx.prepare("INSERT INTO machines VALUES (?1, ?2, 370983, 0)")?;
            for m in 0..machines {
                ins.execute(params![format!("M-{m:07}"), org(m)])?;
            }
            let mut ins = tx.prepare("INSERT OR IGNORE INTO bindings VALUES (?1, ?2)")?;
            for n in (0..licences).step_by(3) {
                ins.execute(params![format!("M-{:07}", n % machines), cert_no(n)])?;
            }
        }
        tx.commit()?;
    }
    println!(
        "registry: {licences} licences, {machines} machines built in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let reg = SqliteRegistry { conn };

    let at = WorkTime::china(
        Utc.with_ymd_and_hms(2025, 6, 1, 2, 0, 0)
            .single()
            .ok_or("time")?,
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut times: Vec<u64> = Vec::with_capacity(decisions);
    let mut allowed = 0usize;
    for _ in 0..decisions {
        let n = rng.next() % licences;
        let kind = rng.next() % 10;
        let mid = format!(
            "M-{:07}",
            if kind == 9 {
                machines + 5
            } else {
                n % machines
            }
        );
        let label = MachineLabel {
            machine_id: mid.clone(),
            kind: MachineKind::Arc,
            class: MachineClass::Mobile,
            owner_org: org(n % machines),
            region: 370983,
            issued_at: 1_716_000_000,
        };
        let i = issued.num_days_from_ce() - (n % 700) as i32;
        let cred = WelderCredential {
            certificate_no: if kind == 8 {
                format!("T-unknown-{n}")
            } else {
                cert_no(n)
            },
            id_number: id_number(n),
            name: "张三".to_owned(),
            categories: vec![OperationCategory::FusionWeldingAndCutting],
            issued_on: day(i),
            expires_on: day(i + 2191),
            next_review_on: day(i + 1095),
            photo_digest: vec![0; 32],
            device_key: vec![2; 33],
        };
        let unsigned_cert = cred.certificate_no.clone();
        let req = StartWorkRequest {
            machine: if kind == 7 {
                MachineEvidence::Id(&mid)
            } else {
                MachineEvidence::Label(&label)
            },
            welder: if kind == 6 {
                WelderEvidence::CertificateNo(&unsigned_cert)
            } else {
                WelderEvidence::Presentation(&cred)
            },
            time: at,
            external: &[],
        };
        let t = Instant::now();
        let d = decide_start_work(&req, &reg);
        times.push(t.elapsed().as_nanos() as u64);
        allowed += usize::from(d.allowed);
    }
    times.sort_unstable();
    let pct = |p: f64| {
        let idx = ((times.len() as f64 - 1.0) * p).round() as usize;
        times.get(idx).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "decide_start_work x{decisions} ({allowed} allowed): p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    drop(reg);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(())
}
