//! What the fault tests share: running the real `dbuild` with a guard against hangs, the
//! one-error-line contract, the engine's running containers, a big image to push.
//! Include it with `#[path = "common/faults.rs"] mod faults;` (next to `mod common;` and
//! `mod fault_proxy;`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::common;
use super::fault_proxy::{engine_socket, Addr};

/// Generous bound against a hang (not a timing assertion: a hung dbuild is the failure).
pub const HANG: Duration = Duration::from_secs(180);

pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dbuild"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("run dbuild")
}

/// Waits for `child` (killing it and failing if it hangs) and returns its output, with the
/// stderr already read (`seen`) prepended.
pub fn finish(mut child: Child, seen: String) -> Output {
    let end = Instant::now() + HANG;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("dbuild hung for {HANG:?}; stderr so far: {seen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = child.wait_with_output().unwrap();
    let mut err = seen.into_bytes();
    err.extend_from_slice(&out.stderr);
    out.stderr = err;
    out
}

/// The test registry's password, which must never be printed.
pub fn secret() -> String {
    std::env::var("DBUILD_TEST_REGISTRY_PASSWORD")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "dbuild-test-secret-7Q".into())
}

pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    finish(spawn(args, env), String::new())
}

/// Reads stderr lines until one contains `marker`; returns what was read.
pub fn read_until(
    child: &mut Child,
    marker: &str,
) -> (String, BufReader<std::process::ChildStderr>) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains(marker) {
            return (seen, err);
        }
        line.clear();
    }
    panic!("dbuild ended before printing {marker:?}: {seen}");
}

/// The failure contract: non-zero exit `code` (if given), exactly one error line, which
/// contains `wants`, no panic or backtrace, no secret. Returns the error line.
pub fn assert_one_error(out: &Output, code: Option<i32>, wants: &[&str]) -> String {
    let err = common::text(&out.stderr);
    assert!(!out.status.success(), "dbuild succeeded; stderr: {err}");
    if let Some(c) = code {
        assert_eq!(out.status.code(), Some(c), "stderr: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert!(!err.contains(&secret()), "secret in output: {err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("dbuild: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "want one error line: {err}");
    assert_eq!(
        err.lines().last(),
        Some(errors[0]),
        "error is the last line: {err}"
    );
    for w in wants {
        assert!(errors[0].contains(w), "want {w:?} in {:?}", errors[0]);
    }
    // Shown with --nocapture: the messages quoted in docs/errors.md.
    eprintln!("fault message: {}", errors[0]);
    errors[0].to_owned()
}

/// Containers the real engine runs, from `GET /containers/json` (running ones only).
pub fn running_containers() -> String {
    let Addr::Unix(sock) = engine_socket() else {
        unreachable!()
    };
    let out = Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(&sock)
        .arg("http://docker/containers/json")
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    common::text(&out.stdout)
}

/// Waits until the engine no longer runs container `id` (Docker stops a build's container
/// when the client's connection closes); fails if it still runs after a minute.
pub fn assert_container_stops(id: &str) {
    for _ in 0..120 {
        if !running_containers().contains(id) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("build container {id} still runs in the engine after dbuild ended");
}

pub fn context_dir(name: &str, dockerfile: &str) -> std::path::PathBuf {
    let dir = common::empty_dir(name);
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir
}

pub fn running_in(seen: &str) -> String {
    seen.lines()
        .find_map(|l| l.trim().strip_prefix("---> Running in "))
        .expect("a RUN step started")
        .trim()
        .to_owned()
}

/// Builds an image with a 48 MiB random layer named `name` (with the docker CLI, a test
/// tool), for the push tests; remove it with [`remove_image`].
pub fn big_image(name: &str) {
    let dir = context_dir(
        "fault-big",
        &format!(
            "FROM localbusybox:latest\nRUN head -c 50331648 /dev/urandom > /big # {}\n",
            common::unique("x")
        ),
    );
    let out = common::docker(&["build", "-q", "-t", name, dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

pub fn remove_image(name: &str) {
    let _ = common::docker(&["rmi", "-f", name]);
}

/// Sends `signal` to `child` and checks the interrupt contract: exit 130, and the only thing
/// printed about it is the one line `dbuild: error: interrupted`.
pub fn interrupt(child: Child, signal: &str, seen: String) -> Output {
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = finish(child, seen);
    assert_one_error(&out, Some(130), &["interrupted"]);
    out
}
