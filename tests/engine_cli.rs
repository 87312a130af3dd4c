//! The `dbuild` binary's side of cancellation: SIGINT during a build ends dbuild with exit
//! code 130 and, because its connection closes, Docker stops the build's container.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn sigint_during_a_build_exits_130_and_docker_stops_the_step() {
    let dir = common::empty_dir("engine-cli-sigint");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM localbusybox:latest\nRUN sleep 300\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .args(["-H", "unix:///var/run/docker.sock", "build", "--no-cache"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut container = None;
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if let Some(id) = line.trim().strip_prefix("---> Running in ") {
            container = Some(id.to_owned());
            break;
        }
        line.clear();
    }
    let id = container.expect("the RUN step started");
    let state = |id: &str| {
        let out = common::docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("id={id}"),
            "--format",
            "{{.State}}",
        ]);
        common::text(&out.stdout).trim().to_owned()
    };
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert_eq!(status.code(), Some(130), "stderr: {rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    let mut s = state(&id);
    for _ in 0..60 {
        if s != "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        s = state(&id);
    }
    assert_ne!(
        s, "running",
        "container {id} still runs after dbuild was interrupted"
    );
    let _ = std::fs::remove_dir_all(dir);
}
