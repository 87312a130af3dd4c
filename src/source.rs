//! Where a build context comes from: a git address, a local directory, or a tar on stdin,
//! decided the way `docker build` decides it.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::context::{Entry, Kind, Tree};
use crate::git;

/// A build context's origin.
#[derive(Clone, Debug)]
pub enum Source {
    /// A git repository address with Docker's `#ref:subdir` fragment.
    Git(git::Address),
    /// A directory on the local file system, sent as it is (like `docker build DIR`).
    Dir(PathBuf),
}

/// Errors while reading a local source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {why}")]
    Read {
        /// The path.
        path: String,
        /// The operating system's reason.
        why: String,
    },
    /// Git failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// The tree is not a valid context.
    #[error(transparent)]
    Context(#[from] crate::context::Error),
}

impl Source {
    /// Decides what `s` names, as `docker build` does: an existing local directory is a
    /// directory, anything else is a git address.
    pub fn parse(s: &str) -> Result<Source, git::Error> {
        let p = Path::new(s);
        if !s.contains('#') && p.is_dir() && !looks_like_bare_repo(p) {
            return Ok(Source::Dir(p.to_path_buf()));
        }
        git::Address::parse(s).map(Source::Git)
    }

    /// Loads the context into memory.
    pub async fn load(self) -> Result<Loaded, Error> {
        match self {
            Source::Git(addr) => {
                let c = git::fetch(addr).await?;
                Ok(Loaded {
                    tree: c.tree,
                    commit: Some(c.commit),
                })
            }
            Source::Dir(dir) => {
                let tree = tokio::task::spawn_blocking(move || read_dir_tree(&dir))
                    .await
                    .map_err(|e| Error::Read {
                        path: "directory".into(),
                        why: e.to_string(),
                    })??;
                Ok(Loaded { tree, commit: None })
            }
        }
    }
}

/// A loaded context and, for git sources, the commit it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The files.
    pub tree: Tree,
    /// The commit id, for git sources.
    pub commit: Option<String>,
}

fn looks_like_bare_repo(p: &Path) -> bool {
    p.join("HEAD").is_file() && p.join("objects").is_dir() && p.join("refs").is_dir()
}

/// Reads a directory into a [`Tree`]. Symlinks are kept as links (never followed, so a link
/// loop cannot hang the walk). The tree's mtime is the newest mtime found, so an unchanged
/// directory gives the same tar.
pub fn read_dir_tree(root: &Path) -> Result<Tree, Error> {
    let err = |p: &Path, e: std::io::Error| Error::Read {
        path: p.display().to_string(),
        why: e.to_string(),
    };
    let meta = std::fs::metadata(root).map_err(|e| err(root, e))?;
    if !meta.is_dir() {
        return Err(Error::Read {
            path: root.display().to_string(),
            why: "not a directory".into(),
        });
    }
    let mut entries = Vec::new();
    let mut newest = 0u64;
    let mut stack = vec![(root.to_path_buf(), Vec::<u8>::new())];
    while let Some((dir, rel)) = stack.pop() {
        for item in std::fs::read_dir(&dir).map_err(|e| err(&dir, e))? {
            let item = item.map_err(|e| err(&dir, e))?;
            let path = item.path();
            let md = std::fs::symlink_metadata(&path).map_err(|e| err(&path, e))?;
            let mut relpath = rel.clone();
            if !relpath.is_empty() {
                relpath.push(b'/');
            }
            relpath.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(
                item.file_name().as_os_str(),
            ));
            if let Ok(t) = md.modified() {
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                newest = newest.max(secs);
            }
            let ft = md.file_type();
            let kind = if ft.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| err(&path, e))?;
                Kind::Symlink {
                    target: std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec(),
                }
            } else if ft.is_dir() {
                stack.push((path.clone(), relpath.clone()));
                Kind::Dir
            } else if ft.is_file() {
                let data = std::fs::read(&path).map_err(|e| err(&path, e))?;
                let executable =
                    std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o100 != 0;
                Kind::File {
                    data: Bytes::from(data),
                    executable,
                }
            } else {
                // Sockets, fifos and devices cannot be sent; the Docker CLI skips them too.
                continue;
            };
            entries.push(Entry {
                path: relpath,
                kind,
            });
        }
    }
    Ok(Tree::from_entries(newest, entries)?)
}
