//! Per-collection checksums of the registry, computed the same way by the platform and the device, so
//! a device can tell whether its cache drifted from the platform's registry (a bug, a restored backup,
//! a hand-edited file) and refetch.
//!
//! Each row is put in a canonical form (the upsert change that would create it, with its categories
//! sorted and de-duplicated) and hashed with SHA-256; a collection's checksum is its row count and the
//! sum of its row digests modulo 2^256. A sum does not depend on row order, so either side computes it
//! in whatever order its storage yields rows, and it can be kept up to date by adding and subtracting
//! single rows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::records::RegistryChange;

/// The registry's collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    Licences,
    Machines,
    Bindings,
    Revocations,
    IssuerKeys,
    CalendarDays,
    SensitivePeriods,
}

impl Collection {
    pub const ALL: [Collection; 7] = [
        Collection::Licences,
        Collection::Machines,
        Collection::Bindings,
        Collection::Revocations,
        Collection::IssuerKeys,
        Collection::CalendarDays,
        Collection::SensitivePeriods,
    ];

    /// The collection's name on the wire (as serialised) and in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Licences => "licences",
            Collection::Machines => "machines",
            Collection::Bindings => "bindings",
            Collection::Revocations => "revocations",
            Collection::IssuerKeys => "issuer_keys",
            Collection::CalendarDays => "calendar_days",
            Collection::SensitivePeriods => "sensitive_periods",
        }
    }

    /// The collection a name names.
    pub fn from_name(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        match self {
            Collection::Licences => 0,
            Collection::Machines => 1,
            Collection::Bindings => 2,
            Collection::Revocations => 3,
            Collection::IssuerKeys => 4,
            Collection::CalendarDays => 5,
            Collection::SensitivePeriods => 6,
        }
    }
}

/// One collection's checksum as it travels: the row count and the hex digest sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionChecksum {
    pub collection: Collection,
    pub rows: u64,
    /// 64 hex characters: the sum of the rows' SHA-256 digests modulo 2^256 (big-endian).
    pub digest: String,
}

/// The running checksums of every collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryChecksums {
    rows: [u64; 7],
    sums: [[u64; 4]; 7],
}

/// The collection a row-creating change belongs to, or `None` for deletes (tombstones). The one
/// place that says which changes create rows; the server's feed compaction and registry view ask it.
pub fn collection_of(change: &RegistryChange) -> Option<Collection> {
    match change {
        RegistryChange::UpsertLicence(_) => Some(Collection::Licences),
        RegistryChange::UpsertMachine(_) => Some(Collection::Machines),
        RegistryChange::Bind(_) => Some(Collection::Bindings),
        RegistryChange::Revoke(_) => Some(Collection::Revocations),
        RegistryChange::UpsertIssuerKey(_) => Some(Collection::IssuerKeys),
        RegistryChange::SetCalendarDay(_) => Some(Collection::CalendarDays),
        RegistryChange::AnnouncePeriod(_) => Some(Collection::SensitivePeriods),
        RegistryChange::DeleteLicence { .. }
        | RegistryChange::DeleteMachine { .. }
        | RegistryChange::Unbind(_)
        | RegistryChange::Unrevoke(_)
        | RegistryChange::DeleteIssuerKey { .. }
        | RegistryChange::ClearCalendarDay { .. }
        | RegistryChange::WithdrawPeriod { .. } => None,
    }
}

/// SHA-256 of the canonical form of a row-creating change.
fn row_digest(change: &RegistryChange) -> [u8; 32] {
    let canonical = match change {
        RegistryChange::UpsertLicence(l) => {
            let mut l = l.clone();
            l.categories.sort();
            l.categories.dedup();
            RegistryChange::UpsertLicence(l)
        }
        other => other.clone(),
    };
    // Serialising plain data to a Vec cannot fail; an empty input would still give a stable digest.
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

/// A 256-bit big-endian digest as four little-endian-ordered u64 limbs.
fn limbs(digest: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (i, chunk) in digest.rchunks(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        out[i] = u64::from_be_bytes(word);
    }
    out
}

fn add(sum: &mut [u64; 4], value: &[u64; 4]) {
    let mut carry = false;
    for (s, v) in sum.iter_mut().zip(value) {
        let (a, c1) = s.overflowing_add(*v);
        let (b, c2) = a.overflowing_add(u64::from(carry));
        *s = b;
        carry = c1 || c2;
    }
}

fn sub(sum: &mut [u64; 4], value: &[u64; 4]) {
    let mut borrow = false;
    for (s, v) in sum.iter_mut().zip(value) {
        let (a, b1) = s.overflowing_sub(*v);
        let (b, b2) = a.overflowing_sub(u64::from(borrow));
        *s = b;
        borrow = b1 || b2;
    }
}

impl RegistryChecksums {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count a row, given as the upsert change that creates it. Deletes are ignored.
    pub fn add_row(&mut self, row: &RegistryChange) {
        if let Some(collection) = collection_of(row) {
            let i = collection.index();
            self.rows[i] = self.rows[i].wrapping_add(1);
            add(&mut self.sums[i], &limbs(&row_digest(row)));
        }
    }

    /// Take a row counted before out again (an update is a remove of the old row and an add).
    pub fn remove_row(&mut self, row: &RegistryChange) {
        if let Some(collection) = collection_of(row) {
            let i = collection.index();
            self.rows[i] = self.rows[i].wrapping_sub(1);
            sub(&mut self.sums[i], &limbs(&row_digest(row)));
        }
    }

    /// One collection's checksum.
    pub fn get(&self, collection: Collection) -> CollectionChecksum {
        let i = collection.index();
        let digest = self.sums[i]
            .iter()
            .rev()
            .map(|limb| format!("{limb:016x}"))
            .collect();
        CollectionChecksum {
            collection,
            rows: self.rows[i],
            digest,
        }
    }

    /// Every collection's checksum, in [`Collection::ALL`] order.
    pub fn all(&self) -> Vec<CollectionChecksum> {
        Collection::ALL.iter().map(|c| self.get(*c)).collect()
    }

    /// The collections whose checksum differs from the platform's (a collection the platform did not
    /// send counts as different).
    pub fn drifted(&self, platform: &[CollectionChecksum]) -> Vec<Collection> {
        Collection::ALL
            .iter()
            .copied()
            .filter(|c| !platform.iter().any(|p| p == &self.get(*c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_the_wire_names_and_read_back() {
        for c in Collection::ALL {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
            assert_eq!(Collection::from_name(c.name()), Some(c));
        }
        assert_eq!(Collection::from_name("payroll"), None);
    }

    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{Binding, Licence, LicenceStatus, OperationCategory};

    fn licence(no: &str, categories: Vec<OperationCategory>) -> RegistryChange {
        RegistryChange::UpsertLicence(Licence {
            certificate_no: no.into(),
            id_number: "11010519491231002X".into(),
            name: "王五".into(),
            categories,
            issued_on: NaiveDate::from_ymd_opt(2022, 3, 1).unwrap(),
            expires_on: NaiveDate::from_ymd_opt(2028, 3, 1).unwrap(),
            next_review_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            review_extended: false,
            status: LicenceStatus::Valid,
            employer_org: None,
        })
    }

    fn bind(m: &str, c: &str) -> RegistryChange {
        RegistryChange::Bind(Binding {
            machine_id: m.into(),
            certificate_no: c.into(),
        })
    }

    #[test]
    fn order_does_not_matter_and_category_order_is_canonical() {
        use OperationCategory::*;
        let mut a = RegistryChecksums::new();
        a.add_row(&licence("T1", vec![Brazing, FusionWeldingAndCutting]));
        a.add_row(&licence("T2", vec![PressureWelding]));
        a.add_row(&bind("M-1", "T1"));
        let mut b = RegistryChecksums::new();
        b.add_row(&bind("M-1", "T1"));
        b.add_row(&licence("T2", vec![PressureWelding]));
        b.add_row(&licence(
            "T1",
            vec![FusionWeldingAndCutting, Brazing, Brazing],
        ));
        assert_eq!(a, b);
        assert!(a.drifted(&b.all()).is_empty());
        assert_eq!(a.get(Collection::Licences).rows, 2);
        assert_eq!(a.get(Collection::Licences).digest.len(), 64);
    }

    #[test]
    fn a_changed_missing_or_extra_row_is_drift_in_its_collection_only() {
        use OperationCategory::*;
        let mut platform = RegistryChecksums::new();
        platform.add_row(&licence("T1", vec![Brazing]));
        platform.add_row(&bind("M-1", "T1"));

        let mut changed = RegistryChecksums::new();
        changed.add_row(&licence("T1", vec![PressureWelding]));
        changed.add_row(&bind("M-1", "T1"));
        assert_eq!(changed.drifted(&platform.all()), vec![Collection::Licences]);

        let mut extra = platform;
        extra.add_row(&bind("M-2", "T1"));
        assert_eq!(extra.drifted(&platform.all()), vec![Collection::Bindings]);

        // Removing the extra row restores the sum exactly (carries and borrows undo each other).
        extra.remove_row(&bind("M-2", "T1"));
        assert_eq!(extra, platform);

        // A collection the platform did not send counts as drifted.
        let partial: Vec<_> = platform.all().into_iter().skip(1).collect();
        assert_eq!(platform.drifted(&partial), vec![Collection::Licences]);
    }

    #[test]
    fn sums_wrap_modulo_two_to_the_256() {
        let mut sum = [u64::MAX; 4];
        add(&mut sum, &[1, 0, 0, 0]);
        assert_eq!(sum, [0; 4]);
        sub(&mut sum, &[1, 0, 0, 0]);
        assert_eq!(sum, [u64::MAX; 4]);
    }
}
