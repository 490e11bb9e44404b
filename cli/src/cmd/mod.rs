//! One module per command group; each has a clap `Args` type and a `run` function.

pub mod id;
pub mod outbox;
pub mod registry;
pub mod sync;
