//! The build context: an in-memory tree of files and the tar stream made from it.
//!
//! Every source (a git commit, later a local directory or a tar) is turned into a [`Tree`] first,
//! so that `.dockerignore` and the tar writer see one model, whatever the source.

pub mod ignore;
mod tar;
mod tree;

pub use self::tar::{TarBody, TarOptions};
pub(crate) use self::tree::Load;
pub use self::tree::{Contents, Entry, Kind, Tree};

/// Errors while assembling a build context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path that would escape the context root or is otherwise unusable in a tar.
    #[error(
        "invalid path in build context: {0:?}: paths must be relative and must not contain '..'"
    )]
    InvalidPath(String),
    /// The Dockerfile named with `-f` is not in the context.
    #[error(
        "Dockerfile {0:?} not found in the build context: check -f and the context's subdirectory"
    )]
    DockerfileMissing(String),
    /// The requested subdirectory does not exist or is not a directory.
    #[error(
        "subdirectory {0:?} not found in the repository: check the ':SUBDIR' part of the address"
    )]
    SubdirMissing(String),
    /// A `.dockerignore` the docker CLI would refuse, or one that would exclude the Dockerfile.
    #[error("invalid .dockerignore: {0}")]
    Ignore(String),
    /// A file's contents could not be produced (a fetched object that no longer inflates: memory
    /// corruption or a bug, never a remote's doing, as every object is checked when it arrives).
    #[error("reading a file of the build context failed: {0}")]
    Contents(String),
}

/// Makes a loaded tree into the context `docker build` would send: applies `.dockerignore`
/// (keeping the Dockerfile and `.dockerignore` as the CLI does) and checks that `dockerfile`
/// (relative to the context root) is there.
pub fn prepare(tree: Tree, dockerfile: &str) -> Result<Tree, Error> {
    require_dockerfile(&tree, dockerfile)?;
    ignore::apply(tree, dockerfile)
}

/// Checks that `dockerfile` (relative to the context root) is a file or a link in `tree`.
pub fn require_dockerfile(tree: &Tree, dockerfile: &str) -> Result<(), Error> {
    match tree.get(&ignore::clean_path(dockerfile)).map(|e| &e.kind) {
        Some(Kind::File { .. }) | Some(Kind::Symlink { .. }) => Ok(()),
        _ => Err(Error::DockerfileMissing(dockerfile.to_owned())),
    }
}
