//! What the `dbuild` binary prints and how it exits: `--help` and `version`, the exit codes
//! (0, 1, 2; 130 is tested in `engine_cli.rs`), one-line errors with hints, each `--progress`
//! mode (a terminal emulated with util-linux `script`), `-q` and `--iidfile`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{bed, docker, text, unique};

fn dbuild(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .args(args)
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run dbuild")
}

/// Runs dbuild on a pseudo-terminal (util-linux `script`); returns the exit code and what the
/// terminal showed (stdout and stderr together).
fn on_terminal(args: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_dbuild"));
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .env("COLUMNS", "100")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs dbuild on a pseudo-terminal");
    (out.status.code(), text(&out.stdout))
}

/// A context whose Dockerfile has a `RUN` step with output, unique so it is not cached.
fn context(name: &str, run: &str) -> PathBuf {
    let dir = common::empty_dir(name);
    // The nonce also ends the RUN line (as a shell comment), so that no two runs share the
    // RUN step's cached image: another run's `rmi -f` removes that untagged parent, and
    // dockerd 20.10 then failed a build that had just chosen it from the cache ("unable to
    // find image sha256:…", seen once in CI).
    let nonce = unique("n");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM localbusybox:latest\nRUN {run} # {nonce}\nLABEL nonce={nonce}\n"),
    )
    .unwrap();
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn image_id(s: &str) -> String {
    let id = s.trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "an image ID: {s:?}"
    );
    id
}

#[test]
fn help_has_examples_for_every_command() {
    let top = dbuild(&["--help"], &[]);
    assert_eq!(top.status.code(), Some(0));
    let top = text(&top.stdout);
    for cmd in ["build", "push", "context", "version"] {
        assert!(top.contains(cmd), "{cmd} listed: {top}");
        let out = dbuild(&[cmd, "--help"], &[]);
        assert_eq!(out.status.code(), Some(0));
        let help = text(&out.stdout);
        assert!(
            help.contains("Example"),
            "`{cmd} --help` has examples: {help}"
        );
        assert!(help.contains(&format!("dbuild {cmd}")), "{help}");
    }
    assert!(top.contains("Exit codes"), "{top}");
    let build = text(&dbuild(&["build", "--help"], &[]).stdout);
    for flag in [
        "--tag",
        "--file",
        "--build-arg",
        "--label",
        "--target",
        "--platform",
        "--network",
        "--add-host",
        "--no-cache",
        "--pull",
        "--cache-from",
        "--shm-size",
        "--quiet",
        "--iidfile",
        "--push",
        "--metadata-file",
        "--progress",
        "--context",
        "--host",
    ] {
        assert!(build.contains(flag), "{flag} in build --help");
    }
}

#[test]
fn version_names_client_engine_and_api() {
    bed();
    let v = dbuild(&["--version"], &[]);
    assert_eq!(
        text(&v.stdout).trim(),
        format!("dbuild {}", env!("CARGO_PKG_VERSION"))
    );
    let out = dbuild(&["-H", "unix:///var/run/docker.sock", "version"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let api = text(&docker(&["version", "--format", "{{.Server.APIVersion}}"]).stdout);
    let engine = text(&docker(&["version", "--format", "{{.Server.Version}}"]).stdout);
    assert!(
        s.contains(&format!("dbuild {}", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
    assert!(s.contains("unix:///var/run/docker.sock"), "{s}");
    assert!(s.contains(engine.trim()), "engine version {engine}: {s}");
    assert!(s.contains(&format!("api version {}", api.trim())), "{s}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    // clap's own errors (unknown flag, bad --progress value, missing argument).
    for args in [
        &["build", "--no-such-flag", "."][..],
        &["build", "--progress=fancy", "."],
        &["build"],
        &["push"],
    ] {
        let out = dbuild(args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("dbuild: error: "), "{err}");
    }
    let out = dbuild(&["build", ".", "--memory", "12q"], &[]);
    let err = text(&out.stderr);
    assert_eq!(
        (out.status.code(), err.lines().count()),
        (Some(2), 1),
        "{err}"
    );
    assert!(err.contains("12q") && err.contains("--memory"), "{err}");
    // dbuild's own checks, before any network use.
    for (args, want) in [
        (
            &["build", ".", "--build-arg", "=x"][..],
            "invalid --build-arg",
        ),
        (&["build", ".", "-t", "UPPER/case:x"], "UPPER/case"),
        (&["build", ".", "--push"], "--push needs"),
        (
            &["build", ".", "--iidfile", "/nonexistent-dir/iid"],
            "--iidfile",
        ),
        (&["build", "git://[bad"], "invalid git address"),
    ] {
        let out = dbuild(args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("dbuild: error: "), "{err}");
        assert!(err.contains(want), "{want:?} in {err}");
    }
}

#[test]
fn an_engine_that_is_not_running_is_exit_1_with_a_hint() {
    let dir = common::empty_dir("cli-no-engine");
    let sock = dir.join("no.sock");
    let out = dbuild(
        &["-H", &format!("unix://{}", sock.display()), "build", "."],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("dbuild: error: cannot connect to the engine"),
        "{err}"
    );
    assert!(err.contains("is the Docker daemon running?"), "{err}");
    assert!(err.contains("systemctl start docker"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The socket is root:docker 0660; as `nobody` (util-linux `setpriv`, the test runs as root)
/// connecting is refused, and the hint names the docker group.
#[test]
fn a_socket_without_permission_is_exit_1_with_the_docker_group_hint() {
    bed();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_dbuild"))
        .args(["-H", "unix:///var/run/docker.sock", "version"])
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux setpriv");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("dbuild: error: cannot connect to the engine"),
        "{err}"
    );
    assert!(err.contains("add your user to the 'docker' group"), "{err}");
}

#[test]
fn a_failed_build_exits_1_and_writes_no_iidfile() {
    bed();
    let dir = context("cli-fail", "echo before-failing && exit 3");
    let out_dir = common::empty_dir("cli-fail-out");
    let iid = out_dir.join("iid");
    let out = dbuild(
        &[
            "build",
            "--progress=plain",
            "--iidfile",
            path(&iid),
            path(&dir),
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "no image ID");
    assert!(err.contains("before-failing"), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("dbuild: error: build failed:"), "{last}");
    assert!(last.contains("returned a non-zero code: 3"), "{last}");
    assert!(!iid.exists(), "--iidfile only on success");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(out_dir);
}

#[test]
fn quiet_prints_only_the_image_id_and_iidfile_holds_it() {
    bed();
    let dir = context("cli-quiet", "echo noisy-step");
    let out_dir = common::empty_dir("cli-quiet-out");
    let iid = out_dir.join("iid");
    for args in [
        vec!["build", "-q", "--iidfile", path(&iid), path(&dir)],
        vec!["build", "--progress=quiet", path(&dir)],
    ] {
        let out = dbuild(&args, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{args:?}: nothing on stderr");
        let id = image_id(&text(&out.stdout));
        assert_eq!(text(&out.stdout), format!("{id}\n"));
    }
    let id = image_id(&std::fs::read_to_string(&iid).unwrap());
    let inspect = docker(&["image", "inspect", "--format", "{{.Id}}", &id]);
    assert_eq!(text(&inspect.stdout).trim(), id);
    docker(&["rmi", "-f", &id]);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(out_dir);
}

#[test]
fn plain_progress_is_the_engines_text_without_escapes() {
    bed();
    let dir = context("cli-plain", "echo plain-output");
    // auto off a terminal is plain.
    for args in [
        vec!["build", path(&dir)],
        vec!["build", "--progress=plain", path(&dir)],
    ] {
        let out = dbuild(&args, &[]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("Step 1/3 : FROM localbusybox:latest\n"),
            "{err}"
        );
        assert!(err.contains("plain-output"), "{err}");
        assert!(err.contains("Successfully built"), "{err}");
        assert!(!err.contains('\x1b'), "no escape sequences: {err:?}");
        docker(&["rmi", "-f", text(&out.stdout).trim()]);
    }
    // On a terminal, --progress=plain stays plain.
    let (code, shown) = on_terminal(&format!("build --progress=plain {}", path(&dir)), &[]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tty_progress_draws_a_live_status_line_coloured_unless_no_color() {
    bed();
    let dir = context("cli-tty", "echo tty-output");
    let args = format!("build --no-cache {}", path(&dir));
    let (code, shown) = on_terminal(&args, &[]);
    assert_eq!(code, Some(0), "{shown}");
    // The status line: cleared and redrawn in place, with the elapsed time and the step.
    assert!(shown.contains("\r\x1b[2K"), "{shown:?}");
    assert!(shown.contains("[+] "), "{shown:?}");
    assert!(
        shown.contains("s Step 2/3 : RUN echo tty-output")
            || shown.contains("\x1b[0mStep 2/3 : RUN"),
        "{shown:?}"
    );
    assert!(shown.contains("tty-output"), "{shown:?}");
    assert!(
        shown.contains("\x1b[1;36mStep 1/3"),
        "steps in colour: {shown:?}"
    );
    // The image ID is on a line of its own, after the status line was cleared.
    let id = shown
        .lines()
        .filter_map(|l| l.rsplit("\x1b[2K").next())
        .map(str::trim)
        .find(|l| l.starts_with("sha256:"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("image ID shown: {shown:?}"));
    image_id(&id);
    let (code, plain) = on_terminal(&args, &[("NO_COLOR", "1")]);
    assert_eq!(code, Some(0), "{plain}");
    assert!(plain.contains("\r\x1b[2K"), "still live: {plain:?}");
    assert!(
        !plain.contains("\x1b[1;36m") && !plain.contains("\x1b[34m"),
        "NO_COLOR: {plain:?}"
    );
    // --progress=tty off a terminal: the same live view, never colour.
    let out = dbuild(&["build", "--progress=tty", path(&dir)], &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("\r\x1b[2K") && !err.contains("\x1b[1;36m"),
        "{err:?}"
    );
    docker(&["rmi", "-f", &id]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rawjson_is_the_engines_messages_as_json_lines() {
    bed();
    let dir = context("cli-rawjson", "echo json-output");
    let out = dbuild(&["build", "--progress=rawjson", path(&dir)], &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let id = image_id(&text(&out.stdout));
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    let stream: String = lines.iter().filter_map(|v| v["stream"].as_str()).collect();
    assert!(
        stream.contains("Step 2/3 : RUN echo json-output"),
        "{stream}"
    );
    assert!(stream.contains("json-output\n"), "{stream}");
    assert!(
        lines.iter().any(|v| v["aux"]["ID"] == id.as_str()),
        "the engine's aux message with the image ID: {err}"
    );
    let own: Vec<&str> = lines.iter().filter_map(|v| v["dbuild"].as_str()).collect();
    assert_eq!(
        own,
        ["fetching", "fetched", "context_sent", "built"],
        "{err}"
    );
    docker(&["rmi", "-f", &id]);
    let _ = std::fs::remove_dir_all(dir);
}

/// Build and push with `--progress=rawjson`: the push's messages are JSON lines too, the
/// registry's digest is in the engine's `aux` message, and stdout still has the results.
#[test]
fn rawjson_covers_the_push_and_stdout_keeps_the_results() {
    let bed = bed();
    let dir = context("cli-rawjson-push", "true");
    let tag = unique("t");
    let full = format!("{}/cli-rawjson:{tag}", bed.registry);
    let out = dbuild(
        &[
            "build",
            "--progress=rawjson",
            "-t",
            &full,
            "--push",
            path(&dir),
        ],
        &[
            ("DBUILD_USERNAME", &bed.user),
            ("DBUILD_PASSWORD", &bed.password),
        ],
    );
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{err}");
    let digest = common::registry_digest(&bed, "cli-rawjson", &tag);
    let mut lines = stdout.lines();
    let id = image_id(lines.next().unwrap());
    assert_eq!(lines.next(), Some(format!("{full}@{digest}").as_str()));
    let json: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    assert!(
        json.iter().any(|v| v["aux"]["Digest"] == digest.as_str()),
        "{err}"
    );
    assert!(json.iter().any(|v| v["dbuild"] == "pushed"
        && v["reference"] == full.as_str()
        && v["digest"] == digest.as_str()));
    assert!(!err.contains(&bed.password) && !stdout.contains(&bed.password));
    docker(&["rmi", "-f", &full, &id]);
    let _ = std::fs::remove_dir_all(dir);
}

/// Build and push on a terminal: the build's status line gives way to one line per layer,
/// redrawn in place, and the digest line follows.
#[test]
fn tty_build_and_push_shows_per_layer_lines() {
    let bed = bed();
    let dir = context("cli-tty-push", "echo layer > /layer.txt");
    let tag = unique("t");
    let full = format!("{}/cli-tty-push:{tag}", bed.registry);
    let (code, shown) = on_terminal(
        &format!("build -t {full} --push {}", path(&dir)),
        &[
            ("DBUILD_USERNAME", &bed.user),
            ("DBUILD_PASSWORD", &bed.password),
        ],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains(&format!("Pushing {full}")), "{shown:?}");
    assert!(
        shown.contains(": Preparing"),
        "one line per layer: {shown:?}"
    );
    assert!(
        shown.contains("\x1b[2K\r"),
        "layer lines redrawn in place: {shown:?}"
    );
    let digest = common::registry_digest(&bed, "cli-tty-push", &tag);
    assert!(shown.contains(&format!("{full}@{digest}")), "{shown:?}");
    assert!(!shown.contains(&bed.password));
    docker(&["rmi", "-f", &full]);
    let _ = std::fs::remove_dir_all(dir);
}
