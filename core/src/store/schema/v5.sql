-- Schema version 5: what the application layer keeps (docs/adr/0015-application-layer.md).
-- The platform's trust file (its issuer keys with their validity periods, as fetched at enrolment
-- and at each sync), so a profile's trust is loaded when it opens instead of being handed in again;
-- and the device's position at a scan-to-start when the shell had one (integer 1e-7 degrees and
-- the fix's accuracy in metres; all null when the phone had no position).

CREATE TABLE trust_file (
    singleton     INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    trust_json    TEXT NOT NULL,
    fetched_at_ms INTEGER NOT NULL
);

ALTER TABLE work_sessions ADD COLUMN latitude_e7 INTEGER;
ALTER TABLE work_sessions ADD COLUMN longitude_e7 INTEGER;
ALTER TABLE work_sessions ADD COLUMN accuracy_m INTEGER;
