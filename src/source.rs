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
    /// A tar (plain or gzip) on standard input (`docker build -`).
    Stdin,
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
        if s == "-" {
            return Ok(Source::Stdin);
        }
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
                    warnings: c.warnings,
                })
            }
            Source::Stdin => {
                local("standard input", || read_tar_tree(std::io::stdin().lock())).await
            }
            Source::Dir(dir) => local("the directory", move || read_dir_tree(&dir)).await,
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
    /// Things the user should know (see [`crate::git::Checkout::warnings`]).
    pub warnings: Vec<String>,
}

/// Reads a local source on a blocking thread (file reads would stall the async runtime).
async fn local(
    what: &str,
    read: impl FnOnce() -> Result<Tree, Error> + Send + 'static,
) -> Result<Loaded, Error> {
    let tree = tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| Error::Read {
            path: what.into(),
            why: e.to_string(),
        })??;
    Ok(Loaded {
        tree,
        commit: None,
        warnings: Vec::new(),
    })
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
                    data: Bytes::from(data).into(),
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

/// Reads a tar (gzip-compressed or not, as `docker build -` accepts) into a [`Tree`].
/// Hard links and special files are left out; paths are cleaned of a leading `./`.
pub fn read_tar_tree(input: impl std::io::Read) -> Result<Tree, Error> {
    let err = |why: String| Error::Read {
        path: "the tar on standard input".into(),
        why,
    };
    let mut raw = Vec::new();
    let mut input = input;
    input
        .read_to_end(&mut raw)
        .map_err(|e| err(e.to_string()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut plain)
            .map_err(|e| err(format!("bad gzip data: {e}")))?;
        raw = plain;
    }
    let mut entries = Vec::new();
    let mut newest = 0;
    let mut archive = tar::Archive::new(&raw[..]);
    for item in archive.entries().map_err(|e| err(e.to_string()))? {
        let mut item = item.map_err(|e| err(format!("not a valid tar: {e}")))?;
        let mut path = item.path_bytes().into_owned();
        while path.starts_with(b"./") {
            path.drain(..2);
        }
        while path.ends_with(b"/") {
            path.pop();
        }
        if path.is_empty() || path == b"." {
            continue;
        }
        let header = item.header();
        newest = newest.max(header.mtime().unwrap_or(0));
        let mode = header.mode().unwrap_or(0o644);
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink {
                target: item
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::with_capacity(item.size() as usize);
                std::io::Read::read_to_end(&mut item, &mut data).map_err(|e| err(e.to_string()))?;
                Kind::File {
                    data: Bytes::from(data).into(),
                    executable: mode & 0o100 != 0,
                }
            }
            _ => continue,
        };
        entries.push(Entry { path, kind });
    }
    add_missing_parents(&mut entries);
    Ok(Tree::from_entries(newest, entries)?)
}

/// A tar may list `a/b` without `a/`; the tree wants every directory present.
fn add_missing_parents(entries: &mut Vec<Entry>) {
    let have: std::collections::HashSet<Vec<u8>> = entries.iter().map(|e| e.path.clone()).collect();
    let mut add = std::collections::BTreeSet::new();
    for e in entries.iter() {
        for (i, b) in e.path.iter().enumerate() {
            if *b == b'/' && !have.contains(&e.path[..i]) {
                add.insert(e.path[..i].to_vec());
            }
        }
    }
    entries.extend(add.into_iter().map(|path| Entry {
        path,
        kind: Kind::Dir,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{TarBody, TarOptions};

    #[test]
    fn a_tar_round_trips_through_the_tree() {
        let tree = Tree::from_entries(
            42,
            vec![
                Entry {
                    path: b"d".to_vec(),
                    kind: Kind::Dir,
                },
                Entry {
                    path: b"d/x.sh".to_vec(),
                    kind: Kind::File {
                        data: Bytes::from_static(b"echo").into(),
                        executable: true,
                    },
                },
                Entry {
                    path: b"l".to_vec(),
                    kind: Kind::Symlink {
                        target: b"d/x.sh".to_vec(),
                    },
                },
            ],
        )
        .unwrap();
        let tar: Vec<u8> = TarBody::new(tree.clone(), TarOptions::default())
            .into_vec()
            .unwrap();
        assert_eq!(read_tar_tree(&tar[..]).unwrap(), tree);
        let gz: Vec<u8> = TarBody::new(
            tree.clone(),
            TarOptions {
                gzip_level: Some(1),
            },
        )
        .into_vec()
        .unwrap();
        assert_eq!(read_tar_tree(&gz[..]).unwrap(), tree);
    }

    #[test]
    fn parents_are_added_and_garbage_is_an_error() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "./a/b/c", &b"x"[..]).unwrap();
        let t = read_tar_tree(&b.into_inner().unwrap()[..]).unwrap();
        let paths: Vec<_> = t
            .entries()
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c"]);
        let e = read_tar_tree(&b"this is not a tar at all, not even close. "[..].repeat(20)[..])
            .unwrap_err();
        assert!(e.to_string().contains("standard input"), "{e}");
    }
}
