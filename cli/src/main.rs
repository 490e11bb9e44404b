//! `weldguard`: the desktop tool. Every command prints human text in the user's language (zh when LANG
//! starts with zh, else en) or, with `--json`, one JSON document with a stable shape. Bad input exits
//! non-zero with a one-line reason; a well-formed question with a negative answer exits 0.

mod cmd;
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
    /// Read the QR codes in image files, or live from a camera.
    Scan(cmd::scan::ScanArgs),
}

fn main() {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let result: Result<(), Failure> = match cli.command {
        Command::Id(args) => cmd::id::run(args, &out),
        Command::Scan(args) => cmd::scan::run(args, &out),
    };
    if let Err(failure) = result {
        out.fail(&failure);
        std::process::exit(failure.exit_code);
    }
}
