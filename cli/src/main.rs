//! `weldguard`: the desktop tool. Every command prints human text in the user's language (zh when LANG
//! starts with zh, else en) or, with `--json`, one JSON document with a stable shape. Bad input exits
//! non-zero with a one-line reason; a well-formed question with a negative answer exits 0.

mod cmd;
mod data_dir;
mod output;

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
    /// Enrol this device with a platform server, using an enrolment code.
    Enroll(cmd::sync::EnrollArgs),
    /// Push the outbox to the platform, then pull registry changes.
    Sync(cmd::sync::SyncArgs),
}

fn main() {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let result: Result<(), Failure> = match cli.command {
        Command::Id(args) => cmd::id::run(args, &out),
        Command::Registry(args) => cmd::registry::run(args, &out),
        Command::Outbox(args) => cmd::outbox::run(args, &out),
        Command::Enroll(args) => cmd::sync::enroll(args, &out),
        Command::Sync(args) => cmd::sync::sync(args, &out),
    };
    if let Err(failure) = result {
        out.fail(&failure);
        std::process::exit(failure.exit_code);
    }
}
