//! Git sources: parse the addresses Docker users write and fetch a commit's tree into memory.
//!
//! Nothing here touches the disk: the pack the server sends is decoded as it streams in, its
//! objects are kept in memory, and the tree is read straight out of them into a
//! [`crate::context::Tree`]. Local repositories are read in place, read-only.
//!
//! Layout: [`address`](Address) parses `URL#REF:SUBDIR`; `fetch` speaks the `git://` protocol;
//! `http` speaks smart HTTP (protocol v2) over hyper; `attributes` applies `.gitattributes`
//! checkout conversions; `submodule` fetches and places submodules; `ssh` runs the system's ssh;
//! `pack` decodes a pack stream; `odb` turns a commit into a tree; `local` reads local
//! repositories.

mod address;
mod attributes;
mod fetch;
mod http;
mod local;
mod odb;
mod pack;
mod ssh;
mod submodule;

pub use address::{redact_url, Address, Scheme};
pub use ssh::SSH_COMMAND_ENV;

use crate::context::Tree;

/// Errors while parsing an address or fetching from it. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be understood.
    #[error("invalid git address {addr:?}: {why}")]
    Address {
        /// The address, credentials removed.
        addr: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// A submodule could not be fetched or placed.
    #[error("submodule {path:?}: {source}")]
    Submodule {
        /// The submodule's path in the superproject.
        path: String,
        /// Why it failed.
        source: Box<Error>,
    },
    /// Talking to the server or reading the repository failed.
    #[error("fetching {url}: {why}")]
    Fetch {
        /// The URL, credentials removed.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The branch, tag or ref after `#` does not exist in the repository.
    #[error("ref {reference:?} not found in {url}: check the branch, tag or commit after '#'")]
    RefNotFound {
        /// The reference as written after `#`.
        reference: String,
        /// The URL, credentials removed.
        url: String,
    },
    /// The address's `:SUBDIR` names a file (or symlink), not a directory.
    #[error("subdirectory {subdir:?} in {url} is not a directory: check the ':SUBDIR' part of the address")]
    NotADirectory {
        /// The subdirectory as written.
        subdir: String,
        /// The URL, credentials removed.
        url: String,
    },
    /// The address is valid but its transport is not implemented yet.
    #[error(
        "fetching {url}: {} repositories are not supported by this build",
        scheme.as_str()
    )]
    Unsupported {
        /// The URL, credentials removed.
        url: String,
        /// The unsupported scheme.
        scheme: Scheme,
    },
    /// Building the context tree from the commit failed (for example, a missing subdirectory).
    #[error(transparent)]
    Context(#[from] crate::context::Error),
}

/// The result of a fetch: the commit and its tree, rooted at the address's subdirectory.
#[derive(Debug)]
pub struct Checkout {
    /// The commit id, hex.
    pub commit: String,
    /// The context tree; `mtime` is the commit time.
    pub tree: Tree,
    /// Things the user should know that did not stop the fetch (for example, Git LFS pointer
    /// files whose content is not available), one line each, no credentials.
    pub warnings: Vec<String>,
}

/// For the `pack` fuzz target only (built with `--cfg fuzzing`): reads `pack` as a fetch does,
/// then loads every object and checks it against its id (panics on a mismatch). Returns the
/// number of objects, or the error a fetch would report.
#[cfg(fuzzing)]
pub fn fuzz_read_pack(pack: &[u8]) -> Result<usize, String> {
    pack::read_pack(pack)?.check_all()
}

/// Environment variable holding a token (or password) for http(s) repositories, used when the
/// server asks for credentials and the URL carries no password: it stays out of process lists
/// and shell history, unlike `https://user:token@host/…`.
pub const TOKEN_ENV: &str = "DBUILD_GIT_TOKEN";

/// Environment variable naming a PEM file of extra CA certificates trusted for `https://`
/// repositories (with the `https` feature), for servers behind a private CA.
pub const CA_FILE_ENV: &str = "DBUILD_GIT_CA_FILE";

/// Fetches `addr` into memory (depth 1) and returns the commit's tree, as `git clone` would
/// check it out: `.gitattributes` conversions applied, submodules in place. Blocking.
pub fn fetch_blocking(addr: &Address) -> Result<Checkout, Error> {
    let mut warnings = Vec::new();
    let (commit, tree) = fetch_tree(addr, 0, &mut warnings)?;
    let tree = match addr.subdir.as_deref() {
        Some(dir) => {
            if tree
                .get(dir.as_bytes())
                .is_some_and(|e| !matches!(e.kind, crate::context::Kind::Dir))
            {
                return Err(Error::NotADirectory {
                    subdir: dir.to_owned(),
                    url: addr.redacted_url(),
                });
            }
            tree.subtree(dir)?
        }
        None => tree,
    };
    Ok(Checkout {
        commit,
        tree,
        warnings,
    })
}

/// The whole checked-out tree of the commit `addr` names, and the commit id. `depth` counts
/// submodule nesting.
fn fetch_tree(
    addr: &Address,
    depth: usize,
    warnings: &mut Vec<String>,
) -> Result<(String, Tree), Error> {
    let resolved = match addr.scheme() {
        Scheme::Git => fetch::fetch_daemon(addr),
        Scheme::File => local::read_local(addr),
        Scheme::Http | Scheme::Https => http::fetch_http(addr),
        Scheme::Ssh => ssh::fetch_ssh(addr),
    }?;
    let fail = |why: String| Error::Fetch {
        url: addr.redacted_url(),
        why,
    };
    let tree = attributes::apply(resolved.tree, warnings).map_err(fail)?;
    let tree = submodule::place(addr, tree, resolved.gitlinks, depth, warnings)?;
    Ok((resolved.commit.to_string(), tree))
}

/// Fetches `addr` into memory on a blocking thread, so the async runtime is never stalled.
pub async fn fetch(addr: Address) -> Result<Checkout, Error> {
    let url = addr.redacted_url();
    tokio::task::spawn_blocking(move || fetch_blocking(&addr))
        .await
        .map_err(|e| Error::Fetch {
            url,
            why: format!("fetch task failed: {e}"),
        })?
}
