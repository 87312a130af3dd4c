//! Fetching from a real `git daemon` and from local repositories built with the `git` CLI.
//!
//! Every test builds its own fixture repositories and daemon (on a free port), so tests are
//! independent and can run in parallel; the daemon is killed when the test ends.

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dbuild::context::{Kind, Tree};
use dbuild::git::{fetch_blocking, Address, Checkout, Error};

const T1: u64 = 1_600_000_000;
const T2: u64 = 1_700_000_000;
const T3: u64 = 1_650_000_000;

/// Runs git in `dir` with a fixed identity and dates, ignoring the user's configuration.
fn git(dir: &Path, args: &[&str], time: u64) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "init.defaultBranch=master",
            "-c",
            "core.autocrlf=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", format!("@{time} +0000"))
        .env("GIT_COMMITTER_DATE", format!("@{time} +0000"))
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write(path: &Path, data: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The fixture repositories, under one base directory served by the daemon.
struct Fixture {
    _dir: tempfile::TempDir,
    base: PathBuf,
    /// Commits of repo `main`: c1 (older), c2 (tip of main), c3 (tip of `feature`).
    c1: String,
    c2: String,
    c3: String,
    /// Tip of `develop` (HEAD) in repo `dev`.
    dev_tip: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();

        // "main": default branch `main`, not master.
        let m = base.join("main");
        std::fs::create_dir(&m).unwrap();
        git(&m, &["init", "-q", "-b", "main"], T1);
        write(&m.join("Dockerfile"), b"FROM scratch\n", 0o644);
        write(&m.join("old.txt"), b"old\n", 0o644);
        git(&m, &["add", "-A"], T1);
        git(&m, &["commit", "-q", "-m", "c1"], T1);
        let c1 = git(&m, &["rev-parse", "HEAD"], T1);
        git(&m, &["tag", "-a", "v1.0", "-m", "release 1.0"], T1);

        std::fs::remove_file(m.join("old.txt")).unwrap();
        write(&m.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o755);
        write(&m.join("data.txt"), b"some data\n", 0o644);
        write(&m.join("empty"), b"", 0o644);
        symlink("data.txt", m.join("link")).unwrap();
        symlink("../nowhere/at all", m.join("dangling")).unwrap();
        write(&m.join("a/b/c/deep.txt"), b"deep\n", 0o644);
        write(&m.join("sub/Dockerfile"), b"FROM sub\n", 0o644);
        write(&m.join("sub/inner/x"), b"x\n", 0o755);
        let weird = m.join(OsStr::from_bytes(b"caf\xe9.txt"));
        write(&weird, b"latin-1 name\n", 0o644);
        // A file large and repetitive enough for git to store deltas against its old version.
        let big: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        write(&m.join("big.txt"), &big, 0o644);
        git(&m, &["add", "-A"], T2);
        git(&m, &["commit", "-q", "-m", "c2"], T2);
        let mut big2 = big.clone();
        big2.extend_from_slice(b"one more line\n");
        write(&m.join("big.txt"), &big2, 0o644);
        git(&m, &["commit", "-q", "-a", "-m", "c2b"], T2);
        let c2 = git(&m, &["rev-parse", "HEAD"], T2);
        git(&m, &["tag", "light"], T2);

        git(&m, &["checkout", "-q", "-b", "feature"], T3);
        write(&m.join("feature.txt"), b"feature\n", 0o644);
        git(&m, &["add", "-A"], T3);
        git(&m, &["commit", "-q", "-m", "c3"], T3);
        let c3 = git(&m, &["rev-parse", "HEAD"], T3);
        git(&m, &["update-ref", "refs/pull/42/head", &c3], T3);
        // A tag named like a branch: git's rules make the tag win.
        git(&m, &["tag", "feature-or-tag", &c1], T3);
        git(&m, &["branch", "feature-or-tag-b", &c3], T3);
        git(&m, &["checkout", "-q", "main"], T3);
        git(&m, &["repack", "-adq"], T3);

        // "any.git": a bare copy that serves any commit by id.
        git(&base, &["clone", "-q", "--bare", "main", "any.git"], T3);
        git(
            &base.join("any.git"),
            &["config", "uploadpack.allowAnySHA1InWant", "true"],
            T3,
        );

        // "dev": HEAD points to `develop`, and a `master` branch exists too.
        let d = base.join("dev");
        std::fs::create_dir(&d).unwrap();
        git(&d, &["init", "-q", "-b", "master"], T1);
        write(&d.join("which"), b"master\n", 0o644);
        git(&d, &["add", "-A"], T1);
        git(&d, &["commit", "-q", "-m", "m"], T1);
        git(&d, &["checkout", "-q", "-b", "develop"], T2);
        write(&d.join("which"), b"develop\n", 0o644);
        git(&d, &["commit", "-q", "-a", "-m", "d"], T2);
        let dev_tip = git(&d, &["rev-parse", "HEAD"], T2);

        // "empty": no commits at all.
        let e = base.join("empty.git");
        std::fs::create_dir(&e).unwrap();
        git(&e, &["init", "-q", "--bare"], T1);

        Fixture {
            _dir: dir,
            base,
            c1,
            c2,
            c3,
            dev_tip,
        }
    }
}

/// A `git daemon` serving a fixture; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = free_port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--export-all",
                &format!("--base-path={}", base.display()),
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                "--reuseaddr",
            ])
            .arg(base)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let daemon = Daemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now (the OS picks it; we release it immediately).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn setup() -> (Fixture, Daemon) {
    let f = Fixture::new();
    let d = Daemon::start(&f.base);
    (f, d)
}

fn fetch(addr: &str) -> Result<Checkout, Error> {
    fetch_blocking(&Address::parse(addr).expect("valid address"))
}

/// The error fetching `addr` gives, checked to be a single line.
fn err(addr: &str) -> String {
    let msg = fetch(addr).expect_err("fetch should fail").to_string();
    assert!(!msg.contains('\n'), "not one line: {msg}");
    msg
}

fn file(t: &Tree, path: &[u8]) -> (bytes::Bytes, bool) {
    match &t
        .get(path)
        .unwrap_or_else(|| panic!("{:?} missing", String::from_utf8_lossy(path)))
        .kind
    {
        Kind::File { data, executable } => (data.load().unwrap(), *executable),
        other => panic!("{:?} is {other:?}", String::from_utf8_lossy(path)),
    }
}

fn paths(t: &Tree) -> Vec<String> {
    t.entries()
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect()
}

/// Asserts the full content of `main` at its tip (c2b).
fn assert_main_tip(t: &Tree) {
    assert_eq!(t.mtime, T2);
    assert_eq!(
        paths(t),
        [
            "Dockerfile",
            "a",
            "a/b",
            "a/b/c",
            "a/b/c/deep.txt",
            "big.txt",
            "caf\u{fffd}.txt",
            "dangling",
            "data.txt",
            "empty",
            "link",
            "run.sh",
            "sub",
            "sub/Dockerfile",
            "sub/inner",
            "sub/inner/x",
        ]
    );
    assert_eq!(
        file(t, b"run.sh"),
        (bytes::Bytes::from_static(b"#!/bin/sh\necho hi\n"), true)
    );
    assert_eq!(
        file(t, b"data.txt"),
        (bytes::Bytes::from_static(b"some data\n"), false)
    );
    assert_eq!(file(t, b"empty"), (bytes::Bytes::from_static(b""), false));
    assert_eq!(
        file(t, b"a/b/c/deep.txt"),
        (bytes::Bytes::from_static(b"deep\n"), false)
    );
    assert_eq!(
        file(t, b"caf\xe9.txt"),
        (bytes::Bytes::from_static(b"latin-1 name\n"), false)
    );
    assert!(file(t, b"big.txt")
        .0
        .ends_with(b"line 19999\none more line\n"));
    assert_eq!(t.get(b"a/b").unwrap().kind, Kind::Dir);
    assert_eq!(
        t.get(b"link").unwrap().kind,
        Kind::Symlink {
            target: b"data.txt".to_vec()
        }
    );
    assert_eq!(
        t.get(b"dangling").unwrap().kind,
        Kind::Symlink {
            target: b"../nowhere/at all".to_vec()
        }
    );
}

#[test]
fn default_branch_is_remote_head_not_master() {
    let (f, d) = setup();
    let c = fetch(&d.url("main")).unwrap();
    assert_eq!(c.commit, f.c2);
    assert_main_tip(&c.tree);

    // HEAD -> develop, while a master branch exists.
    let c = fetch(&d.url("dev")).unwrap();
    assert_eq!(c.commit, f.dev_tip);
    assert_eq!(file(&c.tree, b"which").0, &b"develop\n"[..]);
    assert_eq!(c.tree.mtime, T2);
}

#[test]
fn branches_tags_and_full_refs() {
    let (f, d) = setup();
    let u = d.url("main");
    let c = fetch(&format!("{u}#feature")).unwrap();
    assert_eq!(c.commit, f.c3);
    assert_eq!(c.tree.mtime, T3);
    assert!(c.tree.get(b"feature.txt").is_some());

    assert_eq!(fetch(&format!("{u}#main")).unwrap().commit, f.c2);
    assert_eq!(fetch(&format!("{u}#refs/heads/main")).unwrap().commit, f.c2);
    assert_eq!(fetch(&format!("{u}#heads/feature")).unwrap().commit, f.c3);
    assert_eq!(
        fetch(&format!("{u}#refs/pull/42/head")).unwrap().commit,
        f.c3
    );

    // Lightweight tag.
    assert_eq!(fetch(&format!("{u}#light")).unwrap().commit, f.c2);
    // Annotated tag: peeled to its commit.
    let c = fetch(&format!("{u}#v1.0")).unwrap();
    assert_eq!(c.commit, f.c1);
    assert_eq!(c.tree.mtime, T1);
    assert_eq!(paths(&c.tree), ["Dockerfile", "old.txt"]);
    assert_eq!(fetch(&format!("{u}#refs/tags/v1.0")).unwrap().commit, f.c1);
    // Tags win over branches, as in git.
    assert_eq!(fetch(&format!("{u}#feature-or-tag")).unwrap().commit, f.c1);
}

#[test]
fn commit_ids() {
    let (f, d) = setup();
    // At a tip: always allowed.
    let c = fetch(&format!("{}#{}", d.url("main"), f.c3)).unwrap();
    assert_eq!(c.commit, f.c3);
    // Not at a tip, server allows any id.
    let c = fetch(&format!("{}#{}", d.url("any.git"), f.c1)).unwrap();
    assert_eq!(c.commit, f.c1);
    assert_eq!(paths(&c.tree), ["Dockerfile", "old.txt"]);
    // Not at a tip, default server configuration: git's protocol v2 upload-pack serves any
    // object it has (only v0 enforces allowReachableSHA1InWant), so this works too.
    let c = fetch(&format!("{}#{}", d.url("main"), f.c1)).unwrap();
    assert_eq!(c.commit, f.c1);
    // A commit the server does not have at all.
    let missing = "0123456789012345678901234567890123456789";
    for repo in ["main", "any.git"] {
        let msg = err(&format!("{}#{missing}", d.url(repo)));
        assert!(
            msg.contains(&format!(
                "does not have commit {missing} or refuses to send it"
            )),
            "{msg}"
        );
    }
}

#[test]
fn subdirectories() {
    let (_f, d) = setup();
    let c = fetch(&format!("{}#main:sub", d.url("main"))).unwrap();
    assert_eq!(paths(&c.tree), ["Dockerfile", "inner", "inner/x"]);
    assert_eq!(
        file(&c.tree, b"inner/x"),
        (bytes::Bytes::from_static(b"x\n"), true)
    );
    assert_eq!(c.tree.mtime, T2);
    let c = fetch(&format!("{}#:a/b/", d.url("main"))).unwrap();
    assert_eq!(paths(&c.tree), ["c", "c/deep.txt"]);

    let msg = err(&format!("{}#:nope", d.url("main")));
    assert!(msg.contains("\"nope\" not found"), "{msg}");
    let msg = err(&format!("{}#main:run.sh", d.url("main")));
    assert!(
        msg.contains("\"run.sh\"") && msg.contains("not a directory"),
        "{msg}"
    );
}

#[test]
fn error_messages() {
    let (_f, d) = setup();
    let msg = err(&format!("{}#no-such-branch", d.url("main")));
    assert_eq!(
        msg,
        format!(
            "ref \"no-such-branch\" not found in {}: check the branch, tag or commit after '#'",
            d.url("main")
        )
    );
    let msg = err(&format!("{}#abc1234", d.url("main")));
    assert!(msg.contains("full 40-character id"), "{msg}");

    let msg = err(&d.url("missing.git"));
    assert!(msg.contains("repository not found"), "{msg}");

    let msg = err(&d.url("empty.git"));
    assert!(msg.contains("empty"), "{msg}");

    let port = free_port();
    let msg = err(&format!("git://127.0.0.1:{port}/main"));
    assert!(msg.contains("connection refused"), "{msg}");

    let msg = err("git://no-such-host.invalid/r");
    assert!(msg.contains("unknown host"), "{msg}");
}

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), md.len(), md.modified().unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn local_repositories_are_read_in_place() {
    let f = Fixture::new();
    let main = f.base.join("main");
    let before = snapshot(&f.base);

    let c = fetch(main.to_str().unwrap()).unwrap();
    assert_eq!(c.commit, f.c2);
    assert_main_tip(&c.tree);
    let c = fetch(&format!("file://{}#v1.0", main.display())).unwrap();
    assert_eq!(c.commit, f.c1);
    let c = fetch(&format!("{}#feature:.", f.base.join("any.git").display())).unwrap();
    assert_eq!(c.commit, f.c3);
    let c = fetch(&format!("{}#{}:sub", main.display(), f.c1)).unwrap_err();
    assert!(c.to_string().contains("\"sub\" not found"), "{c}");
    let c = fetch(f.base.join("dev").to_str().unwrap()).unwrap();
    assert_eq!(c.commit, f.dev_tip);

    let msg = err(&format!("{}#nope", main.display()));
    assert!(msg.starts_with("ref \"nope\" not found in "), "{msg}");
    let msg = err(f.base.join("empty.git").to_str().unwrap());
    assert!(msg.contains("empty"), "{msg}");
    let msg = err(f.base.join("nothing-here").to_str().unwrap());
    assert!(msg.contains("does not exist"), "{msg}");

    assert_eq!(
        before,
        snapshot(&f.base),
        "reading a local repository changed it"
    );
}

/// Set by [`fetch_writes_no_files`] for the child process it starts.
const CHILD_ENV: &str = "DBUILD_TEST_NO_DISK_CHILD";

/// The no-files check runs in a child process: it changes `TMPDIR`, `HOME` and the working
/// directory, which would race other tests if done in this process.
#[test]
fn fetch_writes_no_files() {
    let (f, d) = setup();
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_fetch_in_isolation",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(cwd.path())
        .env(
            CHILD_ENV,
            format!("{}\n{}", d.url("main"), f.base.join("main").display()),
        )
        .env("TMPDIR", tmp.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "child test did not run: {stdout}"
    );
    for dir in [tmp.path(), home.path(), cwd.path()] {
        let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert!(left.is_empty(), "{} is not empty: {left:?}", dir.display());
    }
}

/// Only does something when started by [`fetch_writes_no_files`].
#[test]
fn child_fetch_in_isolation() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (remote, local) = spec.split_once('\n').unwrap();
    for addr in [
        remote.to_owned(),
        format!("{remote}#v1.0:"),
        local.to_owned(),
    ] {
        let c = fetch(&addr).unwrap();
        assert!(!c.tree.is_empty());
    }
}

#[test]
fn async_fetch_works() {
    let (f, d) = setup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let c = rt
        .block_on(dbuild::git::fetch(Address::parse(&d.url("main")).unwrap()))
        .unwrap();
    assert_eq!(c.commit, f.c2);
}

/// A server that answers every connection with `reply` and hangs up: whatever it sends, the
/// fetch must fail with an error, not panic or hang.
fn garbage_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            use std::io::Write;
            let Ok(mut s) = stream else { continue };
            let _ = s.write_all(reply);
        }
    });
    port
}

#[test]
fn hostile_servers_give_errors() {
    for reply in [
        &b""[..],
        b"hello world",
        b"0008ERR \n",
        b"000eversion 2\n0000",
        b"000eversion 2\n000cls-refs\n0000ffff",
        b"zzzz",
    ] {
        let port = garbage_server(reply);
        let msg = err(&format!("git://127.0.0.1:{port}/r#main"));
        assert!(msg.starts_with("fetching git://127.0.0.1:"), "{msg}");
    }
}
