//! The `dbuild` command: a thin layer of argument parsing and output over the library.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use dbuild::auth::{Credentials, Secret};
use dbuild::context::{TarBody, TarOptions};
use dbuild::engine::{self, BuildOptions, Engine, Message, Settings};
use dbuild::reference::Reference;
use dbuild::source::Source;

/// Environment variable holding the registry password (instead of --password-stdin).
const PASSWORD_ENV: &str = "DBUILD_PASSWORD";
/// Environment variable holding the registry user name.
const USERNAME_ENV: &str = "DBUILD_USERNAME";

#[derive(Parser)]
#[command(
    name = "dbuild",
    version,
    about = "Build a container image from a git repository, in memory, and push it."
)]
struct Cli {
    /// Engine address (unix:///PATH or tcp://HOST:PORT); default: $DOCKER_HOST, then /var/run/docker.sock.
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a git URL or a local directory, and optionally push it.
    #[command(
        after_help = "Git credentials and settings (see docs/git.md): DBUILD_GIT_TOKEN (http(s) password or token), DBUILD_SSH_COMMAND (replaces ssh), DBUILD_GIT_CA_FILE (extra CA certificates, PEM).\n\nExamples:\n  dbuild build git://127.0.0.1/demo.git -t 127.0.0.1:5000/demo:v1\n  dbuild build 'https://example.com/app.git#v1.2:docker' -t app:1.2\n  echo \"$PW\" | dbuild build git://127.0.0.1/demo.git -t 127.0.0.1:5000/demo:v1 --push --username alice --password-stdin"
    )]
    Build(BuildArgs),
    /// Write the build context tar that `build` would send to stdout.
    #[command(after_help = "Example:\n  dbuild context git://127.0.0.1/demo.git | tar -tv")]
    Context {
        /// git URL (with optional #REF:SUBDIR) or local directory.
        source: String,
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
    },
    /// Show dbuild's version, the engine's, and the API version they agreed on.
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
    /// Print only the image ID.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// gzip the context at this level (1-9) before sending it.
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "6")]
    compress: Option<u32>,
    /// Push every tag after the build.
    #[arg(long)]
    push: bool,
    #[command(flatten)]
    login: LoginArgs,
}

#[derive(Args)]
struct LoginArgs {
    /// Registry user name (or $DBUILD_USERNAME).
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
            E::Engine(engine::Error::Host { .. }) | E::Reference(_) => 2,
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
    let cli = Cli::parse();
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
    // Dropping the runtime drops the build future, which closes the engine connection.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(f),
    }
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
        Command::Build(args) => build(cli.host.as_deref(), args).await,
        Command::Context { source } => context(&source).await,
        Command::Push { names, login } => {
            let refs = parse_refs(&names)?;
            let creds = read_login(&login)?;
            let engine = Engine::connect(Settings::from_env(cli.host.as_deref())?).await?;
            push_all(&engine, &refs, creds.as_ref(), false).await
        }
        Command::Version => {
            let engine = Engine::connect(Settings::from_env(cli.host.as_deref())?).await?;
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

async fn load(source: &str, dockerfile: &str) -> Result<dbuild::context::Tree, Failure> {
    let src = Source::parse(source).map_err(dbuild::Error::from)?;
    let loaded = src.load().await.map_err(dbuild::Error::from)?;
    warn_all(&loaded.warnings);
    if loaded
        .tree
        .get(dockerfile.trim_start_matches("./").as_bytes())
        .is_none()
    {
        return Err(
            dbuild::Error::from(dbuild::context::Error::DockerfileMissing(
                dockerfile.to_owned(),
            ))
            .into(),
        );
    }
    Ok(loaded.tree)
}

/// Prints the source's warnings (LFS pointers, filters not applied) on stderr, one line each.
fn warn_all(warnings: &[String]) {
    let mut err = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(err, "dbuild: warning: {}", w.replace('\n', " "));
    }
}

async fn context(source: &str) -> Result<(), Failure> {
    let src = Source::parse(source).map_err(dbuild::Error::from)?;
    let loaded = src.load().await.map_err(dbuild::Error::from)?;
    warn_all(&loaded.warnings);
    let tree = loaded.tree;
    let mut out = std::io::stdout().lock();
    for chunk in TarBody::new(tree, TarOptions::default()) {
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

async fn build(host: Option<&str>, args: BuildArgs) -> Result<(), Failure> {
    // Everything that can be checked without the network is checked first.
    let refs = parse_refs(&args.tags)?;
    if args.push && refs.is_empty() {
        return Err(Failure::usage("--push needs at least one -t NAME:TAG"));
    }
    let build_args = pairs(&args.build_args, "--build-arg", true)?;
    let labels = pairs(&args.labels, "--label", false)?;
    let creds = if args.push {
        read_login(&args.login)?
    } else {
        None
    };
    let settings = Settings::from_env(host)?;
    let dockerfile = args.file.clone().unwrap_or_else(|| "Dockerfile".into());

    let engine = Engine::connect(settings).await?;
    let tree = load(&args.source, &dockerfile).await?;
    let options = BuildOptions {
        tags: refs.iter().map(|r| r.to_string()).collect(),
        dockerfile: args.file.clone(),
        build_args,
        labels,
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        quiet: args.quiet,
        compressed: args.compress.is_some(),
        ..Default::default()
    };
    let body = TarBody::new(
        tree,
        TarOptions {
            gzip_level: args.compress,
        },
    );
    let quiet = args.quiet;
    let mut err = std::io::stderr();
    let outcome = engine
        .build(body, &options, |m| {
            if !quiet {
                show(&mut err, m);
            }
        })
        .await?;
    println!("{}", outcome.image_id);
    if args.push {
        push_all(&engine, &refs, creds.as_ref(), quiet).await?;
    }
    Ok(())
}

async fn push_all(
    engine: &Engine,
    refs: &[Reference],
    creds: Option<&Credentials>,
    quiet: bool,
) -> Result<(), Failure> {
    for r in refs {
        let creds = creds.map(|c| Credentials {
            server_address: r.auth_server(),
            ..c.clone()
        });
        let mut err = std::io::stderr();
        let out = engine
            .push(r, creds.as_ref(), |m| {
                if !quiet {
                    show(&mut err, m);
                }
            })
            .await?;
        println!("{}@{}", out.reference, out.digest);
    }
    Ok(())
}

/// Prints one progress message the way the Docker CLI does when not on a terminal.
fn show(out: &mut impl Write, m: &Message) {
    if let Some(s) = &m.stream {
        let _ = out.write_all(s.as_bytes());
        if !s.is_empty() {
            MID_LINE.store(!s.ends_with('\n'), Ordering::Relaxed);
        }
    } else if let Some(s) = &m.status {
        // Per-byte progress lines would flood a log; show only state changes.
        if m.progress.is_some() {
            return;
        }
        let _ = match &m.id {
            Some(id) => writeln!(out, "{id}: {s}"),
            None => writeln!(out, "{s}"),
        };
    }
}
