//! The registry facts a decision consumes, behind a trait so the rules stay pure: the device's store,
//! the server's database and tests' in-memory maps all answer the same questions.

use std::collections::{HashMap, HashSet};

use crate::domain::{Binding, Licence, Machine, Revocation, RevocationTarget};

/// The registry could not be read (a storage fault, not a negative answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry unavailable: {0}")]
pub struct RegistryError(pub String);

/// Read access to the registry the platform hands out.
pub trait RegistryView {
    /// The licence with this certificate number, if the registry knows it.
    fn licence(&self, certificate_no: &str) -> Result<Option<Licence>, RegistryError>;
    /// The machine with this id, if the registry knows it.
    fn machine(&self, machine_id: &str) -> Result<Option<Machine>, RegistryError>;
    /// Whether this welder is bound to this machine (人机匹配).
    fn is_bound(&self, machine_id: &str, certificate_no: &str) -> Result<bool, RegistryError>;
    /// Whether the platform has revoked this licence, credential, issuer key or machine label.
    fn is_revoked(&self, target: RevocationTarget, id: &str) -> Result<bool, RegistryError>;
}

/// An in-memory registry, for tests, the CLI demo and small tools.
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    pub licences: HashMap<String, Licence>,
    pub machines: HashMap<String, Machine>,
    pub bindings: HashSet<Binding>,
    pub revocations: HashSet<Revocation>,
}

impl MemoryRegistry {
    pub fn add_licence(&mut self, licence: Licence) {
        self.licences
            .insert(licence.certificate_no.clone(), licence);
    }

    pub fn add_machine(&mut self, machine: Machine) {
        self.machines.insert(machine.machine_id.clone(), machine);
    }

    pub fn bind(&mut self, machine_id: &str, certificate_no: &str) {
        self.bindings.insert(Binding {
            machine_id: machine_id.to_owned(),
            certificate_no: certificate_no.to_owned(),
        });
    }

    pub fn revoke(&mut self, target: RevocationTarget, id: &str) {
        self.revocations.insert(Revocation {
            target,
            id: id.to_owned(),
        });
    }
}

impl RegistryView for MemoryRegistry {
    fn licence(&self, certificate_no: &str) -> Result<Option<Licence>, RegistryError> {
        Ok(self.licences.get(certificate_no).cloned())
    }

    fn machine(&self, machine_id: &str) -> Result<Option<Machine>, RegistryError> {
        Ok(self.machines.get(machine_id).cloned())
    }

    fn is_bound(&self, machine_id: &str, certificate_no: &str) -> Result<bool, RegistryError> {
        Ok(self.bindings.contains(&Binding {
            machine_id: machine_id.to_owned(),
            certificate_no: certificate_no.to_owned(),
        }))
    }

    fn is_revoked(&self, target: RevocationTarget, id: &str) -> Result<bool, RegistryError> {
        Ok(self.revocations.contains(&Revocation {
            target,
            id: id.to_owned(),
        }))
    }
}
