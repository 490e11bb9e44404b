//! WeldGuard reference platform server: device enrolment, registry administration, record push
//! (idempotent, verified) and registry pull (paged, cursor-based), over HTTP + JSON.
//!
//! Stateless apart from the database ([`db`]): embedded SQLite in `--data-dir`, or PostgreSQL with
//! `--database postgres://…` (several server processes may share it). The wire types are
//! [`weldguard_model::protocol`], shared with the device client. Every endpoint but `/health`,
//! `/openapi.json`, `/v1/enrol` and the token refresh pair (`/v1/auth/challenge`,
//! `/v1/auth/refresh`: the device key is the credential there) needs a device token, and
//! [`authz::allowed`] says which roles may call it. Device tokens expire after `--token-ttl`
//! (docs/adr/0010-token-refresh.md); the admin token given with `--admin-token` does not. The API is described in `openapi.json` ([`openapi`]); answers are gzip-compressed
//! on request; [`observe`] gives each request an id, a log event ([`logging`]) and its
//! [`metrics`] (`GET /metrics`, admins). The platform's issuer keys ([`keys`]) sign the codes it
//! issues and the documents it publishes ([`publish`]).
//!
//! Bounded: [`serve`] caps the open connections and times out slow heads, slow bodies and idle
//! connections; [`limits`] rate-limits each device and, without a device token, each client IP
//! (`429` with `Retry-After`); every error answer is the JSON error ([`errors`]), and a request
//! body must be `application/json`.

pub mod authz;
pub mod dashboard;
pub mod db;
pub mod deadlines;
pub mod documents;
pub mod errors;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod keys;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod permits;
pub mod platform;
pub mod platform_api;
pub mod platform_views;
pub mod publish;
pub mod registry_facts;
pub mod serve;
pub mod signers;
pub mod validate;
pub mod warnings;
pub mod warnings_api;
pub mod work_rules;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Command-line options of `weldguard-server`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "weldguard-server",
    about = "WeldGuard reference platform server"
)]
pub struct Options {
    /// Folder holding the SQLite database (created when missing).
    #[arg(long, default_value = "weldguard-server-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL database to use instead of SQLite (`postgres://USER@HOST:PORT/DB`); several
    /// servers may share it.
    #[arg(long)]
    pub database: Option<String>,
    /// Address to listen on (port 0: any free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Admin token to accept (replaces the bootstrap admin's token). Without it, a token is made
    /// and printed at first start. The bootstrap admin's token does not expire: it is the
    /// operator's credential, so keep it like a root password.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Lifetime of device tokens, in seconds (from enrolment or refresh); a device refreshes an
    /// expired token by signing a challenge with its enrolled key. 0: tokens do not expire.
    #[arg(long, value_name = "SECS", default_value_t = http::DEFAULT_TOKEN_TTL_SECS)]
    pub token_ttl: u64,
    /// Log line format on standard error (level from the WELDGUARD_LOG environment variable,
    /// RUST_LOG syntax, default `info`).
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text)]
    pub log_format: logging::LogFormat,
    /// Connection limits: count and header, body and idle timeouts ([`serve`]).
    #[command(flatten)]
    pub transport: serve::TransportOptions,
    /// Per-device and per-IP rate limits ([`limits`]).
    #[command(flatten)]
    pub rates: limits::RateOptions,
    /// The warning rules' thresholds ([`warnings`]).
    #[command(flatten)]
    pub warnings: warnings::WarningOptions,
    /// A map tile server for the web dashboard (`/dashboard/`): an http(s) URL template with
    /// `{z}`, `{x}` and `{y}`, e.g. `https://tiles.intranet/{z}/{x}/{y}.png`. Default: none (the
    /// map is drawn from the sites' coordinates alone).
    #[arg(long, value_name = "URL_TEMPLATE", value_parser = parse_tiles)]
    pub dashboard_tiles: Option<dashboard::Tiles>,
}

fn parse_tiles(text: &str) -> Result<dashboard::Tiles, String> {
    dashboard::Tiles::parse(text).map_err(|e| e.to_string())
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data folder {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("{0}")]
    Db(#[from] db::DbError),
    #[error("{0}")]
    Keys(#[from] keys::KeyStoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Create the data folder and missing parents owner-only (0700 on unix): the SQLite database in it
/// holds the platform's issuer keys. A folder that exists is left as it is.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Run the server until Ctrl-C / SIGTERM. Prints `listening on http://ADDR` once ready.
pub fn run(options: Options) -> Result<(), StartError> {
    logging::init(options.log_format);
    if options.database.is_none() {
        create_private_dir(&options.data_dir)
            .map_err(|e| StartError::DataDir(options.data_dir.clone(), e))?;
    }
    let database = std::sync::Arc::new(
        db::Db::from_options(options.database.as_deref(), &options.data_dir)?
            .with_warnings(warnings::WarningConfig::from(&options.warnings)),
    );
    if let Some(token) = database.bootstrap_admin(options.admin_token.as_deref())? {
        println!("admin token: {token}");
    }
    keys::ensure_signing_key(&database, db::now_ms())?;
    let app_db = database.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Serve)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| StartError::Listen(options.listen, e))?;
        let local = listener.local_addr().map_err(StartError::Serve)?;
        let state = http::AppState::shared(app_db.clone())
            .with_token_ttl(options.token_ttl)
            .with_rate_limits(options.rates.clone())
            .with_dashboard_tiles(options.dashboard_tiles.clone());
        // The deadline queue's worker (warnings that fall due with time: crate::deadlines).
        deadlines::spawn(app_db, state.publisher());
        let app = http::router(state);
        println!("listening on http://{local}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tracing::info!(
            listen = %local,
            data_dir = %options.data_dir.display(),
            version = env!("CARGO_PKG_VERSION"),
            max_connections = options.transport.max_connections,
            "server started"
        );
        serve::serve(listener, app, options.transport, shutdown_signal()).await;
        tracing::info!("server stopped");
        Ok(())
    })
}

/// A server on a background thread over SQLite in `data_dir`, on a free loopback port: the demo's
/// local platform. Stopped (gracefully) when dropped.
pub struct Background {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), StartError>>>,
}

impl Background {
    /// Start it with `admin_token` as the admin's token and the default limits; returns once it
    /// accepts connections.
    pub fn start(data_dir: &std::path::Path, admin_token: &str) -> Result<Self, StartError> {
        Self::start_with(
            data_dir,
            admin_token,
            serve::TransportOptions::default(),
            limits::RateOptions::default(),
        )
    }

    /// [`Background::start`] with these connection and rate limits.
    pub fn start_with(
        data_dir: &std::path::Path,
        admin_token: &str,
        transport: serve::TransportOptions,
        rates: limits::RateOptions,
    ) -> Result<Self, StartError> {
        create_private_dir(data_dir).map_err(|e| StartError::DataDir(data_dir.to_path_buf(), e))?;
        let database = std::sync::Arc::new(db::Db::open(data_dir)?);
        database.bootstrap_admin(Some(admin_token))?;
        keys::ensure_signing_key(&database, db::now_ms())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(StartError::Serve)?;
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(any_port))
            .map_err(|e| StartError::Listen(any_port, e))?;
        let local = listener.local_addr().map_err(StartError::Serve)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = http::AppState::shared(database.clone()).with_rate_limits(rates);
        let publisher = state.publisher();
        let app = http::router(state);
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                deadlines::spawn(database, publisher);
                serve::serve(listener, app, transport, async {
                    let _ = stopped.await;
                })
                .await;
                Ok(())
            })
        });
        Ok(Background {
            url: format!("http://{local}"),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM, listened for from [`ShutdownSignal::listen`] on (from then the
/// signals no longer end the process): [`ShutdownSignal::wait`] blocks until one arrives. For a
/// program that keeps a [`Background`] server running until it is told to stop.
pub struct ShutdownSignal {
    runtime: tokio::runtime::Runtime,
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl ShutdownSignal {
    /// Start listening (before telling anyone to press Ctrl-C, so none is missed).
    pub fn listen() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        #[cfg(unix)]
        let signals = {
            use tokio::signal::unix::{SignalKind, signal};
            let _entered = runtime.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        Ok(ShutdownSignal {
            runtime,
            #[cfg(unix)]
            signals,
        })
    }

    /// Block until Ctrl-C or SIGTERM.
    pub fn wait(self) {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = self.signals;
            self.runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            });
        }
        #[cfg(not(unix))]
        self.runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing open requests");
}

/// The binary's `main`, shared with test harnesses that run the server as a child process.
pub fn main_from_env() -> std::process::ExitCode {
    let options = Options::parse();
    match run(options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weldguard-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
