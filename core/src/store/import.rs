//! Registry import files (`weldguard registry import FILE`): JSON lines or CSV of licences, machines and
//! bindings. Parsing is separate from writing: every row is checked here, rejected rows are reported
//! with their line numbers and reasons, and the accepted rows go to the store in one batch.
