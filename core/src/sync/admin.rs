//! The admin client (the `admin` feature: the desktop CLI and tests, never a phone): have the
//! platform issue codes, rotate its issuer key, make enrolment codes, write the registry, compact its
//! history and read the records it holds. Each call needs an admin's (or, for records, a
//! supervisor's) device token; the platform checks the role (server/src/authz.rs).

use std::sync::atomic::AtomicBool;

use reqwest::Method;

use super::SyncError;
use super::client::{SyncClient, encode};
use crate::domain::{MachineLabel, WelderCredential};
use crate::store::RegistryChange;
use crate::sync::protocol::{
    CompactRequest, EnrolmentCode, IssuedCode, NewEnrolment, RecordList, RegistryWriteResponse,
    Role, RotateKeyRequest, RotatedKey,
};

impl SyncClient {
    /// Admin: have the platform sign a machine label with its current issuer key (the label's
    /// `issued_at` becomes the signing time).
    pub fn issue_machine_label(&self, label: &MachineLabel) -> Result<IssuedCode, SyncError> {
        let body = Self::json(label)?;
        self.call(
            Method::POST,
            "/v1/admin/codes/machine",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin: have the platform sign a welder credential, signed now.
    pub fn issue_credential(&self, credential: &WelderCredential) -> Result<IssuedCode, SyncError> {
        let body = Self::json(credential)?;
        self.call(
            Method::POST,
            "/v1/admin/codes/credential",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin: start a new issuer key (EdDSA unless `algorithm` says otherwise).
    pub fn rotate_issuer_key(
        &self,
        algorithm: Option<crate::codes::IssuerAlg>,
    ) -> Result<RotatedKey, SyncError> {
        let body = Self::json(&RotateKeyRequest { algorithm })?;
        self.call(
            Method::POST,
            "/v1/admin/keys/rotate",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin: a one-time enrolment code for a person and role (who signs no permit).
    pub fn create_enrolment(&self, person: &str, role: Role) -> Result<EnrolmentCode, SyncError> {
        self.enrolment(&NewEnrolment {
            person: person.to_owned(),
            role,
            person_id: None,
            permit_roles: Vec::new(),
        })
    }

    /// Admin: a one-time enrolment code as asked, e.g. for a person with the id permits name
    /// them by and the permit roles they sign as (the signer directory).
    pub fn enrolment(&self, request: &NewEnrolment) -> Result<EnrolmentCode, SyncError> {
        let body = Self::json(request)?;
        self.call(
            Method::POST,
            "/v1/admin/enrolments",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin: record registry changes (one transaction on the server).
    pub fn write_registry(
        &self,
        changes: &[RegistryChange],
    ) -> Result<RegistryWriteResponse, SyncError> {
        let body = Self::json(&changes)?;
        self.call(
            Method::POST,
            "/v1/admin/registry",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin: write the platform's places (sites, machines' and licences' places) in one
    /// transaction (`POST /v1/admin/places`, docs/adr/0017-warnings-and-scope.md).
    pub fn write_places(
        &self,
        changes: &[weldguard_model::warnings::PlaceChange],
    ) -> Result<weldguard_model::warnings::PlacesWriteResponse, SyncError> {
        let body = Self::json(&changes)?;
        self.call(
            Method::POST,
            "/v1/admin/places",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin: a one-time enrolment code for a monitoring account of a scope (a platform account
    /// that watches warnings and the dashboard; `POST /v1/admin/monitors`).
    pub fn create_monitor(
        &self,
        request: &weldguard_model::warnings::NewMonitor,
    ) -> Result<weldguard_model::warnings::MonitorCode, SyncError> {
        let body = Self::json(request)?;
        self.call(
            Method::POST,
            "/v1/admin/monitors",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin: forget change history through `through_seq` (all of it when `None`).
    pub fn compact_history(
        &self,
        through_seq: Option<i64>,
    ) -> Result<RegistryWriteResponse, SyncError> {
        let body = Self::json(&CompactRequest { through_seq })?;
        self.call(
            Method::POST,
            "/v1/admin/history/compact",
            Some(body),
            &AtomicBool::new(false),
        )
    }

    /// Admin or supervisor: every record the platform holds (of one kind, or all), read page by
    /// page.
    pub fn records(&self, kind: Option<&str>) -> Result<RecordList, SyncError> {
        let mut all = RecordList {
            records: Vec::new(),
            next_cursor: String::new(),
            has_more: false,
        };
        loop {
            let page = self.records_page(kind, &all.next_cursor, None)?;
            all.records.extend(page.records);
            // A server that does not page answers once; one that pages moves its cursor on.
            let moved = page.next_cursor != all.next_cursor;
            all.next_cursor = page.next_cursor;
            if !page.has_more || !moved {
                return Ok(all);
            }
        }
    }

    /// Admin or supervisor: one page of the records (of one kind, or all) after `after` (a
    /// `next_cursor`; empty: from the start), at most `limit` (the server's default when `None`).
    pub fn records_page(
        &self,
        kind: Option<&str>,
        after: &str,
        limit: Option<u32>,
    ) -> Result<RecordList, SyncError> {
        let mut query = Vec::new();
        if let Some(k) = kind {
            query.push(format!("kind={}", encode(k)));
        }
        if !after.is_empty() {
            query.push(format!("after={}", encode(after)));
        }
        if let Some(n) = limit {
            query.push(format!("limit={n}"));
        }
        let path = if query.is_empty() {
            "/v1/admin/records".to_owned()
        } else {
            format!("/v1/admin/records?{}", query.join("&"))
        };
        self.call(Method::GET, &path, None, &AtomicBool::new(false))
    }
}
