//! The whole job in one call: source → context → build → push, reporting typed [`Event`]s.
//!
//! Why this module: the stages ([`crate::git`], [`crate::context`], [`crate::engine`],
//! [`crate::auth`]) are usable one by one, but a scheduler wants "build this repository at this
//! commit, push it, tell me the digest" as one future, with progress it can match on rather
//! than the engine's loosely typed JSON. The `dbuild` command runs every build through
//! [`Job::run`] too, so the library and the CLI share one pipeline.
//!
//! Nothing here is global: a [`Job`] is plain data, an [`Engine`] is a cheap clone holding only
//! its settings, and every request opens its own connection. Many jobs can run at once from one
//! process. Dropping the future returned by [`Job::run`] cancels the job: the engine connection
//! closes and Docker stops the build (see `docs/engine.md`).
//!
//! # Example
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
//!     ..Job::git("git://127.0.0.1/demo.git#main")?
//! };
//! let outcome = job
//!     .run(&engine, |event| match event {
//!         Event::Step(text) => print!("{text}"),
//!         Event::Pushed { reference, digest } => println!("{reference}@{digest}"),
//!         _ => {}
//!     })
//!     .await?;
//! println!("{} from commit {:?}", outcome.image_id, outcome.commit);
//! # Ok(()) }
//! ```

use crate::auth::{registry_config_header, Credentials, Lookup};
use crate::context::{Kind, TarBody, TarOptions, Tree};
use crate::engine::{BuildOptions, Engine, Message, PushOutcome};
use crate::reference::Reference;
use crate::source::Source;
use crate::Error;

/// One build (and optional push), described as data. Build it with [`Job::new`] or
/// [`Job::git`] and struct-update syntax; every field is public.
///
/// ```
/// use dbuild::reference::Reference;
/// use dbuild::Job;
///
/// let job = Job {
///     tags: vec![Reference::parse("registry.example.com/app:v1")?],
///     push: true,
///     ..Job::git("https://example.com/app.git#v1:docker")?
/// };
/// assert_eq!(job.tags[0].to_string(), "registry.example.com/app:v1");
/// # Ok::<(), dbuild::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Job {
    /// Where the context comes from: a git address (fetched into memory), a directory, or a
    /// tar on standard input.
    pub source: Source,
    /// Names to tag the image with; with [`Job::push`], each is pushed. They replace
    /// [`BuildOptions::tags`].
    pub tags: Vec<Reference>,
    /// Everything else `docker build` takes (`-f`, `--build-arg`, `--label`, `--target`,
    /// `--platform`, …). `tags`, `compressed` and, unless already set, `registry_config` are
    /// filled in from the job.
    pub options: BuildOptions,
    /// How the context tar is made (gzip or not).
    pub tar: TarOptions,
    /// Push every tag after a successful build.
    pub push: bool,
    /// Where registry credentials come from, for the push and for private base images
    /// (`FROM`). The default is empty: anonymous. [`Lookup::from_env`] reads them the way the
    /// Docker CLI does; a scheduler can set [`Lookup::explicit`] per job instead.
    pub credentials: Lookup,
    /// Also report every message the engine sends, undecoded, as [`Event::Engine`] (the CLI's
    /// `--progress=rawjson`). Off by default.
    pub engine_messages: bool,
}

impl Job {
    /// A job for `source` with Docker's defaults: no tags, no push, anonymous.
    ///
    /// ```
    /// let job = dbuild::Job::new(dbuild::source::Source::Dir("./app".into()));
    /// assert!(!job.push && job.tags.is_empty());
    /// ```
    pub fn new(source: Source) -> Job {
        Job {
            source,
            tags: Vec::new(),
            options: BuildOptions::default(),
            tar: TarOptions::default(),
            push: false,
            credentials: Lookup::default(),
            engine_messages: false,
        }
    }

    /// A job for a git address with Docker's `#REF:SUBDIR` fragment
    /// (`git://…`, `https://…`, `ssh://…`, `git@host:path`, `file://…`).
    ///
    /// ```
    /// let job = dbuild::Job::git("git://127.0.0.1/demo.git#main")?;
    /// # Ok::<(), dbuild::Error>(())
    /// ```
    pub fn git(address: &str) -> Result<Job, Error> {
        Ok(Job::new(Source::Git(crate::git::Address::parse(address)?)))
    }

    /// Runs the job, calling `on_event` for each step of progress, and returns what it made.
    ///
    /// Order of events: [`Event::Fetching`], [`Event::Fetched`], warnings, then the build's
    /// [`Event::ContextSent`], [`Event::Step`], [`Event::Log`] and [`Event::Progress`],
    /// [`Event::Built`], then per tag [`Event::Pushing`], [`Event::Progress`] and
    /// [`Event::Pushed`]. Credentials for the push are looked up before the build, so a missing
    /// credential helper fails the job before any work is done.
    ///
    /// Errors: [`Error::Request`] when `push` is set without tags; otherwise the failing
    /// layer's error. Dropping the future cancels the job.
    ///
    /// ```no_run
    /// # async fn f(engine: dbuild::engine::Engine) -> Result<(), dbuild::Error> {
    /// let outcome = dbuild::Job::git("git://127.0.0.1/demo.git")?
    ///     .run(&engine, |e| eprintln!("{e:?}"))
    ///     .await?;
    /// assert!(outcome.image_id.starts_with("sha256:"));
    /// # Ok(()) }
    /// ```
    pub async fn run(
        self,
        engine: &Engine,
        mut on_event: impl FnMut(Event) + Send,
    ) -> Result<Outcome, Error> {
        let Job {
            source,
            tags,
            mut options,
            tar,
            push,
            credentials,
            engine_messages,
        } = self;
        if push && tags.is_empty() {
            return Err(Error::Request(
                "push needs at least one tag to push: add a NAME:TAG".into(),
            ));
        }
        let registries: Vec<String> = tags.iter().map(|r| r.registry.clone()).collect();
        // Push credentials first: a failing helper should stop the job before the build.
        let push_credentials = if push {
            lookup_each(&credentials, &registries).await?
        } else {
            Vec::new()
        };

        on_event(Event::Fetching {
            source: describe(&source),
        });
        let loaded = source.load().await?;
        let (files, bytes) = count(&loaded.tree);
        on_event(Event::Fetched {
            commit: loaded.commit.clone(),
            files,
            bytes,
        });
        for w in loaded.warnings {
            on_event(Event::Warning(w));
        }
        let dockerfile = options
            .dockerfile
            .clone()
            .unwrap_or_else(|| "Dockerfile".into());
        let tree = crate::context::prepare(loaded.tree, &dockerfile)?;
        let (files, bytes) = count(&tree);

        if options.registry_config.is_none() {
            // As the Docker CLI does for classic builds: every credential known, so that `FROM`
            // can pull from a private registry. Helpers that fail are reported, not fatal.
            let lookup = credentials.clone();
            let regs = registries.clone();
            let (all, warnings) = blocking(move || {
                let mut warnings = Vec::new();
                let all = lookup.all_credentials(&regs, |e| {
                    warnings.push(format!("{e}; the build goes on without those credentials"))
                });
                Ok((all, warnings))
            })
            .await?;
            for w in warnings {
                on_event(Event::Warning(w));
            }
            options.registry_config = Some(registry_config_header(&all));
        }
        options.tags = tags.iter().map(|r| r.to_string()).collect();
        options.compressed = tar.gzip_level.is_some();

        let body = TarBody::new(tree, tar);
        let mut answered = false;
        let mut lines = Lines::default();
        let built = engine
            .build(body, &options, |m| {
                if !answered {
                    answered = true;
                    on_event(Event::ContextSent { files, bytes });
                }
                if engine_messages {
                    on_event(Event::Engine(m.clone()));
                }
                build_event(m, &mut lines, &mut on_event);
            })
            .await;
        // Output before a failure is still reported, before the error is.
        lines.finish(&mut on_event);
        let built = built?;
        on_event(Event::Built {
            image_id: built.image_id.clone(),
        });

        let mut pushed = Vec::new();
        for (r, c) in tags.iter().zip(&push_credentials) {
            pushed.push(push_one(engine, r, c.as_ref(), engine_messages, &mut on_event).await?);
        }
        Ok(Outcome {
            image_id: built.image_id,
            commit: loaded.commit,
            tags: options.tags,
            pushed,
        })
    }

    /// [`Job::run`], sending each event into a channel instead of calling a function: the
    /// receiving side can live in another task. Events are dropped once the receiver is gone.
    ///
    /// ```no_run
    /// # async fn f(engine: dbuild::engine::Engine) -> Result<(), dbuild::Error> {
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// tokio::spawn(async move {
    ///     while let Some(event) = rx.recv().await {
    ///         println!("{event:?}");
    ///     }
    /// });
    /// dbuild::Job::git("git://127.0.0.1/demo.git")?.run_with_channel(&engine, tx).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_with_channel(
        self,
        engine: &Engine,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
    ) -> Result<Outcome, Error> {
        self.run(engine, move |e| {
            let _ = events.send(e);
        })
        .await
    }
}

/// Pushes images already in the engine (`dbuild push`): each of `tags` with the credentials
/// `credentials` finds for its registry, all looked up before the first push. Reports
/// [`Event::Pushing`], [`Event::Progress`], [`Event::Pushed`] (and [`Event::Engine`] when
/// `engine_messages`), and returns one outcome per tag, in order.
///
/// ```no_run
/// # async fn f(engine: dbuild::engine::Engine) -> Result<(), dbuild::Error> {
/// let tags = [dbuild::reference::Reference::parse("127.0.0.1:5000/demo:v1")?];
/// let lookup = dbuild::auth::Lookup::from_env(None)?;
/// for p in dbuild::job::push(&engine, &tags, &lookup, false, |_| {}).await? {
///     println!("{}@{}", p.reference, p.digest);
/// }
/// # Ok(()) }
/// ```
pub async fn push(
    engine: &Engine,
    tags: &[Reference],
    credentials: &Lookup,
    engine_messages: bool,
    mut on_event: impl FnMut(Event) + Send,
) -> Result<Vec<PushOutcome>, Error> {
    let registries: Vec<String> = tags.iter().map(|r| r.registry.clone()).collect();
    let creds = lookup_each(credentials, &registries).await?;
    let mut out = Vec::new();
    for (r, c) in tags.iter().zip(&creds) {
        out.push(push_one(engine, r, c.as_ref(), engine_messages, &mut on_event).await?);
    }
    Ok(out)
}

/// What a finished job produced: see [`Outcome::digest`] for an example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The image ID (`sha256:…`).
    pub image_id: String,
    /// The commit built, for git sources.
    pub commit: Option<String>,
    /// The tags given to the image, as sent to the engine.
    pub tags: Vec<String>,
    /// One entry per pushed tag, in the order of [`Job::tags`]; empty without [`Job::push`].
    pub pushed: Vec<PushOutcome>,
}

impl Outcome {
    /// The manifest digest pushed for `reference` (as in [`PushOutcome::reference`],
    /// `NAME:TAG`), if it was pushed.
    ///
    /// ```
    /// use dbuild::engine::PushOutcome;
    /// let o = dbuild::Outcome {
    ///     image_id: "sha256:1".into(),
    ///     commit: None,
    ///     tags: vec!["r/app:v1".into()],
    ///     pushed: vec![PushOutcome { reference: "r/app:v1".into(), digest: "sha256:2".into() }],
    /// };
    /// assert_eq!(o.digest("r/app:v1"), Some("sha256:2"));
    /// ```
    pub fn digest(&self, reference: &str) -> Option<&str> {
        self.pushed
            .iter()
            .find(|p| p.reference == reference)
            .map(|p| p.digest.as_str())
    }
}

/// Progress of a [`Job`], in the order things happen. Build output comes as whole lines, each
/// ending in a newline (except perhaps the last); text never contains credentials.
///
/// New variants may be added; match with a `_` arm.
///
/// ```
/// use dbuild::Event;
///
/// fn show(event: Event) -> Option<String> {
///     match event {
///         Event::Step(line) => Some(line.trim_end().to_owned()),
///         Event::Pushed { reference, digest } => Some(format!("{reference}@{digest}")),
///         Event::Warning(w) => Some(format!("warning: {w}")),
///         _ => None,
///     }
/// }
/// assert_eq!(show(Event::Step("Step 1/2 : FROM x\n".into())).unwrap(), "Step 1/2 : FROM x");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The source is being read: a git address (credentials removed), a directory, or
    /// `standard input`.
    Fetching {
        /// What is being read.
        source: String,
    },
    /// The source is in memory.
    Fetched {
        /// The commit id, for git sources.
        commit: Option<String>,
        /// Regular files in the tree.
        files: usize,
        /// Bytes of file contents.
        bytes: u64,
    },
    /// The engine has answered the build request: for Docker's classic builder that means it
    /// has read the whole context. Counts are after `.dockerignore`.
    ContextSent {
        /// Regular files in the context.
        files: usize,
        /// Bytes of file contents (tar headers not counted).
        bytes: u64,
    },
    /// A build step started: `Step 2/3 : RUN make` (Docker), `STEP 2/3: RUN make` (Podman),
    /// `#5 [2/3] RUN make` (BuildKit).
    Step(String),
    /// Other build output: what a `RUN` printed, the engine's notes.
    Log(String),
    /// A status line with an id, and byte counts when the engine sends them: base image pulls
    /// during a build (`reference` is `None`), layers of a push.
    Progress {
        /// The reference being pushed; `None` during the build.
        reference: Option<String>,
        /// The layer (or other id) the status is about; `None` for a line of its own.
        layer: Option<String>,
        /// `Pushing`, `Pushed`, `Layer already exists`, `Downloading`, …
        status: String,
        /// Bytes done, if known.
        current: Option<u64>,
        /// Bytes in all, if known.
        total: Option<u64>,
    },
    /// The build succeeded.
    Built {
        /// The image ID (`sha256:…`).
        image_id: String,
    },
    /// A push started.
    Pushing {
        /// `NAME:TAG`.
        reference: String,
    },
    /// A push finished.
    Pushed {
        /// `NAME:TAG`.
        reference: String,
        /// The manifest digest the registry stored.
        digest: String,
    },
    /// Something the user should know that did not stop the job (Git LFS pointers, a failing
    /// credential helper for a registry the build may not need).
    Warning(String),
    /// An engine message as received, when [`Job::engine_messages`] is set.
    Engine(Message),
}

/// Whether build output `text` starts a step, in Docker's, Podman's or BuildKit's words.
///
/// ```
/// use dbuild::job::is_step;
/// assert!(is_step("Step 2/3 : RUN make\n"));
/// assert!(is_step("STEP 2/3: RUN make\n"));
/// assert!(is_step("#5 [2/3] RUN make\n"));
/// assert!(!is_step(" ---> Running in 0123abcd\n"));
/// ```
pub fn is_step(text: &str) -> bool {
    let t = text.trim_start();
    let numbered = |rest: &str| {
        let (a, b) = rest.split_once('/').unwrap_or(("", ""));
        !a.is_empty()
            && a.chars().all(|c| c.is_ascii_digit())
            && b.starts_with(|c: char| c.is_ascii_digit())
    };
    if let Some(rest) = t.strip_prefix("Step ").or_else(|| t.strip_prefix("STEP ")) {
        return numbered(rest);
    }
    // BuildKit's plain rendering: `#5 [2/3] RUN …` or `#5 [stage 2/3] …`.
    t.strip_prefix('#')
        .and_then(|r| r.split_once(' '))
        .is_some_and(|(n, rest)| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && rest.starts_with('[')
        })
}

fn build_event(m: &Message, lines: &mut Lines, on_event: &mut impl FnMut(Event)) {
    // Errors end the build and come back as its `Err`; aux (the image ID, BuildKit traces)
    // is not progress.
    if m.error_message().is_some() {
        return;
    }
    if let Some(s) = &m.stream {
        lines.push(s, on_event);
    } else if let Some(status) = &m.status {
        lines.finish(on_event);
        on_event(progress(None, m, status));
    }
}

/// Build output cut into whole lines. Docker sends a step's title and its newline as two
/// messages, and a `RUN` step's output in arbitrary pieces; events carry whole lines.
#[derive(Default)]
struct Lines {
    buf: String,
}

/// An unfinished line longer than this is reported as it is (a progress bar redrawn with `\r`
/// may never end).
const MAX_PENDING: usize = 4096;

impl Lines {
    fn push(&mut self, text: &str, on_event: &mut impl FnMut(Event)) {
        self.buf.push_str(text);
        while let Some(end) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=end).collect();
            emit(line, on_event);
        }
        if self.buf.len() > MAX_PENDING {
            self.finish(on_event);
        }
    }

    fn finish(&mut self, on_event: &mut impl FnMut(Event)) {
        if !self.buf.is_empty() {
            emit(std::mem::take(&mut self.buf), on_event);
        }
    }
}

fn emit(line: String, on_event: &mut impl FnMut(Event)) {
    on_event(if is_step(&line) {
        Event::Step(line)
    } else {
        Event::Log(line)
    });
}

fn progress(reference: Option<String>, m: &Message, status: &str) -> Event {
    let d = m.progress_detail.as_ref();
    Event::Progress {
        reference,
        layer: m.id.clone(),
        status: status.to_owned(),
        current: d.and_then(|d| d.current),
        total: d.and_then(|d| d.total),
    }
}

async fn push_one(
    engine: &Engine,
    r: &Reference,
    credentials: Option<&Credentials>,
    engine_messages: bool,
    on_event: &mut (impl FnMut(Event) + Send),
) -> Result<PushOutcome, Error> {
    let shown = format!(
        "{}:{}",
        r.repository(),
        r.tag.as_deref().unwrap_or("latest")
    );
    on_event(Event::Pushing {
        reference: shown.clone(),
    });
    let out = engine
        .push(r, credentials, |m| {
            if engine_messages {
                on_event(Event::Engine(m.clone()));
            }
            if m.error_message().is_none() {
                if let Some(status) = &m.status {
                    on_event(progress(Some(shown.clone()), m, status));
                }
            }
        })
        .await?;
    on_event(Event::Pushed {
        reference: out.reference.clone(),
        digest: out.digest.clone(),
    });
    Ok(out)
}

/// Credentials for each registry, looked up off the async threads: a helper may block (a
/// keyring waiting to be unlocked), and cancelling the job must still work meanwhile.
async fn lookup_each(
    lookup: &Lookup,
    registries: &[String],
) -> Result<Vec<Option<Credentials>>, Error> {
    let (lookup, registries) = (lookup.clone(), registries.to_vec());
    blocking(move || {
        registries
            .iter()
            .map(|r| lookup.credentials_for(r).map_err(Error::from))
            .collect()
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::Auth(crate::auth::Error::Config {
            source_name: "the credential lookup".into(),
            why: format!("it stopped: {e}"),
        }))
    })
}

fn describe(source: &Source) -> String {
    match source {
        Source::Git(a) => a.redacted_url(),
        Source::Dir(d) => d.display().to_string(),
        Source::Stdin => "standard input".into(),
    }
}

/// Regular files and their content bytes.
fn count(tree: &Tree) -> (usize, u64) {
    let files = tree
        .entries()
        .iter()
        .filter(|e| matches!(e.kind, Kind::File { .. }))
        .count();
    (files, tree.content_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let mut job = Job::git("https://user:url-secret@example.com/app.git#main").unwrap();
        job.credentials.explicit = Some(Credentials {
            username: "alice".into(),
            password: crate::auth::Secret::new("lookup-secret"),
            ..Default::default()
        });
        job.options.registry_config = Some("header-secret".into());
        let shown = format!("{job:?}");
        for secret in ["url-secret", "lookup-secret", "header-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("alice"), "{shown}");
    }

    #[test]
    fn steps_are_recognised_in_each_engines_words() {
        assert!(is_step("Step 1/3 : FROM busybox\n"));
        assert!(is_step("STEP 2/3: RUN true\n"));
        assert!(is_step("#5 [2/3] RUN make\n"));
        assert!(is_step("#3 [internal] load metadata\n"));
        assert!(!is_step(" ---> Running in 1234\n"));
        assert!(!is_step("Step by step\n"));
        assert!(!is_step("#5 0.123 output\n"));
    }

    #[test]
    fn build_messages_become_typed_events() {
        let mut got = Vec::new();
        let m = |json: &str| serde_json::from_str::<Message>(json).unwrap();
        let mut lines = Lines::default();
        for json in [
            r#"{"stream":"Step 1/2 : FROM x"}"#,
            r#"{"stream":"\n"}"#,
            r#"{"stream":"hel"}"#,
            r#"{"stream":"lo\nworld\n"}"#,
            r#"{"status":"Downloading","id":"abc","progressDetail":{"current":1,"total":2}}"#,
            r#"{"aux":{"ID":"sha256:1"}}"#,
            r#"{"errorDetail":{"message":"no"},"error":"no"}"#,
        ] {
            build_event(&m(json), &mut lines, &mut |e| got.push(e));
        }
        assert_eq!(
            got,
            vec![
                Event::Step("Step 1/2 : FROM x\n".into()),
                Event::Log("hello\n".into()),
                Event::Log("world\n".into()),
                Event::Progress {
                    reference: None,
                    layer: Some("abc".into()),
                    status: "Downloading".into(),
                    current: Some(1),
                    total: Some(2)
                },
            ]
        );
    }
}
