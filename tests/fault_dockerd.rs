//! The engine really dies: a private dockerd, started here and SIGKILLed while dbuild builds
//! (during a `RUN sleep`) and while it pushes a 48 MiB layer to a private registry. dbuild
//! must end non-zero with one clear error line, and the restarted daemon must answer again.
//!
//! Why a network namespace: `dockerd --bridge=none` deletes the host's `docker0` link at
//! start (moby's `removeDefaultBridgeInterface`), which breaks the shared test bed dockerd's
//! networking. Run in its own namespace (`unshare --net`), the private daemon only touches its
//! own, empty, network stack. Its unix socket lives in the filesystem, so dbuild reaches it as
//! usual; the private registry runs in the same namespace (`nsenter --net`), where RUN steps
//! use `--network none`. The shared dockerd is never touched.

mod common;
#[path = "common/fault_proxy.rs"]
mod fault_proxy;
#[path = "common/faults.rs"]
mod faults;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faults::*;

/// A private dockerd in its own network namespace.
struct Daemon {
    dir: PathBuf,
    wrapper: Option<Child>,
}

impl Daemon {
    fn sock(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    fn start(dir: &Path) -> Daemon {
        let _ = std::fs::remove_file(dir.join("docker.sock"));
        let _ = std::fs::remove_file(dir.join("docker.pid"));
        let script = format!(
            "ip link set lo up && exec dockerd --data-root {d}/data --exec-root {d}/exec --pidfile {d}/docker.pid -H unix://{d}/docker.sock --bridge=none --iptables=false --ip6tables=false >>{d}/dockerd.log 2>&1",
            d = dir.display()
        );
        // Own network, pid and mount namespaces: dockerd is pid 1 of its namespace, so when
        // it is killed the kernel kills its containerd, shims and containers with it, and its
        // mounts vanish with the mount namespace.
        let wrapper = Command::new("unshare")
            .args([
                "--net",
                "--pid",
                "--mount",
                "--fork",
                "--mount-proc",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let mut d = Daemon {
            dir: dir.to_owned(),
            wrapper: Some(wrapper),
        };
        let end = Instant::now() + Duration::from_secs(90);
        while Instant::now() < end {
            if d.ping() {
                return d;
            }
            // On a loaded machine dockerd may give up waiting for its containerd and exit;
            // start it again (the namespace died with it, so nothing is left over).
            if let Some(w) = d.wrapper.as_mut() {
                if w.try_wait().ok().flatten().is_some() {
                    d.wrapper = Some(
                        Command::new("unshare")
                            .args([
                                "--net",
                                "--pid",
                                "--mount",
                                "--fork",
                                "--mount-proc",
                                "sh",
                                "-c",
                                &script,
                            ])
                            .stdin(Stdio::null())
                            .spawn()
                            .expect("unshare (util-linux)"),
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
        panic!(
            "the private dockerd did not answer: {}",
            log.lines().rev().take(15).collect::<Vec<_>>().join("\n")
        );
    }

    fn ping(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "--max-time", "2", "--unix-socket"])
            .arg(self.sock())
            .arg("http://docker/_ping")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// dockerd's pid as seen from here: the child `unshare` forked (pid 1 inside).
    fn pid(&self) -> i32 {
        let w = self.wrapper.as_ref().expect("running").id();
        std::fs::read_to_string(format!("/proc/{w}/task/{w}/children"))
            .unwrap()
            .split_whitespace()
            .next()
            .expect("unshare's child")
            .parse()
            .unwrap()
    }

    /// SIGKILL: no chance to answer or clean up, as when the daemon crashes.
    fn kill(&mut self) {
        let pid = self.pid();
        assert!(Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success());
        if let Some(mut w) = self.wrapper.take() {
            let _ = w.wait();
        }
    }

    /// SIGTERM and wait: dockerd stops its containers and its containerd.
    fn stop(&mut self) {
        if self.wrapper.is_some() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
        }
        if let Some(mut w) = self.wrapper.take() {
            let _ = w.wait();
        }
    }

    /// Runs `cmd` inside the daemon's network namespace.
    fn in_netns(&self, cmd: &mut Command) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .arg(cmd.get_program());
        c.args(cmd.get_args());
        c
    }

    fn import_busybox(&self) {
        let tar = self.dir.join("rootfs.tar");
        let script = format!(
            "STATE={d} && mkdir -p {d}/tmp && source {root}/scripts/testbed.sh && build_busybox_rootfs_tar {t}",
            d = self.dir.display(),
            root = env!("CARGO_MANIFEST_DIR"),
            t = tar.display()
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        let out = Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(self.sock())
            .args([
                "-X",
                "POST",
                "-H",
                "Content-Type: application/x-tar",
                "--data-binary",
            ])
            .arg(format!("@{}", tar.display()))
            .arg("http://docker/images/create?fromSrc=-&repo=localbusybox&tag=latest")
            .output()
            .unwrap();
        let answer = common::text(&out.stdout);
        assert!(
            out.status.success() && !answer.contains("error"),
            "import: {answer}"
        );
        let _ = std::fs::remove_file(tar);
    }
}

/// Stops the daemon, unmounts anything left (its mounts live in its own namespace, so
/// normally nothing) and removes the directory.
fn clean_up(daemon: &mut Daemon) {
    daemon.stop();
    let dir = daemon.dir.display().to_string();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut mine: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&dir))
        .collect();
    mine.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mine {
        let _ = Command::new("umount").args(["-l", m]).status();
    }
    let _ = std::fs::remove_dir_all(&daemon.dir);
}

fn upload_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => total += upload_bytes(&p),
            Ok(m) if p.to_string_lossy().contains("_uploads") => total += m.len(),
            _ => {}
        }
    }
    total
}

#[test]
fn a_killed_dockerd_mid_build_and_mid_push() {
    // Short: dockerd's socket path must fit in sun_path (108 bytes).
    let dir = PathBuf::from(format!("/tmp/dbf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut daemon = Daemon::start(&dir);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        daemon.import_busybox();

        // ---- mid-build: SIGKILL during `RUN sleep`.
        let ctx = common::empty_dir("fault-dockerd-build");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM localbusybox:latest\nRUN echo fault-started && sleep 120\n",
        )
        .unwrap();
        let mut child = spawn(
            &[
                "-H",
                &daemon.host(),
                "build",
                "--network",
                "none",
                ctx.to_str().unwrap(),
            ],
            &[],
        );
        let (seen, mut rest) = read_until(&mut child, "Running in");
        daemon.kill();
        let mut tail = String::new();
        let _ = rest.read_to_string(&mut tail);
        let out = finish(child, seen + &tail);
        let line = assert_one_error(&out, Some(1), &[]);
        eprintln!("mid-build: {line}");
        let _ = std::fs::remove_dir_all(ctx);

        // ---- it restarts, and answers again.
        daemon = Daemon::start(&dir);
        let out = run(&["-H", &daemon.host(), "version"], &[]);
        assert!(out.status.success(), "{}", common::text(&out.stderr));

        // ---- mid-push: a private registry in the daemon's namespace; SIGKILL mid-upload.
        let reg = common::empty_dir("fault-dockerd-registry");
        let port = common::free_port();
        let config = common::registry_config(&reg, port);
        let mut registry = daemon
            .in_netns(Command::new("docker-registry").arg("serve").arg(&config))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry");
        let tag = format!("127.0.0.1:{port}/dbuild-fault/big:v1");
        let ctx = common::empty_dir("fault-dockerd-big");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM localbusybox:latest\nRUN head -c 50331648 /dev/urandom > /big\n",
        )
        .unwrap();
        let out = run(
            &[
                "-H",
                &daemon.host(),
                "build",
                "--network",
                "none",
                "-t",
                &tag,
                ctx.to_str().unwrap(),
            ],
            &[],
        );
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        let _ = std::fs::remove_dir_all(ctx);
        let child = spawn(&["-H", &daemon.host(), "push", &tag], &[]);
        let end = Instant::now() + HANG;
        while upload_bytes(&reg.join("data")) < 1 << 20 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            upload_bytes(&reg.join("data")) >= 1 << 20,
            "the layer upload began"
        );
        daemon.kill();
        let out = finish(child, String::new());
        let line = assert_one_error(&out, Some(1), &[]);
        eprintln!("mid-push: {line}");
        let _ = registry.kill();
        let _ = registry.wait();
        let _ = std::fs::remove_dir_all(reg);
    }));
    clean_up(&mut daemon);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
