//! A device whose system offers no root certificates (a Linux without `ca-certificates`) cannot
//! set up its HTTP client: the sync says so with its own code (`sync.client_setup`), not as a bad
//! server address. Its own test binary: it changes the process's certificate environment.

use weldguard_core::domain::Explain;
use weldguard_core::sync::{RetryPolicy, SyncClient, SyncError};

#[test]
fn no_root_certificates_is_a_client_setup_error_not_a_bad_address() {
    let empty = std::env::temp_dir().join(format!("wg-no-roots-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let file = empty.join("none.pem");
    std::fs::write(&file, "").unwrap();
    // SAFETY: this test binary has this one test; no other thread reads the environment.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &file);
        std::env::set_var("SSL_CERT_DIR", &empty);
    }
    let Err(error) = SyncClient::new("http://127.0.0.1:9", None, RetryPolicy::default()) else {
        panic!("no roots: the client cannot be set up");
    };
    assert!(matches!(error, SyncError::ClientSetup(_)), "{error:?}");
    assert_eq!(error.code(), "sync.client_setup");
    assert!(error.message_zh().contains("根证书"));
    assert!(error.message_en().contains("root certificates"));
    std::fs::remove_dir_all(&empty).unwrap();
}
