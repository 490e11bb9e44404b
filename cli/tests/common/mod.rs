//! What the CLI's integration tests share: a temporary folder removed on drop, and reading a
//! successful `--json` run.

use std::path::{Path, PathBuf};
use std::process::Output;

/// A fresh folder under the system's temp dir, removed on drop.
pub struct Tmp(PathBuf);

impl Tmp {
    pub fn new(name: &str) -> Tmp {
        let dir = std::env::temp_dir().join(format!(
            "weldguard-cli-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Tmp(dir)
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    #[allow(dead_code)] // not every test file names files inside it
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The JSON document a `--json` run of `args` printed; fails the test, showing its output, when
/// the run did not succeed.
#[allow(dead_code)] // not every test file runs the CLI with --json
pub fn json_of(out: &Output, args: &[&str]) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
