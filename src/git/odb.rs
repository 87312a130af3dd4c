//! Object lookup and the commit -> [`Tree`] walk shared by every source.
//!
//! The network fetch keeps its objects in a [`MemoryOdb`]; local repositories are read through
//! gix's object database. Both implement [`Objects`], so peeling tags, reading the commit time
//! and turning git trees into context entries happens in exactly one place.

use std::collections::HashMap;

use bytes::Bytes;
use gix_hash::{oid, ObjectId};
use gix_object::tree::EntryKind;
use gix_object::Kind as ObjKind;

use crate::context::{Entry, Kind, Tree};

/// Upper bound on entries in one checkout: git trees are deduplicated by content, so a small
/// hostile pack can describe an exponentially large tree; this keeps that from eating memory.
const MAX_ENTRIES: usize = 5_000_000;

/// Upper bound on chained annotated tags (a tag of a tag of …).
const MAX_TAG_DEPTH: usize = 32;

/// Read access to git objects, however they are stored.
pub(crate) trait Objects {
    /// The object's kind and (decompressed, undeltified) bytes, or `None` if it is absent.
    fn find(&self, id: &oid) -> Result<Option<(ObjKind, Bytes)>, String>;
}

/// Objects held in memory, keyed by id; contents are shared [`Bytes`] so building the tree
/// does not copy file contents.
#[derive(Default)]
pub(crate) struct MemoryOdb {
    objects: HashMap<ObjectId, (ObjKind, Bytes)>,
}

impl MemoryOdb {
    /// Adds an object under the id computed from its contents (so a server cannot lie about ids).
    pub(crate) fn insert(&mut self, kind: ObjKind, data: Bytes) -> Result<ObjectId, String> {
        let id = gix_object::compute_hash(gix_hash::Kind::Sha1, kind, &data)
            .map_err(|e| format!("hashing an object failed: {e}"))?;
        self.objects.insert(id, (kind, data));
        Ok(id)
    }

    /// The object stored under `id`.
    pub(crate) fn get(&self, id: &oid) -> Option<&(ObjKind, Bytes)> {
        self.objects.get(id)
    }
}

impl Objects for MemoryOdb {
    fn find(&self, id: &oid) -> Result<Option<(ObjKind, Bytes)>, String> {
        Ok(self.objects.get(id).cloned())
    }
}

/// What [`checkout`] produces: the commit it landed on and its whole tree.
pub(crate) struct Resolved {
    /// The commit (after peeling tags).
    pub commit: ObjectId,
    /// The commit's tree; `mtime` is the committer time. Submodules are not in it.
    pub tree: Tree,
    /// Submodules: each gitlink's path and the commit it pins.
    pub gitlinks: Vec<(Vec<u8>, ObjectId)>,
}

/// Peels `start` (a commit or annotated tag) to a commit and reads its whole tree.
pub(crate) fn checkout(objects: &impl Objects, start: ObjectId) -> Result<Resolved, String> {
    let mut id = start;
    let mut depth = 0;
    let commit_data = loop {
        let (kind, data) = objects.find(&id)?.ok_or_else(|| {
            if id == start {
                format!("commit {id} is not in the repository")
            } else {
                format!("object {id} (target of tag {start}) is missing")
            }
        })?;
        match kind {
            ObjKind::Commit => break data,
            ObjKind::Tag if depth < MAX_TAG_DEPTH => {
                let tag = gix_object::TagRef::from_bytes(&data, gix_hash::Kind::Sha1)
                    .map_err(|e| format!("tag {id} is malformed: {e}"))?;
                id = ObjectId::from_hex(tag.target)
                    .map_err(|e| format!("tag {id} has a malformed target: {e}"))?;
                depth += 1;
            }
            other => {
                return Err(format!(
                    "{start} points to a {other}, not a commit: name a branch, tag or commit"
                ));
            }
        }
    };
    let commit = gix_object::CommitRef::from_bytes(&commit_data, gix_hash::Kind::Sha1)
        .map_err(|e| format!("commit {id} is malformed: {e}"))?;
    // Committer time, as `git log --format=%ct`: it is what changes when the commit is made.
    let mtime = commit
        .committer()
        .map(|s| s.seconds())
        .map_err(|e| format!("commit {id} has a malformed committer: {e}"))?;
    let mtime = u64::try_from(mtime).unwrap_or(0);
    let root = commit.tree();

    let mut entries = Vec::new();
    let mut gitlinks = Vec::new();
    let mut stack: Vec<(Vec<u8>, ObjectId)> = vec![(Vec::new(), root)];
    while let Some((prefix, tree_id)) = stack.pop() {
        let (kind, data) = objects
            .find(&tree_id)?
            .ok_or_else(|| format!("tree {tree_id} is missing"))?;
        if kind != ObjKind::Tree {
            return Err(format!("{tree_id} should be a tree but is a {kind}"));
        }
        for item in gix_object::TreeRefIter::from_bytes(&data, gix_hash::Kind::Sha1) {
            let item = item.map_err(|e| format!("tree {tree_id} is malformed: {e}"))?;
            let name: &[u8] = item.filename;
            if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                return Err(format!(
                    "tree {tree_id} has an unusable entry name {:?}",
                    String::from_utf8_lossy(name)
                ));
            }
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            let id = item.oid.to_owned();
            let kind = match item.mode.kind() {
                EntryKind::Tree => {
                    stack.push((path.clone(), id));
                    Kind::Dir
                }
                EntryKind::Blob | EntryKind::BlobExecutable => Kind::File {
                    data: blob(objects, &id)?,
                    executable: item.mode.kind() == EntryKind::BlobExecutable,
                },
                EntryKind::Link => Kind::Symlink {
                    target: blob(objects, &id)?.to_vec(),
                },
                // Submodules are fetched and placed by the caller (see `super::submodule`).
                EntryKind::Commit => {
                    gitlinks.push((path, id));
                    continue;
                }
            };
            entries.push(Entry { path, kind });
            if entries.len() > MAX_ENTRIES {
                return Err(format!(
                    "the tree has more than {MAX_ENTRIES} entries; refusing to build such a context"
                ));
            }
        }
    }
    let tree = Tree::from_entries(mtime, entries).map_err(|e| e.to_string())?;
    Ok(Resolved {
        commit: id,
        tree,
        gitlinks,
    })
}

/// The contents of blob `id`.
fn blob(objects: &impl Objects, id: &oid) -> Result<Bytes, String> {
    match objects.find(id)? {
        Some((ObjKind::Blob, data)) => Ok(data),
        Some((kind, _)) => Err(format!("{id} should be a blob but is a {kind}")),
        None => Err(format!("blob {id} is missing")),
    }
}
