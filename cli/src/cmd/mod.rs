//! One module per command group; each has a clap `Args` type and a `run` function.

pub mod code;
pub mod decide;
pub mod demo;
pub mod history;
pub mod id;
pub mod inspect;
pub mod keys;
pub mod outbox;
pub mod permit;
pub mod registry;
pub mod scan;
pub mod signers;
pub mod sync;
