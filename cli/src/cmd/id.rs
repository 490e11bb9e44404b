//! `weldguard id check ID`: is this a well-formed resident ID number?

use clap::{Args, Subcommand};

use crate::output::{Failure, Output};

#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(subcommand)]
    command: IdCommand,
}

#[derive(Debug, Subcommand)]
enum IdCommand {
    /// Check an 18-character (or legacy 15-digit) resident ID number.
    Check { id: String },
}

pub fn run(args: IdArgs, _out: &Output) -> Result<(), Failure> {
    match args.command {
        IdCommand::Check { id } => Err(Failure::runtime("todo", format!("not wired yet: {id}"))),
    }
}
