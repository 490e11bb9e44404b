//! WeldGuard model: what the phones and the platform both decide with and exchange, with no I/O:
//! the plain data, the signed codes, the pure rules, permits and inspections, the signer directory,
//! and the wire protocol. The device core (`weldguard-core`: store, sync client, scanning, the
//! application layer) and the reference server both build on it; neither the scanner, SQLite on the
//! device, the HTTP client nor UniFFI is compiled into it (docs/adr/0015-application-layer.md).
//!
//! - [`domain`]: the plain data every capability shares (licences, machines, categories, reasons).
//! - [`codes`]: the signed `WG1:` QR payloads (machine labels, welder credentials, presentations).
//! - [`rules`]: pure decisions (ID numbers, licences, machines, start work); time is passed in.
//! - [`permit`]: hot-work permits: checklist catalog, rule profiles, life cycle, signatures.
//! - [`signers`]: the signed directory of people who may sign permits, their keys and roles.
//! - [`inspect`]: on-site inspections (逢查必核): scans, observations, violations, signature.
//! - [`records`]: registry changes, work sessions and permit steps as devices and the platform
//!   store them.
//! - [`protocol`]: the sync protocol's wire types; [`checksum`]: per-collection registry checksums.

pub mod checksum;
pub mod codes;
pub mod domain;
pub mod inspect;
pub mod permit;
pub mod protocol;
pub mod records;
pub mod rules;
pub mod signers;
pub mod warnings;
