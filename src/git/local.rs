//! Local repositories (`file://` URLs and plain paths), read through gix's object database.
//!
//! No `git` program is needed and nothing is written: the repository is opened read-only with
//! gix in isolated mode (no global or system configuration, so `$HOME` is not consulted), refs
//! are resolved the same way as for remote repositories, and objects are read on demand.

use bytes::Bytes;
use gix_hash::{oid, ObjectId};
use gix_object::Kind as ObjKind;

use super::fetch::is_full_hex_id;
use super::odb::{self, Objects};
use super::{Address, Error};

/// Memory for delta bases kept while reading a local pack (git's default is 96 MiB).
const DELTA_BASE_CACHE_BYTES: usize = 64 << 20;

/// gix's object store seen through [`Objects`].
struct RepoObjects<'a>(&'a gix::Repository);

impl Objects for RepoObjects<'_> {
    fn find(&self, id: &oid) -> Result<Option<(ObjKind, Bytes)>, String> {
        match self.0.try_find_object(id.to_owned()) {
            Ok(Some(mut obj)) => {
                // Taking the buffer hands its ownership to `Bytes` without copying.
                let data = std::mem::take(&mut obj.data);
                Ok(Some((obj.kind, Bytes::from(data))))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(format!("reading object {id} failed: {e}")),
        }
    }
}

/// Reads the commit `addr` names, whole tree, from a local repository.
pub(crate) fn read_local(addr: &Address) -> Result<odb::Resolved, Error> {
    let url = addr.redacted_url();
    let fail = |why: String| Error::Fetch {
        url: url.clone(),
        why,
    };
    let path = addr
        .local_path()
        .ok_or_else(|| fail("not a local repository".into()))?;
    if !path.exists() {
        return Err(fail("repository not found: the path does not exist".into()));
    }
    // Isolated: only the repository's own config is read, never $HOME or /etc, and nothing is
    // created or updated on open.
    let mut repo = gix::open_opts(&path, gix::open::Options::isolated())
        .map_err(|e| fail(format!("not a git repository (or unreadable): {e}")))?;
    // Without gix's `max-performance` feature no delta-base cache is set up, so every
    // deltified object would undo its whole delta chain from the base again: profiled as the
    // bulk of reading a packed repository. A capped cache, like git's core.deltaBaseCacheLimit.
    repo.objects.set_pack_cache(|| {
        Box::new(gix_pack::cache::lru::MemoryCappedHashmap::new(
            DELTA_BASE_CACHE_BYTES,
        ))
    });

    let start: ObjectId = match addr.reference.as_deref() {
        None => match repo.head_id() {
            Ok(id) => id.detach(),
            Err(_) => {
                return Err(fail(
                    "the repository is empty: its HEAD (default branch) has no commits".into(),
                ));
            }
        },
        Some(r) if is_full_hex_id(r) => {
            ObjectId::from_hex(r.as_bytes()).map_err(|e| fail(format!("bad commit id: {e}")))?
        }
        Some(r) => {
            let candidates: Vec<String> = if r.starts_with("refs/") || r == "HEAD" {
                vec![r.to_owned()]
            } else {
                vec![
                    format!("refs/{r}"),
                    format!("refs/tags/{r}"),
                    format!("refs/heads/{r}"),
                ]
            };
            let mut found = None;
            for c in &candidates {
                let reference = repo
                    .try_find_reference(c.as_str())
                    .map_err(|e| fail(format!("reading ref {c:?} failed: {e}")))?;
                if let Some(mut reference) = reference {
                    let id = reference
                        .peel_to_id()
                        .map_err(|e| fail(format!("ref {c:?} cannot be resolved: {e}")))?;
                    found = Some(id.detach());
                    break;
                }
            }
            found.ok_or_else(|| Error::RefNotFound {
                reference: r.to_owned(),
                url: url.clone(),
            })?
        }
    };

    odb::checkout(&RepoObjects(&repo), start).map_err(fail)
}
