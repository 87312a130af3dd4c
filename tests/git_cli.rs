//! The real `dbuild` binary on git addresses: every kind of bad input gives one
//! `dbuild: error: …` line naming what is wrong, no credential, and exit code 2 (the address
//! is wrong) or 1 (fetching failed); warnings, tokens from the environment, submodules in a
//! built image, and a build from a read-only root file system.
//!
//! Needs the test bed: `bash scripts/testbed.sh up`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn http() -> String {
    std::env::var("DBUILD_TEST_GIT_HTTP")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:8418".into())
}

fn http_password() -> String {
    std::env::var("DBUILD_TEST_GIT_HTTP_PASSWORD")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "dbuild-test-secret-7Q".into())
}

/// Runs `dbuild context ADDR` with extra environment variables.
fn context(addr: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild"));
    cmd.args(["context", addr]).env_remove("DBUILD_GIT_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run dbuild")
}

/// Asserts a failure with `code`, exactly one stderr line `dbuild: error: …` containing
/// every one of `wants`, and none of `secrets`.
fn assert_fails(out: &Output, code: i32, wants: &[&str], secrets: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("dbuild: error: "), "{err}");
    for w in wants {
        assert!(lines[0].contains(w), "{w:?} not in: {err}");
    }
    for s in secrets {
        assert!(!err.contains(s), "secret shown: {err}");
    }
}

#[test]
fn unknown_host() {
    let out = context("git://no-such-host.invalid/r.git", &[]);
    assert_fails(&out, 1, &["unknown host", "no-such-host.invalid"], &[]);
    let out = context("http://u:pw-xyz-1@no-such-host.invalid/r.git", &[]);
    assert_fails(&out, 1, &["unknown host"], &["pw-xyz-1"]);
}

#[test]
fn connection_refused() {
    let port = common::free_port();
    let out = context(&format!("git://127.0.0.1:{port}/demo.git"), &[]);
    assert_fails(&out, 1, &["connection refused", &port.to_string()], &[]);
    let out = context(
        &format!("http://alice:pw-xyz-2@127.0.0.1:{port}/demo.git"),
        &[],
    );
    assert_fails(&out, 1, &["connection refused"], &["pw-xyz-2"]);
}

#[test]
fn repository_not_found() {
    let bed = bed();
    let out = context(&format!("{}/no-such-repo.git", bed.git), &[]);
    assert_fails(&out, 1, &["repository not found", "no-such-repo.git"], &[]);
    let out = context(&format!("{}/no-such-repo.git", http()), &[]);
    assert_fails(&out, 1, &["repository not found", "no-such-repo.git"], &[]);
    let out = context("/no/such/local/repo.git", &[]);
    assert_fails(
        &out,
        1,
        &["repository not found", "/no/such/local/repo.git"],
        &[],
    );
}

#[test]
fn wrong_and_missing_credentials() {
    let hostport = http().trim_start_matches("http://").to_owned();
    let wrong = "wrong-pw-xyz-3";
    let out = context(
        &format!("http://alice:{wrong}@{hostport}/private/demo.git"),
        &[],
    );
    assert_fails(
        &out,
        1,
        &["authentication failed", "private/demo.git"],
        &[wrong],
    );
    let out = context(
        &format!("http://alice@{hostport}/private/demo.git"),
        &[("DBUILD_GIT_TOKEN", wrong)],
    );
    assert_fails(&out, 1, &["authentication failed"], &[wrong]);
    let out = context(&format!("http://{hostport}/private/demo.git"), &[]);
    assert_fails(
        &out,
        1,
        &["authentication required", "DBUILD_GIT_TOKEN"],
        &[],
    );
}

#[test]
fn the_token_comes_from_the_environment() {
    let hostport = http().trim_start_matches("http://").to_owned();
    let pw = http_password();
    let out = context(
        &format!("http://alice@{hostport}/private/demo.git#v1"),
        &[("DBUILD_GIT_TOKEN", &pw)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(&pw));
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"hello.sh".to_owned()), "{names:?}");
}

#[test]
fn ref_and_commit_not_found() {
    let bed = bed();
    let out = context(&format!("{}/demo.git#no-such-branch", bed.git), &[]);
    assert_fails(&out, 2, &["ref \"no-such-branch\" not found"], &[]);
    let missing = "0123456789012345678901234567890123456789";
    let out = context(&format!("{}/demo.git#{missing}", http()), &[]);
    assert_fails(&out, 1, &[missing], &[]);
}

#[test]
fn subdir_missing_or_a_file() {
    let bed = bed();
    let out = context(&format!("{}/demo.git#main:no-such-dir", bed.git), &[]);
    assert_fails(&out, 2, &["subdirectory \"no-such-dir\" not found"], &[]);
    let out = context(&format!("{}/demo.git#main:data.txt", bed.git), &[]);
    assert_fails(&out, 2, &["\"data.txt\"", "not a directory"], &[]);
}

/// moby and BuildKit split the fragment at the first ':' only (`SplitN(…, ":", 2)`), so
/// `#main:sub:x` means ref `main`, subdirectory `sub:x`.
#[test]
fn fragment_with_more_than_one_colon() {
    let bed = bed();
    let out = context(&format!("{}/demo.git#main:sub:deeper", bed.git), &[]);
    assert_fails(&out, 2, &["subdirectory \"sub:deeper\" not found"], &[]);
}

#[test]
fn unsupported_scheme() {
    let out = context("ftp://u:pw-xyz-4@example.com/r.git", &[]);
    assert_fails(&out, 2, &["unsupported scheme \"ftp\""], &["pw-xyz-4"]);
}

/// The test bed's sshd: base URL (`ssh://root@127.0.0.1:8422/var/lib/…/git`) and the ssh
/// command line naming its client key and known_hosts.
fn ssh_bed() -> (String, String) {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let url = var("DBUILD_TEST_GIT_SSH")
        .unwrap_or_else(|| "ssh://root@127.0.0.1:8422/var/lib/dbuild-testbed/git".into());
    // The same default as scripts/testbed.sh: the command line it wrote for clients.
    let state = var("DBUILD_TESTBED_STATE").unwrap_or_else(|| "/var/lib/dbuild-testbed".into());
    let cmd = var("DBUILD_TEST_SSH_COMMAND")
        .or_else(|| std::fs::read_to_string(format!("{state}/ssh/ssh_command")).ok())
        .map(|c| c.trim().to_owned())
        .expect("the test bed's ssh client settings are missing: run `bash scripts/testbed.sh up`");
    let hp = url.trim_start_matches("ssh://").split('/').next().unwrap();
    let hp = hp.rsplit_once('@').map_or(hp, |(_, h)| h);
    assert!(
        std::net::TcpStream::connect(hp).is_ok(),
        "the test bed's sshd is not reachable at {hp}: run `bash scripts/testbed.sh up`"
    );
    (url, cmd)
}

#[test]
fn ssh_and_scp_like_addresses() {
    let (base, ssh) = ssh_bed();
    let env = [("DBUILD_SSH_COMMAND", ssh.as_str())];
    let names = |out: &Output| -> Vec<String> {
        assert!(out.status.success(), "{}", text(&out.stderr));
        tar::Archive::new(&out.stdout[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let out = context(&format!("{base}/demo.git#v1:sub"), &env);
    assert_eq!(names(&out), ["deeper/", "deeper/deep.txt", "nested.txt"]);
    // scp-like: root@127.0.0.1:/path needs port 22, so use an ssh option for the port.
    let path = base.split_once("8422").unwrap().1;
    let scp_env = format!("{ssh} -p 8422");
    let out = context(
        &format!("root@127.0.0.1:{path}/demo.git"),
        &[("DBUILD_SSH_COMMAND", scp_env.as_str())],
    );
    assert!(names(&out).contains(&"hello.sh".to_owned()));
    // The submodule's relative URL resolves to ssh too.
    let out = context(&format!("{base}/super.git"), &env);
    assert!(names(&out).contains(&"lib/dep/dep.txt".to_owned()));

    let out = context(&format!("{base}/no-such-repo.git"), &env);
    assert_fails(&out, 1, &["repository not found", "no-such-repo.git"], &[]);
    let port = common::free_port();
    let out = context(&format!("ssh://root@127.0.0.1:{port}/x.git"), &env);
    assert_fails(&out, 1, &["connection refused"], &[]);
    // Without the test bed's known_hosts, batch mode refuses the unknown host key.
    let strict = "ssh -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes";
    let out = context(
        &format!("{base}/demo.git"),
        &[("DBUILD_SSH_COMMAND", strict)],
    );
    assert_fails(&out, 1, &["host key"], &[]);
}

/// https through the test bed's TLS front (socat, certificate from a test CA).
#[cfg(feature = "https")]
#[test]
fn https_with_a_private_ca_and_a_token() {
    let var = |n: &str, d: &str| {
        std::env::var(n)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| d.to_owned())
    };
    let base = var("DBUILD_TEST_GIT_HTTPS", "https://127.0.0.1:8443");
    let ca = var(
        "DBUILD_TEST_GIT_CA_FILE",
        "/var/lib/dbuild-testbed/tls/ca.pem",
    );
    assert!(
        Path::new(&ca).exists(),
        "{ca} missing: run `bash scripts/testbed.sh up`"
    );
    let pw = http_password();
    let hostport = base.trim_start_matches("https://");
    // A private repository whose submodule (relative URL) is private too.
    let out = context(
        &format!("https://alice@{hostport}/private/super.git"),
        &[
            ("DBUILD_GIT_CA_FILE", ca.as_str()),
            ("DBUILD_GIT_TOKEN", pw.as_str()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"lib/dep/dep.txt".to_owned()), "{names:?}");
    // Without the CA, the certificate is not trusted.
    let out = context(&format!("{base}/demo.git"), &[]);
    assert_fails(&out, 1, &["TLS handshake", "DBUILD_GIT_CA_FILE"], &[]);
}

#[test]
fn empty_repository() {
    let bed = bed();
    for url in [
        format!("{}/empty.git", bed.git),
        format!("{}/empty.git", http()),
    ] {
        let out = context(&url, &[]);
        assert_fails(&out, 1, &["the repository is empty", "empty.git"], &[]);
    }
}

#[test]
fn a_submodule_that_cannot_be_fetched() {
    let out = context(&format!("{}/badsub.git", http()), &[]);
    assert_fails(
        &out,
        1,
        &[
            "submodule \"missing\"",
            "no-such-repo.git",
            "repository not found",
        ],
        &[],
    );
}

#[test]
fn dockerfile_missing_in_the_context() {
    let bed = bed();
    let out = dbuild(
        &["build", &format!("{}/nested.git", bed.git)],
        None,
        &[],
        None,
    );
    assert_fails(&out, 2, &["Dockerfile \"Dockerfile\" not found"], &[]);
    let out = dbuild(
        &[
            "build",
            &format!("{}/nested.git#main:app", bed.git),
            "-f",
            "nope/Dockerfile",
        ],
        None,
        &[],
        None,
    );
    assert_fails(&out, 2, &["\"nope/Dockerfile\" not found"], &[]);
}

#[test]
fn lfs_and_filter_warnings_go_to_stderr() {
    let out = context(&format!("{}/attrs.git", http()), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings.iter().all(|w| w.starts_with("dbuild: warning: ")),
        "{err}"
    );
    assert!(
        err.contains("Git LFS pointer") && err.contains("filter=lfs"),
        "{err}"
    );
}

#[test]
fn builds_an_image_with_a_submodule_pinned_off_the_branch_tip() {
    let _bed = bed();
    let tag = format!("dbuild-git-cli-super:{}", unique("t"));
    let out = dbuild(
        &["build", "-q", &format!("{}/super.git", http()), "-t", &tag],
        None,
        &[],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(run_in(&tag, &["cat", "/dep.txt"]), "dep v1");
    docker(&["rmi", "-f", &tag]);
}

/// Remounts every mount read-only in a private mount namespace, checks that nothing is
/// writable, then runs dbuild there. Needs root (the test bed runs as root) and `unshare`.
const READ_ONLY_SCRIPT: &str = r#"
set -e
for m in $(awk '{print $5}' /proc/self/mountinfo); do
    mount -o remount,ro,bind "$m" "$m" 2>/dev/null || true
done
# The last mount at each point is the visible one; all must be read-only.
rw=$(awk '{m[$5]=$6} END {for (k in m) if (m[k] !~ /^ro(,|$)/) print k}' /proc/self/mountinfo)
if [ -n "$rw" ]; then echo "still writable: $rw" >&2; exit 97; fi
if touch /tmp/dbuild-ro-probe 2>/dev/null || touch "$HOME/dbuild-ro-probe" 2>/dev/null; then
    echo "a probe file could be written" >&2; exit 98
fi
exec "$@"
"#;

#[test]
fn builds_from_a_read_only_root_with_no_writable_tmp() {
    let bed = bed();
    let tag = format!("dbuild-git-cli-ro:{}", unique("t"));
    let bin = env!("CARGO_BIN_EXE_dbuild");
    assert!(Path::new(bin).exists());
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            READ_ONLY_SCRIPT,
            "sh",
        ])
        .args([bin, "build", &format!("{}/demo.git", bed.git), "-t", &tag])
        .env("TMPDIR", "/tmp")
        .output()
        .expect("unshare (util-linux) runs");
    assert!(
        out.status.success(),
        "dbuild in a read-only mount namespace failed ({:?}): {}",
        out.status.code(),
        text(&out.stderr)
    );
    let inspect = docker(&["image", "inspect", "--format", "{{.Id}}", &tag]);
    assert!(
        inspect.status.success(),
        "the image {tag} does not exist after the read-only build"
    );
    assert_eq!(text(&inspect.stdout).trim(), text(&out.stdout).trim());
    docker(&["rmi", "-f", &tag]);
}
