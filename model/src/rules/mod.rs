//! Pure decisions over plain data: resident ID numbers, licences, machines and the start-work
//! decision. No I/O and no clock reads: the time of the work is always passed in.
//!
//! The public surface the API layer and the CLI wrap:
//! - [`check_id_number`] → [`IdReport`] (GB 11643-1999 resident ID numbers);
//! - [`check_licence`] (a licence on its own, for inspections) and the rule sets ([`RULE_SETS`],
//!   [`rule_set_for`]) chosen by the date of the work;
//! - [`check_machine`] (class, retirement, label against registry);
//! - [`decide_start_work`] → [`Decision`] (every finding, allowed iff none denies);
//! - [`Finding`], [`Severity`], [`RuleCode`] (every code the rules can produce).

pub mod decision;
pub mod finding;
pub mod id_number;
pub mod licence;
pub mod machine;
pub mod registry;

pub use decision::{
    Decision, MachineEvidence, StartWorkRequest, WelderEvidence, WorkTime, compare_with_registry,
    decide_start_work,
};
pub use finding::{Finding, RuleCode, Severity};
pub use id_number::{IdProblem, IdReport, Sex, check_id_number, is_valid_id_number, province_name};
pub use licence::{
    LicenceRuleSet, LicenceTerms, RULE_SETS, RuleSetId, check_category, check_licence, check_terms,
    rule_set_for,
};
pub use machine::check_machine;
pub use registry::{MemoryRegistry, RegistryError, RegistryView};
