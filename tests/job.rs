//! The library's high-level API, [`dbuild::Job`], as a scheduler uses it: several jobs at once
//! from one process against the real engine, git daemon and registry, typed events in order,
//! the digest the registry holds, and cancellation by dropping the future.

mod common;

use dbuild::auth::{Credentials, Lookup, Secret};
use dbuild::engine::{Engine, Settings};
use dbuild::reference::Reference;
use dbuild::{Event, Job};

async fn engine() -> Engine {
    Engine::connect(Settings::from_env(Some("unix:///var/run/docker.sock")).unwrap())
        .await
        .expect("the test bed's dockerd answers: run `bash scripts/testbed.sh up`")
}

/// The events' names in order, consecutive repeats folded.
fn shape(events: &[Event]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for e in events {
        let name = match e {
            Event::Fetching { .. } => "fetching",
            Event::Fetched { .. } => "fetched",
            Event::ContextSent { .. } => "context_sent",
            Event::Step(_)
            | Event::Log(_)
            | Event::Progress {
                reference: None, ..
            } => "build",
            Event::Built { .. } => "built",
            Event::Pushing { .. } => "pushing",
            Event::Progress { .. } => "push_progress",
            Event::Pushed { .. } => "pushed",
            Event::Warning(_) => "warning",
            _ => "other",
        };
        if v.last() != Some(&name) {
            v.push(name);
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_build_and_push_with_typed_events_and_registry_digests() {
    let bed = common::bed();
    let engine = engine().await;
    let run = common::unique("job");
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..3 {
        let engine = engine.clone();
        let mut job = Job::git(&format!("{}/demo.git#main", bed.git)).unwrap();
        job.tags = vec![Reference::parse(&format!("{}/job-api:{run}-{n}", bed.registry)).unwrap()];
        job.options
            .labels
            .push(("job".into(), format!("{run}-{n}")));
        job.push = true;
        job.credentials = Lookup {
            explicit: Some(Credentials {
                username: bed.user.clone(),
                password: Secret::new(bed.password.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        tasks.spawn(async move {
            let mut events = Vec::new();
            let outcome = job.run(&engine, |e| events.push(e)).await;
            (n, outcome, events)
        });
    }
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (n, outcome, events) = joined.unwrap();
        let outcome = outcome.unwrap_or_else(|e| panic!("job {n}: {e}"));
        assert_eq!(
            shape(&events),
            [
                "fetching",
                "fetched",
                "context_sent",
                "build",
                "built",
                "pushing",
                "push_progress",
                "pushed"
            ],
            "job {n}: {events:#?}"
        );
        // Whole lines: Docker sends the title and its newline apart; `--label` adds a step.
        assert!(events.contains(&Event::Step("Step 1/7 : FROM localbusybox\n".into())));
        let commit = outcome.commit.clone().expect("a git source has a commit");
        assert_eq!(commit.len(), 40);
        assert!(
            matches!(&events[1], Event::Fetched { commit: Some(c), files: 5, .. } if *c == commit)
        );
        let tag = format!("{run}-{n}");
        let reference = format!("{}/job-api:{tag}", bed.registry);
        let digest = outcome.digest(&reference).expect("pushed").to_owned();
        assert_eq!(digest, common::registry_digest(&bed, "job-api", &tag));
        assert!(events.contains(&Event::Pushed {
            reference: reference.clone(),
            digest
        }));
        ids.push(outcome.image_id.clone());
        common::docker(&["rmi", "-f", &reference]);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three different images (different labels)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_job_future_stops_the_build() {
    common::bed();
    let engine = engine().await;
    let dir = common::empty_dir("job-cancel");
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM localbusybox:latest\nRUN echo {} && sleep 300\n",
            common::unique("n")
        ),
    )
    .unwrap();
    let job = Job::new(dbuild::source::Source::Dir(dir.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let container = {
        let run = job.run_with_channel(&engine, tx);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => panic!("the build ended on its own: {r:?}"),
                e = rx.recv() => {
                    if let Some(Event::Log(l)) = e {
                        if let Some(id) = l.trim().strip_prefix("---> Running in ") {
                            break id.to_owned();
                        }
                    }
                }
            }
        }
        // `run` is dropped here.
    };
    let state = || {
        let out = common::docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("id={container}"),
            "--format",
            "{{.State}}",
        ]);
        common::text(&out.stdout).trim().to_owned()
    };
    let mut s = state();
    for _ in 0..60 {
        if s != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        s = state();
    }
    assert_ne!(
        s, "running",
        "the RUN container still runs after the job was dropped"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn push_without_tags_and_a_missing_dockerfile_fail_before_the_build() {
    common::bed();
    let engine = engine().await;
    let job = Job {
        push: true,
        ..Job::new(dbuild::source::Source::Dir("/nonexistent".into()))
    };
    let mut events = Vec::new();
    let err = job.run(&engine, |e| events.push(e)).await.unwrap_err();
    assert!(matches!(err, dbuild::Error::Request(_)), "{err}");
    assert!(events.is_empty(), "{events:?}");

    let dir = common::empty_dir("job-no-dockerfile");
    std::fs::write(dir.join("README"), "no Dockerfile here").unwrap();
    let mut events = Vec::new();
    let err = Job::new(dbuild::source::Source::Dir(dir.clone()))
        .run(&engine, |e| events.push(e))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Dockerfile"), "{err}");
    assert_eq!(shape(&events), ["fetching", "fetched"]);
    let _ = std::fs::remove_dir_all(dir);
}

/// Podman's compatibility API through the same `Job`: its `STEP n/m:` lines are steps, and the
/// image ID comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_podman_reports_its_steps() {
    let bed = common::bed();
    let host = std::env::var("DBUILD_TEST_PODMAN_HOST")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unix:///var/lib/dbuild-testbed/podman.sock".into());
    let engine = Engine::connect(Settings::from_env(Some(&host)).unwrap())
        .await
        .expect("the test bed's podman answers: run `bash scripts/testbed.sh up`");
    assert!(engine.is_podman());
    let tag = format!("dbuild-job-podman:{}", common::unique("t"));
    let job = Job {
        tags: vec![Reference::parse(&tag).unwrap()],
        ..Job::git(&format!("{}/demo.git", bed.git)).unwrap()
    };
    let mut events = Vec::new();
    let outcome = job.run(&engine, |e| events.push(e)).await.unwrap();
    assert!(outcome.image_id.starts_with("sha256:"), "{outcome:?}");
    let steps: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Step(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 6, "{events:#?}");
    assert_eq!(steps[0], "STEP 1/6: FROM localbusybox\n");
    common::docker(&["-H", &host, "rmi", &tag]);
}
