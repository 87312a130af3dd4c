//! What every integration test needs: where the test bed's services are, and ways to run the
//! real `dbuild` binary and the real docker CLI against them.
//!
//! The test bed is started by `scripts/testbed.sh up`. A test that finds a service missing
//! fails with a message saying how to start it; it never skips.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Test bed addresses, from the environment `scripts/testbed.sh env` prints, with the same
/// defaults the script uses.
pub struct Bed {
    pub git: String,
    pub registry: String,
    pub user: String,
    pub password: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub fn bed() -> Bed {
    let b = Bed {
        git: var("DBUILD_TEST_GIT", "git://127.0.0.1:9418"),
        registry: var("DBUILD_TEST_REGISTRY", "127.0.0.1:5000"),
        user: var("DBUILD_TEST_REGISTRY_USER", "alice"),
        password: var("DBUILD_TEST_REGISTRY_PASSWORD", "dbuild-test-secret-7Q"),
    };
    require_port(b.git.trim_start_matches("git://"), "git daemon");
    require_port(&b.registry, "registry");
    let ping = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(
        ping.status.success(),
        "the Docker engine is not answering: run `bash scripts/testbed.sh up` ({})",
        String::from_utf8_lossy(&ping.stderr)
    );
    b
}

fn require_port(hostport: &str, what: &str) {
    let hp = hostport.split('/').next().unwrap_or(hostport);
    if std::net::TcpStream::connect(hp).is_err() {
        panic!("the test bed's {what} is not reachable at {hp}: run `bash scripts/testbed.sh up` first");
    }
}

/// A tag unique to this test run, so parallel tests and reruns never collide.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// Runs the real docker CLI (a test tool only; dbuild never runs it).
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker CLI is installed by the test bed")
}

/// Runs `dbuild` with `args`, `stdin` written to its standard input, and extra environment.
pub fn dbuild(
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &Path)],
    cwd: Option<&Path>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("run dbuild");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd` in a fresh container of `image` and returns its stdout.
pub fn run_in(image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    let out = docker(&args);
    assert!(
        out.status.success(),
        "docker run {image} {cmd:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_owned()
}

/// The manifest digest the registry itself reports for `repo:tag`, through its HTTP API.
pub fn registry_digest(bed: &Bed, repo: &str, tag: &str) -> String {
    let url = format!("http://{}/v2/{repo}/manifests/{tag}", bed.registry);
    let out = Command::new("curl")
        .args(["-sS", "-I", "-u", &format!("{}:{}", bed.user, bed.password)])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .args(["-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
        .arg(&url)
        .output()
        .expect("curl");
    let head = text(&out.stdout);
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "registry answered for {url}: {head}"
    );
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_owned())
        })
        .expect("Docker-Content-Digest header")
}

/// A fresh empty directory under the system temp dir (tests may write; dbuild may not).
/// A loopback port nothing listens on right now (the OS picks it; it is released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a `docker-registry` config into `root` (storage under `root/data`, listening on
/// 127.0.0.1:`port`) and returns its path.
pub fn registry_config(root: &Path, port: u16) -> std::path::PathBuf {
    let path = root.join("config.yml");
    std::fs::write(
        &path,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.join("data").display()
        ),
    )
    .unwrap();
    path
}

pub fn empty_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique(&format!("dbuild-{name}")));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn is_empty_dir(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
