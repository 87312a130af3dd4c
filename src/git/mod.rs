//! Git sources: parse the addresses Docker users write and fetch a commit's tree into memory.
//!
//! Nothing here touches the disk: the pack the server sends is kept in memory, indexed in
//! memory, and the tree is read straight out of it into a [`crate::context::Tree`].

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
    /// Talking to the server or reading the repository failed.
    #[error("fetching {url}: {why}")]
    Fetch {
        /// The URL, credentials removed.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// Building the context tree from the commit failed (for example, a missing subdirectory).
    #[error(transparent)]
    Context(#[from] crate::context::Error),
}

/// A parsed repository address: URL plus Docker's `#ref:subdir` fragment.
#[derive(Clone)]
pub struct Address {
    /// The repository URL as given (may hold credentials; never print it, use `Display`).
    url: String,
    /// Branch, tag, commit id or full ref; `None` means the remote's default branch.
    pub reference: Option<String>,
    /// Directory inside the repository used as the context root.
    pub subdir: Option<String>,
}

impl Address {
    /// Parses `URL[#REF[:SUBDIR]]`.
    pub fn parse(addr: &str) -> Result<Address, Error> {
        let (url, fragment) = match addr.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (addr, None),
        };
        let (reference, subdir) = match fragment {
            None => (None, None),
            Some(f) => match f.split_once(':') {
                Some((r, s)) => (Some(r), Some(s)),
                None => (Some(f), None),
            },
        };
        let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Address {
            url: url.to_owned(),
            reference: nonempty(reference),
            subdir: nonempty(subdir),
        })
    }

    /// The URL with any `user:password@` removed, safe to print.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted_url())?;
        if self.reference.is_some() || self.subdir.is_some() {
            write!(f, "#{}", self.reference.as_deref().unwrap_or(""))?;
            if let Some(s) = &self.subdir {
                write!(f, ":{s}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Address({self})")
    }
}

/// Removes `userinfo@` from a URL with a scheme.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://{}", &rest[at + 1..]);
        }
    }
    url.to_owned()
}

/// The result of a fetch: the commit and its tree, rooted at the address's subdirectory.
#[derive(Debug)]
pub struct Checkout {
    /// The commit id, hex.
    pub commit: String,
    /// The context tree; `mtime` is the commit time.
    pub tree: Tree,
}

/// Fetches `addr` into memory (depth 1) and returns the commit's tree. Blocking.
pub fn fetch_blocking(addr: &Address) -> Result<Checkout, Error> {
    Err(Error::Fetch {
        url: addr.redacted_url(),
        why: "not implemented yet".into(),
    })
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
