//! Faults between dbuild and the engine, with the real engine and the real `dbuild` binary:
//! the engine dying mid-build and mid-push and coming back, a connection cut mid-stream, a
//! torn JSON message, an engine that stops answering (idle and overall timeouts), SIGINT and
//! SIGTERM during the context upload, the build and the push, something that is not a Docker
//! engine on the socket, and an engine too old.
//!
//! "The engine dies" is played by the fault-injecting proxy (`common/fault_proxy.rs`) closing
//! every connection and removing its socket: from dbuild's side that is exactly what a killed
//! dockerd looks like (see docs/errors.md for why no private dockerd is killed here). Every
//! byte dbuild reads comes from the real engine.
//!
//! Each run must end non-zero with exactly one `dbuild: error:` line, no panic, no secret,
//! and no build container left running in the engine (checked with `GET /containers/json`).

mod common;
#[path = "common/fault_proxy.rs"]
mod fault_proxy;

#[path = "common/faults.rs"]
mod faults;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fault_proxy::{engine_socket, Fault, FaultProxy};
use faults::*;

#[test]
fn engine_dies_mid_build_then_restarts() {
    common::bed();
    let proxy = FaultProxy::unix(engine_socket(), "/build", Fault::None);
    let host = proxy.docker_host();
    let dir = context_dir(
        "fault-die-build",
        "FROM localbusybox:latest\nRUN echo fault-started && sleep 120\n",
    );
    let mut child = spawn(
        &["-H", &host, "build", "--no-cache", dir.to_str().unwrap()],
        &[],
    );
    let (seen, mut rest) = read_until(&mut child, "Running in");
    let id = running_in(&seen);
    proxy.kill();
    let mut tail = String::new();
    let _ = rest.read_to_string(&mut tail);
    let out = finish(child, seen + &tail);
    let line = assert_one_error(&out, Some(1), &[]);
    assert!(
        line.contains("connection") || line.contains("stream"),
        "says the connection broke: {line}"
    );
    assert_container_stops(&id);

    // While it is down: a clear connect error.
    let out = run(&["-H", &host, "version"], &[]);
    assert_one_error(&out, Some(1), &["cannot connect to the engine"]);
    // Back up: the same command works again.
    proxy.restart();
    let out = run(&["-H", &host, "version"], &[]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn engine_dies_mid_push() {
    let bed = common::bed();
    let tag = format!(
        "{}/dbuild-fault/big:{}",
        bed.registry,
        common::unique("die")
    );
    big_image(&tag);
    let proxy = FaultProxy::unix(engine_socket(), "/push", Fault::None);
    let host = proxy.docker_host();
    let env = [
        ("DBUILD_USERNAME", bed.user.as_str()),
        ("DBUILD_PASSWORD", bed.password.as_str()),
    ];
    let child = spawn(&["-H", &host, "push", &tag], &env);
    // The engine has begun uploading once it sent a few progress messages.
    let end = Instant::now() + HANG;
    while proxy.answered() < 2048 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.kill();
    let out = finish(child, String::new());
    assert_one_error(&out, Some(1), &[]);
    // Nothing half-done: the registry has no manifest under that tag.
    let (repo, t) = tag
        .strip_prefix(&format!("{}/", bed.registry))
        .unwrap()
        .rsplit_once(':')
        .unwrap();
    let head = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
        .arg(format!("{}:{}", bed.user, bed.password))
        .arg(format!("http://{}/v2/{repo}/manifests/{t}", bed.registry))
        .output()
        .unwrap();
    assert_eq!(common::text(&head.stdout), "404", "manifest must not exist");
    remove_image(&tag);
}

fn small_build_dir(name: &str) -> std::path::PathBuf {
    context_dir(
        name,
        &format!(
            "FROM localbusybox:latest\nRUN echo one {0}\nRUN echo two {0}\n",
            common::unique("c")
        ),
    )
}

#[test]
fn connection_cut_mid_stream_at_chosen_bytes() {
    common::bed();
    // Inside the status line, inside the headers, inside the body.
    for cut in [5u64, 60, 400] {
        let proxy = FaultProxy::unix(engine_socket(), "/build", Fault::CutAnswerAt(cut));
        let dir = small_build_dir("fault-cut");
        let out = run(
            &["-H", &proxy.docker_host(), "build", dir.to_str().unwrap()],
            &[],
        );
        assert!(proxy.fired(), "the cut at byte {cut} happened");
        let line = assert_one_error(&out, Some(1), &[]);
        assert!(
            line.contains("connection") || line.contains("stream") || line.contains("closed"),
            "cut at {cut}: {line}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn truncated_json_message() {
    common::bed();
    // 20 bytes into the body is inside the first `{"stream":"Step 1/3 : …"}`.
    let proxy = FaultProxy::unix(engine_socket(), "/build", Fault::TruncateChunkedBodyAt(20));
    let dir = small_build_dir("fault-torn");
    let out = run(
        &["-H", &proxy.docker_host(), "build", dir.to_str().unwrap()],
        &[],
    );
    assert!(proxy.fired());
    assert_one_error(&out, Some(1), &["ended in the middle of a message"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn engine_stops_answering_idle_timeout_flag() {
    common::bed();
    // The engine gets the request but its answer is held back.
    let proxy = FaultProxy::unix(engine_socket(), "/build", Fault::StallAnswerAfter(0));
    let dir = small_build_dir("fault-idle");
    let out = run(
        &[
            "-H",
            &proxy.docker_host(),
            "--idle-timeout",
            "2",
            "build",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_one_error(&out, Some(1), &["idle timeout"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn overall_timeout_flag_stops_a_long_build() {
    common::bed();
    let dir = context_dir(
        "fault-timeout",
        "FROM localbusybox:latest\nRUN echo fault-started && sleep 120\n",
    );
    let mut child = spawn(
        &[
            "-H",
            "unix:///var/run/docker.sock",
            "--timeout",
            "20",
            "build",
            "--no-cache",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    let (seen, mut rest) = read_until(&mut child, "Running in");
    let id = running_in(&seen);
    let mut tail = String::new();
    let _ = rest.read_to_string(&mut tail);
    let out = finish(child, seen + &tail);
    assert_one_error(&out, Some(1), &["overall timeout"]);
    assert_container_stops(&id);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_during_a_build_exits_130_and_the_engine_stops_the_step() {
    common::bed();
    let dir = context_dir(
        "fault-term-build",
        "FROM localbusybox:latest\nRUN echo fault-started && sleep 120\n",
    );
    let mut child = spawn(
        &[
            "-H",
            "unix:///var/run/docker.sock",
            "build",
            "--no-cache",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    let (seen, rest) = read_until(&mut child, "Running in");
    let id = running_in(&seen);
    // Keep draining stderr in the background so dbuild never blocks on it.
    let drain = std::thread::spawn(move || {
        let mut rest = rest;
        let mut s = String::new();
        let _ = rest.read_to_string(&mut s);
        s
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let tail = drain.join().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{tail}");
    let errors: Vec<&str> = tail
        .lines()
        .filter(|l| l.starts_with("dbuild: error:"))
        .collect();
    assert_eq!(errors, ["dbuild: error: interrupted"], "{tail}");
    assert!(!tail.contains("panicked"), "{tail}");
    assert_container_stops(&id);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigint_and_sigterm_during_the_context_upload() {
    common::bed();
    for signal in ["-INT", "-TERM"] {
        // The engine stops reading the request after 64 KiB of an 8 MiB context.
        let proxy = FaultProxy::unix(
            engine_socket(),
            "/build",
            Fault::StallRequestAfter(64 * 1024),
        );
        let dir = context_dir("fault-upload", "FROM localbusybox:latest\nCOPY big /big\n");
        let big: Vec<u8> = (0..8u32 << 20)
            .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
            .collect();
        std::fs::write(dir.join("big"), big).unwrap();
        let child = spawn(
            &["-H", &proxy.docker_host(), "build", dir.to_str().unwrap()],
            &[],
        );
        assert!(proxy.wait_fired(HANG), "the upload began");
        interrupt(child, signal, String::new());
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn sigint_and_sigterm_during_a_push() {
    let bed = common::bed();
    for signal in ["-INT", "-TERM"] {
        let tag = format!(
            "{}/dbuild-fault/big:{}",
            bed.registry,
            common::unique("sig")
        );
        big_image(&tag);
        // The answer stops after the first progress messages, as if the upload were slow.
        let proxy = FaultProxy::unix(engine_socket(), "/push", Fault::StallAnswerAfter(600));
        let env = [
            ("DBUILD_USERNAME", bed.user.as_str()),
            ("DBUILD_PASSWORD", bed.password.as_str()),
        ];
        let child = spawn(&["-H", &proxy.docker_host(), "push", &tag], &env);
        assert!(proxy.wait_fired(HANG), "the push began");
        interrupt(child, signal, String::new());
        remove_image(&tag);
    }
}

#[test]
fn plain_http_server_is_not_an_engine() {
    common::bed();
    // A real HTTP server that is not Docker: python's http.server answers 404 with HTML.
    let port = common::free_port();
    let dir = common::empty_dir("fault-http");
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run(&["-H", &format!("tcp://127.0.0.1:{port}"), "version"], &[]);
    let _ = server.kill();
    let _ = server.wait();
    assert_one_error(&out, Some(1), &["not a Docker engine"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn garbage_bytes_on_the_socket() {
    // FAULT INJECTOR: a socket that answers with bytes that are not HTTP, once after reading
    // the request and once before the request is even sent.
    for talks_first in [false, true] {
        let dir = common::empty_dir("fault-garbage");
        let sock = dir.join("garbage.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                if !talks_first {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                }
                let _ =
                    std::io::Write::write_all(&mut s, b"\x00\xff\x13garbage\xfe\r\n\r\n\x01\x02");
                if talks_first {
                    // Take the request before closing: closing at once made dbuild's write of
                    // the request fail first (EPIPE), a race that hid the garbage it had been sent.
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                }
            }
        });
        let out = run(
            &["-H", &format!("unix://{}", sock.display()), "version"],
            &[],
        );
        assert_one_error(&out, Some(1), &["not a Docker engine"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn engine_older_than_the_minimum_api() {
    common::bed();
    // The real engine, with its /_ping answer claiming API 1.24 (Docker 1.12).
    let proxy = FaultProxy::unix(
        engine_socket(),
        "/_ping",
        Fault::Rewrite(b"Api-Version: 1.41".to_vec(), b"Api-Version: 1.24".to_vec()),
    );
    let out = run(&["-H", &proxy.docker_host(), "version"], &[]);
    assert!(proxy.fired(), "the version header was rewritten");
    assert_one_error(&out, Some(1), &["speaks API 1.24", "upgrade the engine"]);
    // And a pinned version below the minimum.
    let out = run(
        &["-H", "unix:///var/run/docker.sock", "version"],
        &[("DOCKER_API_VERSION", "1.24")],
    );
    assert_one_error(&out, Some(1), &["outside what dbuild speaks"]);
}

#[test]
fn connect_timeout_when_the_engine_never_accepts() {
    // A real listener (python) with a backlog of 0 that never accepts; two connections fill
    // its queue, so the kernel drops the next one's SYN and the connect hangs.
    let mut server = Command::new("python3")
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let port: u16 = port.trim().parse().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], port).into(),
            Duration::from_secs(1),
        ) {
            fillers.push(s);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut settings = dbuild::engine::Settings::new(
        dbuild::engine::Host::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
    );
    settings.connect_timeout = Duration::from_secs(2);
    let e = rt
        .block_on(dbuild::engine::Engine::connect(settings))
        .expect_err("an engine that never accepts");
    let _ = server.kill();
    let _ = server.wait();
    let msg = e.to_string();
    assert!(
        msg.contains("no connection after 2 s") && !msg.contains('\n'),
        "{msg}"
    );
}
