//! Concurrency: eight builds of eight different commits at once from one process, through the
//! library (fetch into memory, tar, `POST /build`), against one build alone; total time and
//! peak memory (the process's high-water RSS, `VmHWM`). Not a test: it prints, asserts nothing.
//!
//! Needs the test bed and `bench-medium.git` (made by `scripts/bench-e2e.sh`: tags c1..c8 are
//! eight commits of a ~4,000-file tree differing in one file). Run with
//! `cargo bench --bench concurrent` (`DBUILD_BENCH_REPO` overrides the repository URL).

use std::time::{Duration, Instant};

use dbuild::context::{TarBody, TarOptions};
use dbuild::engine::{BuildOptions, Engine, Settings};
use dbuild::git::Address;

const N: usize = 8;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Fetches tag `c{i}` and builds it as `dbuild-bench-concurrent:c{i}-{pid}`; returns the
/// elapsed time and the tag.
async fn build_one(engine: Engine, repo: String, i: usize) -> (Duration, String) {
    let start = Instant::now();
    let addr = Address::parse(&format!("{repo}#c{i}")).expect("repository URL");
    let checkout = dbuild::git::fetch(addr).await.expect("fetch");
    let tag = format!("dbuild-bench-concurrent:c{i}-{}", std::process::id());
    let options = BuildOptions {
        tags: vec![tag.clone()],
        quiet: true,
        network: Some("none".into()),
        ..Default::default()
    };
    engine
        .build(
            TarBody::new(checkout.tree, TarOptions::default()),
            &options,
            |_| {},
        )
        .await
        .expect("build");
    (start.elapsed(), tag)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let repo = std::env::var("DBUILD_BENCH_REPO")
        .unwrap_or_else(|_| "git://127.0.0.1:9418/bench-medium.git".into());
    let engine = Engine::connect(Settings::from_env(None).expect("engine settings"))
        .await
        .expect("connect to the engine");
    let mut tags = Vec::new();

    // One build alone first, for reference. Each commit differs in one file, so COPY and RUN
    // run for a commit not built before and hit the cache for one that was (c1 is `main`,
    // which scripts/bench-e2e.sh builds).
    let (alone, tag) = build_one(engine.clone(), repo.clone(), 1).await;
    tags.push(tag);
    let hwm_one = vm_hwm_kib();
    println!(
        "one build (c1): {:.2} s, peak RSS {} MiB",
        alone.as_secs_f64(),
        hwm_one / 1024
    );

    let start = Instant::now();
    let handles: Vec<_> = (1..=N)
        .map(|i| tokio::spawn(build_one(engine.clone(), repo.clone(), i)))
        .collect();
    let mut each = Vec::new();
    for h in handles {
        let (d, tag) = h.await.expect("build task");
        each.push(d.as_secs_f64());
        tags.push(tag);
    }
    let total = start.elapsed();
    println!(
        "{N} builds at once (c1..c{N}): {:.2} s total, each {:.2?} s; peak RSS {} MiB",
        total.as_secs_f64(),
        each,
        vm_hwm_kib() / 1024
    );
    println!(
        "total / one alone: {:.2}x (N = {N}; 1.00x would be perfect overlap)",
        total.as_secs_f64() / alone.as_secs_f64()
    );
    for t in tags {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &t])
            .output();
    }
}
