//! The UniFFI surface: plain records, enums and one public error enum, mapped from the domain in one
//! place. Nothing outside this module knows about FFI.
