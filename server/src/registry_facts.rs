//! What a push's rules read of the registry (a machine's class, a licence's expiry, the work
//! calendar): from the process's registry view ([`crate::publish::Publisher`]) at the feed cursor
//! read just before the push, or, where no view is at hand, from the push's own transaction.
//!
//! The view is the registry as devices get it (the feed replayed), so both read the same newest
//! change of an entity. A registry write committed while a push runs is seen by the next push:
//! the same as if that write had come a moment later.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use weldguard_model::domain::{LicenceStatus, MachineClass};
use weldguard_model::permit::WorkCalendar;
use weldguard_model::records::RegistryChange;

use crate::db::{DbError, PushTx, entity_of};

/// The registry as a push's rules see it.
pub struct RegistryFacts {
    /// Holidays, rest days and sensitive periods (special periods, [`crate::work_rules`]).
    pub calendar: WorkCalendar,
    /// Each entity's newest change, by [`entity_of`]; `None`: read from the transaction.
    rows: Option<Arc<HashMap<String, RegistryChange>>>,
}

impl RegistryFacts {
    /// Facts read from the push's transaction, with `calendar`.
    pub fn from_transaction(calendar: WorkCalendar) -> Self {
        RegistryFacts {
            calendar,
            rows: None,
        }
    }

    /// Facts from a registry view's rows (entity → newest change) and its calendar.
    pub fn from_view(calendar: WorkCalendar, rows: Arc<HashMap<String, RegistryChange>>) -> Self {
        RegistryFacts {
            calendar,
            rows: Some(rows),
        }
    }

    /// The newest change of `entity` (none when the registry never held it).
    fn newest(
        &self,
        tx: &mut dyn PushTx,
        entity: &str,
    ) -> Result<Option<Cow<'_, RegistryChange>>, DbError> {
        Ok(match &self.rows {
            Some(rows) => rows.get(entity).map(Cow::Borrowed),
            None => tx
                .newest_change(entity)?
                .and_then(|json| serde_json::from_str::<RegistryChange>(&json).ok())
                .map(Cow::Owned),
        })
    }

    /// The machine's class (none when unknown or deleted).
    pub fn machine_class(
        &self,
        tx: &mut dyn PushTx,
        machine_id: &str,
    ) -> Result<Option<MachineClass>, DbError> {
        let entity = entity_of(&RegistryChange::DeleteMachine {
            machine_id: machine_id.to_owned(),
        });
        Ok(self
            .newest(tx, &entity)?
            .and_then(|change| match change.as_ref() {
                RegistryChange::UpsertMachine(m) => Some(m.class),
                _ => None,
            }))
    }

    /// The expiry date the registry holds for a valid licence (none when unknown, deleted or
    /// revoked: a revoked licence is refused at every start, its expiry is nobody's concern).
    pub fn licence_expiry(
        &self,
        tx: &mut dyn PushTx,
        certificate_no: &str,
    ) -> Result<Option<NaiveDate>, DbError> {
        let entity = entity_of(&RegistryChange::DeleteLicence {
            certificate_no: certificate_no.to_owned(),
        });
        Ok(self
            .newest(tx, &entity)?
            .and_then(|change| match change.as_ref() {
                RegistryChange::UpsertLicence(l) if l.status == LicenceStatus::Valid => {
                    Some(l.expires_on)
                }
                _ => None,
            }))
    }
}
