//! Each `dbuild build` flag checked by its effect on what the real Docker engine built: labels
//! and platform through `docker image inspect`, build args, networking, hosts, /dev/shm and
//! memory as a `RUN` step sees them (in the build log), the stage `--target` chose, the cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{bed, docker, text, unique};

/// A context directory holding `Dockerfile` with `dockerfile` (and a nonce, so no earlier
/// build's cache answers for it).
fn context(name: &str, dockerfile: &str) -> PathBuf {
    let dir = common::empty_dir(name);
    let nonce = unique("nonce");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("{dockerfile}\nLABEL nonce={nonce}\n"),
    )
    .unwrap();
    dir
}

fn dbuild(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .arg("build")
        .args(args)
        .arg(dir)
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run dbuild")
}

fn ok(out: &Output) -> (String, String) {
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "dbuild failed: {e}");
    (o, e)
}

fn inspect(tag: &str, format: &str) -> String {
    let out = docker(&["image", "inspect", "--format", format, tag]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

fn cleanup(tags: &[&str], dir: &Path) {
    for t in tags {
        docker(&["rmi", "-f", t]);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn labels_tags_and_dockerfile_path_reach_the_image() {
    bed();
    let dir = common::empty_dir("cli-labels");
    std::fs::create_dir(dir.join("docker")).unwrap();
    std::fs::write(
        dir.join("docker/Build.df"),
        format!(
            "FROM localbusybox:latest\nLABEL from=custom-file nonce={}\n",
            unique("n")
        ),
    )
    .unwrap();
    let (a, b) = (
        format!("dbuild-cli-labels:{}", unique("a")),
        format!("dbuild-cli-labels:{}", unique("b")),
    );
    let out = dbuild(
        &[
            "-f",
            "docker/Build.df",
            "--label",
            "org.example.team=builders",
            "--label",
            "with.equals=a=b",
            "-t",
            &a,
            "-t",
            &b,
        ],
        &dir,
        &[],
    );
    let (stdout, _) = ok(&out);
    let labels: serde_json::Value =
        serde_json::from_str(&inspect(&a, "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels["org.example.team"], "builders");
    assert_eq!(labels["with.equals"], "a=b");
    assert_eq!(labels["from"], "custom-file", "-f chose the Dockerfile");
    let id = stdout.trim();
    assert_eq!(inspect(&a, "{{.Id}}"), id);
    assert_eq!(inspect(&b, "{{.Id}}"), id, "both tags name the image");
    cleanup(&[&a, &b], &dir);
}

#[test]
fn build_args_from_the_command_line_and_the_environment_are_seen_by_run() {
    bed();
    let dir = context(
        "cli-args",
        "FROM localbusybox:latest\nARG GIVEN\nARG FROM_ENV\nARG UNSET=default\nRUN echo \"seen:$GIVEN:$FROM_ENV:$UNSET\"",
    );
    let out = dbuild(
        &[
            "--progress=plain",
            "--build-arg",
            "GIVEN=one two",
            "--build-arg",
            "FROM_ENV",
            "--build-arg",
            "UNSET",
        ],
        &dir,
        &[("FROM_ENV", "from-env")],
    );
    let (stdout, stderr) = ok(&out);
    // `--build-arg UNSET` with UNSET not in the environment leaves the Dockerfile's default.
    assert!(
        stderr.contains("seen:one two:from-env:default"),
        "RUN saw the build args: {stderr}"
    );
    docker(&["rmi", "-f", stdout.trim()]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn target_stops_at_the_named_stage() {
    bed();
    let dir = context(
        "cli-target",
        "FROM localbusybox:latest AS first\nLABEL stage=first\nFROM localbusybox:latest AS second\nLABEL stage=second",
    );
    let tag = format!("dbuild-cli-target:{}", unique("t"));
    ok(&dbuild(&["--target", "first", "-t", &tag], &dir, &[]));
    assert_eq!(inspect(&tag, "{{index .Config.Labels \"stage\"}}"), "first");
    ok(&dbuild(&["-t", &tag], &dir, &[]));
    assert_eq!(
        inspect(&tag, "{{index .Config.Labels \"stage\"}}"),
        "second"
    );
    cleanup(&[&tag], &dir);
}

#[test]
fn platform_is_recorded_in_the_image() {
    bed();
    let dir = context("cli-platform", "FROM localbusybox:latest");
    let tag = format!("dbuild-cli-platform:{}", unique("t"));
    ok(&dbuild(
        &["--platform", "linux/amd64", "-t", &tag],
        &dir,
        &[],
    ));
    assert_eq!(inspect(&tag, "{{.Os}}/{{.Architecture}}"), "linux/amd64");
    cleanup(&[&tag], &dir);
}

#[test]
fn network_add_host_shm_size_and_memory_apply_to_run() {
    bed();
    let dir = context(
        "cli-run-env",
        "FROM localbusybox:latest\n\
         RUN echo \"nets:$(ls /sys/class/net | tr '\\n' ,)\"\n\
         RUN echo \"hosts:$(grep myhost /etc/hosts | tr '\\t' ' ')\"\n\
         RUN echo \"shm:$(df -k /dev/shm | tail -1 | awk '{print $2}')\"\n\
         RUN echo \"mem:$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)\"",
    );
    let out = dbuild(
        &[
            "--progress=plain",
            "--network",
            "none",
            "--add-host",
            "myhost:10.1.2.3",
            "--shm-size",
            "70m",
            "-m",
            "64m",
        ],
        &dir,
        &[],
    );
    let (stdout, stderr) = ok(&out);
    assert!(stderr.contains("nets:lo,"), "--network none: {stderr}");
    assert!(
        stderr.contains("hosts:10.1.2.3 myhost"),
        "--add-host: {stderr}"
    );
    assert!(stderr.contains("shm:71680"), "--shm-size 70m: {stderr}");
    assert!(stderr.contains("mem:67108864"), "-m 64m: {stderr}");
    docker(&["rmi", "-f", stdout.trim()]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn no_cache_rebuilds_every_step() {
    bed();
    let dir = context(
        "cli-cache",
        "FROM localbusybox:latest\nRUN echo cached-step",
    );
    let first = dbuild(&["--progress=plain"], &dir, &[]);
    ok(&first);
    let (id2, again) = ok(&dbuild(&["--progress=plain"], &dir, &[]));
    assert!(again.contains("Using cache"), "{again}");
    let (id3, fresh) = ok(&dbuild(&["--progress=plain", "--no-cache"], &dir, &[]));
    assert!(!fresh.contains("Using cache"), "{fresh}");
    assert!(
        fresh.contains("cached-step"),
        "the RUN step ran again: {fresh}"
    );
    for id in [text(&first.stdout), id2, id3] {
        docker(&["rmi", "-f", id.trim()]);
    }
    let _ = std::fs::remove_dir_all(dir);
}
