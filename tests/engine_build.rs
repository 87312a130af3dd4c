//! The engine client against the test bed's real engines, Docker and Podman, through the
//! library: every build parameter's effect is observed in the result (the image's labels via
//! the engine API, `RUN` output, the stage built), version negotiation against the real
//! `_ping`, timeouts and cancellation. Contexts are made in memory.

mod common;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dbuild::context::{Entry, Kind, TarBody, TarOptions, Tree};
use dbuild::engine::{ApiVersion, BuildOptions, Engine, Error, Host, Message, Settings};

/// Both engines of the test bed: (name, address).
fn engines() -> Vec<(&'static str, String)> {
    let podman = std::env::var("DBUILD_TEST_PODMAN_HOST")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unix:///var/lib/dbuild-testbed/podman.sock".into());
    vec![
        ("docker", "unix:///var/run/docker.sock".into()),
        ("podman", podman),
    ]
}

fn base() -> String {
    std::env::var("DBUILD_TEST_BASE_IMAGE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "localbusybox:latest".into())
}

async fn connect(addr: &str) -> Engine {
    Engine::connect(Settings::new(Host::parse(addr).unwrap()))
        .await
        .unwrap_or_else(|e| {
            panic!("engine {addr} not answering ({e}): run `bash scripts/testbed.sh up`")
        })
}

fn context(files: &[(&str, &str)]) -> TarBody {
    let entries = files
        .iter()
        .map(|(p, c)| Entry {
            path: p.as_bytes().to_vec(),
            kind: Kind::File {
                data: Bytes::from(c.to_string()).into(),
                executable: false,
            },
        })
        .collect();
    TarBody::new(
        Tree::from_entries(0, entries).unwrap(),
        TarOptions::default(),
    )
}

/// Builds and returns the outcome and the whole `stream` text.
async fn build(
    engine: &Engine,
    files: &[(&str, &str)],
    options: &BuildOptions,
) -> (Result<String, Error>, String) {
    let mut log = String::new();
    let r = engine
        .build(context(files), options, |m: &Message| {
            if let Some(s) = &m.stream {
                log.push_str(s);
            }
        })
        .await
        .map(|o| o.image_id);
    (r, log)
}

async fn remove(engine: &Engine, tag: &str) {
    // Through the engine's API with the CLIs' own tools, so neither engine keeps test images.
    let host = engine.host().to_string();
    let sock = host.trim_start_matches("unix://");
    let _ = std::process::Command::new("curl")
        .args(["-s", "-X", "DELETE", "--unix-socket", sock])
        .arg(format!("http://d/images/{tag}?force=1"))
        .output();
}

#[tokio::test]
async fn every_parameter_takes_effect_on_both_engines() {
    let dockerfile = format!(
        "FROM {b} AS first\n\
         LABEL stage=first\n\
         ARG GREETING\n\
         RUN echo \"arg=$GREETING\" && cat /etc/hosts && cat /proc/net/dev && \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares\n\
         FROM {b} AS second\n\
         LABEL stage=second\n\
         RUN echo built-second-stage\n",
        b = base()
    );
    for (name, addr) in engines() {
        let engine = connect(&addr).await;
        assert_eq!(engine.is_podman(), name == "podman");
        let tag = format!("dbuild-engine-params:{}", common::unique(name));
        let options = BuildOptions {
            tags: vec![tag.clone()],
            build_args: vec![("GREETING".into(), "hello world".into())],
            labels: vec![
                ("org.example.from".into(), "dbuild".into()),
                ("spaced".into(), "a b=c".into()),
            ],
            target: Some("first".into()),
            extra_hosts: vec![
                "dbuild-one.test:10.1.2.3".into(),
                "dbuild-two.test:10.4.5.6".into(),
            ],
            network: Some("none".into()),
            no_cache: true,
            memory: Some(96 << 20),
            cpu_period: Some(100_000),
            cpu_quota: Some(50_000),
            cpu_shares: Some(512),
            force_rm: true,
            ..Default::default()
        };
        let (id, log) = build(&engine, &[("Dockerfile", &dockerfile)], &options).await;
        let id = id.unwrap_or_else(|e| panic!("{name}: {e}\n{log}"));
        assert!(id.starts_with("sha256:"), "{name}: {id}");
        assert!(log.contains("arg=hello world"), "{name}: build arg: {log}");
        assert!(
            log.contains("10.1.2.3\tdbuild-one.test") && log.contains("10.4.5.6\tdbuild-two.test"),
            "{name}: extra hosts: {log}"
        );
        assert!(
            log.contains(&format!("{}\n", 96u64 << 20)),
            "{name}: memory: {log}"
        );
        assert!(
            log.contains("50000\n") && log.contains("512\n"),
            "{name}: cpu: {log}"
        );
        assert!(!log.contains("built-second-stage"), "{name}: target: {log}");
        if name == "docker" {
            // `none`: only the loopback interface. (Podman runs this test bed's RUN steps
            // with the host's network whatever networkmode says; see docs/engine.md.)
            assert!(
                log.contains("lo:") && !log.contains("eth0"),
                "{name}: network: {log}"
            );
        }
        let image = engine.inspect_image(&tag).await.unwrap();
        assert_eq!(image["Id"], id.as_str(), "{name}");
        let labels = &image["Config"]["Labels"];
        assert_eq!(labels["stage"], "first", "{name}: target stage");
        assert_eq!(labels["org.example.from"], "dbuild", "{name}: {labels}");
        assert_eq!(labels["spaced"], "a b=c", "{name}: {labels}");
        remove(&engine, &tag).await;
    }
}

#[tokio::test]
async fn no_cache_re_runs_a_step_that_the_cache_would_skip() {
    for (name, addr) in engines() {
        let engine = connect(&addr).await;
        let marker = common::unique("marker");
        // The output (`42-…`) differs from the step's text, which the log also shows.
        let dockerfile = format!("FROM {}\nRUN echo $((40+2))-{marker}\n", base());
        let files = [("Dockerfile", dockerfile.as_str())];
        let tag = format!("dbuild-engine-cache:{}", common::unique(name));
        let options = BuildOptions {
            tags: vec![tag.clone()],
            ..Default::default()
        };
        let (first, log1) = build(&engine, &files, &options).await;
        let first = first.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(log1.contains(&format!("42-{marker}")), "{name}: {log1}");
        let (second, log2) = build(&engine, &files, &options).await;
        second.unwrap();
        assert!(
            !log2.contains(&format!("42-{marker}")),
            "{name}: the cache should have skipped the step: {log2}"
        );
        let no_cache = BuildOptions {
            no_cache: true,
            ..options.clone()
        };
        let (third, log3) = build(&engine, &files, &no_cache).await;
        let third = third.unwrap();
        assert!(
            log3.contains(&format!("42-{marker}")),
            "{name}: nocache must run the step again: {log3}"
        );
        remove(&engine, &tag).await;
        // The first image lost its tag to the third; remove it too.
        remove(&engine, &first).await;
        remove(&engine, &third).await;
    }
}

#[tokio::test]
async fn a_failing_step_reports_the_engines_message_and_exit_code() {
    for (name, addr) in engines() {
        let engine = connect(&addr).await;
        let dockerfile = format!("FROM {}\nRUN exit 3\n", base());
        let (r, _) = build(
            &engine,
            &[("Dockerfile", &dockerfile)],
            &BuildOptions::default(),
        )
        .await;
        match r {
            Err(Error::Build { message, code }) => {
                assert_eq!(code, Some(3), "{name}: {message}");
                assert!(message.contains('3'), "{name}: {message}");
            }
            other => panic!("{name}: expected a build error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_engine_error_before_the_stream_shows_its_message() {
    // A Dockerfile path that is not in the context: both engines refuse before streaming, or
    // fail in the stream; either way the message names the problem.
    for (name, addr) in engines() {
        let engine = connect(&addr).await;
        let options = BuildOptions {
            dockerfile: Some("missing/Dockerfile".into()),
            ..Default::default()
        };
        let (r, _) = build(&engine, &[("Dockerfile", "FROM scratch\n")], &options).await;
        let e = r.unwrap_err().to_string();
        assert!(!e.contains("(no message)") && !e.is_empty(), "{name}: {e}");
        assert!(!e.contains('\n'), "{name}: one line: {e}");
    }
}

#[tokio::test]
async fn negotiation_uses_the_engines_own_api_version() {
    for (name, addr) in engines() {
        let sock = addr.trim_start_matches("unix://").to_owned();
        let ping = std::process::Command::new("curl")
            .args(["-s", "-i", "--unix-socket", &sock, "http://d/_ping"])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&ping.stdout).to_lowercase();
        let theirs = head
            .lines()
            .find_map(|l| l.strip_prefix("api-version:"))
            .map(|v| ApiVersion::parse(v.trim()).unwrap())
            .unwrap_or_else(|| panic!("{name}: no Api-Version in {head}"));
        let engine = connect(&addr).await;
        assert_eq!(
            engine.api_version(),
            theirs.min(dbuild::engine::MAX_API_VERSION),
            "{name}"
        );
        assert_eq!(
            engine.is_podman(),
            head.contains("libpod-api-version"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_pinned_version_is_used_and_a_too_new_one_is_refused_clearly() {
    let docker = engines()[0].1.clone();
    let host = Host::parse(&docker).unwrap();
    // An older version the engine accepts: every request uses it.
    let engine = Engine::connect(Settings {
        api_version: Some(ApiVersion(1, 40)),
        ..Settings::new(host.clone())
    })
    .await
    .unwrap();
    assert_eq!(engine.api_version(), ApiVersion(1, 40));
    let tag = format!("dbuild-engine-pinned:{}", common::unique("t"));
    let (id, log) = build(
        &engine,
        &[("Dockerfile", &format!("FROM {}\nLABEL pinned=1\n", base()))],
        &BuildOptions {
            tags: vec![tag.clone()],
            ..Default::default()
        },
    )
    .await;
    id.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert_eq!(
        engine.inspect_image(&tag).await.unwrap()["Config"]["Labels"]["pinned"],
        "1"
    );
    remove(&engine, &tag).await;

    // Newer than the engine (Docker 20.10 speaks 1.41).
    let e = Engine::connect(Settings {
        api_version: Some(ApiVersion(1, 44)),
        ..Settings::new(host.clone())
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("1.44")
            && e.contains("newer than the engine")
            && e.contains("DOCKER_API_VERSION"),
        "{e}"
    );
    // Newer than dbuild itself.
    let e = Engine::connect(Settings {
        api_version: Some(ApiVersion(1, 99)),
        ..Settings::new(host.clone())
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("1.99") && e.contains("outside what dbuild speaks"),
        "{e}"
    );

    // A parameter newer than the pinned version is refused before anything is sent.
    let old = Engine::connect(Settings {
        api_version: Some(ApiVersion(1, 31)),
        ..Settings::new(host)
    })
    .await
    .unwrap();
    let (r, _) = build(
        &old,
        &[("Dockerfile", "FROM scratch\n")],
        &BuildOptions {
            platform: Some("linux/amd64".into()),
            ..Default::default()
        },
    )
    .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("\"platform\" needs engine API 1.32"), "{e}");
}

/// A fake engine, for a fault no real engine here can produce: one that speaks API 1.24
/// (Docker 1.12). It answers `_ping` and nothing else.
#[tokio::test]
async fn fake_old_engine_is_refused_with_the_minimum_named() {
    let dir = common::empty_dir("fake-old-engine");
    let sock = dir.join("fake-old-engine.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nApi-Version: 1.24\r\nContent-Length: 2\r\n\r\nOK")
                .await;
        }
    });
    let e = Engine::connect(Settings::new(Host::Unix(sock)))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("1.24") && e.contains("older than 1.30"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Shared log for tests that watch a build from inside `on_message`.
fn recorder() -> (Arc<Mutex<String>>, impl FnMut(&Message)) {
    let log = Arc::new(Mutex::new(String::new()));
    let l = log.clone();
    (log, move |m: &Message| {
        if let Some(s) = &m.stream {
            l.lock().unwrap().push_str(s);
        }
    })
}

#[tokio::test]
async fn timeouts_end_a_silent_build_with_a_clear_error() {
    let docker = engines()[0].1.clone();
    let dockerfile = format!("FROM {}\nRUN sleep 120\n", base());
    for (idle, overall, expect) in [
        (Some(2), None, "idle timeout"),
        (None, Some(4), "overall timeout"),
    ] {
        let engine = Engine::connect(Settings {
            idle_timeout: idle.map(std::time::Duration::from_secs),
            timeout: overall.map(std::time::Duration::from_secs),
            ..Settings::new(Host::parse(&docker).unwrap())
        })
        .await
        .unwrap();
        let (_log, on) = recorder();
        let e = engine
            .build(
                context(&[("Dockerfile", &dockerfile)]),
                &BuildOptions {
                    no_cache: true,
                    ..Default::default()
                },
                on,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e:?}");
        assert!(e.to_string().contains(expect), "{e}");
    }
}

/// The state of a container through the engine API (`GET /containers/json?all=1`, filtered by
/// id), or `None` once it is gone.
fn container_state(sock: &str, id: &str) -> Option<String> {
    let filters = format!("{{\"id\":[\"{id}\"]}}");
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-G",
            "--unix-socket",
            sock,
            "http://d/containers/json?all=1",
        ])
        .args(["--data-urlencode", &format!("filters={filters}")])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .first()
        .map(|c| c["State"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn dropping_the_build_future_stops_the_build_on_docker() {
    let docker = engines()[0].1.clone();
    let sock = docker.trim_start_matches("unix://").to_owned();
    let engine = connect(&docker).await;
    let dockerfile = format!("FROM {}\nRUN sleep 300\n", base());
    let started = Arc::new(tokio::sync::Notify::new());
    let container = Arc::new(Mutex::new(None::<String>));
    let (s, c) = (started.clone(), container.clone());
    let options = BuildOptions {
        no_cache: true,
        ..Default::default()
    };
    let build = engine.build(
        context(&[("Dockerfile", &dockerfile)]),
        &options,
        move |m| {
            // Docker names the step's container: " ---> Running in 0123456789ab".
            if let Some(id) = m
                .stream
                .as_deref()
                .and_then(|s| s.trim().strip_prefix("---> Running in "))
            {
                *c.lock().unwrap() = Some(id.to_owned());
                s.notify_one();
            }
        },
    );
    let mut build = Box::pin(build);
    tokio::select! {
        r = &mut build => panic!("the build ended before it was dropped: {r:?}"),
        _ = started.notified() => {}
    }
    let id = container.lock().unwrap().clone().unwrap();
    // While the future lives (unpolled; its connection task keeps the socket open), the step
    // runs.
    let mut state = container_state(&sock, &id);
    for _ in 0..60 {
        if state.as_deref() == Some("running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        state = container_state(&sock, &id);
    }
    assert_eq!(state.as_deref(), Some("running"), "build container {id}");
    drop(build);
    let mut state = container_state(&sock, &id);
    for _ in 0..60 {
        if state.as_deref() != Some("running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        state = container_state(&sock, &id);
    }
    assert_ne!(
        state.as_deref(),
        Some("running"),
        "the build container {id} still runs after the client went away"
    );
}

#[tokio::test]
async fn buildkit_without_a_session_renders_plain_progress_and_reports_the_image() {
    let (_, docker) = engines().remove(0);
    let engine = connect(&docker).await;
    let tag = format!("dbuild-engine-buildkit:{}", common::unique("t"));
    let dockerfile = format!(
        "FROM {}\nARG WHO\nRUN echo \"bk-$WHO\" && echo \"to-stderr\" >&2\nLABEL via=buildkit\n",
        base()
    );
    let options = BuildOptions {
        tags: vec![tag.clone()],
        builder: dbuild::engine::Builder::BuildKit,
        build_args: vec![("WHO".into(), "dbuild".into())],
        no_cache: true,
        ..Default::default()
    };
    let (id, log) = build(&engine, &[("Dockerfile", &dockerfile)], &options).await;
    let id = id.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(
        log.contains("#1 [internal] load remote build context"),
        "{log}"
    );
    let run = log
        .lines()
        .find(|l| l.contains("RUN echo \"bk-dbuild\""))
        .unwrap_or_else(|| panic!("the RUN step is announced: {log}"));
    let n = run.split(' ').next().unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with(&format!("{n} ")) && l.ends_with(" bk-dbuild")),
        "the step's output, under its number: {log}"
    );
    assert!(log.contains(&format!("{n} DONE ")), "{log}");
    let image = engine.inspect_image(&tag).await.unwrap();
    assert_eq!(image["Id"], id.as_str());
    assert_eq!(image["Config"]["Labels"]["via"], "buildkit");
    remove(&engine, &tag).await;

    let (r, log) = build(
        &engine,
        &[("Dockerfile", &format!("FROM {}\nRUN exit 3\n", base()))],
        &BuildOptions {
            builder: dbuild::engine::Builder::BuildKit,
            ..Default::default()
        },
    )
    .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("exit code: 3"), "{e}\n{log}");
    assert!(log.contains("ERROR"), "{log}");

    let (_, podman) = engines().remove(1);
    let (r, _) = build(
        &connect(&podman).await,
        &[("Dockerfile", "FROM scratch\n")],
        &BuildOptions {
            builder: dbuild::engine::Builder::BuildKit,
            ..Default::default()
        },
    )
    .await;
    let e = r.unwrap_err();
    assert!(
        matches!(e, Error::Unsupported(_)) && e.to_string().contains("BuildKit"),
        "{e}"
    );
}

/// Whether a process with exactly this command line runs on this machine (BuildKit's `RUN`
/// processes are not engine containers, so they are looked for in /proc).
fn process_running(cmdline: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                c.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
                    == cmdline
            })
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn dropping_a_buildkit_build_stops_its_step() {
    let (_, docker) = engines().remove(0);
    let engine = connect(&docker).await;
    // A duration no other test uses, to find the step's process.
    let secs = 3000 + std::process::id() % 1000;
    let dockerfile = format!("FROM {}\nRUN sleep {secs}\n", base());
    let started = Arc::new(tokio::sync::Notify::new());
    let s = started.clone();
    let options = BuildOptions {
        builder: dbuild::engine::Builder::BuildKit,
        no_cache: true,
        ..Default::default()
    };
    let build = engine.build(
        context(&[("Dockerfile", &dockerfile)]),
        &options,
        move |m| {
            if m.stream.as_deref().is_some_and(|t| t.contains("RUN sleep")) {
                s.notify_one();
            }
        },
    );
    let mut build = Box::pin(build);
    tokio::select! {
        r = &mut build => panic!("the build ended before it was dropped: {r:?}"),
        _ = started.notified() => {}
    }
    let cmd = format!("sleep {secs}");
    let mut running = false;
    for _ in 0..60 {
        running = process_running(&cmd);
        if running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(running, "the step's `{cmd}` never showed up");
    drop(build);
    for _ in 0..60 {
        running = process_running(&cmd);
        if !running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(!running, "`{cmd}` still runs after the build was dropped");
}

#[tokio::test]
async fn podmans_empty_400_is_explained() {
    let (_, podman) = engines().remove(1);
    let engine = connect(&podman).await;
    // Podman decodes cpushares as unsigned and answers a negative one with an empty 400.
    let (r, _) = build(
        &engine,
        &[("Dockerfile", "FROM scratch\n")],
        &BuildOptions {
            cpu_shares: Some(-5),
            ..Default::default()
        },
    )
    .await;
    match r {
        Err(Error::Api { status, message }) => {
            assert_eq!(status, 400);
            assert!(
                message.contains("Podman answers a request it cannot decode"),
                "{message}"
            );
        }
        other => panic!("expected a 400 from Podman, got {other:?}"),
    }
}

#[tokio::test]
async fn a_large_context_streams_without_deadlock_on_both_engines() {
    // Docker 20.10 answers only after reading the whole body; 48 MiB is far more than any
    // socket buffer, so a client that waited for the answer before sending would hang.
    let big: String = "0123456789abcdef".repeat(3 << 20);
    let dockerfile = format!("FROM {}\nCOPY big /big\nRUN wc -c < /big\n", base());
    for (name, addr) in engines() {
        let engine = connect(&addr).await;
        let (id, log) = build(
            &engine,
            &[("Dockerfile", &dockerfile), ("big", &big)],
            &BuildOptions {
                no_cache: true,
                ..Default::default()
            },
        )
        .await;
        let id = id.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(log.contains(&format!("{}\n", big.len())), "{name}: {log}");
        remove(&engine, &id).await;
    }
}
