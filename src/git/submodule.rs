//! Submodules, fetched and placed in the tree as the Docker CLI's clone does.
//!
//! The Docker CLI (and moby's classic builder) run `git submodule update --init --recursive
//! --depth=1` after checking out the superproject, so every submodule listed in `.gitmodules`
//! is checked out, recursively, at the commit the superproject pins. dbuild does the same in
//! memory, with one difference on purpose: it asks for the pinned commit by id, so a commit
//! that is not a branch tip still works (it breaks `--depth=1` in Docker, moby #40616).
//! Relative URLs (`../lib.git`) are resolved against the superproject's URL as git does.

use gix_transport::bstr::ByteSlice;

use super::{Address, Error};
use crate::context::{Entry, Kind, Tree};

/// Submodules of submodules of … this deep are refused (a loop in `.gitmodules` URLs).
const MAX_DEPTH: usize = 8;

/// One `[submodule "name"]` section.
struct Module {
    path: String,
    url: Option<String>,
    /// `update = none` means `git submodule update` leaves it alone.
    skip: bool,
}

/// Fetches every submodule in `gitlinks` and puts its tree at its path in `tree`.
pub(crate) fn place(
    addr: &Address,
    tree: Tree,
    gitlinks: Vec<(Vec<u8>, gix_hash::ObjectId)>,
    depth: usize,
    warnings: &mut Vec<String>,
) -> Result<Tree, Error> {
    if gitlinks.is_empty() {
        return Ok(tree);
    }
    let modules = match tree.get(b".gitmodules") {
        Some(Entry {
            kind: Kind::File { data, .. },
            ..
        }) => data
            .load()
            .map_err(|e| e.to_string())
            .and_then(|d| parse(&d))
            .map_err(|why| Error::Fetch {
                url: addr.redacted_url(),
                why: format!(".gitmodules cannot be read: {why}"),
            })?,
        _ => Vec::new(),
    };
    let mtime = tree.mtime;
    let mut entries = tree.entries().to_vec();
    drop(tree);
    for (path, commit) in gitlinks {
        let path_str = String::from_utf8_lossy(&path).into_owned();
        let fail = |source: Error| Error::Submodule {
            path: path_str.clone(),
            source: Box::new(source),
        };
        // An uninitialised submodule is an empty directory in a checkout.
        entries.push(Entry {
            path: path.clone(),
            kind: Kind::Dir,
        });
        let module = modules
            .iter()
            .find(|m| m.path.as_bytes() == path.as_slice());
        let Some(module) = module.filter(|m| !m.skip) else {
            if module.is_none() {
                return Err(fail(Error::Fetch {
                    url: addr.redacted_url(),
                    why:
                        "no entry for this path in .gitmodules, so there is no URL to fetch it from"
                            .into(),
                }));
            }
            continue;
        };
        let url = module.url.as_deref().ok_or_else(|| {
            fail(Error::Fetch {
                url: addr.redacted_url(),
                why: "its .gitmodules entry has no url".into(),
            })
        })?;
        if depth >= MAX_DEPTH {
            return Err(fail(Error::Fetch {
                url: addr.redacted_url(),
                why: format!("submodules nest more than {MAX_DEPTH} deep (a loop?)"),
            }));
        }
        let mut sub = addr.join(url).map_err(fail)?;
        if sub.scheme() == super::Scheme::File && addr.scheme() != super::Scheme::File {
            // A remote repository must not make dbuild read this machine's files into the
            // context (git refuses the same: protocol.file.allow=user, CVE-2022-39253).
            return Err(fail(Error::Fetch {
                url: addr.redacted_url(),
                why: format!(
                    "its URL {:?} is a local path, which a remote repository may not use: dbuild reads local submodules only for a local superproject",
                    sub.redacted_url()
                ),
            }));
        }
        sub.reference = Some(commit.to_string());
        sub.subdir = None;
        let (_, subtree) = super::fetch_tree(&sub, depth + 1, warnings).map_err(fail)?;
        for e in subtree.entries() {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(&e.path);
            entries.push(Entry {
                path: p,
                kind: e.kind.clone(),
            });
        }
    }
    Tree::from_entries(mtime, entries).map_err(Error::Context)
}

/// Reads the `[submodule "…"]` sections of a `.gitmodules` file.
fn parse(data: &[u8]) -> Result<Vec<Module>, String> {
    let file = gix::config::File::try_from(data.as_bstr()).map_err(|e| e.to_string())?;
    let Some(sections) = file.sections_by_name("submodule") else {
        return Ok(Vec::new());
    };
    Ok(sections
        .filter_map(|s| {
            let path = s.value("path")?.to_str_lossy().into_owned();
            Some(Module {
                path: path.trim_end_matches('/').to_owned(),
                url: s.value("url").map(|u| u.to_str_lossy().into_owned()),
                skip: s.value("update").is_some_and(|u| u == "none"),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitmodules() {
        let m = parse(
            b"[submodule \"a\"]\n\tpath = lib/a\n\turl = ../a.git\n[submodule \"b\"]\n\tpath = b\n\turl = https://h/b\n\tupdate = none\n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].path.as_str(), m[0].url.as_deref()),
            ("lib/a", Some("../a.git"))
        );
        assert!(m[1].skip);
        assert!(parse(b"[broken").is_err());
    }

    #[test]
    fn relative_urls() {
        let cases = [
            (
                "http://h:1/a/super.git",
                "../sub.git",
                "http://h:1/a/sub.git",
            ),
            ("http://u:p@h/super.git", "../sub.git", "http://h/sub.git"),
            ("https://h/a/super", "./inner", "https://h/a/super/inner"),
            ("git@h:org/super.git", "../lib.git", "git@h:org/lib.git"),
            ("git@h:super.git", "../lib.git", "git@h:lib.git"),
            ("/srv/git/super.git", "../sub.git", "/srv/git/sub.git"),
            (
                "file:///srv/super.git/",
                "../sub.git",
                "file:///srv/sub.git",
            ),
            (
                "git://h/super.git",
                "git://other/x.git",
                "git://other/x.git",
            ),
        ];
        for (base, rel, want) in cases {
            let a = Address::parse(base).unwrap().join(rel).unwrap();
            assert_eq!(a.redacted_url(), want, "{base} + {rel}");
        }
        let a = Address::parse("http://u:p@h/super.git").unwrap();
        assert_eq!(a.join("../sub.git").unwrap().password(), Some("p"));
        assert!(Address::parse("http://h/super.git")
            .unwrap()
            .join("../../x.git")
            .is_err());
    }
}
