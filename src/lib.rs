//! dbuild turns a git repository into a container image and publishes it, without a daemon of
//! its own and without writing a single file.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`git`] fetches a commit's tree into memory (no pack or checkout on disk).
//! 2. [`context`] turns a [`context::Tree`] into a deterministic tar, produced as a stream.
//! 3. [`engine`] is a small HTTP client for the Docker Engine API: it streams that tar to
//!    `POST /build` and decodes the daemon's JSON messages as they arrive.
//! 4. [`auth`] encodes registry credentials for `X-Registry-Auth`; [`engine`] pushes.
//!
//! Each layer has its own error type; [`Error`] wraps them all.

pub mod auth;
pub mod context;
pub mod engine;
mod error;
pub mod git;
pub mod reference;
pub mod source;

pub use error::Error;
