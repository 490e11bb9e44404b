//! What the server derives from its registry feed for devices: the signed revocation status list,
//! the signed registry snapshot (manifest + chunks) for first syncs, and per-collection checksums.
//!
//! All three come from one in-memory view of the registry, [`RegistryView`], built by replaying the
//! change feed through the same pull API devices use and then kept current by replaying only the
//! changes after its cursor. The view is a cache, not state: any server process builds its own, and a
//! restart rebuilds it. Snapshots are cut from the view at most every [`SNAPSHOT_MAX_AGE_MS`] (a device
//! pulls the changes after a snapshot's cursor as usual), so a busy registry does not re-serialise a
//! million rows for every first sync. Snapshots are stored in the database (chunks gzip-compressed),
//! so a device may fetch the manifest from one server process and the chunks from another.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use sha2::{Digest, Sha256};
use weldguard_model::checksum::{Collection, CollectionChecksum, RegistryChecksums, collection_of};
use weldguard_model::codes::{
    IssuerKey, SnapshotChunk, SnapshotManifest, StatusList, sign_snapshot_manifest,
    sign_status_list,
};
use weldguard_model::domain::Revocation;
use weldguard_model::records::RegistryChange;

use crate::db::{DbError, Page, StoredSnapshot, collection_prefix, entity_of};

/// Changes per page when replaying the feed.
const REPLAY_PAGE: u32 = 20_000;
/// Registry changes per snapshot chunk.
pub const SNAPSHOT_CHUNK_CHANGES: usize = 20_000;
/// A snapshot is reused for this long before a new one is cut (milliseconds).
pub const SNAPSHOT_MAX_AGE_MS: i64 = 15 * 60 * 1000;

/// The feed's pull, as devices see it: changes after a cursor, at most a limit.
pub type PullFn<'a> = dyn FnMut(Option<&str>, u32) -> Result<Page, DbError> + 'a;

/// Why a document could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("a stored registry change does not parse: {0}")]
    BadChange(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("the position to page from is not one this server gave")]
    BadPosition,
    #[error("a snapshot chunk could not be (de)compressed: {0}")]
    Compression(String),
}

/// The registry as of a feed cursor: every live row, keyed by entity (the feed's own key), with
/// running checksums.
#[derive(Debug, Clone, Default)]
pub struct RegistryView {
    /// The cursor after the last change replayed (`None` before the first page).
    pub cursor: Option<String>,
    rows: BTreeMap<String, RegistryChange>,
    checksums: RegistryChecksums,
}

impl RegistryView {
    /// Each entity's newest change, by [`entity_of`].
    pub fn entries(&self) -> impl Iterator<Item = (&String, &RegistryChange)> {
        self.rows.iter()
    }

    /// Apply one change as a device would.
    fn apply(&mut self, change: RegistryChange) {
        let entity = entity_of(&change);
        if let Some(old) = self.rows.remove(&entity) {
            self.checksums.remove_row(&old);
        }
        if collection_of(&change).is_some() {
            self.checksums.add_row(&change);
            self.rows.insert(entity, change);
        }
    }

    /// Replay the feed after the view's cursor through `pull` (the server's pull, as devices see
    /// it). A cursor the feed no longer serves (history compacted past it) starts the view over.
    pub fn catch_up(&mut self, pull: &mut PullFn<'_>) -> Result<(), DocumentError> {
        loop {
            let page = match pull(self.cursor.as_deref(), REPLAY_PAGE) {
                Err(DbError::MustRefetch) if self.cursor.is_some() => {
                    *self = RegistryView::default();
                    continue;
                }
                other => other?,
            };
            for json in &page.changes_json {
                let change: RegistryChange = serde_json::from_str(json)
                    .map_err(|e| DocumentError::BadChange(e.to_string()))?;
                self.apply(change);
            }
            self.cursor = Some(page.next_cursor);
            if !page.has_more {
                return Ok(());
            }
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &RegistryChange> {
        self.rows.values()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn checksums(&self) -> Vec<CollectionChecksum> {
        self.checksums.all()
    }

    /// Up to `limit` rows of one collection after the opaque position `after` (from the start when
    /// `None`), in entity order, and the position after the last one when more follow. Positions
    /// are the hex of the entity key, so they travel in URLs untouched.
    pub fn collection_page(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<RegistryChange>, Option<String>), DocumentError> {
        use std::ops::Bound;
        let prefix = collection_prefix(collection);
        let start = match after {
            Some(hex) => {
                let key = weldguard_model::codes::from_hex(hex)
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .filter(|key| key.starts_with(prefix))
                    .ok_or(DocumentError::BadPosition)?;
                Bound::Excluded(key)
            }
            None => Bound::Included(prefix.to_owned()),
        };
        let mut rows = self
            .rows
            .range((start, Bound::Unbounded))
            .take_while(|(entity, _)| entity.starts_with(prefix));
        let page: Vec<(&String, &RegistryChange)> = rows.by_ref().take(limit).collect();
        let more = rows.next().is_some();
        let next = match page.last() {
            Some((entity, _)) if more => Some(weldguard_model::codes::to_hex(entity.as_bytes())),
            _ => None,
        };
        Ok((page.into_iter().map(|(_, c)| c.clone()).collect(), next))
    }

    /// The revocations in force.
    pub fn revocations(&self) -> Vec<Revocation> {
        self.rows
            .values()
            .filter_map(|row| match row {
                RegistryChange::Revoke(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The sequence number in a feed cursor (`EPOCH.SEQ`): status lists are numbered by it, so a later
/// list never has a lower number.
fn cursor_sequence(cursor: &str) -> u64 {
    cursor
        .rsplit('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The signed status list of the view's revocations, issued at `now` (Unix seconds).
pub fn status_list(
    view: &RegistryView,
    key: &IssuerKey,
    now: i64,
) -> Result<Vec<u8>, DocumentError> {
    let list = StatusList {
        sequence: view.cursor.as_deref().map_or(0, cursor_sequence),
        issued_at: now,
        entries: view.revocations(),
    };
    sign_status_list(key, &list).map_err(|e| DocumentError::Signing(e.to_string()))
}

/// Cut a snapshot of the view, made at `now_ms`: the signed manifest and each chunk gzip-compressed
/// (the manifest's digests cover the uncompressed bytes). The id names the cursor it was cut at, so
/// every server process cutting at the same cursor names it alike.
pub fn snapshot(
    view: &RegistryView,
    key: &IssuerKey,
    now_ms: i64,
) -> Result<StoredSnapshot, DocumentError> {
    let cursor = view.cursor.clone().unwrap_or_default();
    let rows: Vec<&RegistryChange> = view.rows().collect();
    let mut chunks = Vec::new();
    let mut listed = Vec::new();
    for part in rows.chunks(SNAPSHOT_CHUNK_CHANGES) {
        let body = serde_json::to_vec(part).map_err(|e| DocumentError::BadChange(e.to_string()))?;
        listed.push(SnapshotChunk {
            changes: u32::try_from(part.len()).unwrap_or(u32::MAX),
            bytes: body.len() as u64,
            sha256: Sha256::digest(&body).into(),
        });
        chunks.push(gzip(&body)?);
    }
    let digest = Sha256::digest(cursor.as_bytes());
    let snapshot_id = format!("s{}", weldguard_model::codes::to_hex(&digest[..12]));
    let manifest = SnapshotManifest {
        snapshot_id: snapshot_id.clone(),
        cursor: if cursor.is_empty() {
            "start".to_owned()
        } else {
            cursor
        },
        created_at: now_ms / 1000,
        chunks: listed,
    };
    let manifest = sign_snapshot_manifest(key, &manifest)
        .map_err(|e| DocumentError::Signing(e.to_string()))?;
    Ok(StoredSnapshot {
        snapshot_id,
        manifest,
        made_at_ms: now_ms,
        cursor_seq: view
            .cursor
            .as_deref()
            .map_or(0, |c| i64::try_from(cursor_sequence(c)).unwrap_or(i64::MAX)),
        chunks_gzip: chunks,
    })
}

/// Compress a chunk once, at the fast level: chunks are repetitive JSON and compress well anyway,
/// and a million-row registry is cut in about a second.
fn gzip(body: &[u8]) -> Result<Vec<u8>, DocumentError> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::fast());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map_err(|e| DocumentError::Compression(e.to_string()))
}

/// A stored chunk's original bytes.
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, DocumentError> {
    let mut out = Vec::with_capacity(body.len() * 8);
    GzDecoder::new(body)
        .read_to_end(&mut out)
        .map_err(|e| DocumentError::Compression(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weldguard_model::codes::{
        IssuerAlg, TrustStore, TrustedKey, verify_snapshot_manifest, verify_status_list,
    };
    use weldguard_model::domain::{Binding, RevocationTarget};

    fn bind(m: &str) -> RegistryChange {
        RegistryChange::Bind(Binding {
            machine_id: m.into(),
            certificate_no: "T1".into(),
        })
    }

    fn revoke(id: &str) -> RegistryChange {
        RegistryChange::Revoke(Revocation {
            target: RevocationTarget::Licence,
            id: id.into(),
        })
    }

    /// A feed in memory, paged like the server's.
    fn feed(
        changes: Vec<RegistryChange>,
    ) -> impl FnMut(Option<&str>, u32) -> Result<Page, DbError> {
        move |cursor, limit| {
            let from: usize = cursor.map_or(0, |c| cursor_sequence(c) as usize);
            let to = (from + limit as usize).min(changes.len());
            Ok(Page {
                changes_json: changes[from..to]
                    .iter()
                    .map(|c| serde_json::to_string(c).unwrap())
                    .collect(),
                next_cursor: format!("e.{to}"),
                has_more: to < changes.len(),
            })
        }
    }

    #[test]
    fn the_view_replays_deletes_and_signs_what_devices_verify() {
        let mut changes: Vec<RegistryChange> =
            (0..45_000).map(|i| bind(&format!("M-{i}"))).collect();
        changes.push(revoke("T9"));
        changes.push(revoke("T8"));
        changes.push(RegistryChange::Unrevoke(Revocation {
            target: RevocationTarget::Licence,
            id: "T8".into(),
        }));
        changes.push(RegistryChange::Unbind(Binding {
            machine_id: "M-0".into(),
            certificate_no: "T1".into(),
        }));
        let mut view = RegistryView::default();
        view.catch_up(&mut feed(changes.clone())).unwrap();
        assert_eq!(view.len(), 45_000, "44,999 bindings and one revocation");
        assert_eq!(view.cursor.as_deref(), Some("e.45004"));

        // The same rows counted from scratch give the same checksums.
        let mut fresh = RegistryChecksums::new();
        view.rows().for_each(|r| fresh.add_row(r));
        assert_eq!(fresh.all(), view.checksums());

        let key = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        let mut trust = TrustStore::new();
        trust.add(TrustedKey::for_key(&key, 0, None)).unwrap();
        let now = 1_796_000_400;
        let list =
            verify_status_list(&status_list(&view, &key, now).unwrap(), &trust, now, 60).unwrap();
        assert_eq!(list.sequence, 45_004);
        assert_eq!(list.entries.len(), 1);
        assert_eq!(list.entries[0].id, "T9");

        let snap = snapshot(&view, &key, now * 1000).unwrap();
        let manifest = verify_snapshot_manifest(&snap.manifest, &trust, now, 60).unwrap();
        assert_eq!(manifest.chunks.len(), 3);
        assert_eq!(manifest.cursor, "e.45004");
        let total: u32 = manifest.chunks.iter().map(|c| c.changes).sum();
        assert_eq!(total, 45_000);
        for (chunk, body) in manifest.chunks.iter().zip(&snap.chunks_gzip) {
            let body = gunzip(body).unwrap();
            assert_eq!(chunk.bytes, body.len() as u64);
            assert_eq!(chunk.sha256, <[u8; 32]>::from(Sha256::digest(&body)));
        }

        // A collection pages in entity order, every row once, and only that collection's rows.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let (rows, next) = view
                .collection_page(Collection::Bindings, after.as_deref(), 7_000)
                .unwrap();
            assert!(rows.len() <= 7_000);
            paged.extend(rows);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(paged.len(), 44_999);
        assert!(paged.iter().all(|c| matches!(c, RegistryChange::Bind(_))));
        let (revocations, next) = view
            .collection_page(Collection::Revocations, None, 10)
            .unwrap();
        assert_eq!((revocations, next), (vec![revoke("T9")], None));
        assert!(matches!(
            view.collection_page(Collection::Bindings, Some("zz"), 10),
            Err(DocumentError::BadPosition)
        ));
        // A position of another collection is refused, not silently read from.
        let foreign = weldguard_model::codes::to_hex("licence\u{1f}T1".as_bytes());
        assert!(
            view.collection_page(Collection::Bindings, Some(&foreign), 10)
                .is_err()
        );

        // Catching up later replays only what is new.
        changes.push(bind("M-new"));
        view.catch_up(&mut feed(changes)).unwrap();
        assert_eq!(view.len(), 45_001);
        assert_eq!(view.cursor.as_deref(), Some("e.45005"));
    }
}
