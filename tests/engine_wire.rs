//! The exact bytes dbuild puts on the wire, and faults no real engine produces on demand.
//!
//! Both servers here are fakes, named as such: `recording_fake_engine` answers `_ping` like
//! Docker 20.10 and records the build request (the real-engine tests in `engine_build.rs`
//! check the effects; this checks the bytes), and `stalling_fake_engine` reads a request and
//! then goes silent or cuts the stream, to prove the timeouts and the cut-stream error.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dbuild::context::{Entry, Kind, TarBody, TarOptions, Tree};
use dbuild::engine::{BuildOptions, Engine, Error, Host, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

fn tree() -> Tree {
    Tree::from_entries(
        0,
        vec![Entry {
            path: b"Dockerfile".to_vec(),
            kind: Kind::File {
                data: Bytes::from_static(b"FROM scratch\n").into(),
                executable: false,
            },
        }],
    )
    .unwrap()
}

/// Reads one HTTP/1.1 request: its head, and its body if chunked (decoded).
async fn read_request(s: &mut UnixStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).await.unwrap();
        assert!(n > 0, "connection closed inside the request head");
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end..].to_vec();
    let mut body = Vec::new();
    if head.to_lowercase().contains("transfer-encoding: chunked") {
        loop {
            // Enough buffered for the size line?
            while !rest.windows(2).any(|w| w == b"\r\n") {
                let n = s.read(&mut tmp).await.unwrap();
                rest.extend_from_slice(&tmp[..n]);
            }
            let i = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap().trim(), 16).unwrap();
            while rest.len() < i + 2 + size + 2 {
                let n = s.read(&mut tmp).await.unwrap();
                assert!(n > 0, "cut inside a chunk");
                rest.extend_from_slice(&tmp[..n]);
            }
            body.extend_from_slice(&rest[i + 2..i + 2 + size]);
            rest.drain(..i + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    }
    (head, body)
}

const PING: &[u8] = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK";

/// A fake engine on a fresh unix socket; `answer` handles each non-ping request.
fn fake_engine<F, Fut>(name: &str, answer: F) -> PathBuf
where
    F: Fn(UnixStream, String, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let dir = common::empty_dir(name);
    let sock = dir.join(format!("{name}.sock"));
    let listener = UnixListener::bind(&sock).unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let (head, body) = read_request(&mut s).await;
                if head.starts_with("GET /_ping") {
                    let _ = s.write_all(PING).await;
                } else {
                    answer(s, head, body).await;
                }
            });
        }
    });
    sock
}

#[tokio::test]
async fn recording_fake_engine_sees_the_query_headers_and_chunked_tar() {
    let seen = Arc::new(Mutex::new(None::<(String, Vec<u8>)>));
    let s2 = seen.clone();
    let sock = fake_engine("recording-fake-engine", move |mut s, head, body| {
        *s2.lock().unwrap() = Some((head, body));
        async move {
            let msg = b"{\"aux\":{\"ID\":\"sha256:0123\"}}\r\n";
            let _ = s
                .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", msg.len()).as_bytes())
                .await;
            let _ = s.write_all(msg).await;
        }
    });
    let engine = Engine::connect(Settings::new(Host::Unix(sock)))
        .await
        .unwrap();
    let options = BuildOptions {
        tags: vec!["a:1".into(), "b:2".into()],
        extra_hosts: vec!["x:1.2.3.4".into(), "y:5.6.7.8".into()],
        memory: Some(1 << 26),
        registry_config: Some("eyJ9".into()),
        ..Default::default()
    };
    let out = engine
        .build(
            TarBody::new(tree(), TarOptions::default()),
            &options,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(out.image_id, "sha256:0123");
    let (head, body) = seen.lock().unwrap().take().unwrap();
    let first = head.lines().next().unwrap();
    assert_eq!(
        first,
        "POST /v1.41/build?t=a%3A1&t=b%3A2&extrahosts=x%3A1.2.3.4&extrahosts=y%3A5.6.7.8&memory=67108864 HTTP/1.1"
    );
    let lower = head.to_lowercase();
    assert!(
        lower.contains("\r\ncontent-type: application/x-tar\r\n"),
        "{head}"
    );
    assert!(
        lower.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    assert!(lower.contains("\r\nx-registry-config: eyj9\r\n"), "{head}");
    let expected: Vec<u8> = TarBody::new(tree(), TarOptions::default())
        .into_vec()
        .unwrap();
    assert_eq!(body, expected, "the body is the tar, byte for byte");
    remove_socket_dir(&engine);
}

/// The fakes' sockets live in their own temporary directories; remove them.
fn remove_socket_dir(engine: &Engine) {
    if let Host::Unix(p) = engine.host() {
        if let Some(d) = p.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn settings(sock: PathBuf, idle: Option<u64>, overall: Option<u64>) -> Settings {
    Settings {
        idle_timeout: idle.map(Duration::from_secs),
        timeout: overall.map(Duration::from_secs),
        ..Settings::new(Host::Unix(sock))
    }
}

#[tokio::test]
async fn stalling_fake_engine_hits_the_idle_and_overall_timeouts_and_a_cut_is_reported() {
    // Reads the body, then never answers.
    let silent = fake_engine("stalling-fake-engine-silent", |s, _, _| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(s);
    });
    // Answers, sends one message, then goes silent mid-stream.
    let stalls = fake_engine("stalling-fake-engine-midstream", |mut s, _, _| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let m = b"{\"stream\":\"Step 1/1\\n\"}\r\n";
        let _ = s.write_all(format!("{:x}\r\n", m.len()).as_bytes()).await;
        let _ = s.write_all(m).await;
        let _ = s.write_all(b"\r\n").await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    // Cuts the stream in the middle of a message.
    let cuts = fake_engine("stalling-fake-engine-cut", |mut s, _, _| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"stream\":\"Step 1/1\\n\"}\r\n{\"aux\":{\"I").await;
    });
    let cases = [
        (silent.clone(), Some(1), None, "idle timeout"),
        (silent, None, Some(2), "overall timeout"),
        (stalls.clone(), Some(1), None, "idle timeout"),
        (stalls, None, Some(2), "overall timeout"),
        (cuts, None, None, "ended in the middle of a message"),
    ];
    let mut used = Vec::new();
    for (sock, idle, overall, expect) in cases {
        let engine = Engine::connect(settings(sock.clone(), idle, overall))
            .await
            .unwrap();
        let e = engine
            .build(
                TarBody::new(tree(), TarOptions::default()),
                &BuildOptions::default(),
                |_| {},
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(expect),
            "{sock:?} {idle:?} {overall:?}: {e}"
        );
        if expect.contains("timeout") {
            assert!(matches!(e, Error::Timeout(_)), "{e:?}");
        }
        used.push(engine);
    }
    // Only now: two cases share each socket.
    used.iter().for_each(remove_socket_dir);
}
