//! `weldguard code issue machine|welder` (sign a code, print its text, optionally write PNG/SVG
//! labels) and `weldguard code verify TEXT` (offline verification against a trust file). A code that
//! does not verify is a well-formed negative answer: exit 0 with `valid: false` and the reason.
//! `weldguard code render TEXT --png F` prints a label for a code issued elsewhere (the platform's
//! issuing route), without any key.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use clap::{Args, Subcommand, ValueEnum};
use qrcode::{EcLevel, QrCode, Version};
use serde::Serialize;
use sha2::{Digest, Sha256};
use weldguard_core::codes::{
    CodeKind, IssueError, IssuerKey, ReplayCache, RevocationSet, ScannedText, TrustStore,
    UnsignedCode, VerifiedClaims, VerifiedCode, Verifier, classify, from_hex, issue_credential,
    issue_machine_label, to_hex,
};
use weldguard_core::domain::{
    Explain, MachineClass, MachineKind, MachineLabel, OperationCategory, WelderCredential,
};

use crate::output::{Failure, Lang, Output};

#[derive(Debug, Args)]
pub struct CodeArgs {
    #[command(subcommand)]
    command: CodeCommand,
}

#[derive(Debug, Subcommand)]
enum CodeCommand {
    /// Sign a machine label or a welder credential and print its `WG1:` text.
    Issue {
        #[command(subcommand)]
        what: Box<IssueCommand>,
    },
    /// Verify a scanned text offline. Exits 0 with a verdict whether or not the code is valid
    /// (`valid: false` and a reason code when it is not); exits non-zero only on bad input such as an
    /// unreadable trust file or a bad --at time.
    Verify {
        /// The scanned text (`-` reads it from standard input).
        text: String,
        /// The trust file of issuer keys.
        #[arg(long)]
        trust: PathBuf,
        /// A revocation file (JSON list of {"target","id"}).
        #[arg(long)]
        revocations: Option<PathBuf>,
        /// Verification time (RFC 3339, YYYY-MM-DD in China time, or Unix seconds); default now.
        #[arg(long)]
        at: Option<String>,
        /// Refuse codes of another kind.
        #[arg(long, value_enum)]
        expect: Option<KindArg>,
    },
    /// Render a code issued elsewhere (e.g. by the platform) as a printable QR label; no key is
    /// needed and nothing is checked but that the text fits a QR code.
    Render {
        /// The code's text (`-` reads it from standard input).
        text: String,
        /// Error correction level: Q for machine labels (dust, scratches), M for credentials.
        #[arg(long, value_enum, default_value_t = EcArg::M)]
        ec: EcArg,
        #[command(flatten)]
        label: LabelOut,
    },
}

/// QR error correction levels (ISO/IEC 18004 L, M, Q, H).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum EcArg {
    L,
    M,
    Q,
    H,
}

impl From<EcArg> for EcLevel {
    fn from(ec: EcArg) -> Self {
        match ec {
            EcArg::L => EcLevel::L,
            EcArg::M => EcLevel::M,
            EcArg::Q => EcLevel::Q,
            EcArg::H => EcLevel::H,
        }
    }
}

/// Where to write QR labels.
#[derive(Debug, Args)]
struct LabelOut {
    /// Write the QR code as a PNG image.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Write the QR code as an SVG image.
    #[arg(long)]
    svg: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum IssueCommand {
    /// A machine label (设备码), printed on the machine; fits QR version 10 at level Q.
    Machine {
        #[arg(long)]
        key: PathBuf,
        /// Machine id, e.g. 370983-DH-2024-000123.
        #[arg(long)]
        id: String,
        #[arg(long, value_enum)]
        kind: MachineKindArg,
        #[arg(long, value_enum)]
        class: MachineClassArg,
        /// Owner organisation (unified social credit code).
        #[arg(long)]
        owner: String,
        /// GB/T 2260 region code (肥城市 = 370983).
        #[arg(long)]
        region: u32,
        /// Issue time; default now.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        label: LabelOut,
    },
    /// A welder credential (人员码), shown on the welder's phone; fits QR version 12 at level M.
    Welder {
        #[arg(long)]
        key: PathBuf,
        /// Certificate number (its own field, often "T" + the ID number).
        #[arg(long)]
        cert_no: String,
        /// 18-character resident ID number.
        #[arg(long)]
        id_number: String,
        #[arg(long)]
        name: String,
        /// Operation categories, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        categories: Vec<CategoryArg>,
        /// Issue date (YYYY-MM-DD).
        #[arg(long)]
        issued: String,
        /// Expiry date (YYYY-MM-DD).
        #[arg(long)]
        expires: String,
        /// Next review date (YYYY-MM-DD).
        #[arg(long)]
        next_review: String,
        /// The welder's device public key: compressed P-256 in hex, or a file holding the hex or the
        /// 33 raw bytes.
        #[arg(long)]
        device_key: String,
        /// Photo file; its SHA-256 goes into the credential.
        #[arg(long)]
        photo: Option<PathBuf>,
        /// Signing time; default now.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        label: LabelOut,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Machine,
    Welder,
    Presentation,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MachineKindArg {
    Arc,
    Plasma,
    GasCutting,
    GasWelding,
    Resistance,
    Spot,
    Friction,
    Brazing,
    Soldering,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MachineClassArg {
    Mobile,
    FixedStation,
    LegacyRegistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CategoryArg {
    /// 熔化焊接与热切割作业
    Fusion,
    /// 压力焊作业
    Pressure,
    /// 钎焊作业
    Brazing,
}

impl From<MachineKindArg> for MachineKind {
    fn from(k: MachineKindArg) -> Self {
        match k {
            MachineKindArg::Arc => MachineKind::Arc,
            MachineKindArg::Plasma => MachineKind::Plasma,
            MachineKindArg::GasCutting => MachineKind::GasCutting,
            MachineKindArg::GasWelding => MachineKind::GasWelding,
            MachineKindArg::Resistance => MachineKind::Resistance,
            MachineKindArg::Spot => MachineKind::Spot,
            MachineKindArg::Friction => MachineKind::Friction,
            MachineKindArg::Brazing => MachineKind::Brazing,
            MachineKindArg::Soldering => MachineKind::Soldering,
        }
    }
}

impl From<MachineClassArg> for MachineClass {
    fn from(c: MachineClassArg) -> Self {
        match c {
            MachineClassArg::Mobile => MachineClass::Mobile,
            MachineClassArg::FixedStation => MachineClass::FixedStation,
            MachineClassArg::LegacyRegistered => MachineClass::LegacyRegistered,
        }
    }
}

impl From<CategoryArg> for OperationCategory {
    fn from(c: CategoryArg) -> Self {
        match c {
            CategoryArg::Fusion => OperationCategory::FusionWeldingAndCutting,
            CategoryArg::Pressure => OperationCategory::PressureWelding,
            CategoryArg::Brazing => OperationCategory::Brazing,
        }
    }
}

impl From<KindArg> for CodeKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Machine => CodeKind::MachineLabel,
            KindArg::Welder => CodeKind::WelderCredential,
            KindArg::Presentation => CodeKind::Presentation,
        }
    }
}

/// China Standard Time (UTC+8), in which licence dates and `--at` dates are read.
const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

fn china() -> FixedOffset {
    CHINA
}

/// A time: RFC 3339, a date (midnight China time), or Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, Failure> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d
            .and_hms_opt(0, 0, 0)
            .and_then(|dt| china().from_local_datetime(&dt).single())
    {
        return Ok(t.timestamp());
    }
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    Err(Failure::input(
        "input.time",
        format!("bad time {text:?}: use RFC 3339, YYYY-MM-DD or Unix seconds"),
    ))
}

fn parse_date(flag: &str, text: &str) -> Result<NaiveDate, Failure> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        Failure::input(
            "input.date",
            format!("bad date for --{flag}: {text:?} (use YYYY-MM-DD)"),
        )
    })
}

pub fn read_text(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure::input(
            "input.file",
            format!("cannot read {what} {}: {e}", path.display()),
        )
    })
}

/// A code the core refused to issue, in the user's language, with the core's stable code.
fn issue_failure(e: &IssueError, out: &Output) -> Failure {
    let message = out.lang.pick(&e.message_zh(), &e.message_en()).to_owned();
    match e {
        IssueError::Signing(_) => Failure::runtime(e.code(), message),
        _ => Failure::input(e.code(), message),
    }
}

fn load_key(path: &Path) -> Result<IssuerKey, Failure> {
    IssuerKey::from_json(&read_text(path, "key file")?)
        .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))
}

fn device_key(arg: &str) -> Result<Vec<u8>, Failure> {
    if let Some(bytes) = from_hex(arg).filter(|b| b.len() == 33) {
        return Ok(bytes);
    }
    let bytes = std::fs::read(arg).map_err(|e| {
        Failure::input(
            "input.device_key",
            format!("--device-key is neither 33-byte hex nor a readable file ({arg}): {e}"),
        )
    })?;
    if bytes.len() == 33 {
        return Ok(bytes);
    }
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(from_hex)
        .filter(|b| b.len() == 33)
        .ok_or_else(|| {
            Failure::input(
                "input.device_key",
                format!("{arg}: not a compressed P-256 public key (33 bytes, raw or hex)"),
            )
        })
}

#[derive(Serialize)]
struct Issued {
    kind: CodeKind,
    text: String,
    chars: usize,
    qr_version: i16,
    ec_level: &'static str,
    kid: String,
    png: Option<String>,
    svg: Option<String>,
}

fn write_labels(qr: &QrCode, label: &LabelOut) -> Result<(), Failure> {
    if let Some(path) = &label.png {
        let image = qr
            .render::<image::Luma<u8>>()
            .min_dimensions(480, 480)
            .build();
        image.save(path).map_err(|e| {
            Failure::input(
                "output.png",
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    if let Some(path) = &label.svg {
        let svg = qr
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(480, 480)
            .build();
        std::fs::write(path, svg).map_err(|e| {
            Failure::input(
                "output.svg",
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

/// Render a code's text as a PNG label at `path`.
pub fn write_png(text: &str, ec: EcLevel, path: &Path) -> Result<(), Failure> {
    let qr = QrCode::with_error_correction_level(text.as_bytes(), ec)
        .map_err(|e| Failure::runtime("output.qr", format!("cannot build the QR code: {e}")))?;
    write_labels(
        &qr,
        &LabelOut {
            png: Some(path.to_path_buf()),
            svg: None,
        },
    )
}

fn finish_issue(
    out: &Output,
    kind: CodeKind,
    key: &IssuerKey,
    text: String,
    ec: EcLevel,
    label: &LabelOut,
) -> Result<(), Failure> {
    let qr = QrCode::with_error_correction_level(text.as_bytes(), ec)
        .map_err(|e| Failure::runtime("output.qr", format!("cannot build the QR code: {e}")))?;
    write_labels(&qr, label)?;
    let version = match qr.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    };
    let ec_level = ec_name(ec);
    let issued = Issued {
        kind,
        chars: text.len(),
        text,
        qr_version: version,
        ec_level,
        kid: to_hex(&key.kid()),
        png: label.png.as_ref().map(|p| p.display().to_string()),
        svg: label.svg.as_ref().map(|p| p.display().to_string()),
    };
    if out.json {
        return out.json(&issued);
    }
    stdoutln!("{}", issued.text);
    stderrln!(
        "{}",
        match out.lang {
            Lang::Zh => format!(
                "{} 字符，二维码版本 {}，纠错等级 {}，密钥 {}",
                issued.chars, issued.qr_version, issued.ec_level, issued.kid
            ),
            Lang::En => format!(
                "{} chars, QR version {} at level {}, key {}",
                issued.chars, issued.qr_version, issued.ec_level, issued.kid
            ),
        }
    );
    Ok(())
}

fn issue(what: IssueCommand, out: &Output) -> Result<(), Failure> {
    match what {
        IssueCommand::Machine {
            key,
            id,
            kind,
            class,
            owner,
            region,
            at,
            label,
        } => {
            let key = load_key(&key)?;
            let issued_at = match at {
                Some(t) => parse_time(&t)?,
                None => chrono::Utc::now().timestamp(),
            };
            let claims = MachineLabel {
                machine_id: id,
                kind: kind.into(),
                class: class.into(),
                owner_org: owner,
                region,
                issued_at,
            };
            let text = issue_machine_label(&key, &claims).map_err(|e| issue_failure(&e, out))?;
            finish_issue(out, CodeKind::MachineLabel, &key, text, EcLevel::Q, &label)
        }
        IssueCommand::Welder {
            key,
            cert_no,
            id_number,
            name,
            categories,
            issued,
            expires,
            next_review,
            device_key: device,
            photo,
            at,
            label,
        } => {
            let issued_on = parse_date("issued", &issued)?;
            let expires_on = parse_date("expires", &expires)?;
            let next_review_on = parse_date("next-review", &next_review)?;
            let signed_at = match at {
                Some(t) => parse_time(&t)?,
                None => chrono::Utc::now().timestamp(),
            };
            let device_key = device_key(&device)?;
            let photo_digest = match photo {
                Some(path) => Sha256::digest(std::fs::read(&path).map_err(|e| {
                    Failure::input(
                        "input.file",
                        format!("cannot read photo {}: {e}", path.display()),
                    )
                })?)
                .to_vec(),
                None => Vec::new(),
            };
            let key = load_key(&key)?;
            let mut cats: Vec<OperationCategory> = Vec::new();
            for c in categories {
                let c = OperationCategory::from(c);
                if !cats.contains(&c) {
                    cats.push(c);
                }
            }
            let credential = WelderCredential {
                certificate_no: cert_no,
                id_number,
                name,
                categories: cats,
                issued_on,
                expires_on,
                next_review_on,
                photo_digest,
                device_key,
            };
            // Refused (nothing written) for an ID number that fails GB 11643-1999 or a credential
            // already expired today, whatever --at says.
            let now = chrono::Utc::now().timestamp();
            let text = issue_credential(&key, &credential, signed_at, now)
                .map_err(|e| issue_failure(&e, out))?;
            finish_issue(
                out,
                CodeKind::WelderCredential,
                &key,
                text,
                EcLevel::M,
                &label,
            )
        }
    }
}

#[derive(Serialize)]
struct Reason {
    code: &'static str,
    message_en: String,
    message_zh: String,
}

impl Reason {
    fn of(e: &dyn Explain) -> Self {
        Self {
            code: e.code(),
            message_en: e.message_en(),
            message_zh: e.message_zh(),
        }
    }
}

/// The `--json` shape of `code verify`.
#[derive(Serialize)]
struct Verdict {
    valid: bool,
    at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<VerifiedCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsigned: Option<UnsignedCode>,
}

fn describe(code: &VerifiedCode, lang: Lang) -> String {
    let date = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .map(|d| {
                d.with_timezone(&china())
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_else(|| t.to_string())
    };
    let cats = |c: &[OperationCategory]| {
        c.iter()
            .map(|c| lang.pick(c.name_zh(), c.name_en()))
            .collect::<Vec<_>>()
            .join(lang.pick("、", ", "))
    };
    let credential = |w: &WelderCredential| match lang {
        Lang::Zh => format!(
            "{}，证号 {}，身份证 {}，作业类别 {}，有效期 {} 至 {}，下次复审 {}",
            w.name,
            w.certificate_no,
            w.id_number,
            cats(&w.categories),
            w.issued_on,
            w.expires_on,
            w.next_review_on
        ),
        Lang::En => format!(
            "{}, certificate {}, ID {}, categories: {}, valid {} to {}, next review {}",
            w.name,
            w.certificate_no,
            w.id_number,
            cats(&w.categories),
            w.issued_on,
            w.expires_on,
            w.next_review_on
        ),
    };
    let body = match &code.claims {
        VerifiedClaims::MachineLabel(m) => match lang {
            Lang::Zh => format!(
                "有效的设备码：{}（{}），所属单位 {}，地区 {}，签发于 {}",
                m.machine_id,
                m.kind.name_zh(),
                m.owner_org,
                m.region,
                date(m.issued_at)
            ),
            Lang::En => format!(
                "VALID machine label: {} ({}, {:?}), owner {}, region {}, issued {}",
                m.machine_id,
                m.kind.name_en(),
                m.class,
                m.owner_org,
                m.region,
                date(m.issued_at)
            ),
        },
        VerifiedClaims::WelderCredential(c) => format!(
            "{}{}",
            lang.pick("有效的人员码：", "VALID welder credential: "),
            credential(&c.credential)
        ),
        VerifiedClaims::Presentation {
            credential: c,
            presentation,
        } => format!(
            "{}{} ({} {})",
            lang.pick("有效的现场出示：", "VALID live presentation: "),
            credential(&c.credential),
            lang.pick("出示于", "presented"),
            date(presentation.presented_at)
        ),
    };
    format!(
        "{body}\n{} {} ({})",
        lang.pick("签发密钥", "issuer key"),
        code.kid,
        code.alg.name()
    )
}

fn verify(
    text: String,
    trust: PathBuf,
    revocations: Option<PathBuf>,
    at: Option<String>,
    expect: Option<KindArg>,
    out: &Output,
) -> Result<(), Failure> {
    let text = if text == "-" {
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Failure::input("input.stdin", format!("cannot read stdin: {e}")))?;
        buf
    } else {
        text
    };
    let now = match at {
        Some(t) => parse_time(&t)?,
        None => chrono::Utc::now().timestamp(),
    };
    let trust = TrustStore::from_json(&read_text(&trust, "trust file")?)
        .map_err(|e| Failure::input(e.code(), format!("{}: {e}", trust.display())))?;
    let revocations = match revocations {
        Some(path) => RevocationSet::from_json(&read_text(&path, "revocation file")?)
            .map_err(|e| Failure::input(e.code(), format!("{}: {e}", path.display())))?,
        None => RevocationSet::new(),
    };
    let verdict = match classify(&text) {
        ScannedText::Unsigned(unsigned) => Verdict {
            valid: false,
            at: now,
            code: None,
            reason: Some(Reason::of(&unsigned)),
            unsigned: Some(unsigned),
        },
        ScannedText::Signed => {
            let verifier = Verifier::new(&trust, &revocations);
            let mut replay = ReplayCache::default();
            let result = match expect {
                Some(kind) => verifier.verify_expecting(&text, kind.into(), now, &mut replay),
                None => verifier.verify(&text, now, &mut replay),
            };
            match result {
                Ok(code) => Verdict {
                    valid: true,
                    at: now,
                    code: Some(code),
                    reason: None,
                    unsigned: None,
                },
                Err(e) => Verdict {
                    valid: false,
                    at: now,
                    code: None,
                    reason: Some(Reason::of(&e)),
                    unsigned: None,
                },
            }
        }
    };
    if out.json {
        return out.json(&verdict);
    }
    match (&verdict.code, &verdict.reason) {
        (Some(code), _) => stdoutln!("{}", describe(code, out.lang)),
        (None, Some(reason)) => stdoutln!(
            "{}{} [{}]",
            out.lang.pick("无效：", "INVALID: "),
            out.lang.pick(&reason.message_zh, &reason.message_en),
            reason.code
        ),
        (None, None) => {}
    }
    Ok(())
}

pub fn run(args: CodeArgs, out: &Output) -> Result<(), Failure> {
    match args.command {
        CodeCommand::Issue { what } => issue(*what, out),
        CodeCommand::Verify {
            text,
            trust,
            revocations,
            at,
            expect,
        } => verify(text, trust, revocations, at, expect, out),
        CodeCommand::Render { text, ec, label } => render(text, ec.into(), &label, out),
    }
}

#[derive(Serialize)]
struct Rendered {
    chars: usize,
    qr_version: i16,
    ec_level: &'static str,
    png: Option<String>,
    svg: Option<String>,
}

/// `code render`: the label of a code's text, as PNG and/or SVG.
fn render(text: String, ec: EcLevel, label: &LabelOut, out: &Output) -> Result<(), Failure> {
    if label.png.is_none() && label.svg.is_none() {
        return Err(Failure::input(
            "input.output",
            match out.lang {
                Lang::Zh => "请用 --png 或 --svg 指定标签图片的位置".to_owned(),
                Lang::En => "give --png or --svg: where to write the label".to_owned(),
            },
        ));
    }
    let text = if text == "-" {
        let mut read = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut read)
            .map_err(|e| Failure::input("input.text", format!("cannot read stdin: {e}")))?;
        read.trim().to_owned()
    } else {
        text.trim().to_owned()
    };
    if text.is_empty() {
        return Err(Failure::input(
            "input.text",
            match out.lang {
                Lang::Zh => "码的文本为空".to_owned(),
                Lang::En => "the code's text is empty".to_owned(),
            },
        ));
    }
    let qr = QrCode::with_error_correction_level(text.as_bytes(), ec).map_err(|e| {
        Failure::input(
            "input.text",
            format!("the text does not fit a QR code at this level: {e}"),
        )
    })?;
    write_labels(&qr, label)?;
    let rendered = Rendered {
        chars: text.len(),
        qr_version: match qr.version() {
            Version::Normal(v) | Version::Micro(v) => v,
        },
        ec_level: ec_name(ec),
        png: label.png.as_ref().map(|p| p.display().to_string()),
        svg: label.svg.as_ref().map(|p| p.display().to_string()),
    };
    if out.json {
        return out.json(&rendered);
    }
    stdoutln!(
        "{}",
        match out.lang {
            Lang::Zh => format!(
                "{} 字符，二维码版本 {}，纠错等级 {}",
                rendered.chars, rendered.qr_version, rendered.ec_level
            ),
            Lang::En => format!(
                "{} chars, QR version {} at level {}",
                rendered.chars, rendered.qr_version, rendered.ec_level
            ),
        }
    );
    Ok(())
}

fn ec_name(ec: EcLevel) -> &'static str {
    match ec {
        EcLevel::L => "L",
        EcLevel::M => "M",
        EcLevel::Q => "Q",
        EcLevel::H => "H",
    }
}
