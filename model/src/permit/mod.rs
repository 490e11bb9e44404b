//! Hot-work permits (动火作业许可): the 十不准、九必须 checklist as versioned data, rule profiles per site
//! (GB 30871-2022 for chemical plants, construction sites), the life cycle along the five-in-place steps
//! (审批、清理、动火、监护、处置), a chain of ES256 signatures that shows who confirmed what and when and
//! that nothing changed afterwards, and the permit part of the start-work decision.
//!
//! Everything here is pure: time is passed in as Unix seconds, no clock reads, no I/O.

pub mod admit;
pub mod authority;
pub mod catalog;
pub mod code;
pub mod finding;
pub mod lifecycle;
pub mod model;
pub mod profile;
pub mod sample;
pub mod sign;
pub mod start_work;
pub mod succession;

pub use admit::Admission;
pub use authority::{ROLE_APPLICANT, ROLE_FIRE_WATCH, check_signature, check_signers, vouch};
pub use catalog::{
    AnswerProblem, AnswerValue, Catalog, CatalogItem, ChecklistAnswer, Evidence,
    EvidenceRequirement, GasReading, PersonRole, Section, Severity,
};
pub use code::{
    PermitCodeClaims, PermitCodeError, check_against_permit, issue_permit_code, read_permit_code,
};
pub use finding::{Finding, FindingCode};
pub use lifecycle::{Action, MACHINE_DISTANCE_KEY, RuleContext, next_state};
pub use model::{
    ActionKind, Actor, EventKind, Permit, PermitContent, PermitError, PermitEvent, PermitState,
    Person, SignedStep, StepSignature,
};
pub use profile::{
    EscalationReason, GeoPoint, LevelDecision, LevelRule, NightHours, PermitLevel, ProfileSet,
    RuleProfile, SensitivePeriod, SignerRules, Site, WorkCalendar, WorkConditions,
};
pub use sample::{SampleEvidence, sample_answers};
pub use sign::{digest, verify};
pub use start_work::{PermitCheck, PermitFinding, Verdict, permit_findings};
pub use succession::{ForkStep, safety_rank, successor_action};

#[cfg(any(test, feature = "test-support"))]
pub mod fixtures;
#[cfg(test)]
mod tests;
