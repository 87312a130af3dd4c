//! Smart HTTP, `.gitattributes` conversions and submodules, against the test bed's real
//! servers (`git http-backend` on 127.0.0.1:8418, `git daemon` on 9418) and the `git` CLI.
//!
//! Start the test bed first: `bash scripts/testbed.sh up`. A missing service fails the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use dbuild::context::{Kind, Tree};
use dbuild::git::{fetch_blocking, Address, Checkout};

/// demo.git's `main` and the commit its annotated tag `v1` points to (scripts/testbed.sh).
const DEMO_MAIN: &str = "48dddf5bf53202dc6bc206d3129170fd39ba8250";
const DEMO_V1: &str = "bae6733a0ee9f3f6ab2b4f4ef3249bb4338c6b2e";

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The smart HTTP base URL, checked to be reachable.
fn http() -> String {
    let base = var("DBUILD_TEST_GIT_HTTP", "http://127.0.0.1:8418");
    let hp = base.trim_start_matches("http://");
    assert!(
        TcpStream::connect(hp).is_ok(),
        "the test bed's smart HTTP git server is not reachable at {hp}: run `bash scripts/testbed.sh up`"
    );
    base
}

/// The git daemon base URL, checked to be reachable.
fn daemon() -> String {
    let base = var("DBUILD_TEST_GIT", "git://127.0.0.1:9418");
    let hp = base.trim_start_matches("git://");
    assert!(
        TcpStream::connect(hp).is_ok(),
        "the test bed's git daemon is not reachable at {hp}: run `bash scripts/testbed.sh up`"
    );
    base
}

fn password() -> String {
    var("DBUILD_TEST_GIT_HTTP_PASSWORD", "dbuild-test-secret-7Q")
}

fn user() -> String {
    var("DBUILD_TEST_GIT_HTTP_USER", "alice")
}

/// `http://user:password@host:port` for the private repositories.
fn private(user: &str, password: &str) -> String {
    let base = http();
    let hostport = base.trim_start_matches("http://");
    format!("http://{user}:{password}@{hostport}/private")
}

fn fetch(addr: &str) -> Checkout {
    fetch_blocking(&Address::parse(addr).expect("valid address"))
        .unwrap_or_else(|e| panic!("fetching {addr}: {e}"))
}

/// The error fetching `addr` gives, checked to be one line without `secret`.
fn err(addr: &str, secret: &str) -> String {
    let msg = fetch_blocking(&Address::parse(addr).expect("valid address"))
        .expect_err("the fetch should fail")
        .to_string();
    assert!(!msg.contains('\n'), "not one line: {msg}");
    assert!(!msg.contains(secret), "the secret leaked: {msg}");
    msg
}

fn data(t: &Tree, path: &str) -> bytes::Bytes {
    match &t
        .get(path.as_bytes())
        .unwrap_or_else(|| panic!("{path} missing"))
        .kind
    {
        Kind::File { data, .. } => data.load().unwrap(),
        other => panic!("{path} is {other:?}"),
    }
}

fn paths(t: &Tree) -> Vec<String> {
    t.entries()
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect()
}

#[test]
fn anonymous_http_default_branch_tag_and_subdir() {
    let base = http();
    let c = fetch(&format!("{base}/demo.git"));
    assert_eq!(c.commit, DEMO_MAIN);
    assert_eq!(data(&c.tree, "data.txt"), &b"demo data main\n"[..]);
    assert!(matches!(
        c.tree.get(b"hello.sh").unwrap().kind,
        Kind::File {
            executable: true,
            ..
        }
    ));
    assert!(matches!(
        &c.tree.get(b"link-to-data").unwrap().kind,
        Kind::Symlink { target } if target == b"data.txt"
    ));
    let c = fetch(&format!("{base}/demo.git#v1:sub"));
    assert_eq!(c.commit, DEMO_V1);
    assert_eq!(paths(&c.tree), ["deeper", "deeper/deep.txt", "nested.txt"]);
    let c = fetch(&format!("{base}/demo.git#{DEMO_V1}"));
    assert_eq!(data(&c.tree, "data.txt"), &b"demo data v1\n"[..]);
    let c = fetch(&format!("{base}/demo.git#refs/heads/main"));
    assert_eq!(c.commit, DEMO_MAIN);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn private_http_needs_the_right_credentials() {
    let pw = password();
    let c = fetch(&format!("{}/demo.git#main:sub", private(&user(), &pw)));
    assert_eq!(c.commit, DEMO_MAIN);
    // Percent-encoded user info is decoded, as git does.
    let c = fetch(&format!("{}/demo.git", private("%61lice", &pw)));
    assert_eq!(c.commit, DEMO_MAIN);

    let wrong = "not-the-password-x9";
    let msg = err(&format!("{}/demo.git", private(&user(), wrong)), wrong);
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(msg.contains("http://127.0.0.1"), "{msg}");

    let base = http();
    let msg = err(&format!("{base}/private/demo.git"), &pw);
    assert!(
        msg.contains("authentication required") && msg.contains("DBUILD_GIT_TOKEN"),
        "{msg}"
    );
}

#[test]
fn http_errors_are_one_line() {
    let base = http();
    let msg = err(&format!("{base}/no-such-repo.git"), "\u{0}");
    assert!(msg.contains("repository not found"), "{msg}");
    let msg = err(&format!("{base}/empty.git"), "\u{0}");
    assert!(msg.contains("the repository is empty"), "{msg}");
    let msg = err(&format!("{base}/demo.git#no-such-ref"), "\u{0}");
    assert!(msg.contains("ref \"no-such-ref\" not found"), "{msg}");
    let missing = "0123456789012345678901234567890123456789";
    let msg = err(&format!("{base}/demo.git#{missing}"), "\u{0}");
    assert!(
        msg.contains(missing) && msg.contains("does not have commit"),
        "{msg}"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let msg = err(&format!("http://127.0.0.1:{port}/demo.git"), "\u{0}");
    assert!(msg.contains("connection refused"), "{msg}");
    let msg = err("http://no-such-host.invalid/r.git", "\u{0}");
    assert!(msg.contains("unknown host"), "{msg}");
}

#[test]
fn https_to_a_plain_http_port_is_a_tls_error() {
    let base = http();
    let url = base.replacen("http://", "https://", 1);
    let msg = err(&format!("{url}/demo.git"), "\u{0}");
    if cfg!(feature = "https") {
        assert!(msg.contains("TLS handshake"), "{msg}");
    } else {
        assert!(msg.contains("`https` feature"), "{msg}");
    }
}

/// FAKE server (named as such): answers every request with a redirect to `to`, or to itself
/// forever. The test bed's real server does not redirect, and only a fake can loop.
fn fake_redirector(to: Option<String>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let location = match &to {
                Some(t) => format!("{t}/info/refs?service=git-upload-pack"),
                None => format!(
                    "http://127.0.0.1:{port}/again{}/info/refs?service=git-upload-pack",
                    req.len()
                ),
            };
            let _ = write!(
                s,
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    port
}

#[test]
fn redirects_are_followed_a_few_times() {
    let base = http();
    let port = fake_redirector(Some(format!("{base}/demo.git")));
    let c = fetch(&format!("http://127.0.0.1:{port}/old/demo.git#v1"));
    assert_eq!(c.commit, DEMO_V1);
    let port = fake_redirector(None);
    let msg = err(&format!("http://127.0.0.1:{port}/loop.git"), "\u{0}");
    assert!(msg.contains("redirects"), "{msg}");
}

/// Runs git with no user or system configuration (a fresh clone on Linux).
fn git(args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", "/nonexistent")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that `tree` holds exactly the files, links and modes of the checkout in `dir`.
fn assert_same_as_checkout(tree: &Tree, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut on_disk = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel == ".git" || rel.ends_with("/.git") {
                continue;
            }
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p.clone());
                assert!(
                    matches!(tree.get(rel.as_bytes()).map(|e| &e.kind), Some(Kind::Dir)),
                    "{rel} is a directory in git's checkout"
                );
            } else if md.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                assert!(
                    matches!(tree.get(rel.as_bytes()).map(|e| &e.kind), Some(Kind::Symlink { target: t }) if t.as_slice() == target.as_os_str().as_encoded_bytes()),
                    "{rel}: symlink differs"
                );
            } else {
                let want = std::fs::read(&p).unwrap();
                let exec = md.permissions().mode() & 0o100 != 0;
                match tree.get(rel.as_bytes()).map(|e| &e.kind) {
                    Some(Kind::File { data, executable }) => {
                        let data = &data.load().unwrap();
                        assert_eq!(
                            String::from_utf8_lossy(data),
                            String::from_utf8_lossy(&want),
                            "{rel}: content differs from git's checkout"
                        );
                        assert_eq!(data.as_ref(), want.as_slice(), "{rel}: bytes differ");
                        assert_eq!(*executable, exec, "{rel}: executable bit differs");
                    }
                    other => panic!("{rel}: git checks out a file, dbuild has {other:?}"),
                }
            }
            on_disk.push(rel);
        }
    }
    on_disk.sort();
    let mut ours = paths(tree);
    ours.sort();
    assert_eq!(
        ours, on_disk,
        "the set of paths differs from git's checkout"
    );
}

#[test]
fn gitattributes_conversions_match_git_clone() {
    let base = http();
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("attrs");
    git(&[
        "clone",
        "-q",
        &format!("{base}/attrs.git"),
        clone.to_str().unwrap(),
    ]);
    let c = fetch(&format!("{base}/attrs.git"));
    assert_same_as_checkout(&c.tree, &clone);
    // The fixture really converts something, so equality is not trivial.
    assert_eq!(data(&c.tree, "crlf.txt"), &b"line one\r\nline two\r\n"[..]);
    assert!(data(&c.tree, "ident.c").starts_with(b"/* $Id: "));
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("big.dat (filter=lfs)"),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings[1].contains("Git LFS pointer") && c.warnings[1].contains("big.dat"),
        "{:?}",
        c.warnings
    );
    // A subdirectory is cut after conversion: the root .gitattributes still applies.
    let c = fetch(&format!("{base}/attrs.git#:auto"));
    assert_eq!(data(&c.tree, "text.md"), &b"auto text\r\nconverted\r\n"[..]);
}

#[test]
fn submodules_are_fetched_by_commit_over_every_transport() {
    let git_base = daemon();
    let http_base = http();
    let root = var("DBUILD_TESTBED_STATE", "/var/lib/dbuild-testbed");
    let local = format!("{root}/git/super.git");
    for url in [
        format!("{http_base}/super.git"),
        format!("{git_base}/super.git"),
        local.clone(),
        format!("file://{local}"),
    ] {
        let c = fetch(&url);
        assert_eq!(
            paths(&c.tree),
            [
                ".gitmodules",
                "Dockerfile",
                "lib",
                "lib/dep",
                "lib/dep/dep.txt"
            ],
            "{url}"
        );
        // The pinned commit ("dep v1") is not subdep's branch tip ("dep v2").
        assert_eq!(data(&c.tree, "lib/dep/dep.txt"), &b"dep v1\n"[..], "{url}");
    }
    // The submodule's tree, like git's checkout of it.
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("super");
    git(&[
        "-c",
        "protocol.file.allow=always",
        "clone",
        "-q",
        "--recurse-submodules",
        &local,
        clone.to_str().unwrap(),
    ]);
    std::fs::remove_file(clone.join("lib/dep/.git")).unwrap();
    assert_same_as_checkout(&fetch(&local).tree, &clone);

    let msg = err(&format!("{http_base}/badsub.git"), "\u{0}");
    assert!(
        msg.starts_with("submodule \"missing\": ") && msg.contains("no-such-repo.git"),
        "{msg}"
    );
}

/// FAKE server (named as such): a proxy in front of the test bed's smart HTTP server that
/// behaves like a server refusing commits no ref points to (git's v0 upload-pack without
/// `uploadpack.allowReachableSHA1InWant`, or other implementations) and that does not call
/// itself git. git's own v2 upload-pack never refuses, so only a fake can exercise dbuild's
/// deepen-until-found fallback. Returns the port and a count of refused requests.
fn fake_refusing_proxy(
    upstream: &str,
    tips: Vec<String>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&refused);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { return };
            // Request head, then a Content-Length body (what dbuild sends).
            let mut req = Vec::new();
            let mut buf = [0u8; 8192];
            let head_end = loop {
                if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match client.read(&mut buf) {
                    Ok(0) | Err(_) => break 0,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            };
            if head_end == 0 {
                continue;
            }
            let head = String::from_utf8_lossy(&req[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while req.len() < head_end + len {
                match client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let body = String::from_utf8_lossy(&req[head_end..]).into_owned();
            let refuse = body.contains("command=fetch")
                && body
                    .split('\n')
                    .filter_map(|l| l.split("want ").nth(1))
                    .any(|w| !tips.iter().any(|t| t == w.trim()));
            if refuse {
                count.fetch_add(1, Ordering::SeqCst);
                let line = "ERR upload-pack: not our ref\n";
                let pkt = format!("{:04x}{line}", line.len() + 4);
                let _ = write!(
                    client,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{pkt}",
                    pkt.len()
                );
                continue;
            }
            let mut up = TcpStream::connect(&upstream).unwrap();
            up.write_all(&req[..head_end - 2]).unwrap();
            up.write_all(b"Connection: close\r\n\r\n").unwrap();
            up.write_all(&req[head_end..]).unwrap();
            let mut resp = Vec::new();
            up.read_to_end(&mut resp).unwrap();
            // Not git's upload-pack any more: same length, so no length prefix changes.
            if let Some(i) = resp.windows(10).position(|w| w == b"agent=git/") {
                resp[i..i + 10].copy_from_slice(b"agent=fak/");
            }
            let _ = client.write_all(&resp);
        }
    });
    (port, refused)
}

#[test]
fn a_commit_the_server_refuses_by_id_is_found_by_deepening() {
    let base = http();
    let state = var("DBUILD_TESTBED_STATE", "/var/lib/dbuild-testbed");
    let repo = format!("{state}/git/subdep.git");
    let rev = |r: &str| {
        let out = Command::new("git")
            .args(["--git-dir", &repo, "rev-parse", r])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{repo}: run `bash scripts/testbed.sh up`"
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (tip, first) = (rev("refs/heads/main"), rev("refs/heads/main~1"));
    let (port, refused) = fake_refusing_proxy(&base, vec![tip.clone()]);
    let c = fetch(&format!("http://127.0.0.1:{port}/subdep.git#{first}"));
    assert_eq!(c.commit, first);
    assert_eq!(data(&c.tree, "dep.txt"), &b"dep v1\n"[..]);
    assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 1);

    let missing = "0123456789012345678901234567890123456789";
    let msg = err(
        &format!("http://127.0.0.1:{port}/subdep.git#{missing}"),
        "\u{0}",
    );
    assert!(
        msg.contains(missing) && msg.contains("not in the history of any branch or tag"),
        "{msg}"
    );
    // The real server (git's own) is trusted: a missing commit is not searched for.
    let msg = err(&format!("{base}/subdep.git#{missing}"), "\u{0}");
    assert!(msg.contains("does not have commit"), "{msg}");
}
