//! Shared helpers for the cross-crate tests in `tests/tests/`: temporary folders, the server as a
//! child process on a loopback port (SQLite in a folder or a PostgreSQL test database), a raw HTTP/1.1 call for status checks, and a fault-injecting
//! TCP proxy between a device and the server; [`permits`]: permits and enrolled signers' phones.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

pub use weldguard_server::db::test_support::TestDatabase;

pub mod permits;

/// A folder removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("weldguard-e2e-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerBackend {
    Sqlite,
    Postgres,
}

/// Where a test server keeps its data: a folder (SQLite) or a database of its own in the test
/// PostgreSQL cluster; removed or dropped after the server is stopped.
pub enum ServerData {
    Dir(TempDir),
    Postgres(Box<TestDatabase>),
}

impl ServerData {
    /// Fresh storage for `backend`; `None` (after printing why) when PostgreSQL is not configured
    /// and not required (see [`TestDatabase::for_test`]).
    pub fn new(backend: ServerBackend, name: &str) -> Option<Self> {
        match backend {
            ServerBackend::Sqlite => Some(ServerData::Dir(TempDir::new(name))),
            ServerBackend::Postgres => {
                TestDatabase::for_test(name).map(|db| ServerData::Postgres(Box::new(db)))
            }
        }
    }

    /// The server's command-line options selecting this storage.
    pub fn args(&self) -> Vec<OsString> {
        match self {
            ServerData::Dir(dir) => vec!["--data-dir".into(), dir.path().into()],
            ServerData::Postgres(db) => vec!["--database".into(), db.url().into()],
        }
    }
}

/// The server running as a child process; killed on drop (before its storage is removed).
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub admin_token: String,
    _data: Option<ServerData>,
}

impl ServerProcess {
    /// Start `binary` on 127.0.0.1 with an ephemeral port over `data_dir`, and wait until it
    /// prints its address.
    pub fn start(binary: &str, data_dir: &Path, admin_token: &str) -> Self {
        let args: [OsString; 2] = ["--data-dir".into(), data_dir.into()];
        Self::start_with_args(binary, &args, admin_token, None, &[])
    }

    /// Start `binary` over `data`, which the process keeps until it is dropped.
    pub fn start_on(binary: &str, data: ServerData, admin_token: &str) -> Self {
        Self::start_with_args(binary, &data.args(), admin_token, Some(data), &[])
    }

    /// Start `binary` over `data` with device tokens living `token_ttl_secs` seconds
    /// (`--token-ttl`).
    pub fn start_with_token_ttl(
        binary: &str,
        data: ServerData,
        admin_token: &str,
        token_ttl_secs: u64,
    ) -> Self {
        let ttl: [OsString; 2] = ["--token-ttl".into(), token_ttl_secs.to_string().into()];
        Self::start_with_args(binary, &data.args(), admin_token, Some(data), &ttl)
    }

    /// Start `binary` over `data` with more command-line options (`extra`, e.g. limits), and
    /// with at most `max_open_files` descriptors when given (through `sh -c 'ulimit -n N'`).
    pub fn start_with_options(
        binary: &str,
        data: ServerData,
        admin_token: &str,
        extra: &[&str],
        max_open_files: Option<u64>,
    ) -> Self {
        let extra: Vec<OsString> = extra.iter().map(OsString::from).collect();
        match max_open_files {
            None => Self::start_with_args(binary, &data.args(), admin_token, Some(data), &extra),
            Some(n) => {
                // `sh -c SCRIPT binary ARGS…`: the script sets the limit and execs the server
                // in place, so the child's pid stays the server's.
                let mut args: Vec<OsString> = vec![
                    "-c".into(),
                    format!("ulimit -n {n} && exec \"$0\" \"$@\"").into(),
                    binary.into(),
                ];
                args.extend(data.args());
                args.extend(extra);
                Self::start_with_args("sh", &args, admin_token, Some(data), &[])
            }
        }
    }

    /// Start another server process over the same storage as `data` (it is not taken over).
    pub fn start_sharing(binary: &str, data: &ServerData, admin_token: &str) -> Self {
        Self::start_with_args(binary, &data.args(), admin_token, None, &[])
    }

    /// [`ServerProcess::start_sharing`] with more command-line options (`extra`).
    pub fn start_sharing_with_options(
        binary: &str,
        data: &ServerData,
        admin_token: &str,
        extra: &[&str],
    ) -> Self {
        let extra: Vec<OsString> = extra.iter().map(OsString::from).collect();
        Self::start_with_args(binary, &data.args(), admin_token, None, &extra)
    }

    fn start_with_args(
        binary: &str,
        storage: &[OsString],
        admin_token: &str,
        data: Option<ServerData>,
        extra: &[OsString],
    ) -> Self {
        let mut child = Command::new(binary)
            .args(storage)
            .args(extra)
            .args(["--listen", "127.0.0.1:0", "--admin-token", admin_token])
            // Request logs only when asked for (they would flood the test output).
            .env(
                "WELDGUARD_LOG",
                std::env::var("WELDGUARD_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read server output");
            if let Some(rest) = line.strip_prefix("listening on http://") {
                break rest.trim().parse().expect("address");
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess {
            child,
            addr,
            admin_token: admin_token.to_owned(),
            _data: data,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A welder's phone for the platform's end-to-end flows: a device store in a temporary folder,
/// enrolled on `server` with its admin token, pushing through `via` (the server or a fault proxy).
pub struct WelderPhone {
    _dir: TempDir,
    pub store: weldguard_core::store::Store,
    pub client: weldguard_core::sync::SyncClient,
}

impl WelderPhone {
    pub fn enrol(
        server: &ServerProcess,
        via: &str,
        policy: weldguard_core::sync::RetryPolicy,
    ) -> Self {
        use weldguard_core::sync::{SyncClient, protocol::Role};
        let admin =
            SyncClient::new(&server.url(), Some(server.admin_token.clone()), policy).unwrap();
        let code = admin.create_enrolment("李四", Role::Welder).unwrap();
        let anonymous = SyncClient::new(&server.url(), None, policy).unwrap();
        let enrolled = anonymous.enrol(&code.code, "04aabbcc", "李四").unwrap();
        let dir = TempDir::new("welder-phone");
        let store = weldguard_core::store::Store::open(dir.path().join("device.sqlite")).unwrap();
        let client = SyncClient::new(via, Some(enrolled.token), policy).unwrap();
        WelderPhone {
            _dir: dir,
            store,
            client,
        }
    }

    /// Push and pull once; panics on failure.
    pub fn sync(&self) {
        self.client
            .sync(&self.store, &mut |_| {}, &AtomicBool::new(false))
            .unwrap();
    }
}

/// The status of a GET whose answer may never end (a server-sent event stream): the status line
/// only; the connection is dropped after it.
pub fn status_line(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
pub fn raw_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// An enrolment code for a monitoring account of `scope` (`city`, `district:…`, `town:…`), made
/// with the server's admin token (`POST /v1/admin/monitors`).
pub fn monitor_code(server: &ServerProcess, person: &str, scope: &str) -> String {
    let body = serde_json::json!({"person": person, "scope": scope}).to_string();
    let (status, text) = raw_call(
        server.addr,
        "POST",
        "/v1/admin/monitors",
        Some(&server.admin_token),
        Some(&body),
    );
    assert_eq!(status, 200, "{text}");
    let made: serde_json::Value = serde_json::from_str(&text).expect("monitor code JSON");
    made["code"].as_str().expect("code").to_owned()
}

/// Faults to inject into the next matching requests (each counter is used up one by one).
#[derive(Default)]
pub struct Faults {
    /// Paths (request line prefixes, e.g. `POST /v1/push`) the faults apply to.
    pub target: std::sync::Mutex<String>,
    /// Close the connection without forwarding the request (nothing reaches the server).
    pub drop_before: AtomicU32,
    /// Forward the request, let the server answer (it has committed), then close the connection
    /// without passing the answer on.
    pub drop_after: AtomicU32,
    /// Answer 500 without forwarding.
    pub fail_500: AtomicU32,
    /// Pass on only the first few bytes of the answer's body, then close.
    pub truncate: AtomicU32,
    /// Hold the answer this many milliseconds (use with a shorter client timeout).
    pub delay_ms: AtomicU32,
    /// How many times a fault fired.
    pub fired: AtomicU32,
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Pass,
    DropAfter,
    Truncate,
    Delay(u32),
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`, injecting [`Faults`].
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub faults: Arc<Faults>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let faults = Arc::new(Faults::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (faults.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let faults = f.clone();
                std::thread::spawn(move || serve_connection(client, upstream, faults));
            }
        });
        FaultProxy { addr, faults, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_target(&self, prefix: &str) {
        *self.faults.target.lock().expect("lock") = prefix.to_owned();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_connection(client: TcpStream, upstream: SocketAddr, faults: Arc<Faults>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // The action for the answer to the request now in flight.
    let pending = Arc::new(std::sync::Mutex::new(Action::Pass));
    let pending_w = pending.clone();
    let client_ctl = client.try_clone().ok();
    let faults_r = faults.clone();
    let forward = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let target = faults_r
                .target
                .lock()
                .map(|t| t.clone())
                .unwrap_or_default();
            if !target.is_empty() && chunk.starts_with(target.as_bytes()) {
                let mut action = Action::Pass;
                if take(&faults_r.drop_before) {
                    faults_r.fired.fetch_add(1, Ordering::SeqCst);
                    if let Some(c) = &client_ctl {
                        let _ = c.shutdown(Shutdown::Both);
                    }
                    let _ = server_w.shutdown(Shutdown::Both);
                    break;
                }
                if take(&faults_r.fail_500) {
                    faults_r.fired.fetch_add(1, Ordering::SeqCst);
                    if let Some(mut c) = client_ctl.as_ref().and_then(|c| c.try_clone().ok()) {
                        let _ = c.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        let _ = c.shutdown(Shutdown::Both);
                    }
                    let _ = server_w.shutdown(Shutdown::Both);
                    break;
                }
                if take(&faults_r.drop_after) {
                    action = Action::DropAfter;
                } else if take(&faults_r.truncate) {
                    action = Action::Truncate;
                } else {
                    let d = faults_r.delay_ms.swap(0, Ordering::SeqCst);
                    if d > 0 {
                        action = Action::Delay(d);
                    }
                }
                if action != Action::Pass {
                    faults_r.fired.fetch_add(1, Ordering::SeqCst);
                }
                if let Ok(mut p) = pending_w.lock() {
                    *p = action;
                }
            }
            if server_w.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (Ok(mut server_r), mut client_w) = (server.try_clone(), client) else {
        return;
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let action = pending
            .lock()
            .map(|mut p| std::mem::replace(&mut *p, Action::Pass))
            .unwrap_or(Action::Pass);
        match action {
            Action::Pass => {}
            Action::DropAfter => break,
            Action::Truncate => {
                // Headers and a few bytes of the body, then the connection dies.
                let chunk = &buf[..n];
                let end = chunk
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|p| (p + 4 + 5).min(n))
                    .unwrap_or(n / 2);
                let _ = client_w.write_all(&chunk[..end]);
                break;
            }
            Action::Delay(ms) => std::thread::sleep(Duration::from_millis(u64::from(ms))),
        }
        if client_w.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client_w.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = forward.join();
}

/// The machine's clock in Unix seconds: what a shell passes to the core as "now".
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Drive a future to its end on this thread: how the tests call the FFI's `async` functions
/// (a shell awaits them in a coroutine or task). std only: a waker that unparks this thread.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
