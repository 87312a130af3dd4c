//! The crate-wide error: one variant per layer, each converting cleanly with `?`.

/// Anything that can go wrong between a repository address and a pushed image.
///
/// The `Display` text is one line meant for a person; it never contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fetching or reading the repository failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// Building the context failed.
    #[error(transparent)]
    Context(#[from] crate::context::Error),
    /// Talking to the engine failed, or the engine reported an error.
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    /// Reading a local source failed.
    #[error(transparent)]
    Source(#[from] crate::source::Error),
    /// An image reference is invalid.
    #[error(transparent)]
    Reference(#[from] crate::reference::Error),
    /// Registry credentials could not be looked up.
    #[error(transparent)]
    Auth(#[from] crate::auth::Error),
    /// A [`crate::Job`] asks for something that cannot be done (for example a push without a
    /// tag); the text says what to change.
    #[error("{0}")]
    Request(String),
}
