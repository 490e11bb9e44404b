//! Sample checklist answers: every item of the chosen sections confirmed with the evidence it asks
//! for. The demo, the benchmarks and the tests walk a permit without a person answering; they all
//! answer the same way through this one function.

use super::catalog::{
    Catalog, ChecklistAnswer, Evidence, EvidenceRequirement, GasReading, PersonRole, Section,
};
use super::lifecycle::MACHINE_DISTANCE_KEY;
use super::model::Person;

/// Who and what the sample answers name.
#[derive(Debug, Clone)]
pub struct SampleEvidence {
    /// Named where an item asks for the welder.
    pub welder: Person,
    /// Named where an item asks for any other person (fire watch, guardian, analyst's witness).
    pub fire_watch: Person,
    /// When the gas analysis was taken (Unix seconds).
    pub gas_at: i64,
    /// Where it was taken.
    pub gas_point: String,
    /// The machine-to-fire distance in metres added to must.01 (the start-work check reads it).
    pub machine_distance_m: Option<i64>,
}

impl SampleEvidence {
    /// Answers naming these two people, gas analysed at `gas_at` at the fire point, the machine
    /// 8 m from the fire.
    pub fn new(welder: Person, fire_watch: Person, gas_at: i64) -> Self {
        Self {
            welder,
            fire_watch,
            gas_at,
            gas_point: "动火点".into(),
            machine_distance_m: Some(8),
        }
    }

    /// [`SampleEvidence::new`] with the crew the benchmarks and tests use: the welder 李四
    /// (certificate T370983199001011234) and 王五 (S-002) for everyone else.
    pub fn crew(gas_at: i64) -> Self {
        Self::new(
            Person {
                name: "李四".into(),
                id: "T370983199001011234".into(),
            },
            Person {
                name: "王五".into(),
                id: "S-002".into(),
            },
            gas_at,
        )
    }
}

/// Every item of `sections` answered as confirmed, each with the evidence it requires: a photo
/// digest, a number just inside its bounds, the person of the role asked for, a gas reading well
/// under the limits.
pub fn sample_answers(
    catalog: &Catalog,
    sections: &[Section],
    sample: &SampleEvidence,
) -> Vec<ChecklistAnswer> {
    catalog
        .items
        .iter()
        .filter(|item| sections.contains(&item.section))
        .map(|item| {
            let mut evidence: Vec<Evidence> = item
                .evidence
                .iter()
                .map(|req| sample_evidence(req, sample))
                .collect();
            if item.id == "must.01"
                && let Some(metres) = sample.machine_distance_m
            {
                evidence.push(Evidence::Number {
                    key: MACHINE_DISTANCE_KEY.into(),
                    value: metres,
                });
            }
            ChecklistAnswer::confirmed(&item.id, evidence)
        })
        .collect()
}

fn sample_evidence(req: &EvidenceRequirement, sample: &SampleEvidence) -> Evidence {
    match req {
        EvidenceRequirement::Photo => Evidence::Photo {
            sha256: vec![7; 32],
        },
        EvidenceRequirement::Number { key, min, max, .. } => {
            let value = min.unwrap_or(0) + 1;
            Evidence::Number {
                key: key.clone(),
                value: max.map_or(value, |max| value.min(max)),
            }
        }
        EvidenceRequirement::Person { role } => {
            let person = if *role == PersonRole::Welder {
                &sample.welder
            } else {
                &sample.fire_watch
            };
            Evidence::Person {
                role: *role,
                name: person.name.clone(),
                id: person.id.clone(),
            }
        }
        EvidenceRequirement::GasAnalysis => Evidence::GasAnalysis {
            reading: GasReading {
                taken_at: sample.gas_at,
                lel_centi_pct: 500,
                concentration_centi_pct: 10,
                point: sample.gas_point.clone(),
                analyst: "赵六".into(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SampleEvidence {
        SampleEvidence::crew(1_800_000_000)
    }

    #[test]
    fn the_sample_answers_pass_the_builtin_checklist() {
        let catalog = Catalog::builtin().unwrap();
        let sections = [Section::Prohibition, Section::Must];
        let answers = sample_answers(&catalog, &sections, &sample());
        assert!(catalog.check_answers(&sections, &answers).is_empty());
        let expected = catalog
            .items
            .iter()
            .filter(|i| sections.contains(&i.section))
            .count();
        assert_eq!(answers.len(), expected);
        let must01 = answers.iter().find(|a| a.item_id == "must.01").unwrap();
        assert_eq!(must01.number(MACHINE_DISTANCE_KEY), Some(8));
        let post = sample_answers(&catalog, &[Section::PostWork], &sample());
        assert!(
            catalog
                .check_answers(&[Section::PostWork], &post)
                .is_empty()
        );
    }

    #[test]
    fn people_are_named_by_role() {
        let catalog = Catalog::builtin().unwrap();
        let answers = sample_answers(&catalog, &[Section::Must], &sample());
        let people: Vec<(PersonRole, String)> = answers
            .iter()
            .flat_map(|a| &a.evidence)
            .filter_map(|e| match e {
                Evidence::Person { role, name, .. } => Some((*role, name.clone())),
                _ => None,
            })
            .collect();
        assert!(!people.is_empty());
        for (role, name) in people {
            let expected = if role == PersonRole::Welder {
                "李四"
            } else {
                "王五"
            };
            assert_eq!(name, expected, "{role:?}");
        }
    }
}
