//! Several builds at once from one process: one engine handle, one job per build, each with
//! its own typed progress channel; no global state, nothing written to disk.
//!
//! ```sh
//! bash scripts/testbed.sh up && eval "$(bash scripts/testbed.sh env)"
//! cargo run --example concurrent_builds -- git://127.0.0.1:9418/demo.git 4
//! ```
//!
//! Each build gets a different `--build-arg` and label, so the engine really builds each
//! image; a scheduler would run different repositories and commits the same way. The images
//! are tagged `dbuild-example-concurrent:N`; remove them with `docker rmi` afterwards.

use std::time::Instant;

use dbuild::engine::{Engine, Settings};
use dbuild::reference::Reference;
use dbuild::{Event, Job};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: concurrent_builds GIT_URL [COUNT]")?;
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(3);

    // One connected engine for every job: it is a cheap clone holding only settings, and
    // each request opens its own connection.
    let engine = Engine::connect(Settings::from_env(None)?).await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..count {
        let engine = engine.clone();
        let mut job = Job::git(&url)?;
        job.tags = vec![Reference::parse(&format!("dbuild-example-concurrent:{n}"))?];
        job.options.build_args.push(("JOB".into(), n.to_string()));
        job.options.labels.push(("job".into(), n.to_string()));

        // Typed events through a channel; a consumer task reports them with the job's number.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                match event {
                    Event::Fetched { commit, .. } => {
                        println!("[{n}] fetched {}", commit.unwrap_or_default())
                    }
                    Event::Step(s) => println!("[{n}] {}", s.trim()),
                    Event::Built { image_id } => println!("[{n}] built {image_id}"),
                    Event::Warning(w) => println!("[{n}] warning: {w}"),
                    _ => {}
                }
            }
        });
        // Each job is a plain future; dropping it (here: aborting the task) cancels the build.
        tasks.spawn(async move { (n, job.run_with_channel(&engine, tx).await) });
    }

    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        let (n, result) = joined?;
        match result {
            Ok(outcome) => println!(
                "[{n}] done: {} (commit {})",
                outcome.image_id,
                outcome.commit.as_deref().unwrap_or("-")
            ),
            Err(e) => {
                failed += 1;
                println!("[{n}] failed: {e}");
            }
        }
    }
    println!(
        "{count} builds, {failed} failed, in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        return Err(format!("{failed} builds failed").into());
    }
    Ok(())
}
