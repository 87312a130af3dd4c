//! The `dbuild` command: a thin layer of argument parsing and output over the library.

mod progress;
mod render;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};
use dbuild::auth::{Credentials, Lookup, Secret};
use dbuild::context::{TarBody, TarOptions};
use dbuild::engine::{self, BuildOptions, Engine, Settings};
use dbuild::reference::Reference;
use dbuild::source::Source;
use dbuild::{Event, Job};

/// Environment variable holding the registry password (instead of --password-stdin).
const PASSWORD_ENV: &str = "DBUILD_PASSWORD";
/// Environment variable holding the registry user name.
const USERNAME_ENV: &str = "DBUILD_USERNAME";
/// The values of `--progress`.
const PROGRESS_MODES: [&str; 5] = ["auto", "plain", "tty", "quiet", "rawjson"];

#[derive(Parser)]
#[command(
    name = "dbuild",
    version,
    about = "Build a container image from a git repository, in memory, and push it.",
    after_help = "Examples:\n  dbuild build git://127.0.0.1:9418/demo.git -t 127.0.0.1:5000/demo:v1\n  echo \"$PW\" | dbuild build 'https://example.com/app.git#v1' -t registry.example.com/app:v1 --push -u alice --password-stdin\n  dbuild context ./app | tar -t\n  dbuild push 127.0.0.1:5000/demo:v1\n  dbuild --context remote version\n\nOutput: progress and errors on stderr; results (image ID, NAME:TAG@DIGEST) on stdout.\nExit codes: 0 success, 1 build or push failed, 2 usage or input error, 130 interrupted.\nEnvironment: DOCKER_HOST, DOCKER_CONTEXT, DOCKER_CONFIG, DOCKER_AUTH_CONFIG, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION, DBUILD_USERNAME, DBUILD_PASSWORD, DBUILD_GIT_TOKEN, DBUILD_SSH_COMMAND, DBUILD_GIT_CA_FILE, NO_COLOR (docs/cli.md)."
)]
struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: Command,
}

/// How to reach the engine (see docs/engine.md).
#[derive(Args)]
struct ConnArgs {
    /// Engine address (unix:///PATH, tcp://HOST:PORT, ssh://USER@HOST); default: $DOCKER_HOST, the Docker context, /var/run/docker.sock.
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    /// Docker context to use (overrides $DOCKER_CONTEXT and the current context).
    #[arg(long = "context", global = true, conflicts_with = "host")]
    context: Option<String>,
    /// Give up on a build or push after this many seconds (default: no limit).
    #[arg(long, value_name = "SECONDS", global = true)]
    timeout: Option<u64>,
    /// Give up when the engine sends nothing for this many seconds (default: no limit; RUN steps may be silent).
    #[arg(long, value_name = "SECONDS", global = true)]
    idle_timeout: Option<u64>,
}

impl ConnArgs {
    fn settings(&self) -> Result<Settings, Failure> {
        let mut s = Settings::resolve(self.host.as_deref(), self.context.as_deref())?;
        s.timeout = self.timeout.map(std::time::Duration::from_secs);
        s.idle_timeout = self.idle_timeout.map(std::time::Duration::from_secs);
        Ok(s)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a git URL or a local directory, and optionally push it.
    #[command(
        after_help = "Git credentials and settings (see docs/git.md): DBUILD_GIT_TOKEN (http(s) password or token), DBUILD_SSH_COMMAND (replaces ssh), DBUILD_GIT_CA_FILE (extra CA certificates, PEM).\n\nExamples:\n  dbuild build git://127.0.0.1/demo.git -t 127.0.0.1:5000/demo:v1\n  dbuild build 'https://example.com/app.git#v1.2:docker' -t app:1.2\n  dbuild build ./app -q --iidfile app.iid\n  dbuild build ./app --progress=rawjson 2> progress.jsonl\n  echo \"$PW\" | dbuild build git://127.0.0.1/demo.git -t 127.0.0.1:5000/demo:v1 --push --username alice --password-stdin"
    )]
    Build(Box<BuildArgs>),
    /// Write the build context tar that `build` would send to stdout.
    #[command(after_help = "Example:\n  dbuild context git://127.0.0.1/demo.git | tar -tv")]
    Context {
        /// git URL (with optional #REF:SUBDIR), local directory, or - for a tar on stdin.
        source: String,
        /// Dockerfile path, relative to the context root (decides what .dockerignore keeps).
        #[arg(short = 'f', long = "file")]
        file: Option<String>,
    },
    /// Push images that are already in the engine.
    #[command(
        after_help = "Example:\n  dbuild push 127.0.0.1:5000/demo:v1 --username alice --password-stdin"
    )]
    Push {
        /// Image names, with tags.
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        login: LoginArgs,
        /// Show no progress (the same as --progress=quiet).
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Progress output on stderr: auto (tty on a terminal, else plain), plain, tty, quiet, rawjson.
        #[arg(long, value_parser = PROGRESS_MODES, default_value = "auto")]
        progress: String,
    },
    /// Show dbuild's version, the engine's, and the API version they agreed on.
    #[command(
        after_help = "Examples:\n  dbuild version\n  dbuild -H ssh://user@build-host version"
    )]
    Version,
}

#[derive(Args)]
struct BuildArgs {
    /// git URL (with optional #REF:SUBDIR), local directory, or - for a tar on stdin.
    source: String,
    /// Name and tag for the image (repeatable).
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Dockerfile path, relative to the context root.
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Build-time variable (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Image label (KEY=VALUE).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Build stage to stop at.
    #[arg(long)]
    target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,
    /// Always try to pull a newer base image.
    #[arg(long)]
    pull: bool,
    /// Print only the image ID (the same as --progress=quiet).
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Progress output on stderr: auto (tty on a terminal, else plain), plain, tty, quiet, rawjson (the engine's messages as JSON lines).
    #[arg(long, value_parser = PROGRESS_MODES, default_value = "auto")]
    progress: String,
    /// Write the image ID to FILE after success.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<std::path::PathBuf>,
    /// Builder: classic, or buildkit (without a session: no private base images, secrets or ssh mounts; not on Podman).
    #[arg(long, value_parser = ["classic", "buildkit"], default_value = "classic")]
    builder: String,
    /// Networking mode for RUN (default, none, host, or a network name).
    #[arg(long)]
    network: Option<String>,
    /// Custom host-to-IP mapping for RUN (HOST:IP, repeatable).
    #[arg(long = "add-host")]
    add_hosts: Vec<String>,
    /// Target platform, for example linux/amd64.
    #[arg(long)]
    platform: Option<String>,
    /// Images to consider as cache sources (repeatable).
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// Always remove intermediate containers, even after a failure.
    #[arg(long)]
    force_rm: bool,
    /// Memory limit for RUN (bytes, or with a k, m or g suffix).
    #[arg(short = 'm', long, value_parser = size)]
    memory: Option<i64>,
    /// Memory plus swap limit (bytes with optional suffix; -1 for unlimited swap).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    cpu_period: Option<i64>,
    /// CPU CFS quota in microseconds.
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// Size of /dev/shm (bytes with optional suffix).
    #[arg(long, value_parser = size)]
    shm_size: Option<i64>,
    /// gzip the context at this level (1-9) before sending it.
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "6")]
    compress: Option<u32>,
    /// Push every tag after the build.
    #[arg(long)]
    push: bool,
    /// After success, write JSON {"image_id", "tags", "digests"} to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    login: LoginArgs,
}

#[derive(Args)]
struct LoginArgs {
    /// Registry user name (or $DBUILD_USERNAME); without one, credentials come from
    /// $DOCKER_AUTH_CONFIG, then $DOCKER_CONFIG/config.json (default ~/.docker/config.json).
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Read the registry password from stdin (or set $DBUILD_PASSWORD).
    #[arg(long)]
    password_stdin: bool,
    /// Refused: a password on the command line leaks into process lists and shell history.
    #[arg(long, hide = true)]
    password: Option<String>,
}

/// A failure, with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<dbuild::Error> for Failure {
    fn from(e: dbuild::Error) -> Self {
        use dbuild::Error as E;
        let code = match &e {
            E::Engine(engine::Error::Host { .. }) | E::Reference(_) | E::Request(_) => 2,
            E::Git(g) | E::Source(dbuild::source::Error::Git(g)) => git_code(g),
            E::Context(_) | E::Source(dbuild::source::Error::Context(_)) => 2,
            _ => 1,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Exit code for a git error: 2 when the address itself is wrong (syntax, scheme, ref,
/// subdirectory), 1 when fetching failed.
fn git_code(e: &dbuild::git::Error) -> u8 {
    use dbuild::git::Error as G;
    match e {
        G::Address { .. }
        | G::RefNotFound { .. }
        | G::Unsupported { .. }
        | G::NotADirectory { .. }
        | G::Context(_) => 2,
        _ => 1,
    }
}

impl From<engine::Error> for Failure {
    fn from(e: engine::Error) -> Self {
        dbuild::Error::from(e).into()
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return fail(Failure {
                code: 1,
                message: format!("cannot start the async runtime: {e}"),
            })
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli) => r,
            _ = interrupted() => Err(Failure { code: 130, message: "interrupted".into() }),
        }
    });
    // Shutting the runtime down drops the build future, which closes the engine connection; a
    // credential helper still running on a blocking thread is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
}

/// clap's own errors as dbuild's one line (`dbuild: error: …`, exit 2); help and version
/// requests print as clap prints them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    fail(Failure::usage(format!("{first} (see 'dbuild --help')")))
}

async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} }
        }
        _ => std::future::pending().await,
    }
}

/// Whether progress output left stderr in the middle of a line (the engine's last `stream`
/// piece need not end in a newline), so the error line starts on a line of its own.
static MID_LINE: AtomicBool = AtomicBool::new(false);

fn fail(f: Failure) -> ExitCode {
    let mut err = std::io::stderr().lock();
    if MID_LINE.load(Ordering::Relaxed) {
        let _ = writeln!(err);
    }
    let _ = writeln!(err, "dbuild: error: {}", f.message.replace('\n', " "));
    ExitCode::from(f.code)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Build(args) => build(&cli.conn, *args).await,
        Command::Context { source, file } => context(&source, file.as_deref()).await,
        Command::Push {
            names,
            login,
            quiet,
            progress,
        } => {
            let refs = parse_refs(&names)?;
            let lookup = credential_lookup(read_login(&login)?)?;
            let engine = Engine::connect(cli.conn.settings()?).await?;
            let mode = render::Mode::choose(&progress, quiet);
            let raw = mode == render::Mode::RawJson;
            with_render(mode, |on_event| {
                dbuild::job::push(&engine, &refs, &lookup, raw, on_event)
            })
            .await
            .map(|_| ())
        }
        Command::Version => {
            let engine = Engine::connect(cli.conn.settings()?).await?;
            let v = engine.server_version().await?;
            let field = |k: &str| v[k].as_str().unwrap_or("unknown").to_owned();
            println!("dbuild {}", env!("CARGO_PKG_VERSION"));
            println!(
                "engine {} ({})",
                engine.host(),
                if engine.is_podman() {
                    "podman"
                } else {
                    "docker"
                }
            );
            println!(
                "engine version {} (API {}, {}/{})",
                field("Version"),
                field("ApiVersion"),
                field("Os"),
                field("Arch")
            );
            println!("api version {}", engine.api_version());
            Ok(())
        }
    }
}

fn parse_refs(names: &[String]) -> Result<Vec<Reference>, Failure> {
    names
        .iter()
        .map(|n| Reference::parse(n).map_err(|e| Failure::usage(e.to_string())))
        .collect()
}

fn pairs(items: &[String], what: &str, from_env: bool) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_owned(), v.to_owned())),
            None if from_env && !item.is_empty() => {
                // Docker's `--build-arg KEY`: the value comes from the environment, or the arg
                // is left out when the variable is unset.
                if let Ok(v) = std::env::var(item) {
                    out.push((item.clone(), v));
                }
            }
            _ => {
                return Err(Failure::usage(format!(
                    "invalid {what} {item:?}: write KEY=VALUE"
                )))
            }
        }
    }
    Ok(out)
}

fn read_login(login: &LoginArgs) -> Result<Option<Credentials>, Failure> {
    if login.password.is_some() {
        return Err(Failure::usage("--password is not accepted (it leaks into process lists); use --password-stdin or $DBUILD_PASSWORD"));
    }
    let username = login
        .username
        .clone()
        .or_else(|| std::env::var(USERNAME_ENV).ok().filter(|s| !s.is_empty()));
    let password = if login.password_stdin {
        if std::io::stdin().is_terminal() {
            return Err(Failure::usage("--password-stdin needs the password on standard input, for example: echo \"$PW\" | dbuild ..."));
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("cannot read the password from stdin: {e}")))?;
        Some(s.trim_end_matches(['\n', '\r']).to_owned())
    } else {
        std::env::var(PASSWORD_ENV).ok().filter(|s| !s.is_empty())
    };
    match (username, password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u,
            password: Secret::new(p),
            ..Default::default()
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Failure::usage(
            "a user name was given but no password: use --password-stdin or $DBUILD_PASSWORD",
        )),
        (None, Some(_)) => Err(Failure::usage(
            "a password was given but no user name: use --username or $DBUILD_USERNAME",
        )),
    }
}

/// All credential sources, in Docker's order (see docs/credentials.md). Reads, never writes.
fn credential_lookup(explicit: Option<Credentials>) -> Result<Lookup, Failure> {
    Lookup::from_env(explicit).map_err(|e| dbuild::Error::from(e).into())
}

fn warn(message: &str) {
    let mut err = std::io::stderr().lock();
    if MID_LINE.swap(false, Ordering::Relaxed) {
        let _ = writeln!(err);
    }
    let _ = writeln!(err, "dbuild: warning: {}", message.replace('\n', " "));
}

/// Loads a source into memory and prints its warnings.
async fn load_source(source: &str) -> Result<dbuild::context::Tree, Failure> {
    let src = Source::parse(source).map_err(dbuild::Error::from)?;
    let loaded = src.load().await.map_err(dbuild::Error::from)?;
    warn_all(&loaded.warnings);
    Ok(loaded.tree)
}

/// Prints the source's warnings (LFS pointers, filters not applied) on stderr, one line each.
fn warn_all(warnings: &[String]) {
    let mut err = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(err, "dbuild: warning: {}", w.replace('\n', " "));
    }
}

async fn context(source: &str, dockerfile: Option<&str>) -> Result<(), Failure> {
    // `context` is for looking at what would be sent, so a missing Dockerfile (which `build`
    // refuses) is only a warning here.
    let dockerfile = dockerfile.unwrap_or("Dockerfile");
    let tree = load_source(source).await?;
    if let Err(e) = dbuild::context::require_dockerfile(&tree, dockerfile) {
        warn(&format!("{e}; `build` would refuse this context"));
    }
    let tree = dbuild::context::ignore::apply(tree, dockerfile).map_err(dbuild::Error::from)?;
    let mut out = std::io::stdout().lock();
    for chunk in TarBody::new(tree, TarOptions::default()) {
        let chunk = chunk.map_err(dbuild::Error::from)?;
        out.write_all(&chunk).map_err(|e| Failure {
            code: 1,
            message: format!("cannot write to stdout: {e}"),
        })?;
    }
    out.flush().map_err(|e| Failure {
        code: 1,
        message: format!("cannot write to stdout: {e}"),
    })
}

async fn build(conn: &ConnArgs, args: BuildArgs) -> Result<(), Failure> {
    // Everything that can be checked without the network is checked first.
    let refs = parse_refs(&args.tags)?;
    if args.push && refs.is_empty() {
        return Err(Failure::usage("--push needs at least one -t NAME:TAG"));
    }
    // Found out before the build, not after it.
    if let Some(path) = &args.metadata_file {
        check_output_file(path, "--metadata-file")?;
    }
    if let Some(path) = &args.iidfile {
        check_output_file(path, "--iidfile")?;
    }
    let build_args = pairs(&args.build_args, "--build-arg", true)?;
    let labels = pairs(&args.labels, "--label", false)?;
    // Explicit credentials are for the registries of the tags: pushing, and pulling a base image
    // from the same registry. The password is read only when asked for.
    if args.source == "-" && args.login.password_stdin {
        return Err(Failure::usage(
            "--password-stdin cannot be used with a context on stdin (-): use $DBUILD_PASSWORD or config.json",
        ));
    }
    let explicit = if args.push || args.login.username.is_some() || args.login.password_stdin {
        read_login(&args.login)?
    } else {
        None
    };
    let lookup = match credential_lookup(explicit) {
        Ok(l) => l,
        // A push cannot go ahead with unknown credentials; a build may need none.
        Err(f) if !args.push => {
            let message = format!("{}; building without registry credentials", f.message);
            if render::Mode::choose(&args.progress, args.quiet) == render::Mode::RawJson {
                // Every stderr line is JSON in this mode.
                eprintln!(
                    "{}",
                    serde_json::json!({"dbuild": "warning", "message": message})
                );
            } else {
                warn(&message);
            }
            Lookup::default()
        }
        Err(f) => return Err(f),
    };
    let settings = conn.settings()?;
    let mode = render::Mode::choose(&args.progress, args.quiet);
    let quiet = mode == render::Mode::Quiet;
    let engine = Engine::connect(settings).await?;
    let source = Source::parse(&args.source).map_err(dbuild::Error::from)?;
    let job = Job {
        tags: refs.clone(),
        options: BuildOptions {
            dockerfile: args.file.clone(),
            build_args,
            labels,
            target: args.target.clone(),
            no_cache: args.no_cache,
            pull: args.pull,
            quiet,
            builder: if args.builder == "buildkit" {
                engine::Builder::BuildKit
            } else {
                engine::Builder::Classic
            },
            network: args.network.clone(),
            extra_hosts: args.add_hosts.clone(),
            platform: args.platform.clone(),
            cache_from: args.cache_from.clone(),
            force_rm: args.force_rm,
            memory: args.memory,
            memory_swap: args.memory_swap,
            cpu_shares: args.cpu_shares,
            cpuset_cpus: args.cpuset_cpus.clone(),
            cpu_period: args.cpu_period,
            cpu_quota: args.cpu_quota,
            shm_size: args.shm_size.map(|s| s.max(0) as u64),
            ..Default::default()
        },
        tar: TarOptions {
            gzip_level: args.compress,
        },
        push: args.push,
        credentials: lookup,
        engine_messages: mode == render::Mode::RawJson,
        ..Job::new(source)
    };
    let outcome = with_render(mode, |on_event| job.run(&engine, on_event)).await?;
    let digests: BTreeMap<String, String> = refs
        .iter()
        .zip(&outcome.pushed)
        .map(|(r, p)| (r.to_string(), p.digest.clone()))
        .collect();
    if let Some(path) = &args.metadata_file {
        write_metadata(path, &outcome.image_id, &outcome.tags, &digests)?;
    }
    if let Some(path) = &args.iidfile {
        write_atomically(path, outcome.image_id.as_bytes(), "--iidfile")?;
    }
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` with a callback that shows each event in `mode` on stderr and prints results
/// (the image ID, `NAME:TAG@DIGEST` per push) on stdout as they happen. On a terminal the
/// status line's clock is redrawn every 100 ms meanwhile.
async fn with_render<T, F, Fut>(mode: render::Mode, work: F) -> Result<T, Failure>
where
    F: FnOnce(Box<dyn FnMut(Event) + Send>) -> Fut,
    Fut: std::future::Future<Output = Result<T, dbuild::Error>>,
{
    let shown = Arc::new(Mutex::new(render::Render::new(mode)));
    let r = shown.clone();
    let on_event = Box::new(move |e: Event| {
        let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
        match &e {
            Event::Built { image_id } => {
                r.finish();
                println!("{image_id}");
            }
            Event::Pushed { reference, digest } => {
                r.event(&e);
                r.finish();
                println!("{reference}@{digest}");
                return;
            }
            _ => {}
        }
        r.event(&e);
    });
    // Stopped when this future ends or is dropped (Ctrl-C), so it never draws over the
    // error line.
    let _ticker = (mode == render::Mode::Tty).then(|| {
        let r = shown.clone();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                r.lock().unwrap_or_else(|p| p.into_inner()).tick();
            }
        }))
    });
    let result = work(on_event).await;
    shown.lock().unwrap_or_else(|p| p.into_inner()).finish();
    Ok(result?)
}

/// Writes the metadata JSON (`--metadata-file`).
fn write_metadata(
    path: &std::path::Path,
    image_id: &str,
    tags: &[String],
    digests: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    let json = serde_json::json!({ "image_id": image_id, "tags": tags, "digests": digests });
    let mut text = serde_json::to_vec_pretty(&json).unwrap_or_default();
    text.push(b'\n');
    write_atomically(path, &text, "--metadata-file")
}

/// Writes `contents` next to `path` and renames it into place, so a reader never sees a
/// partial file. `flag` names the option in the error.
fn write_atomically(path: &std::path::Path, contents: &[u8], flag: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure {
        code: 1,
        message: format!("{flag}: cannot write {}: {e}", path.display()),
    };
    let name = path
        .file_name()
        .ok_or_else(|| fail(std::io::Error::other("it names no file")))?;
    let tmp = path.with_file_name(format!(
        ".{}.dbuild-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Fails early, before any work, when `path`'s directory does not exist.
fn check_output_file(path: &std::path::Path, flag: &str) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() || path.file_name().is_none() {
        return Err(Failure::usage(format!(
            "{flag} {}: the directory does not exist or no file is named",
            path.display()
        )));
    }
    Ok(())
}

/// A size as the Docker CLI takes it: bytes, or a number with b, k, m or g (powers of 1024);
/// `-1` stays -1 (unlimited swap).
fn size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t
        .strip_suffix('b')
        .filter(|r| !r.is_empty() && !r.ends_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size such as 512m or 2g"))
}
