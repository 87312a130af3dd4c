//! Pushing through both real engines to the test bed's registry: the digest each engine
//! reports (Docker in `aux`, Podman only in a status line) is the one the registry stores, and
//! a refused push is an error on both.

mod common;

use bytes::Bytes;
use dbuild::auth::{Credentials, Secret};
use dbuild::context::{Entry, Kind, TarBody, TarOptions, Tree};
use dbuild::engine::{BuildOptions, Engine, Error, Host, Settings};
use dbuild::reference::Reference;

#[tokio::test]
async fn both_engines_push_and_report_the_registrys_digest() {
    let bed = common::bed();
    let podman = std::env::var("DBUILD_TEST_PODMAN_HOST")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unix:///var/lib/dbuild-testbed/podman.sock".into());
    for (name, addr) in [
        ("docker", "unix:///var/run/docker.sock".to_owned()),
        ("podman", podman),
    ] {
        let engine = Engine::connect(Settings::new(Host::parse(&addr).unwrap()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let tag = common::unique(name);
        let reference = Reference::parse(&format!("{}/engine-push:{tag}", bed.registry)).unwrap();
        let tree = Tree::from_entries(
            0,
            vec![Entry {
                path: b"Dockerfile".to_vec(),
                kind: Kind::File {
                    data: Bytes::from(format!(
                        "FROM localbusybox:latest\nLABEL pushed-by={name}-{tag}\n"
                    ))
                    .into(),
                    executable: false,
                },
            }],
        )
        .unwrap();
        engine
            .build(
                TarBody::new(tree, TarOptions::default()),
                &BuildOptions {
                    tags: vec![reference.to_string()],
                    ..Default::default()
                },
                |_| {},
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let creds = Credentials {
            username: bed.user.clone(),
            password: Secret::new(bed.password.clone()),
            server_address: reference.auth_server(),
            ..Default::default()
        };
        let pushed = engine
            .push(&reference, Some(&creds), |_| {})
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let stored = common::registry_digest(&bed, "engine-push", &tag);
        assert_eq!(pushed.digest, stored, "{name}");

        // Wrong password: refused, and the password is not in the message.
        let wrong = Credentials {
            password: Secret::new("not-the-password-9Z"),
            ..creds
        };
        let e = engine
            .push(&reference, Some(&wrong), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Push { .. }), "{name}: {e:?}");
        assert!(
            !e.to_string().contains("not-the-password-9Z"),
            "{name}: {e}"
        );

        let sock = addr.trim_start_matches("unix://");
        let _ = std::process::Command::new("curl")
            .args(["-s", "-X", "DELETE", "--unix-socket", sock])
            .arg(format!("http://d/images/{}?force=1", reference))
            .output();
    }
}
