//! Build an image from a git URL and push it, printing typed progress: the scheduler's job in
//! one program.
//!
//! ```sh
//! bash scripts/testbed.sh up && eval "$(bash scripts/testbed.sh env)"
//! DBUILD_USERNAME=alice DBUILD_PASSWORD=$DBUILD_TEST_REGISTRY_PASSWORD \
//!   cargo run --example build_and_push -- git://127.0.0.1:9418/demo.git 127.0.0.1:5000/example:v1
//! ```
//!
//! The engine comes from `DOCKER_HOST` (or the Docker context, or the default socket);
//! registry credentials from `DBUILD_USERNAME`/`DBUILD_PASSWORD` if set, else from
//! `DOCKER_AUTH_CONFIG` and `~/.docker/config.json`, as the Docker CLI finds them.

use dbuild::auth::{Credentials, Lookup, Secret};
use dbuild::engine::{Engine, Settings};
use dbuild::reference::Reference;
use dbuild::{Event, Job};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build_and_push: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(tag)) = (args.next(), args.next()) else {
        return Err("usage: build_and_push GIT_URL[#REF[:SUBDIR]] REGISTRY/NAME:TAG".into());
    };

    // Explicit credentials from the environment, if both are set; otherwise Docker's config.
    let explicit = match (
        std::env::var("DBUILD_USERNAME"),
        std::env::var("DBUILD_PASSWORD"),
    ) {
        (Ok(username), Ok(password)) => Some(Credentials {
            username,
            password: Secret::new(password),
            ..Default::default()
        }),
        _ => None,
    };

    let engine = Engine::connect(Settings::from_env(None)?).await?;
    let job = Job {
        tags: vec![Reference::parse(&tag)?],
        push: true,
        credentials: Lookup::from_env(explicit)?,
        ..Job::git(&url)?
    };

    let outcome = job
        .run(&engine, |event| match event {
            Event::Fetching { source } => println!("fetching {source}"),
            Event::Fetched {
                commit,
                files,
                bytes,
            } => println!(
                "fetched commit {}: {files} files, {bytes} bytes",
                commit.unwrap_or_default()
            ),
            Event::ContextSent { files, bytes } => {
                println!("context sent: {files} files, {bytes} bytes")
            }
            Event::Step(text) => println!("step: {}", text.trim()),
            Event::Log(text) => print!("      {text}"),
            Event::Built { image_id } => println!("built {image_id}"),
            Event::Pushing { reference } => println!("pushing {reference}"),
            Event::Progress {
                reference: Some(_),
                layer: Some(layer),
                status,
                current: None,
                ..
            } => println!("  layer {layer}: {status}"),
            Event::Pushed { reference, digest } => println!("pushed {reference}@{digest}"),
            Event::Warning(w) => eprintln!("warning: {w}"),
            _ => {}
        })
        .await?;

    println!(
        "done: image {} from commit {}, digest {}",
        outcome.image_id,
        outcome.commit.as_deref().unwrap_or("-"),
        outcome.pushed[0].digest
    );
    Ok(())
}
