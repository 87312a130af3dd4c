//! Faults in the services around the engine, with real programs: a private `docker-registry`
//! killed (SIGKILL) while the engine uploads a layer to it, and the git daemon's stream cut at
//! chosen bytes (by the fault-injecting proxy in front of the test bed's real `git daemon`),
//! plus SIGINT and SIGTERM while fetching.

mod common;
#[path = "common/fault_proxy.rs"]
mod fault_proxy;
#[path = "common/faults.rs"]
mod faults;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fault_proxy::{Addr, Fault, FaultProxy};
use faults::*;

/// Total size of the files under `dir` whose path contains `_uploads` (blob uploads the
/// registry is receiving).
fn upload_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            total += upload_bytes(&p);
        } else if p.to_string_lossy().contains("_uploads") {
            total += m.len();
        }
    }
    total
}

#[test]
fn registry_killed_mid_push() {
    common::bed();
    let root = common::empty_dir("fault-registry");
    let port = common::free_port();
    let config = common::registry_config(&root, port);
    let mut registry = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (installed by the test bed)");
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "the private registry did not start on port {port}");

    // Docker treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
    let tag = format!(
        "127.0.0.1:{port}/dbuild-fault/big:{}",
        common::unique("reg")
    );
    big_image(&tag);
    let child = spawn(&["-H", "unix:///var/run/docker.sock", "push", &tag], &[]);
    let end = Instant::now() + HANG;
    while upload_bytes(&root.join("data")) < 1 << 20 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = upload_bytes(&root.join("data")) >= 1 << 20;
    registry.kill().unwrap();
    let _ = registry.wait();
    // Docker retries the upload a few times before giving up, so this takes a while.
    let out = finish(child, String::new());
    remove_image(&tag);
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        started,
        "the layer upload began before the registry was killed"
    );
    assert_one_error(&out, Some(1), &["push of", &tag]);
}

fn git_upstream() -> Addr {
    Addr::Tcp(
        common::bed()
            .git
            .trim_start_matches("git://")
            .trim_end_matches('/')
            .to_owned(),
    )
}

#[test]
fn git_stream_cut_mid_fetch() {
    // How many bytes the daemon sends for this fetch, passing everything through.
    let probe = FaultProxy::tcp(git_upstream(), "", Fault::None);
    let Addr::Tcp(h) = &probe.listen else {
        unreachable!()
    };
    let out = run(&["context", &format!("git://{h}/demo.git")], &[]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let total = probe.answered();
    assert!(total > 200, "the fetch sent {total} bytes");
    drop(probe);

    // In the ref advertisement, in the pack's header, in the middle. (Not near the very end:
    // once the pack and its checksum are in, losing only the trailing flush packet is not
    // an error, and under load a reset-and-retry makes the probe's total differ.)
    for cut in [10, 150, total / 2] {
        let proxy = FaultProxy::tcp(git_upstream(), "", Fault::CutAnswerAt(cut));
        let Addr::Tcp(h) = &proxy.listen else {
            unreachable!()
        };
        let out = run(&["context", &format!("git://{h}/demo.git")], &[]);
        assert!(proxy.fired(), "cut at {cut} of {total}");
        assert!(
            !out.status.success(),
            "a fetch cut at byte {cut} of {total} succeeded: {}",
            common::text(&out.stderr)
        );
        let line = assert_one_error(&out, None, &[]);
        assert!(
            out.stdout.is_empty(),
            "no partial tar on stdout after a cut at {cut}"
        );
        assert!(line.len() < 400, "{line}");
    }
}

#[test]
fn sigint_and_sigterm_during_a_fetch() {
    for signal in ["-INT", "-TERM"] {
        // The daemon's answer stalls after 300 bytes, as over a slow network.
        let proxy = FaultProxy::tcp(git_upstream(), "", Fault::StallAnswerAfter(300));
        let Addr::Tcp(h) = &proxy.listen else {
            unreachable!()
        };
        let child = spawn(&["context", &format!("git://{h}/demo.git")], &[]);
        assert!(proxy.wait_fired(HANG), "the fetch began");
        let out = interrupt(child, signal, String::new());
        assert!(out.stdout.is_empty());
    }
}
