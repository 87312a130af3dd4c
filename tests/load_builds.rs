//! Load and soak from one process using the library against the test bed's Docker engine:
//! 20 concurrent fetch-and-build jobs, then 200 sequential builds. All must succeed; memory
//! (VmRSS) must come back near its baseline and no file descriptor may be left open.
//!
//! One test function on purpose: the measurements read this process's `/proc/self`, which
//! another test running in parallel would disturb.

mod common;

use bytes::Bytes;
use dbuild::context::{Entry, Kind, TarBody, TarOptions, Tree};
use dbuild::engine::{BuildOptions, Engine, Settings};

/// Concurrent jobs, each a git fetch and a build.
const CONCURRENT: usize = 20;
/// Sequential builds.
const SEQUENTIAL: usize = 200;
/// Allowed VmRSS growth from the warmed-up baseline to the end. The allocator keeps freed
/// pages for reuse and the runtime's thread pool may have grown during the concurrent part,
/// so the bound is generous; a real leak (every build's context, messages or connection
/// kept) would grow by megabytes per hundred builds and cross it.
const RSS_SLACK_KIB: u64 = 24 * 1024;

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A tiny context whose image differs by `n` (a build arg baked into a label, no RUN).
fn tree() -> Tree {
    Tree::from_entries(
        0,
        vec![Entry {
            path: b"Dockerfile".to_vec(),
            kind: Kind::File {
                data: Bytes::from_static(
                    b"FROM localbusybox:latest\nARG N\nLABEL dbuild.load.n=$N\n",
                )
                .into(),
                executable: false,
            },
        }],
    )
    .unwrap()
}

async fn build(engine: &Engine, tree: Tree, tag: &str, n: usize) -> String {
    let options = BuildOptions {
        tags: vec![tag.to_owned()],
        build_args: vec![("N".into(), format!("{tag}-{n}"))],
        ..Default::default()
    };
    let out = engine
        .build(TarBody::new(tree, TarOptions::default()), &options, |_| {})
        .await
        .unwrap_or_else(|e| panic!("build {n} failed: {e}"));
    out.image_id
}

/// Lets aborted connection tasks finish closing their sockets.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

#[test]
fn twenty_concurrent_and_two_hundred_sequential_builds() {
    let bed = common::bed();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let prefix = common::unique("dbuild-load");
    let tags = std::sync::Mutex::new(Vec::new());
    let push_tag = |t: String| tags.lock().unwrap().push(t);
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let engine = Engine::connect(Settings::from_env(None).unwrap())
                .await
                .expect("the test bed's engine");
            let git = dbuild::git::Address::parse(&format!("{}/demo.git", bed.git)).unwrap();

            // Warm-up: the first fetch and builds allocate lazily-built state (TLS roots, DNS,
            // the runtime's pools); measure from after them.
            for n in 0..5 {
                let _ = dbuild::git::fetch(git.clone()).await.unwrap();
                let tag = format!("{prefix}:warm{n}");
                build(&engine, tree(), &tag, n).await;
                push_tag(tag);
            }
            settle().await;
            let (rss0, fds0) = (vm_rss_kib(), open_fds());

            // 20 at once, each fetching the repository and building.
            let started = std::time::Instant::now();
            let mut jobs = tokio::task::JoinSet::new();
            for n in 0..CONCURRENT {
                let engine = engine.clone();
                let git = git.clone();
                let tag = format!("{prefix}:c{n}");
                push_tag(tag.clone());
                jobs.spawn(async move {
                    let checkout = dbuild::git::fetch(git).await.expect("fetch");
                    assert!(checkout.tree.get(b"Dockerfile").is_some());
                    build(&engine, tree(), &tag, n).await
                });
            }
            let mut ids = std::collections::BTreeSet::new();
            while let Some(r) = jobs.join_next().await {
                ids.insert(r.expect("job"));
            }
            assert_eq!(ids.len(), CONCURRENT, "every build made its own image");
            let concurrent = started.elapsed();

            let started = std::time::Instant::now();
            let mut rss_half = 0;
            for n in 0..SEQUENTIAL {
                let tag = format!("{prefix}:s{n}");
                build(&engine, tree(), &tag, n).await;
                push_tag(tag);
                if n + 1 == SEQUENTIAL / 2 {
                    settle().await;
                    rss_half = vm_rss_kib();
                }
            }
            let sequential = started.elapsed();
            settle().await;
            let (rss1, fds1) = (vm_rss_kib(), open_fds());
            (rss0, fds0, rss_half, rss1, fds1, concurrent, sequential)
        })
    }));
    drop(rt);
    let tags = tags.into_inner().unwrap_or_else(|p| p.into_inner());
    // Remove every image made here (the docker CLI is a test tool).
    for chunk in tags.chunks(50) {
        let mut args = vec!["rmi", "-f"];
        args.extend(chunk.iter().map(String::as_str));
        let _ = common::docker(&args);
    }
    // Images are removed above even when a build failed.
    let (rss0, fds0, rss_half, rss1, fds1, concurrent, sequential) =
        report.unwrap_or_else(|p| std::panic::resume_unwind(p));
    eprintln!(
        "load: {CONCURRENT} concurrent jobs in {concurrent:?}, {SEQUENTIAL} sequential builds in {sequential:?}; VmRSS {rss0} -> {rss_half} (half-way through the sequential builds) -> {rss1} KiB; fds {fds0} -> {fds1}"
    );
    assert_eq!(fds1, fds0, "file descriptors leaked");
    // A leak grows with the number of builds; the second hundred must not add much.
    assert!(
        rss1 <= rss_half + RSS_SLACK_KIB / 3,
        "VmRSS grew from {rss_half} KiB to {rss1} KiB over the last {} builds",
        SEQUENTIAL / 2
    );
    assert!(
        rss1 <= rss0 + RSS_SLACK_KIB,
        "VmRSS grew from {rss0} KiB to {rss1} KiB"
    );
}
