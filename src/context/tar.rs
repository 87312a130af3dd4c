//! Deterministic tar stream.

/// Options.
#[derive(Clone, Debug, Default)]
pub struct TarOptions {}
/// Body.
pub struct TarBody {}
