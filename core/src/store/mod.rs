//! The device's SQLite database: registry cache, records made on the device and their outbox.
