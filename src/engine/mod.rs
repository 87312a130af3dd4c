//! Docker Engine API client.

/// Engine errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// placeholder
    #[error("engine: {0}")]
    Other(String),
}
