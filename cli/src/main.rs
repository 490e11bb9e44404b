//! `weldguard`: the desktop tool. Every command prints human text in the user's language (zh when LANG
//! starts with zh, else en) or, with `--json`, one JSON document with a stable shape. Bad input exits
//! non-zero with a one-line reason; a well-formed question with a negative answer exits 0.

#[macro_use]
mod output;
mod cmd;
mod data_dir;
mod private;

use clap::{Parser, Subcommand};

use crate::output::{Failure, Output};

#[derive(Debug, Parser)]
#[command(
    name = "weldguard",
    version,
    about = "WeldGuard: welding supervision on site, offline first"
)]
struct Cli {
    /// Print one JSON document instead of human text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a resident ID number (GB 11643-1999).
    Id(cmd::id::IdArgs),
    /// The device's registry cache: import files, show what it holds.
    Registry(cmd::registry::RegistryArgs),
    /// Records made on this device and their upload state.
    Outbox(cmd::outbox::OutboxArgs),
    /// Work sessions recorded on this device, newest first.
    History(cmd::history::HistoryArgs),
    /// Issuer keys: generate a key file and its trust file entry.
    Keys(cmd::keys::KeysArgs),
    /// Signed QR codes: issue machine labels and welder credentials, verify scanned texts.
    Code(cmd::code::CodeArgs),
    /// Start-work decision (扫码开机) from a machine label and a welder code, offline.
    Decide(Box<cmd::decide::DecideArgs>),
    /// The main job end to end in a fresh folder: keys, codes as PNG, scan back, verify, decide.
    Demo(cmd::demo::DemoArgs),
    /// Read the QR codes in image files, or live from a camera.
    Scan(cmd::scan::ScanArgs),
    /// Hot-work permits: draft, sign each step, show, list, verify, site code.
    Permit(cmd::permit::PermitArgs),
    /// On-site inspections: check a welder's code, record (scans, permit, observations; sealed), list.
    Inspect(cmd::inspect::InspectArgs),
    /// The signer directory: who may sign permits (import, show; issue for admins).
    Signers(cmd::signers::SignersArgs),
    /// Enrol this device with a platform server, using an enrolment code.
    Enroll(cmd::sync::EnrollArgs),
    /// Push the outbox to the platform, then pull registry changes.
    Sync(cmd::sync::SyncArgs),
    /// Run the reference platform server (the same as the `weldguard-server` binary).
    Server(weldguard_server::Options),
}

fn main() {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let result: Result<(), Failure> = match cli.command {
        Command::Id(args) => cmd::id::run(args, &out),
        Command::Registry(args) => cmd::registry::run(args, &out),
        Command::Outbox(args) => cmd::outbox::run(args, &out),
        Command::History(args) => cmd::history::run(args, &out),
        Command::Keys(args) => cmd::keys::run(args, &out),
        Command::Code(args) => cmd::code::run(args, &out),
        Command::Decide(args) => cmd::decide::run(*args, &out),
        Command::Demo(args) => cmd::demo::run(args, &out),
        Command::Scan(args) => cmd::scan::run(args, &out),
        Command::Signers(args) => cmd::signers::run(args, &out),
        Command::Permit(args) => cmd::permit::run(args, &out),
        Command::Inspect(args) => cmd::inspect::run(args, &out),
        Command::Enroll(args) => cmd::sync::enroll(args, &out),
        Command::Sync(args) => cmd::sync::sync(args, &out),
        Command::Server(options) => weldguard_server::run(options)
            .map_err(|e| Failure::runtime("server.start", e.to_string())),
    };
    if let Err(failure) = result {
        out.fail(&failure);
        std::process::exit(failure.exit_code);
    }
}
