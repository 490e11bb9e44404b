//! Pure decisions over plain data: resident ID numbers, licences, machines and the start-work
//! decision. No I/O and no clock reads: the time of the work is always passed in.

pub mod registry;
