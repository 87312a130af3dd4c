//! Transports against the real Docker engine: plain TCP and TLS (through `socat` relays to
//! dockerd's socket, started and stopped here, with certificates made by `openssl`), Docker
//! contexts written by the real docker CLI, and `ssh://` through a real `sshd` on loopback
//! running the real `docker system dial-stdio`.
//!
//! The relays are real peers: socat's TLS is OpenSSL, verifying our client certificate.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use dbuild::context::{Entry, Kind, TarBody, TarOptions, Tree};
use dbuild::engine::{BuildOptions, Engine, Host, Settings, TlsFiles};

const DOCKER_SOCK: &str = "/var/run/docker.sock";

/// A child process that is killed (by its own handle) when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

fn socat(listen: &str, port: u16) -> Running {
    let child = Command::new("socat")
        .args([listen, &format!("UNIX-CONNECT:{DOCKER_SOCK}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat is installed by `bash scripts/testbed.sh up`");
    wait_for_port(port);
    Running(child)
}

fn run(cmd: &str, args: &[&str], dir: &Path) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        common::text(&out.stderr)
    );
}

#[cfg(feature = "tls")]
/// A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl, in
/// `dir` (ca.pem, server-cert.pem, server-key.pem, cert.pem, key.pem).
fn make_certs(dir: &Path, ca_name: &str) {
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca_name}"),
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn, ext) in [
        ("server", "127.0.0.1", "server.ext"),
        ("client", "dbuild-test-client", "client.ext"),
    ] {
        run(
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
            ],
            dir,
        );
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}-cert.pem"),
            ],
            dir,
        );
    }
    std::fs::rename(dir.join("client-cert.pem"), dir.join("cert.pem")).unwrap();
    std::fs::rename(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
}

#[cfg(feature = "tls")]
/// socat terminating TLS on `port` (requiring a client certificate signed by `dir`'s CA) in
/// front of dockerd's socket.
fn tls_relay(dir: &Path, port: u16) -> Running {
    let d = dir.display();
    socat(
        &format!("OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={d}/server-cert.pem,key={d}/server-key.pem,cafile={d}/ca.pem,verify=1"),
        port,
    )
}

fn context() -> TarBody {
    let entries = vec![Entry {
        path: b"Dockerfile".to_vec(),
        kind: Kind::File {
            data: Bytes::from(format!(
                "FROM {}\nLABEL via=transport\n",
                std::env::var("DBUILD_TEST_BASE_IMAGE")
                    .unwrap_or_else(|_| "localbusybox:latest".into())
            ))
            .into(),
            executable: false,
        },
    }];
    TarBody::new(
        Tree::from_entries(0, entries).unwrap(),
        TarOptions::default(),
    )
}

/// Connects, builds a one-line image and checks its label through the same transport.
async fn build_through(settings: Settings) {
    let what = settings.host.to_string();
    let engine = Engine::connect(settings)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!engine.is_podman());
    let tag = format!("dbuild-engine-transport:{}", common::unique("t"));
    let out = engine
        .build(
            context(),
            &BuildOptions {
                tags: vec![tag.clone()],
                ..Default::default()
            },
            |_| {},
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let image = engine.inspect_image(&tag).await.unwrap();
    assert_eq!(image["Id"], out.image_id.as_str());
    assert_eq!(image["Config"]["Labels"]["via"], "transport");
    common::docker(&["rmi", "-f", &tag]);
}

#[tokio::test]
async fn plain_tcp_through_a_relay() {
    let port = common::free_port();
    let _relay = socat(
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
        port,
    );
    build_through(Settings::new(
        Host::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
    ))
    .await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_with_client_certificates_and_a_wrong_ca_is_refused_clearly() {
    let dir = common::empty_dir("engine-tls");
    make_certs(&dir, "dbuild test CA");
    let port = common::free_port();
    let _relay = tls_relay(&dir, port);
    let host = Host::parse(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let good = TlsFiles::in_dir(&dir, true);
    build_through(Settings {
        tls: Some(good.clone()),
        ..Settings::new(host.clone())
    })
    .await;

    // Another CA: the engine's certificate does not verify.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    make_certs(&other, "some other CA");
    let e = Engine::connect(Settings {
        tls: Some(TlsFiles {
            ca: Some(other.join("ca.pem")),
            ..good.clone()
        }),
        ..Settings::new(host.clone())
    })
    .await
    .unwrap_err()
    .to_string();
    eprintln!("wrong CA: {e}");
    assert!(
        e.contains("TLS handshake failed") && e.contains("ca.pem") && !e.contains('\n'),
        "{e}"
    );

    // No client certificate: the engine side refuses us.
    let e = Engine::connect(Settings {
        tls: Some(TlsFiles {
            cert: None,
            key: None,
            ..good
        }),
        ..Settings::new(host)
    })
    .await
    .unwrap_err()
    .to_string();
    eprintln!("no client certificate: {e}");
    assert!(
        e.contains("CertificateRequired") && e.contains("cert.pem"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn tls_without_the_feature_says_how_to_get_it() {
    let e = Engine::connect(Settings {
        tls: Some(TlsFiles::in_dir(Path::new("/nonexistent"), true)),
        ..Settings::new(Host::parse("tcp://127.0.0.1:1").unwrap())
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("--features tls"), "{e}");
}

/// A DOCKER_CONFIG directory with contexts made by the real docker CLI.
fn docker_cli(config: &Path, args: &[&str]) {
    let out = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        common::text(&out.stderr)
    );
}

#[tokio::test]
async fn docker_contexts_written_by_the_cli_are_followed() {
    let config = common::empty_dir("engine-contexts");
    let port = common::free_port();
    let _relay = socat(
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
        port,
    );
    docker_cli(
        &config,
        &[
            "context",
            "create",
            "relay",
            "--docker",
            &format!("host=tcp://127.0.0.1:{port}"),
        ],
    );
    docker_cli(
        &config,
        &[
            "context",
            "create",
            "sock",
            "--docker",
            &format!("host=unix://{DOCKER_SOCK}"),
        ],
    );
    let cfg = config.to_string_lossy().into_owned();
    let env = |pairs: Vec<(&'static str, String)>| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    };
    use dbuild::engine::contexts::resolve;
    // --context names it.
    let r = resolve(
        None,
        Some("relay"),
        &env(vec![("DOCKER_CONFIG", cfg.clone())]),
    )
    .unwrap();
    assert_eq!(r.host, Host::Tcp(format!("127.0.0.1:{port}")));
    assert!(r.tls.is_none());
    build_through(Settings::new(r.host)).await;
    // DOCKER_CONTEXT, unless DOCKER_HOST is set.
    let r = resolve(
        None,
        None,
        &env(vec![
            ("DOCKER_CONFIG", cfg.clone()),
            ("DOCKER_CONTEXT", "sock".into()),
        ]),
    )
    .unwrap();
    assert_eq!(r.host, Host::Unix(DOCKER_SOCK.into()));
    assert_eq!(r.context, "sock");
    let r = resolve(
        None,
        None,
        &env(vec![
            ("DOCKER_CONFIG", cfg.clone()),
            ("DOCKER_CONTEXT", "sock".into()),
            ("DOCKER_HOST", "tcp://10.9.9.9:1".into()),
        ]),
    )
    .unwrap();
    assert_eq!(
        (r.host, r.context.as_str()),
        (Host::Tcp("10.9.9.9:1".into()), "default")
    );
    // `docker context use` writes currentContext; it applies when nothing else is said.
    docker_cli(&config, &["context", "use", "relay"]);
    let r = resolve(None, None, &env(vec![("DOCKER_CONFIG", cfg.clone())])).unwrap();
    assert_eq!(r.context, "relay");
    let r = resolve(
        None,
        None,
        &env(vec![
            ("DOCKER_CONFIG", cfg.clone()),
            ("DOCKER_CONTEXT", "sock".into()),
        ]),
    )
    .unwrap();
    assert_eq!(r.context, "sock", "DOCKER_CONTEXT beats currentContext");
    let r = resolve(
        Some("unix:///x.sock"),
        None,
        &env(vec![("DOCKER_CONFIG", cfg.clone())]),
    )
    .unwrap();
    assert_eq!(
        r.host,
        Host::Unix("/x.sock".into()),
        "-H beats currentContext"
    );
    let _ = std::fs::remove_dir_all(config);
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn a_tls_context_made_by_the_cli_carries_its_certificates() {
    let dir = common::empty_dir("engine-tls-context");
    make_certs(&dir, "dbuild context CA");
    let port = common::free_port();
    let _relay = tls_relay(&dir, port);
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let d = dir.display();
    docker_cli(
        &config,
        &[
            "context",
            "create",
            "secure",
            "--docker",
            &format!("host=tcp://127.0.0.1:{port},ca={d}/ca.pem,cert={d}/cert.pem,key={d}/key.pem"),
        ],
    );
    let cfg = config.to_string_lossy().into_owned();
    let r = dbuild::engine::contexts::resolve(None, Some("secure"), &move |k: &str| {
        (k == "DOCKER_CONFIG").then(|| cfg.clone())
    })
    .unwrap();
    let tls = r.tls.clone().expect("the context's TLS files");
    assert!(tls.verify && tls.ca.is_some() && tls.cert.is_some() && tls.key.is_some());
    build_through(Settings {
        tls: r.tls,
        ..Settings::new(r.host)
    })
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A throwaway sshd on loopback that lets in one generated key, as root, and runs the real
/// `docker system dial-stdio` for `ssh://`.
struct Sshd {
    _proc: Running,
    port: u16,
    key: PathBuf,
}

fn sshd(dir: &Path) -> Sshd {
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", "host_key"],
        dir,
    );
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", "client_key"],
        dir,
    );
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = common::free_port();
    let d = dir.display();
    std::fs::write(
        dir.join("sshd_config"),
        format!("ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile none\nSetEnv DOCKER_HOST=unix://{DOCKER_SOCK}\n"),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd is installed by `bash scripts/testbed.sh up`");
    wait_for_port(port);
    Sshd {
        _proc: Running(child),
        port,
        key: dir.join("client_key"),
    }
}

#[tokio::test]
async fn ssh_runs_docker_system_dial_stdio_like_the_cli() {
    let dir = common::empty_dir("engine-ssh");
    let sshd = sshd(&dir);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let host = Host::parse(&format!("ssh://{user}@127.0.0.1:{}", sshd.port)).unwrap();
    let ssh_options: Vec<String> = [
        "-i",
        &sshd.key.to_string_lossy(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentitiesOnly=yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    build_through(Settings {
        ssh_options,
        ..Settings::new(host)
    })
    .await;
    let _ = std::fs::remove_dir_all(dir);
}
