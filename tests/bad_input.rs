//! Every bad input in `docs/errors.md`, run through the real `dbuild` binary against the test
//! bed: each must exit non-zero with exactly one stderr line, starting `dbuild: error:`, no
//! panic or backtrace, no secret, and leave nothing behind in its working directory.
//!
//! The table in `docs/errors.md` is generated from this test's output, so the doc shows the
//! messages dbuild really prints: `DBUILD_BLESS=1 cargo test --test bad_input` rewrites it;
//! without that, the test fails when a message differs from the doc.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A secret that some cases hand to dbuild; it must never be printed.
const SECRET: &str = "s3cret-bad-input-Zq9";

/// One bad input: how to set it up in `dir`, and what it is.
struct Case {
    /// Whether the engine's progress lines may come before the error line.
    progress: bool,
    area: &'static str,
    what: &'static str,
    /// Also covered by this test elsewhere (for the doc).
    see: &'static str,
    setup: Setup,
}

/// Prepares a case in its directory and says how to run it.
type Setup = Box<dyn Fn(&Path, &Ctx) -> Run>;

struct Ctx {
    git: String,
    registry: String,
}

#[derive(Default)]
struct Run {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    /// Images the setup made, removed after the case.
    images: Vec<String>,
}

fn run(args: &[&str]) -> Run {
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

impl Run {
    fn env(mut self, k: &str, v: &str) -> Run {
        self.env.push((k.into(), v.into()));
        self
    }
    fn stdin(mut self, s: &str) -> Run {
        self.stdin = Some(s.into());
        self
    }
}

fn dockerfile(dir: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM localbusybox:latest\n").unwrap();
    ctx
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn write_config(dir: &Path, text: &str) -> String {
    let cfg = dir.join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), text).unwrap();
    s(&cfg)
}

fn case(
    area: &'static str,
    what: &'static str,
    see: &'static str,
    setup: impl Fn(&Path, &Ctx) -> Run + 'static,
) -> Case {
    Case {
        progress: false,
        area,
        what,
        see,
        setup: Box::new(setup),
    }
}

/// A case that reaches the engine, which prints progress before the error.
fn engine_case(
    area: &'static str,
    what: &'static str,
    see: &'static str,
    setup: impl Fn(&Path, &Ctx) -> Run + 'static,
) -> Case {
    Case {
        progress: true,
        ..case(area, what, see, setup)
    }
}

fn cases() -> Vec<Case> {
    vec![
        // ---- sources
        case(
            "source",
            "a local directory that does not exist",
            "",
            |_, _| run(&["build", "/nonexistent/dbuild-src"]),
        ),
        case(
            "source",
            "a URL with an unknown scheme",
            "git_cli::unsupported_scheme",
            |_, _| run(&["context", "foo://example.com/r.git"]),
        ),
        case(
            "source",
            "a git host that does not resolve",
            "git_cli::unknown_host",
            |_, _| run(&["context", "git://no-such-host.invalid/r.git"]),
        ),
        case(
            "source",
            "a git server that refuses the connection (URL with a password)",
            "git_cli::connection_refused",
            |_, _| {
                run(&[
                    "context",
                    &format!("http://alice:{SECRET}@127.0.0.1:1/demo.git"),
                ])
            },
        ),
        case(
            "source",
            "a repository that does not exist",
            "git_cli::repository_not_found",
            |_, c| run(&["context", &format!("{}/no-such-repo.git", c.git)]),
        ),
        case(
            "source",
            "a branch that does not exist",
            "git_cli::ref_and_commit_not_found",
            |_, c| run(&["context", &format!("{}/demo.git#no-such-branch", c.git)]),
        ),
        case(
            "source",
            "a subdirectory that does not exist",
            "git_cli::subdir_missing_or_a_file",
            |_, c| run(&["context", &format!("{}/demo.git#main:no-such-dir", c.git)]),
        ),
        case(
            "source",
            "a subdirectory that is a file",
            "git_cli::subdir_missing_or_a_file",
            |_, c| run(&["context", &format!("{}/demo.git#main:data.txt", c.git)]),
        ),
        case(
            "source",
            "a fragment with two colons",
            "git_cli::fragment_with_more_than_one_colon",
            |_, c| run(&["context", &format!("{}/demo.git#main:sub:deeper", c.git)]),
        ),
        case("source", "stdin (`-`) that is not a tar", "", |_, _| {
            run(&["context", "-"]).stdin("this is not a tar archive\n")
        }),
        case(
            "source",
            "a local directory holding a file that cannot be read (write-only /proc file)",
            "",
            |_, _| run(&["context", "/proc/sys/net/ipv4/route"]),
        ),
        // ---- context
        case(
            "context",
            "`-f` pointing outside the context",
            "",
            |d, _| {
                let ctx = dockerfile(d);
                run(&["build", &s(&ctx), "-f", "../Dockerfile"])
            },
        ),
        case("context", "no Dockerfile in the context", "", |d, _| {
            let ctx = d.join("ctx");
            std::fs::create_dir_all(&ctx).unwrap();
            std::fs::write(ctx.join("README"), "no Dockerfile here\n").unwrap();
            run(&["build", &s(&ctx)])
        }),
        case("context", "`-f` naming a directory", "", |d, _| {
            let ctx = dockerfile(d);
            std::fs::create_dir_all(ctx.join("sub")).unwrap();
            run(&["build", &s(&ctx), "-f", "sub"])
        }),
        case(
            "context",
            "the Dockerfile is a symlink loop (a -> b -> a) in a local directory",
            "",
            |d, _| {
                let ctx = dockerfile(d);
                std::os::unix::fs::symlink("b", ctx.join("a")).unwrap();
                std::os::unix::fs::symlink("a", ctx.join("b")).unwrap();
                run(&["build", &s(&ctx), "-f", "a"])
            },
        ),
        case(
            "context",
            "a `.dockerignore` with an invalid pattern",
            "",
            |d, _| {
                let ctx = dockerfile(d);
                std::fs::write(ctx.join(".dockerignore"), "[\n").unwrap();
                run(&["build", &s(&ctx)])
            },
        ),
        // ---- build options
        case(
            "build options",
            "a build arg with an empty name (`=x`)",
            "",
            |d, _| run(&["build", &s(&dockerfile(d)), "--build-arg", "=x"]),
        ),
        case("build options", "a label without `=`", "", |d, _| {
            run(&["build", &s(&dockerfile(d)), "--label", "maintainer"])
        }),
        case("build options", "`--push` without a tag", "", |d, _| {
            run(&["build", &s(&dockerfile(d)), "--push"])
        }),
        case(
            "build options",
            "`--metadata-file` in a directory that does not exist",
            "",
            |d, _| {
                run(&[
                    "build",
                    &s(&dockerfile(d)),
                    "--metadata-file",
                    "/nonexistent/dbuild/meta.json",
                ])
            },
        ),
        case(
            "build options",
            "a build target that the Dockerfile lacks",
            "",
            |d, _| run(&["build", &s(&dockerfile(d)), "--target", "no-such-stage"]),
        ),
        engine_case(
            "build options",
            "a base image that does not exist",
            "",
            |d, _| {
                let ctx = d.join("ctx");
                std::fs::create_dir_all(&ctx).unwrap();
                std::fs::write(
                    ctx.join("Dockerfile"),
                    "FROM 127.0.0.1:1/no/such-image:latest\n",
                )
                .unwrap();
                run(&["build", &s(&ctx)])
            },
        ),
        engine_case("build options", "a RUN step that fails", "e2e", |d, _| {
            let ctx = d.join("ctx");
            std::fs::create_dir_all(&ctx).unwrap();
            std::fs::write(
                ctx.join("Dockerfile"),
                "FROM localbusybox:latest\nRUN exit 3\n",
            )
            .unwrap();
            // --force-rm: Docker keeps a failed step's container otherwise.
            run(&["build", &s(&ctx), "--no-cache", "--force-rm"])
        }),
        // ---- references
        case("reference", "a tag with upper-case letters", "", |d, _| {
            run(&["build", &s(&dockerfile(d)), "-t", "Demo/App:v1"])
        }),
        case("reference", "a tag with a space", "", |d, _| {
            run(&["build", &s(&dockerfile(d)), "-t", "demo:bad tag"])
        }),
        case("reference", "an empty image name to push", "", |_, _| {
            run(&["push", ""])
        }),
        case("reference", "a digest that is not one", "", |_, _| {
            run(&["push", "demo@sha256:1234"])
        }),
        engine_case(
            "reference",
            "pushing an image the engine does not have",
            "",
            |_, c| {
                run(&[
                    "push",
                    &format!("{}/dbuild-bad-input/absent:v1", c.registry),
                ])
            },
        ),
        // ---- credentials
        case(
            "credentials",
            "`--password` on the command line",
            "push_auth",
            |_, c| {
                run(&[
                    "push",
                    &format!("{}/x:v1", c.registry),
                    "--password",
                    SECRET,
                ])
            },
        ),
        case(
            "credentials",
            "a user name without a password",
            "",
            |_, c| {
                run(&[
                    "push",
                    &format!("{}/x:v1", c.registry),
                    "--username",
                    "alice",
                ])
            },
        ),
        case(
            "credentials",
            "`DBUILD_PASSWORD` without a user name",
            "",
            |_, c| run(&["push", &format!("{}/x:v1", c.registry)]).env("DBUILD_PASSWORD", SECRET),
        ),
        engine_case("credentials", "a wrong password", "push_auth", |_, c| {
            let image = format!(
                "{}/dbuild-bad-input/wrongpw:{}",
                c.registry,
                common::unique("t")
            );
            assert!(common::docker(&["tag", "localbusybox:latest", &image])
                .status
                .success());
            let mut r =
                run(&["push", &image, "--username", "alice", "--password-stdin"]).stdin(SECRET);
            r.images.push(image);
            r
        }),
        case(
            "credentials",
            "a config.json that is not JSON",
            "push_auth",
            |d, c| {
                let cfg = write_config(d, &format!("{{\"auths\": {{\"x\": \"{SECRET}\""));
                run(&["push", &format!("{}/x:v1", c.registry)]).env("DOCKER_CONFIG", &cfg)
            },
        ),
        case(
            "credentials",
            "a credential helper that is not installed",
            "push_auth",
            |d, c| {
                let cfg = write_config(d, r#"{"credsStore":"dbuild-bad-input-missing"}"#);
                run(&["push", &format!("{}/x:v1", c.registry)]).env("DOCKER_CONFIG", &cfg)
            },
        ),
        case(
            "credentials",
            "a credential helper that fails",
            "push_auth",
            |d, c| {
                let cfg = write_config(d, r#"{"credsStore":"dbuildbadinput"}"#);
                let bin = d.join("bin");
                std::fs::create_dir_all(&bin).unwrap();
                let helper = bin.join("docker-credential-dbuildbadinput");
                std::fs::write(&helper, "#!/bin/sh\necho 'keychain locked' >&2\nexit 1\n").unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
                let path = format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                );
                run(&["push", &format!("{}/x:v1", c.registry)])
                    .env("DOCKER_CONFIG", &cfg)
                    .env("PATH", &path)
            },
        ),
        case(
            "credentials",
            "a git password that is wrong",
            "git_cli::wrong_and_missing_credentials",
            |_, _| {
                let http = std::env::var("DBUILD_TEST_GIT_HTTP")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "http://127.0.0.1:8418".into());
                let hostport = http
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
                run(&[
                    "context",
                    &format!("http://alice:{SECRET}@{hostport}/private/demo.git"),
                ])
            },
        ),
        // ---- environment
        case(
            "environment",
            "`DOCKER_HOST` with an unknown scheme",
            "",
            |d, _| run(&["build", &s(&dockerfile(d))]).env("DOCKER_HOST", "foo://engine"),
        ),
        case(
            "environment",
            "`-H` naming a directory instead of a socket",
            "",
            |d, _| run(&["-H", &format!("unix://{}", d.display()), "version"]),
        ),
        case(
            "environment",
            "`-H` naming a socket that does not exist",
            "",
            |d, _| {
                run(&[
                    "-H",
                    &format!("unix://{}/docker.sock", d.display()),
                    "version",
                ])
            },
        ),
        case(
            "environment",
            "`DOCKER_HOST` with a port nobody listens on",
            "",
            |_, _| run(&["version"]).env("DOCKER_HOST", "tcp://127.0.0.1:1"),
        ),
        case(
            "environment",
            "`DOCKER_HOST` with a password in it",
            "",
            |_, _| {
                run(&["version"]).env("DOCKER_HOST", &format!("tcp://alice:{SECRET}@127.0.0.1:1"))
            },
        ),
        case(
            "environment",
            "`DOCKER_API_VERSION` that is not a version",
            "",
            |_, _| run(&["version"]).env("DOCKER_API_VERSION", "abc"),
        ),
        case(
            "environment",
            "`DOCKER_API_VERSION` older than dbuild supports",
            "fault_engine::engine_older_than_the_minimum_api",
            |_, _| run(&["version"]).env("DOCKER_API_VERSION", "1.24"),
        ),
        case(
            "environment",
            "`DOCKER_CONTEXT` naming no context",
            "",
            |_, _| run(&["version"]).env("DOCKER_CONTEXT", "no-such-context"),
        ),
        case(
            "environment",
            "`DOCKER_TLS_VERIFY` without certificates",
            "",
            |d, _| {
                run(&["version"])
                    .env("DOCKER_HOST", "tcp://127.0.0.1:2376")
                    .env("DOCKER_TLS_VERIFY", "1")
                    .env("DOCKER_CERT_PATH", &s(d))
            },
        ),
    ]
}

/// Makes a message independent of this run: temp paths, ports and ids become placeholders.
fn normalize(line: &str, dir: &Path, ctx: &Ctx) -> String {
    let mut l = line.replace(&s(dir), "$DIR");
    l = l
        .replace(&ctx.git, "$GIT")
        .replace(&ctx.registry, "$REGISTRY");
    l = l.replace(
        &std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        "$HOME",
    );
    // Docker's build containers and temporary ids.
    let re_hex = |t: &str| t.len() >= 12 && t.chars().all(|c| c.is_ascii_hexdigit());
    l.split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if re_hex(core) {
                w.replace(core, "$ID")
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn listing(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            out.push(path.strip_prefix(d).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_bad_input_fails_with_one_clear_line() {
    let bed = common::bed();
    let ctx = Ctx {
        git: bed.git.trim_end_matches('/').to_owned(),
        registry: bed.registry.clone(),
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let all = cases();
    assert!(all.len() >= 30, "docs/errors.md promises at least 30 cases");
    for (i, c) in all.iter().enumerate() {
        let dir = common::empty_dir(&format!("bad-input-{i}"));
        let r = (c.setup)(&dir, &ctx);
        let before = listing(&dir);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild"));
        cmd.args(&r.args)
            .current_dir(&dir)
            .stdin(if r.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A clean environment: no engine, context or credentials from the caller.
            .env("HOME", &dir)
            .env("DOCKER_CONFIG", dir.join("no-docker-config"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_AUTH_CONFIG")
            .env_remove("DBUILD_USERNAME")
            .env_remove("DBUILD_PASSWORD")
            .env_remove("DBUILD_GIT_TOKEN")
            .env("RUST_BACKTRACE", "1");
        for (k, v) in &r.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = &r.stdin {
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        }
        let out = child.wait_with_output().unwrap();
        let err = common::text(&out.stderr);
        let shown = format!(
            "case {i} ({}): exit {:?}, stderr {err:?}",
            c.what,
            out.status.code()
        );
        for image in &r.images {
            let _ = common::docker(&["rmi", image]);
        }
        let lines: Vec<&str> = err.lines().collect();
        let errors: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("dbuild: error: "))
            .collect();
        // Without the engine's progress, the error is the only line.
        let one = if c.progress {
            errors.len() == 1 && lines.last() == errors.first()
        } else {
            lines.len() == 1 && errors.len() == 1
        };
        if out.status.success() {
            problems.push(format!("{shown}: succeeded"));
        } else if !one {
            problems.push(format!(
                "{shown}: want exactly one `dbuild: error:` line{}",
                if c.progress {
                    ", last"
                } else {
                    " and nothing else"
                }
            ));
        } else if err.contains("panicked") || err.contains("backtrace") {
            problems.push(format!("{shown}: panic"));
        } else if err.contains(SECRET) || err.contains(&bed.password) {
            problems.push(format!("{shown}: a secret is printed"));
        }
        let after = listing(&dir);
        if before != after {
            problems.push(format!(
                "{shown}: left behind {after:?} (before: {before:?})"
            ));
        }
        let mut message = errors.first().copied().unwrap_or("").to_owned();
        for image in &r.images {
            message = message.replace(image.as_str(), "$IMAGE");
        }
        let message = normalize(&message, &dir, &ctx);
        rows.push(format!(
            "| {} | {} | {} | `{}` | {} |",
            i + 1,
            c.area,
            c.what,
            message.replace('|', "\\|").replace('`', "'"),
            if c.see.is_empty() {
                format!("{}", out.status.code().unwrap_or(-1))
            } else {
                format!("{} (also `{}`)", out.status.code().unwrap_or(-1), c.see)
            }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
    let table = rows.join("\n");
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
    const BEGIN: &str = "<!-- bad_input table: generated by tests/bad_input.rs -->\n";
    const END: &str = "<!-- end of bad_input table -->";
    if std::env::var("DBUILD_BLESS").is_ok_and(|v| v == "1") {
        let (head, rest) = doc
            .split_once(BEGIN)
            .expect("the doc has the table markers");
        let (_, tail) = rest.split_once(END).expect("the doc has the end marker");
        let header = "| # | area | bad input | what dbuild prints (stderr) | exit code |\n|---|---|---|---|---|\n";
        std::fs::write(
            &doc_path,
            format!("{head}{BEGIN}{header}{table}\n{END}{tail}"),
        )
        .unwrap();
    } else {
        for row in &rows {
            if !doc.contains(row.as_str()) {
                problems.push(format!(
                    "docs/errors.md lacks (or differs from) this row; rerun with DBUILD_BLESS=1 after checking it: {row}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs git (a test tool) in `dir`.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        common::text(&out.stderr)
    );
    common::text(&out.stdout).trim().to_owned()
}

/// A hostile repository on a git daemon whose `.gitmodules` points a submodule at a local
/// repository of the machine running dbuild: the fetch must be refused, not read that
/// repository into the context (git's own rule since CVE-2022-39253).
#[test]
fn a_remote_repository_cannot_pull_in_a_local_submodule() {
    let root = common::empty_dir("bad-input-submodule");
    // The "local secret": a repository only on this machine.
    let secret = root.join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    git(&secret, &["init", "-q"]);
    std::fs::write(secret.join("key.txt"), SECRET).unwrap();
    git(&secret, &["add", "."]);
    git(&secret, &["commit", "-qm", "secret"]);
    let secret_commit = git(&secret, &["rev-parse", "HEAD"]);
    // The hostile superproject, served over git://.
    let served = root.join("served");
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    std::fs::write(
        work.join("Dockerfile"),
        "FROM localbusybox:latest\nCOPY . /ctx\n",
    )
    .unwrap();
    std::fs::write(
        work.join(".gitmodules"),
        format!(
            "[submodule \"lib\"]\n\tpath = lib\n\turl = file://{}\n",
            secret.display()
        ),
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(
        &work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{secret_commit},lib"),
        ],
    );
    git(&work, &["commit", "-qm", "hostile"]);
    std::fs::create_dir_all(&served).unwrap();
    let out = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(served.join("hostile.git"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let port = common::free_port();
    let mut daemon = Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", served.display()))
        .arg(&served)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .args(["context", &format!("git://127.0.0.1:{port}/hostile.git")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&root);
    let err = common::text(&out.stderr);
    assert!(!out.status.success(), "the local submodule was read: {err}");
    assert!(
        !out.stdout
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes()),
        "the local repository's content reached the context"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is a local path"), "{err}");
}

/// A symlink in a local directory that points out of it (`evil -> /etc/hostname`): dbuild
/// sends the link, never the file it points at, and the engine resolves `COPY evil` inside the
/// context, so the host's file never reaches the image.
#[test]
fn a_symlink_out_of_the_context_never_brings_the_host_file() {
    common::bed();
    let host_file = "/etc/dbuild-bad-input-host-secret";
    let dir = common::empty_dir("bad-input-symlink");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM localbusybox:latest\nCOPY evil /evil\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(host_file, dir.join("evil")).unwrap();
    std::fs::write(host_file, SECRET).unwrap();
    let ctx = Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .args(["context", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ctx.status.success(), "{}", common::text(&ctx.stderr));
    assert!(
        !ctx.stdout
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes()),
        "the host file's content is in the context"
    );
    let tag = format!("dbuild-bad-input-symlink:{}", common::unique("t"));
    let out = Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .args(["build", "-t", &tag, dir.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(host_file);
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        // Docker copied the link's target as seen inside the context: nothing.
        let run = common::docker(&["run", "--rm", &tag, "cat", "/evil"]);
        let _ = common::docker(&["rmi", &tag]);
        assert!(
            !common::text(&run.stdout).contains(SECRET),
            "host file in the image"
        );
    } else {
        let err = common::text(&out.stderr);
        assert!(!err.contains(SECRET), "{err}");
        assert!(
            err.lines()
                .last()
                .unwrap_or("")
                .starts_with("dbuild: error:"),
            "{err}"
        );
    }
}
