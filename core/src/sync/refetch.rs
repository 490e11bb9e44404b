//! Refetching single registry collections after drift: the device empties a collection that no
//! longer matches the platform's checksum and downloads it again page by page, instead of the whole
//! registry. Each page lands with the position of the next in one transaction, so an interrupted
//! refetch resumes where it stopped at the next sync; the usual pull then replays the changes after
//! the device's feed cursor, which were never skipped.

use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;

use super::checksum::Collection;
use super::client::{Progress, SyncClient, SyncPhase, SyncReport, encode, now_ms};
use super::error::SyncError;
use super::protocol::CollectionPage;
use crate::store::Store;

/// Rows asked for per page.
const REFETCH_PAGE: u32 = 5_000;

impl SyncClient {
    /// Finish every collection refetch under way on the device, counting the rows into
    /// `report.refetched_rows`.
    pub(super) fn finish_refetches(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        for (collection, after) in store.collection_refetches()? {
            let mut after = (!after.is_empty()).then_some(after);
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(SyncError::Cancelled);
                }
                let page = self.fetch_collection_page(collection, after.as_deref(), cancel)?;
                if page.collection != collection
                    || (page.next_after.is_some() && page.changes.is_empty())
                {
                    return Err(SyncError::BadResponse(format!(
                        "a {} refetch page for another collection, or empty but announcing more",
                        collection.name()
                    )));
                }
                let rows = page.changes.len() as u64;
                store.apply_collection_page(
                    collection,
                    page.changes,
                    page.next_after.as_deref(),
                    now_ms(),
                )?;
                report.refetched_rows += rows;
                progress(Progress {
                    phase: SyncPhase::Pull,
                    done: report.refetched_rows,
                    total: None,
                });
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(())
    }

    fn fetch_collection_page(
        &self,
        collection: Collection,
        after: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<CollectionPage, SyncError> {
        let mut path = format!(
            "/v1/registry/collections/{}?limit={REFETCH_PAGE}",
            collection.name()
        );
        if let Some(after) = after {
            path.push_str("&after=");
            path.push_str(&encode(after));
        }
        self.call(Method::GET, &path, None, cancel)
    }
}
