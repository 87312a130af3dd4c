//! Context generation throughput, against `git archive` of the same tree, measured in the same
//! run. Run with `cargo bench --bench context` (add `-- quick` for smaller cases).
//!
//! Cases (each a real git repository made in a temp dir with `git fast-import`):
//! - `small-files`: 100,000 files of 60-400 bytes in 1,000 directories;
//! - `large-files`: two files of 256 MiB (incompressible) and one of 64 MiB;
//! - `real-tree`: the unpacked crate sources of this project's dependencies (~9,000 files of
//!   real code, from cargo's registry cache).
//!
//! For each: dbuild reading the repository in memory and producing the tar (what
//! `dbuild context` does), `git archive --format=tar HEAD`, the tar alone from a tree already in
//! memory, and a plain memory copy of the same file bytes; then the gzip path against
//! `git archive | gzip -6`. Medians of several runs; MB/s is tar bytes per second.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbuild::context::{Kind, TarBody, TarOptions, Tree};

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let root = std::env::temp_dir().join(format!("dbuild-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let _cleanup = Cleanup(root.clone());
    let scale = if quick { 10 } else { 1 };

    let mut cases = vec![
        (
            "small-files",
            make_repo(&root.join("small"), small_files(100_000 / scale)),
        ),
        (
            "large-files",
            make_repo(&root.join("large"), large_files(scale)),
        ),
    ];
    if let Some(real) = real_tree() {
        cases.push(("real-tree", make_repo(&root.join("real"), real)));
    }
    let reps = if quick { 3 } else { 5 };
    println!(
        "{:<12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "case", "tar MiB", "dbuild", "git-arch", "tar-only", "memcpy", "vs git", "vs copy"
    );
    let mut gz_rows = Vec::new();
    for (name, repo) in &cases {
        let (tree, fetch_tar) = median_of(reps, || dbuild_context(repo, None));
        let tar_bytes = fetch_tar.1;
        let git = median_of(reps, || git_archive(repo, false)).1;
        let tar_only = median_of(reps, || tar_only(&tree, None)).1;
        let copy = median_of(reps, || memcpy(&tree)).1;
        let mbps = |d: Duration| tar_bytes as f64 / 1e6 / d.as_secs_f64();
        println!(
            "{:<12} {:>9.1} {:>8.0}/s {:>8.0}/s {:>8.0}/s {:>8.0}/s {:>8.2}x {:>8.2}x",
            name,
            tar_bytes as f64 / (1 << 20) as f64,
            mbps(fetch_tar.0),
            mbps(git.0),
            mbps(tar_only.0),
            mbps(copy.0),
            git.0.as_secs_f64() / fetch_tar.0.as_secs_f64(),
            copy.0.as_secs_f64() / tar_only.0.as_secs_f64(),
        );
        let gz_reps = if *name == "large-files" {
            1
        } else {
            reps.min(3)
        };
        let dgz = median_of(gz_reps, || dbuild_context(repo, Some(6))).1;
        let ggz = median_of(gz_reps, || git_archive(repo, true)).1;
        gz_rows.push((name, tar_bytes, dgz, ggz));
    }
    println!("\ngzip -6 path (MB/s of uncompressed tar):");
    println!(
        "{:<12} {:>10} {:>14} {:>9} {:>12} {:>12}",
        "case", "dbuild", "git-arch|gzip", "vs git", "dbuild out", "gzip out"
    );
    for (name, tar_bytes, d, g) in gz_rows {
        let mbps = |t: Duration| tar_bytes as f64 / 1e6 / t.as_secs_f64();
        println!(
            "{:<12} {:>8.0}/s {:>12.0}/s {:>8.2}x {:>10.1}Mi {:>10.1}Mi",
            name,
            mbps(d.0),
            mbps(g.0),
            g.0.as_secs_f64() / d.0.as_secs_f64(),
            d.1 as f64 / (1 << 20) as f64,
            g.1 as f64 / (1 << 20) as f64
        );
    }
    println!("\n'vs git' = git archive time / dbuild time (>1: dbuild faster); 'vs copy' = memcpy time / tar-only time (>0.5: within 2x of a memory copy)");
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` `n` times; returns the last value and the median time.
fn median_of<T>(n: usize, mut f: impl FnMut() -> (T, u64)) -> (T, (Duration, u64)) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let (v, bytes) = f();
        times.push((t.elapsed(), bytes));
        last = Some(v);
    }
    times.sort();
    (last.unwrap(), times[times.len() / 2])
}

/// dbuild's path: read the commit's tree into memory, produce the whole tar.
fn dbuild_context(repo: &Path, gzip: Option<u32>) -> (Tree, u64) {
    let addr = dbuild::git::Address::parse(repo.to_str().unwrap()).unwrap();
    let tree = dbuild::git::fetch_blocking(&addr).unwrap().tree;
    let n = tar_only(&tree, gzip).1;
    (tree, n)
}

fn tar_only(tree: &Tree, gzip: Option<u32>) -> ((), u64) {
    let n = TarBody::new(tree.clone(), TarOptions { gzip_level: gzip })
        .map(|c| c.unwrap().len() as u64)
        .sum();
    ((), n)
}

fn memcpy(tree: &Tree) -> ((), u64) {
    let mut out = Vec::with_capacity(tree.content_size() as usize);
    for e in tree.entries() {
        if let Kind::File { data, .. } = &e.kind {
            out.extend_from_slice(&data.load().unwrap());
        }
    }
    std::hint::black_box(&out);
    ((), out.len() as u64)
}

fn git_archive(repo: &Path, gzip: bool) -> ((), u64) {
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", "HEAD"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = archive.stdout.take().unwrap();
    let mut gz = None;
    let mut reader: Box<dyn Read> = if gzip {
        let mut g = Command::new("gzip")
            .arg("-6")
            .stdin(Stdio::from(out))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let r = g.stdout.take().unwrap();
        gz = Some(g);
        Box::new(r)
    } else {
        Box::new(out)
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = reader.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    assert!(archive.wait().unwrap().success());
    if let Some(mut g) = gz {
        assert!(g.wait().unwrap().success());
    }
    ((), n)
}

/// A file to put in a fixture repository.
struct File {
    path: String,
    data: Vec<u8>,
    exec: bool,
}

fn small_files(n: usize) -> Vec<File> {
    let mut rng = 0x9E3779B97F4A7C15u64;
    (0..n)
        .map(|i| {
            let len = 60 + (next(&mut rng) % 340) as usize;
            let data = (0..len)
                .map(|j| b"abcdefghij klmnopqrstuvwxyz\n"[(i + j) % 28])
                .collect();
            File {
                path: format!("d{:03}/f{i:06}.txt", i % 1000),
                data,
                exec: i % 50 == 0,
            }
        })
        .collect()
}

fn large_files(scale: usize) -> Vec<File> {
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut blob = |size: usize| {
        let mut v = Vec::with_capacity(size);
        while v.len() < size {
            v.extend_from_slice(&next(&mut rng).to_le_bytes());
        }
        v.truncate(size);
        v
    };
    let mib = 1 << 20;
    vec![
        File {
            path: "big/a.bin".into(),
            data: blob(256 * mib / scale),
            exec: false,
        },
        File {
            path: "big/b.bin".into(),
            data: blob(256 * mib / scale),
            exec: false,
        },
        File {
            path: "c.bin".into(),
            data: blob(64 * mib / scale),
            exec: true,
        },
    ]
}

/// Real source code: the crates cargo unpacked for this project.
fn real_tree() -> Option<Vec<File>> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let src = std::fs::read_dir(home.join("registry/src"))
        .ok()?
        .next()?
        .ok()?
        .path();
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).ok()?;
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() {
                let rel = p.strip_prefix(&src).ok()?.to_str()?.to_owned();
                let exec = std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o100 != 0;
                files.push(File {
                    path: rel,
                    data: std::fs::read(&p).ok()?,
                    exec,
                });
            }
        }
    }
    (!files.is_empty()).then_some(files)
}

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Creates a repository with one commit holding `files`, via `git fast-import`.
fn make_repo(dir: &Path, files: Vec<File>) -> PathBuf {
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    std::fs::create_dir_all(dir).unwrap();
    git(&["init", "-q", "--bare"]);
    let mut fi = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut w = std::io::BufWriter::new(fi.stdin.take().unwrap());
        for (i, f) in files.iter().enumerate() {
            write!(w, "blob\nmark :{}\ndata {}\n", i + 1, f.data.len()).unwrap();
            w.write_all(&f.data).unwrap();
            w.write_all(b"\n").unwrap();
        }
        write!(
            w,
            "commit refs/heads/main\ncommitter bench <b@x> 1700000000 +0000\ndata 5\nbench\n"
        )
        .unwrap();
        for (i, f) in files.iter().enumerate() {
            writeln!(
                w,
                "M {} :{} {}",
                if f.exec { "100755" } else { "100644" },
                i + 1,
                f.path
            )
            .unwrap();
        }
        w.flush().unwrap();
    }
    assert!(fi.wait().unwrap().success());
    git(&["symbolic-ref", "HEAD", "refs/heads/main"]);
    dir.to_path_buf()
}
