//! dbuild turns a git repository into a container image and publishes it, without a daemon of
//! its own and without writing a single file.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`git`] fetches a commit's tree into memory (no pack or checkout on disk).
//! 2. [`context`] turns a [`context::Tree`] into a deterministic tar, produced as a stream.
//! 3. [`engine`] is a small HTTP client for the Docker Engine API: it streams that tar to
//!    `POST /build` and decodes the daemon's JSON messages as they arrive.
//! 4. [`auth`] finds registry credentials where a Docker user keeps them and encodes them for
//!    `X-Registry-Auth` (push) and `X-Registry-Config` (build); [`engine`] pushes.
//!
//! [`Job`] runs the whole pipeline as one future, reporting typed [`Event`]s and returning an
//! [`Outcome`]: the entry point for schedulers, and what the `dbuild` command runs
//! (`docs/library.md`). Each layer has its own error type; [`Error`] wraps them all.
//!
//! # Example: the whole job, with [`Job`]
//!
//! ```no_run
//! # async fn job() -> Result<(), dbuild::Error> {
//! use dbuild::engine::{Engine, Settings};
//! use dbuild::reference::Reference;
//! use dbuild::{Event, Job};
//!
//! let engine = Engine::connect(Settings::from_env(None)?).await?;
//! let job = Job {
//!     tags: vec![Reference::parse("127.0.0.1:5000/demo:v1")?],
//!     push: true,
//!     credentials: dbuild::auth::Lookup::from_env(None)?,
//!     ..Job::git("git://127.0.0.1/demo.git#main")?
//! };
//! let outcome = job
//!     .run(&engine, |e| {
//!         if let Event::Step(line) = e {
//!             print!("{line}");
//!         }
//!     })
//!     .await?;
//! println!("{} {}", outcome.image_id, outcome.pushed[0].digest);
//! # Ok(()) }
//! ```
//!
//! # Example: the same, stage by stage
//!
//! ```no_run
//! # async fn job() -> Result<(), dbuild::Error> {
//! use dbuild::context::{TarBody, TarOptions};
//! use dbuild::engine::{BuildOptions, Engine, Settings};
//! use dbuild::reference::Reference;
//!
//! let checkout = dbuild::git::fetch(dbuild::git::Address::parse("git://127.0.0.1/demo.git#main")?).await?;
//! let engine = Engine::connect(Settings::from_env(None)?).await?;
//! let tag = Reference::parse("127.0.0.1:5000/demo:v1")?;
//! let options = BuildOptions { tags: vec![tag.to_string()], ..Default::default() };
//! let built = engine
//!     .build(TarBody::new(checkout.tree, TarOptions::default()), &options, |m| {
//!         if let Some(line) = &m.stream {
//!             print!("{line}");
//!         }
//!     })
//!     .await?;
//! let pushed = engine.push(&tag, None, |_| {}).await?;
//! println!("{} {}", built.image_id, pushed.digest);
//! # Ok(()) }
//! ```
//!
//! # Example: a context, in memory
//!
//! ```
//! use dbuild::context::{Entry, Kind, TarBody, TarOptions, Tree};
//!
//! // Contents come from `bytes::Bytes`, a `Vec<u8>` or a static slice.
//! let tree = Tree::from_entries(0, vec![Entry {
//!     path: b"Dockerfile".to_vec(),
//!     kind: Kind::File { data: "FROM scratch\n".into(), executable: false },
//! }])?;
//! let tar: Vec<u8> = TarBody::new(tree, TarOptions::default()).into_vec()?;
//! assert_eq!(tar.len(), 512 + 512 + 1024); // header, padded contents, end-of-archive blocks
//! # Ok::<(), dbuild::context::Error>(())
//! ```

pub mod auth;
pub mod context;
pub mod engine;
mod error;
pub mod git;
pub mod job;
pub mod reference;
pub mod source;

pub use error::Error;
pub use job::{Event, Job, Outcome};
