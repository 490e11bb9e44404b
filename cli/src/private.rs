//! Files only their owner may read: device and issuer key files, the enrolment (`sync.json`, it
//! holds the device token) and what sits beside them. On unix a file is created 0600 (the mode is
//! given when the file is created, before its first byte, never changed afterwards) and a folder
//! the CLI creates for them 0700; folders that already exist are left as they are.

use std::io::Write;
use std::path::{Path, PathBuf};

fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Create `path`, which must not exist yet (`AlreadyExists` otherwise), owner-only, holding `text`.
pub fn create_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = owner_only().open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Put `text` in `path`, replacing what is there: written to a new owner-only file beside it,
/// then renamed over it, so readers see the old file or the new one (never a part) and a file that
/// was readable by others before is replaced by one that is not.
pub fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let written = create_new(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Create `dir` and any missing parents, each new one owner-only.
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_owner_only_from_the_start_and_a_replaced_one_too() {
        let dir = std::env::temp_dir().join(format!("weldguard-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        create_dir_all(&dir.join("a/b")).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("a/b")), 0o700);
        let key = dir.join("a/b/key.json");
        create_new(&key, "secret").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(
            create_new(&key, "other").unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        // A world-readable file left by an older version is replaced by an owner-only one.
        let old = dir.join("a/b/sync.json");
        std::fs::write(&old, "old").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        replace(&old, "new").unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.join("a/b")).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
