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

use crate::context::{Contents, Entry, Kind, Tree};

/// Upper bound on entries in one checkout: git trees are deduplicated by content, so a small
/// hostile pack can describe an exponentially large tree; this keeps that from eating memory.
const MAX_ENTRIES: usize = 5_000_000;

/// Upper bound on chained annotated tags (a tag of a tag of …).
const MAX_TAG_DEPTH: usize = 32;

/// Read access to git objects, however they are stored.
pub(crate) trait Objects {
    /// The object's kind and (decompressed, undeltified) bytes, or `None` if it is absent.
    fn find(&self, id: &oid) -> Result<Option<(ObjKind, Bytes)>, String>;

    /// Blob `id` as file contents, which a store may load only when they are read.
    fn blob(&self, id: &oid) -> Result<Contents, String> {
        match self.find(id)? {
            Some((ObjKind::Blob, data)) => Ok(data.into()),
            Some((kind, _)) => Err(format!("{id} should be a blob but is a {kind}")),
            None => Err(format!("blob {id} is missing")),
        }
    }
}

/// How [`MemoryOdb`] holds an object.
enum Stored {
    /// Inflated: commits, trees, tags and tiny blobs.
    Inline(ObjKind, Bytes),
    /// A blob left compressed in its pack until it is read.
    Blob(Contents),
}

/// Objects of a fetched pack, keyed by their id (computed from content by
/// [`super::pack::read_pack`], so a server cannot lie about ids).
#[derive(Default)]
pub(crate) struct MemoryOdb {
    objects: HashMap<ObjectId, Stored>,
}

impl MemoryOdb {
    /// Adds an inflated object whose id was computed from `data`.
    pub(crate) fn insert_known(&mut self, id: ObjectId, kind: ObjKind, data: Bytes) {
        self.objects.insert(id, Stored::Inline(kind, data));
    }

    /// Whether object `id` is here.
    pub(crate) fn contains(&self, id: &oid) -> bool {
        self.objects.contains_key(id)
    }

    /// Adds a blob whose contents load on demand; `id` was computed from those contents.
    pub(crate) fn insert_blob(&mut self, id: ObjectId, contents: Contents) {
        self.objects.insert(id, Stored::Blob(contents));
    }
}

#[cfg(fuzzing)]
impl MemoryOdb {
    /// Fuzzing oracle: every object loads, and what loads hashes to the id it is stored under.
    pub(crate) fn check_all(&self) -> Result<usize, String> {
        for (id, stored) in &self.objects {
            let (kind, data) = match stored {
                Stored::Inline(kind, data) => (*kind, data.clone()),
                Stored::Blob(c) => (ObjKind::Blob, c.load().map_err(|e| e.to_string())?),
            };
            let got = gix_object::compute_hash(gix_hash::Kind::Sha1, kind, &data)
                .map_err(|e| e.to_string())?;
            assert_eq!(
                got, *id,
                "an object loads to other bytes than it was hashed from"
            );
        }
        Ok(self.objects.len())
    }
}

impl Objects for MemoryOdb {
    fn find(&self, id: &oid) -> Result<Option<(ObjKind, Bytes)>, String> {
        match self.objects.get(id) {
            None => Ok(None),
            Some(Stored::Inline(kind, data)) => Ok(Some((*kind, data.clone()))),
            Some(Stored::Blob(c)) => c
                .load()
                .map(|b| Some((ObjKind::Blob, b)))
                .map_err(|e| e.to_string()),
        }
    }

    fn blob(&self, id: &oid) -> Result<Contents, String> {
        match self.objects.get(id) {
            Some(Stored::Blob(c)) => Ok(c.clone()),
            Some(Stored::Inline(ObjKind::Blob, data)) => Ok(data.clone().into()),
            Some(Stored::Inline(kind, _)) => Err(format!("{id} should be a blob but is a {kind}")),
            None => Err(format!("blob {id} is missing")),
        }
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
                    data: objects.blob(&id)?,
                    executable: item.mode.kind() == EntryKind::BlobExecutable,
                },
                EntryKind::Link => Kind::Symlink {
                    target: objects
                        .blob(&id)?
                        .load()
                        .map_err(|e| e.to_string())?
                        .to_vec(),
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
