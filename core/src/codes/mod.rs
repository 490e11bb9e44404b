//! Signed QR payloads: the `WG1:` envelope (Base45 of a COSE_Sign1 over compact CBOR claims) for
//! machine labels, welder credentials and device-signed presentations, and their offline verification.

pub mod signer;
