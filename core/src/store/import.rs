//! Registry import files (`weldguard registry import FILE`): JSON lines or CSV of licences, machines and
//! bindings. Parsing is separate from writing: every row is checked here, rejected rows are reported
//! with their line numbers and reasons, and the accepted rows go to the store in one batch
//! ([`super::Store::apply_registry_changes`]).
//!
//! - JSON lines: one object per line with `"type": "licence" | "machine" | "binding"` and the fields
//!   below; categories as an array.
//! - CSV: a header line naming the columns (any order), then one row per line; the header decides
//!   what the file holds. Categories separated by `|` or `;`. A UTF-8 byte-order mark is ignored.
//!
//! Licence fields: certificate_no, id_number, name, categories, issued_on, expires_on, next_review_on
//! (dates `YYYY-MM-DD`), optional review_extended (default false), status (`valid`/`revoked`, default
//! valid), employer_org. Machine fields: machine_id, kind, class, owner_org, region, optional status
//! (`active`/`retired`). Binding fields: machine_id, certificate_no. Enumerations take their
//! snake_case names; categories and machine kinds also their Chinese names.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::registry::RegistryChange;
use crate::domain::{
    Binding, Explain, Licence, LicenceStatus, Machine, MachineClass, MachineKind, MachineStatus,
    OperationCategory,
};
use crate::rules::id_number::check_character;

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    JsonLines,
    Csv,
}

impl ImportFormat {
    /// By file extension (`.jsonl`, `.ndjson`, `.json`, `.csv`), else by the first character.
    pub fn detect(file_name: &str, text: &str) -> Self {
        let lower = file_name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            ImportFormat::Csv
        } else if [".jsonl", ".ndjson", ".json"]
            .iter()
            .any(|e| lower.ends_with(e))
            || strip_bom(text).trim_start().starts_with('{')
        {
            ImportFormat::JsonLines
        } else {
            ImportFormat::Csv
        }
    }
}

/// Why one row was not imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    #[error("malformed row: {0}")]
    Malformed(String),
    #[error("missing field {0}")]
    MissingField(String),
    #[error("unknown field {0}")]
    UnknownField(String),
    #[error("invalid {field}: {value:?}")]
    InvalidValue { field: String, value: String },
    #[error("invalid resident ID number {value:?}: {reason}")]
    InvalidIdNumber { value: String, reason: String },
    #[error("dates out of order: {0}")]
    DatesOutOfOrder(String),
}

impl Explain for RowProblem {
    fn code(&self) -> &'static str {
        match self {
            RowProblem::Malformed(_) => "import.malformed",
            RowProblem::MissingField(_) => "import.missing_field",
            RowProblem::UnknownField(_) => "import.unknown_field",
            RowProblem::InvalidValue { .. } => "import.invalid_value",
            RowProblem::InvalidIdNumber { .. } => "import.invalid_id_number",
            RowProblem::DatesOutOfOrder(_) => "import.dates_out_of_order",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            RowProblem::Malformed(d) => format!("该行格式错误：{d}"),
            RowProblem::MissingField(f) => format!("缺少字段 {f}"),
            RowProblem::UnknownField(f) => format!("未知字段 {f}"),
            RowProblem::InvalidValue { field, value } => format!("字段 {field} 的值无效：{value}"),
            RowProblem::InvalidIdNumber { value, reason } => {
                format!("身份证号码 {value} 无效：{reason}")
            }
            RowProblem::DatesOutOfOrder(d) => format!("日期先后不对：{d}"),
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

/// A whole file that cannot be read as an import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the file has no rows")]
    Empty,
    #[error("unrecognised CSV header {0:?}: expected licence, machine or binding columns")]
    UnknownHeader(String),
}

impl Explain for ImportError {
    fn code(&self) -> &'static str {
        match self {
            ImportError::Empty => "import.empty",
            ImportError::UnknownHeader(_) => "import.unknown_header",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            ImportError::Empty => "文件中没有数据行".to_owned(),
            ImportError::UnknownHeader(h) => {
                format!("无法识别的 CSV 表头 {h}：应为证书、设备或人机绑定的列")
            }
        }
    }

    fn message_en(&self) -> String {
        self.to_string()
    }
}

/// A row that was not imported: its 1-based line number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: usize,
    pub problem: RowProblem,
}

/// The parsed file: the accepted changes (in file order) and the rejected rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedImport {
    pub changes: Vec<RegistryChange>,
    pub rejected: Vec<RejectedRow>,
    pub licences: usize,
    pub machines: usize,
    pub bindings: usize,
}

impl ParsedImport {
    fn accept(&mut self, change: RegistryChange) {
        match &change {
            RegistryChange::UpsertLicence(_) => self.licences += 1,
            RegistryChange::UpsertMachine(_) => self.machines += 1,
            _ => self.bindings += 1,
        }
        self.changes.push(change);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Licence,
    Machine,
    Binding,
}

const LICENCE_FIELDS: &[&str] = &[
    "certificate_no",
    "id_number",
    "name",
    "categories",
    "issued_on",
    "expires_on",
    "next_review_on",
    "review_extended",
    "status",
    "employer_org",
];
const MACHINE_FIELDS: &[&str] = &[
    "machine_id",
    "kind",
    "class",
    "owner_org",
    "region",
    "status",
];
const BINDING_FIELDS: &[&str] = &["machine_id", "certificate_no"];

impl RowKind {
    fn fields(self) -> &'static [&'static str] {
        match self {
            RowKind::Licence => LICENCE_FIELDS,
            RowKind::Machine => MACHINE_FIELDS,
            RowKind::Binding => BINDING_FIELDS,
        }
    }
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Parse a whole import file.
pub fn parse_import(text: &str, format: ImportFormat) -> Result<ParsedImport, ImportError> {
    let text = strip_bom(text);
    let parsed = match format {
        ImportFormat::JsonLines => parse_json_lines(text),
        ImportFormat::Csv => parse_csv(text)?,
    };
    if parsed.changes.is_empty() && parsed.rejected.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok(parsed)
}

fn parse_json_lines(text: &str) -> ParsedImport {
    let mut parsed = ParsedImport::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match json_row(line) {
            Ok(change) => parsed.accept(change),
            Err(problem) => parsed.rejected.push(RejectedRow {
                line: index + 1,
                problem,
            }),
        }
    }
    parsed
}

fn json_row(line: &str) -> Result<RegistryChange, RowProblem> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| RowProblem::Malformed(e.to_string()))?;
    let serde_json::Value::Object(object) = value else {
        return Err(RowProblem::Malformed("not a JSON object".to_owned()));
    };
    let mut fields = BTreeMap::new();
    for (name, value) in object {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(RowProblem::InvalidValue {
                        field: name.clone(),
                        value: other.to_string(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join("|"),
            serde_json::Value::Object(_) => {
                return Err(RowProblem::InvalidValue {
                    field: name,
                    value: "{…}".to_owned(),
                });
            }
        };
        fields.insert(name, text);
    }
    let kind = match fields.remove("type").as_deref() {
        Some("licence" | "license") => RowKind::Licence,
        Some("machine") => RowKind::Machine,
        Some("binding") => RowKind::Binding,
        Some(other) => {
            return Err(RowProblem::InvalidValue {
                field: "type".to_owned(),
                value: other.to_owned(),
            });
        }
        None => return Err(RowProblem::MissingField("type".to_owned())),
    };
    if let Some(unknown) = fields.keys().find(|k| !kind.fields().contains(&k.as_str())) {
        return Err(RowProblem::UnknownField(unknown.clone()));
    }
    row_change(kind, &fields)
}

fn parse_csv(text: &str) -> Result<ParsedImport, ImportError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header_line)) = lines.next() else {
        return Err(ImportError::Empty);
    };
    let header: Vec<String> = split_csv_line(header_line)
        .map_err(|_| ImportError::UnknownHeader(header_line.to_owned()))?
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let has = |name: &str| header.iter().any(|h| h == name);
    let kind = if has("id_number") {
        RowKind::Licence
    } else if has("kind") {
        RowKind::Machine
    } else if has("machine_id") && has("certificate_no") {
        RowKind::Binding
    } else {
        return Err(ImportError::UnknownHeader(header_line.to_owned()));
    };
    if header.iter().any(|h| !kind.fields().contains(&h.as_str())) {
        return Err(ImportError::UnknownHeader(header_line.to_owned()));
    }
    let mut parsed = ParsedImport::default();
    for (index, line) in lines {
        let result = split_csv_line(line).and_then(|cells| {
            if cells.len() != header.len() {
                return Err(RowProblem::Malformed(format!(
                    "{} cells, the header has {}",
                    cells.len(),
                    header.len()
                )));
            }
            let fields: BTreeMap<String, String> = header
                .iter()
                .cloned()
                .zip(cells)
                .filter(|(_, v)| !v.trim().is_empty())
                .collect();
            row_change(kind, &fields)
        });
        match result {
            Ok(change) => parsed.accept(change),
            Err(problem) => parsed.rejected.push(RejectedRow {
                line: index + 1,
                problem,
            }),
        }
    }
    Ok(parsed)
}

/// One CSV line (RFC 4180 quoting; a quoted field may not span lines).
fn split_csv_line(line: &str) -> Result<Vec<String>, RowProblem> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_cell_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err(RowProblem::Malformed(
                            "text after a closing quote".to_owned(),
                        ));
                    }
                }
                _ => cell.push(c),
            }
        } else {
            match c {
                '"' if at_cell_start => {
                    quoted = true;
                    at_cell_start = false;
                }
                ',' => {
                    cells.push(std::mem::take(&mut cell));
                    at_cell_start = true;
                }
                _ => {
                    cell.push(c);
                    at_cell_start = false;
                }
            }
        }
    }
    if quoted {
        return Err(RowProblem::Malformed("unclosed quote".to_owned()));
    }
    cells.push(cell);
    Ok(cells)
}

// ---- Checking one row's fields. ----

fn required<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, RowProblem> {
    match fields.get(name).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(RowProblem::MissingField(name.to_owned())),
    }
}

fn optional<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn invalid(field: &str, value: &str) -> RowProblem {
    RowProblem::InvalidValue {
        field: field.to_owned(),
        value: value.to_owned(),
    }
}

/// An identifier: 1–64 characters, no whitespace or control characters.
fn identifier(fields: &BTreeMap<String, String>, name: &str) -> Result<String, RowProblem> {
    let value = required(fields, name)?;
    if value.chars().count() > 64 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(name, value));
    }
    Ok(value.to_owned())
}

fn date(fields: &BTreeMap<String, String>, name: &str) -> Result<NaiveDate, RowProblem> {
    let value = required(fields, name)?;
    // Strictly YYYY-MM-DD (chrono alone would accept 2021-3-5).
    if value.len() != 10 {
        return Err(invalid(name, value));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| invalid(name, value))
}

fn boolean(fields: &BTreeMap<String, String>, name: &str) -> Result<bool, RowProblem> {
    match optional(fields, name) {
        None => Ok(false),
        Some("true" | "1" | "yes" | "是") => Ok(true),
        Some("false" | "0" | "no" | "否") => Ok(false),
        Some(other) => Err(invalid(name, other)),
    }
}

fn category(text: &str) -> Option<OperationCategory> {
    OperationCategory::ALL.into_iter().find(|c| {
        text == c.name_zh()
            || serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(|s| s == text))
                == Some(true)
    })
}

fn machine_kind(text: &str) -> Option<MachineKind> {
    MachineKind::ALL
        .into_iter()
        .find(|k| text == k.name_zh() || super::registry::machine_kind_to_db(*k) == text)
}

fn id_number(fields: &BTreeMap<String, String>) -> Result<String, RowProblem> {
    let value = required(fields, "id_number")?;
    let bad = |reason: &str| RowProblem::InvalidIdNumber {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let upper = value.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let Ok(first17) = <&[u8; 17]>::try_from(bytes.get(..17).unwrap_or_default()) else {
        return Err(bad("must be 18 characters"));
    };
    if bytes.len() != 18 || !first17.iter().all(u8::is_ascii_digit) {
        return Err(bad("must be 17 digits and a check character"));
    }
    let birth = std::str::from_utf8(bytes.get(6..14).unwrap_or_default()).unwrap_or_default();
    if NaiveDate::parse_from_str(birth, "%Y%m%d").is_err() {
        return Err(bad("the birth date is not a date"));
    }
    let Some(expected) = check_character(first17) else {
        return Err(bad("must be 17 digits and a check character"));
    };
    if bytes.get(17).map(|b| char::from(*b)) != Some(expected) {
        return Err(bad(&format!("the check character should be {expected}")));
    }
    Ok(upper)
}

fn row_change(
    kind: RowKind,
    fields: &BTreeMap<String, String>,
) -> Result<RegistryChange, RowProblem> {
    match kind {
        RowKind::Licence => {
            let categories_text = required(fields, "categories")?;
            let mut categories = categories_text
                .split(['|', ';'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| category(c).ok_or_else(|| invalid("categories", c)))
                .collect::<Result<Vec<_>, _>>()?;
            categories.sort();
            categories.dedup();
            let licence = Licence {
                certificate_no: identifier(fields, "certificate_no")?,
                id_number: id_number(fields)?,
                name: required(fields, "name")?.to_owned(),
                categories,
                issued_on: date(fields, "issued_on")?,
                expires_on: date(fields, "expires_on")?,
                next_review_on: date(fields, "next_review_on")?,
                review_extended: boolean(fields, "review_extended")?,
                status: match optional(fields, "status") {
                    None | Some("valid") => LicenceStatus::Valid,
                    Some("revoked") => LicenceStatus::Revoked,
                    Some(other) => return Err(invalid("status", other)),
                },
                employer_org: optional(fields, "employer_org").map(str::to_owned),
            };
            if licence.expires_on <= licence.issued_on {
                return Err(RowProblem::DatesOutOfOrder(
                    "expires_on must be after issued_on".to_owned(),
                ));
            }
            if licence.next_review_on < licence.issued_on {
                return Err(RowProblem::DatesOutOfOrder(
                    "next_review_on must not be before issued_on".to_owned(),
                ));
            }
            Ok(RegistryChange::UpsertLicence(licence))
        }
        RowKind::Machine => {
            let kind_text = required(fields, "kind")?;
            let class_text = required(fields, "class")?;
            let region_text = required(fields, "region")?;
            let region = region_text
                .parse::<u32>()
                .ok()
                .filter(|r| (110_000..=829_999).contains(r))
                .ok_or_else(|| invalid("region", region_text))?;
            Ok(RegistryChange::UpsertMachine(Machine {
                machine_id: identifier(fields, "machine_id")?,
                kind: machine_kind(kind_text).ok_or_else(|| invalid("kind", kind_text))?,
                class: match class_text {
                    "mobile" => MachineClass::Mobile,
                    "fixed_station" => MachineClass::FixedStation,
                    "legacy_registered" => MachineClass::LegacyRegistered,
                    other => return Err(invalid("class", other)),
                },
                owner_org: required(fields, "owner_org")?.to_owned(),
                region,
                status: match optional(fields, "status") {
                    None | Some("active") => MachineStatus::Active,
                    Some("retired") => MachineStatus::Retired,
                    Some(other) => return Err(invalid("status", other)),
                },
            }))
        }
        RowKind::Binding => Ok(RegistryChange::Bind(Binding {
            machine_id: identifier(fields, "machine_id")?,
            certificate_no: identifier(fields, "certificate_no")?,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_character_follows_gb_11643() {
        // The standard's worked example: 11010519491231002X.
        assert_eq!(check_character(b"11010519491231002"), Some('X'));
        assert_eq!(check_character(b"44052418800101001"), Some('4'));
    }

    #[test]
    fn json_lines_import_the_good_rows_and_report_the_bad_ones_by_line() {
        let text = concat!(
            r#"{"type":"licence","certificate_no":"T11010519491231002X","id_number":"11010519491231002X","name":"张三","categories":["fusion_welding_and_cutting"],"issued_on":"2021-03-15","expires_on":"2027-03-15","next_review_on":"2024-03-15"}"#,
            "\n\n",
            r#"{"type":"licence","certificate_no":"T1","id_number":"110105194912310021","name":"李四","categories":["brazing"],"issued_on":"2021-03-15","expires_on":"2027-03-15","next_review_on":"2024-03-15"}"#,
            "\n",
            r#"{"type":"machine","machine_id":"M-370983-0001","kind":"气割设备","class":"mobile","owner_org":"91370983MA3C0XXXXX","region":370983}"#,
            "\n",
            "{not json\n",
            r#"{"type":"binding","machine_id":"M-370983-0001","certificate_no":"T11010519491231002X"}"#,
            "\n",
            r#"{"type":"machine","machine_id":"M-2","kind":"arc","class":"mobile","owner_org":"O","region":370983,"colour":"red"}"#,
            "\n",
        );
        let parsed = parse_import(text, ImportFormat::detect("x.jsonl", text)).unwrap();
        assert_eq!(
            (parsed.licences, parsed.machines, parsed.bindings),
            (1, 1, 1)
        );
        let lines: Vec<_> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 5, 7]);
        assert!(matches!(
            parsed.rejected[0].problem,
            RowProblem::InvalidIdNumber { .. }
        ));
        assert!(
            parsed.rejected[0]
                .problem
                .to_string()
                .contains("should be X")
        );
        assert_eq!(
            parsed.rejected[2].problem,
            RowProblem::UnknownField("colour".into())
        );
        match &parsed.changes[1] {
            RegistryChange::UpsertMachine(m) => assert_eq!(m.kind, MachineKind::GasCutting),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_import_reads_the_header_quotes_and_a_bom() {
        let text = "\u{feff}certificate_no,name,id_number,categories,issued_on,expires_on,next_review_on,employer_org\n\
                    T11010519491231002X,张三,11010519491231002x,熔化焊接与热切割作业|brazing,2021-03-15,2027-03-15,2024-03-15,\"肥城市某建设有限公司, 二分公司\"\n\
                    T2,李四,11010519491231002X,pressure_welding,2021-03-15,2020-03-15,2024-03-15,\n\
                    T3,王五,11010519491231002X,pressure_welding,2021-3-15,2027-03-15,2024-03-15,\n\
                    T4,赵六,11010519491231002X\n";
        let parsed = parse_import(text, ImportFormat::detect("licences.csv", text)).unwrap();
        assert_eq!(parsed.licences, 1);
        let RegistryChange::UpsertLicence(l) = &parsed.changes[0] else {
            panic!()
        };
        assert_eq!(l.id_number, "11010519491231002X");
        assert_eq!(
            l.categories,
            vec![
                OperationCategory::FusionWeldingAndCutting,
                OperationCategory::Brazing
            ]
        );
        assert_eq!(
            l.employer_org.as_deref(),
            Some("肥城市某建设有限公司, 二分公司")
        );
        let problems: Vec<_> = parsed
            .rejected
            .iter()
            .map(|r| (r.line, r.problem.code()))
            .collect();
        assert_eq!(
            problems,
            vec![
                (3, "import.dates_out_of_order"),
                (4, "import.invalid_value"),
                (5, "import.malformed")
            ]
        );
    }

    #[test]
    fn csv_bindings_and_machines_are_recognised_by_their_header() {
        let bindings = "machine_id,certificate_no\nM-1,T1\nM-1,\n";
        let parsed = parse_import(bindings, ImportFormat::Csv).unwrap();
        assert_eq!(parsed.bindings, 1);
        assert_eq!(
            parsed.rejected[0].problem,
            RowProblem::MissingField("certificate_no".into())
        );
        let machines = "machine_id,kind,class,owner_org,region,status\nM-1,spot,fixed_station,O,370983,retired\nM-2,arc,mobile,O,99,active\n";
        let parsed = parse_import(machines, ImportFormat::Csv).unwrap();
        assert_eq!(parsed.machines, 1);
        assert_eq!(parsed.rejected[0].line, 3);
        assert_eq!(
            parse_import("colour,size\nred,1\n", ImportFormat::Csv)
                .unwrap_err()
                .code(),
            "import.unknown_header"
        );
        assert_eq!(
            parse_import("\n\n", ImportFormat::JsonLines).unwrap_err(),
            ImportError::Empty
        );
    }

    #[test]
    fn accepted_rows_land_in_the_store_in_one_batch() {
        use crate::rules::registry::RegistryView;
        let dir = crate::store::test_support::TempDir::new();
        let store = crate::store::Store::open(dir.path().join("db.sqlite")).unwrap();
        let text = "machine_id,kind,class,owner_org,region\nM-1,arc,mobile,O,370983\nM-2,lathe,mobile,O,370983\nM-3,spot,mobile,O,370983\n";
        let parsed = parse_import(text, ImportFormat::Csv).unwrap();
        assert_eq!(parsed.rejected.len(), 1);
        let counts = store
            .apply_registry_changes(parsed.changes, None, 0)
            .unwrap();
        assert_eq!(counts.upserted, 2);
        assert!(store.machine("M-1").unwrap().is_some());
        assert!(store.machine("M-2").unwrap().is_none());
        assert!(store.machine("M-3").unwrap().is_some());
    }

    #[test]
    fn csv_quoting_follows_rfc_4180() {
        assert_eq!(
            split_csv_line(r#"a,"b,c","d""e",,"#).unwrap(),
            vec!["a", "b,c", "d\"e", "", ""]
        );
        assert!(split_csv_line(r#"a,"b"#).is_err());
        assert!(split_csv_line(r#""a"b,c"#).is_err());
    }
}
