//! The in-memory tree that every source produces and the tar writer consumes.

use std::sync::Arc;

use bytes::Bytes;

use super::Error;

/// Something that produces file contents on demand: a fetched pack, whose blobs stay
/// compressed until the tar stream reaches them (so a checkout never holds the whole
/// decompressed tree at once).
pub(crate) trait Load: Send + Sync {
    /// The bytes of the object `key` names. Must be exactly the length it was created with.
    fn load(&self, key: usize) -> Result<Bytes, String>;
}

/// A file's contents: bytes in memory, or bytes produced on demand when they are needed.
///
/// Sources that read a whole file anyway (a local directory, a tar on stdin, your own code) hold
/// [`Bytes`]; a git fetch keeps blobs compressed in the pack and inflates each one when the tar
/// stream reaches it. Either way the length is known up front, as a tar header needs it.
/// Equality compares the bytes (loading them if needed).
#[derive(Clone)]
pub struct Contents(Repr);

#[derive(Clone)]
enum Repr {
    Bytes(Bytes),
    Lazy {
        len: u64,
        source: Arc<dyn Load>,
        key: usize,
    },
}

impl Contents {
    /// Contents produced by `source.load(key)`, `len` bytes long.
    pub(crate) fn lazy(len: u64, source: Arc<dyn Load>, key: usize) -> Self {
        Contents(Repr::Lazy { len, source, key })
    }

    /// Length in bytes, known without loading.
    pub fn len(&self) -> u64 {
        match &self.0 {
            Repr::Bytes(b) => b.len() as u64,
            Repr::Lazy { len, .. } => *len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, loading them if they are not in memory (the result is not kept: call it once
    /// per use). Fails only if the source's data is corrupt in memory, or does not produce the
    /// promised length.
    pub fn load(&self) -> Result<Bytes, Error> {
        match &self.0 {
            Repr::Bytes(b) => Ok(b.clone()),
            Repr::Lazy { len, source, key } => {
                let b = source.load(*key).map_err(Error::Contents)?;
                if b.len() as u64 != *len {
                    return Err(Error::Contents(format!(
                        "contents are {} bytes instead of {len}",
                        b.len()
                    )));
                }
                Ok(b)
            }
        }
    }

    /// The bytes if they are already in memory.
    pub fn in_memory(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Bytes(b) => Some(b),
            Repr::Lazy { .. } => None,
        }
    }
}

impl From<Bytes> for Contents {
    fn from(b: Bytes) -> Self {
        Contents(Repr::Bytes(b))
    }
}

impl From<Vec<u8>> for Contents {
    fn from(v: Vec<u8>) -> Self {
        Contents(Repr::Bytes(Bytes::from(v)))
    }
}

impl From<&'static [u8]> for Contents {
    fn from(s: &'static [u8]) -> Self {
        Contents(Repr::Bytes(Bytes::from_static(s)))
    }
}

impl From<&'static str> for Contents {
    fn from(s: &'static str) -> Self {
        Contents(Repr::Bytes(Bytes::from_static(s.as_bytes())))
    }
}

impl PartialEq for Contents {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && match (self.load(), other.load()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
    }
}

impl Eq for Contents {}

impl std::fmt::Debug for Contents {
    // Contents can be large: show their size, not their bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Bytes(b) => write!(f, "{} bytes", b.len()),
            Repr::Lazy { len, .. } => write!(f, "{len} bytes (not loaded)"),
        }
    }
}

/// What a tree entry is. File contents are shared [`Bytes`] or loaded on demand ([`Contents`]),
/// so handing them to the HTTP body never copies them.
#[derive(Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory (mode 0755 in the tar).
    Dir,
    /// A regular file: mode 0755 when `executable`, else 0644.
    File {
        /// The file's bytes.
        data: Contents,
        /// Whether the executable bit is set.
        executable: bool,
    },
    /// A symbolic link and its target, kept verbatim.
    Symlink {
        /// The link target, as stored (not resolved).
        target: Vec<u8>,
    },
}

impl std::fmt::Debug for Kind {
    // Contents can be large: show their size, not their bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Dir => f.write_str("Dir"),
            Kind::File { data, executable } => write!(f, "File({data:?}, exec={executable})"),
            Kind::Symlink { target } => write!(f, "Symlink({:?})", String::from_utf8_lossy(target)),
        }
    }
}

/// One entry: a relative, `/`-separated path (bytes, since git allows non-UTF-8 names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the context root: no leading `/`, no `.` or `..` components.
    pub path: Vec<u8>,
    /// What the entry is.
    pub kind: Kind,
}

/// A build context as a sorted list of entries.
///
/// Entries are kept sorted by path bytes, which puts every directory before its contents and
/// makes the tar deterministic. `mtime` is stamped on every tar entry (for git sources, the
/// commit time).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    entries: Vec<Entry>,
    /// Modification time (seconds since the epoch) written for every entry.
    pub mtime: u64,
}

/// Checks that `path` is relative and has no empty, `.` or `..` components.
pub(crate) fn check_path(path: &[u8]) -> Result<(), Error> {
    // A NUL would end the name early in the tar header.
    let bad = path.is_empty()
        || path.contains(&0)
        || path
            .split(|b| *b == b'/')
            .any(|c| c.is_empty() || c == b"." || c == b"..");
    if bad {
        return Err(Error::InvalidPath(
            String::from_utf8_lossy(path).into_owned(),
        ));
    }
    Ok(())
}

impl Tree {
    /// An empty tree whose entries will carry `mtime`.
    pub fn new(mtime: u64) -> Self {
        Tree {
            entries: Vec::new(),
            mtime,
        }
    }

    /// Builds a tree from entries in any order; rejects unsafe paths and duplicates keep the last.
    pub fn from_entries(mtime: u64, mut entries: Vec<Entry>) -> Result<Self, Error> {
        for e in &entries {
            check_path(&e.path)?;
            if let Kind::Symlink { target } = &e.kind {
                if target.is_empty() || target.contains(&0) {
                    return Err(Error::InvalidPath(format!(
                        "{} (symlink with an empty target or a NUL byte in it)",
                        String::from_utf8_lossy(&e.path)
                    )));
                }
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|later, earlier| {
            if later.path == earlier.path {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        Ok(Tree { entries, mtime })
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks an entry up by its exact path.
    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_slice().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Total bytes of file contents.
    pub fn content_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match &e.kind {
                Kind::File { data, .. } => data.len(),
                _ => 0,
            })
            .sum()
    }

    /// The tree below directory `dir`, re-rooted there (Docker's `#ref:subdir`).
    pub fn subtree(self, dir: &str) -> Result<Tree, Error> {
        let clean = dir.trim_matches('/');
        if clean.is_empty() || clean == "." {
            return Ok(self);
        }
        let missing = || Error::SubdirMissing(dir.to_owned());
        check_path(clean.as_bytes()).map_err(|_| missing())?;
        match self.get(clean.as_bytes()) {
            Some(Entry {
                kind: Kind::Dir, ..
            }) => {}
            _ => return Err(missing()),
        }
        let mut prefix = clean.as_bytes().to_vec();
        prefix.push(b'/');
        let entries = self
            .entries
            .into_iter()
            .filter_map(|mut e| {
                e.path.starts_with(&prefix).then(|| {
                    e.path.drain(..prefix.len());
                    e
                })
            })
            .collect();
        Ok(Tree {
            entries,
            mtime: self.mtime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> Entry {
        Entry {
            path: p.into(),
            kind: Kind::File {
                data: b"x"[..].into(),
                executable: false,
            },
        }
    }
    fn dir(p: &str) -> Entry {
        Entry {
            path: p.into(),
            kind: Kind::Dir,
        }
    }

    #[test]
    fn sorted_parents_first() {
        let t = Tree::from_entries(0, vec![file("a/c"), file("a-b"), dir("a")]).unwrap();
        let paths: Vec<_> = t.entries().iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, vec![b"a".to_vec(), b"a-b".to_vec(), b"a/c".to_vec()]);
    }

    #[test]
    fn rejects_escaping_paths() {
        for p in ["../x", "/abs", "a/../b", "a//b", ".", "", "a/", "nul\0byte"] {
            assert!(
                Tree::from_entries(0, vec![file(p)]).is_err(),
                "{p:?} accepted"
            );
        }
    }

    #[test]
    fn subtree_reroots() {
        let t = Tree::from_entries(
            7,
            vec![
                dir("sub"),
                file("sub/Dockerfile"),
                file("top"),
                dir("sub2"),
                file("sub2/x"),
            ],
        )
        .unwrap();
        let s = t.clone().subtree("sub/").unwrap();
        assert_eq!(s.entries().len(), 1);
        assert_eq!(s.entries()[0].path, b"Dockerfile");
        assert_eq!(s.mtime, 7);
        assert!(t.clone().subtree("top").is_err());
        assert!(t.subtree("nope").is_err());
    }
}
