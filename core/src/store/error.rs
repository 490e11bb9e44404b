//! The store's own error enum: every SQLite failure is sorted into a few kinds a person (and a shell)
//! can act on, each with a stable code and a reason in Chinese and English.

use crate::domain::Explain;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The file was written by a newer WeldGuard; it is left untouched.
    #[error("the database uses schema version {found}, newer than this app supports ({supported})")]
    NewerSchema { found: u32, supported: u32 },
    /// The file is not a SQLite database, or is another application's database.
    #[error("not a WeldGuard database: {0}")]
    NotADatabase(String),
    /// SQLite reports the file as damaged.
    #[error("the database file is damaged: {0}")]
    Corrupt(String),
    /// The file could not be opened or created (permissions, missing folder, a directory, …).
    #[error("cannot open the database: {0}")]
    CannotOpen(String),
    /// Another process holds the write lock for too long.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// The device has no room left.
    #[error("the device storage is full: {0}")]
    DiskFull(String),
    /// A schema migration failed; the transaction was rolled back, the file keeps its old version.
    #[error("upgrading the database to schema version {version} failed: {reason}")]
    Migration { version: u32, reason: String },
    /// A stored value could not be read back into its type (unknown enum text, bad date, …).
    #[error("a stored value is invalid: {0}")]
    InvalidData(String),
    /// The record or outbox entry asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The device's random source failed (idempotency keys need it).
    #[error("the random source failed: {0}")]
    Random(String),
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        let text = error.to_string();
        match error.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase(text),
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt(text),
            Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
                StoreError::CannotOpen(text)
            }
            Some(ErrorCode::ReadOnly) => StoreError::CannotOpen(text),
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                StoreError::Busy(text)
            }
            Some(ErrorCode::DiskFull) => StoreError::DiskFull(text),
            _ => match error {
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::Utf8Error(..) => StoreError::InvalidData(text),
                _ => StoreError::Sqlite(text),
            },
        }
    }
}

impl Explain for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::NewerSchema { .. } => "store.newer_schema",
            StoreError::NotADatabase(_) => "store.not_a_database",
            StoreError::Corrupt(_) => "store.corrupt",
            StoreError::CannotOpen(_) => "store.cannot_open",
            StoreError::Busy(_) => "store.busy",
            StoreError::DiskFull(_) => "store.disk_full",
            StoreError::Migration { .. } => "store.migration_failed",
            StoreError::InvalidData(_) => "store.invalid_data",
            StoreError::NotFound(_) => "store.not_found",
            StoreError::Random(_) => "store.random_failed",
            StoreError::Sqlite(_) => "store.sqlite",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            StoreError::NewerSchema { found, supported } => format!(
                "数据库由更新版本的应用写入（结构版本 {found}，本应用最高支持 {supported}），请升级应用；文件未被改动"
            ),
            StoreError::NotADatabase(d) => format!("该文件不是 WeldGuard 数据库：{d}"),
            StoreError::Corrupt(d) => format!("数据库文件已损坏：{d}"),
            StoreError::CannotOpen(d) => format!("无法打开数据库：{d}"),
            StoreError::Busy(d) => format!("数据库正被其他程序占用：{d}"),
            StoreError::DiskFull(d) => format!("设备存储空间已满：{d}"),
            StoreError::Migration { version, reason } => {
                format!("数据库升级到结构版本 {version} 失败，已回滚：{reason}")
            }
            StoreError::InvalidData(d) => format!("数据库中的数据无效：{d}"),
            StoreError::NotFound(d) => format!("未找到：{d}"),
            StoreError::Random(d) => format!("随机数来源出错：{d}"),
            StoreError::Sqlite(d) => format!("数据库错误：{d}"),
        }
    }

    fn message_en(&self) -> String {
        match self {
            StoreError::NewerSchema { .. } => {
                format!("{self}; please update the app (the file was not changed)")
            }
            _ => self.to_string(),
        }
    }
}
