//! `.dockerignore` handling checked against the real docker CLI.
//!
//! Every `tests/fixtures/dockerignore/*.json` is one case: a context (`tree`), a `.dockerignore`
//! (`dockerignore`, exact bytes, or null for none) and the Dockerfile path (`dockerfile`), plus
//! what the docker CLI's classic builder sent to the daemon for it (`sent`, the tar's entries,
//! directories with a trailing `/`), what `COPY . /ctx/` then saw (`copied`), and the CLI's error
//! (`error`). This test rebuilds each tree in memory, runs [`dbuild::context::ignore::apply`], and
//! requires exactly the CLI's `sent` list, or an error where the CLI failed.
//!
//! To regenerate the expectations (needs a running dockerd, the docker CLI and python3):
//!
//! ```text
//! scripts/gen-dockerignore-fixtures.sh                      # all cases, docker CLI 28.x
//! scripts/gen-dockerignore-fixtures.sh tests/fixtures/dockerignore/crlf.json
//! ```
//!
//! To add a case, write a JSON file with `about`, `dockerfile`, `tree` and `dockerignore` and
//! run the script on it; it fills in the rest.

use std::path::Path;

use bytes::Bytes;
use dbuild::context::{ignore, Entry, Error, Kind, Tree};
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

/// Builds the case's tree the way the script lays it out on disk.
fn tree(case: &Value) -> Tree {
    let mut entries = Vec::new();
    for spec in strings(&case["tree"]) {
        let (path, kind) = if let Some((link, target)) = spec.split_once(" -> ") {
            let target = target.as_bytes().to_vec();
            (link.to_owned(), Kind::Symlink { target })
        } else if let Some(dir) = spec.strip_suffix('/') {
            (dir.to_owned(), Kind::Dir)
        } else {
            let data = Bytes::from(spec.clone().into_bytes()).into();
            let executable = false;
            (spec, Kind::File { data, executable })
        };
        entries.push(Entry {
            path: path.into_bytes(),
            kind,
        });
    }
    if let Some(text) = case["dockerignore"].as_str() {
        entries.push(Entry {
            path: b".dockerignore".to_vec(),
            kind: Kind::File {
                data: Bytes::from(text.as_bytes().to_vec()).into(),
                executable: false,
            },
        });
    }
    Tree::from_entries(0, entries).expect("valid fixture tree")
}

fn listing(t: &Tree) -> Vec<String> {
    let mut out: Vec<String> = t
        .entries()
        .iter()
        .map(|e| {
            let p = String::from_utf8(e.path.clone()).expect("UTF-8 fixture path");
            match e.kind {
                Kind::Dir => p + "/",
                _ => p,
            }
        })
        .collect();
    out.sort();
    out
}

#[test]
fn matches_docker_cli() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerignore");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "only {} fixtures", files.len());

    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let case: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let dockerfile = case["dockerfile"].as_str().unwrap();
        let got = ignore::apply(tree(&case), dockerfile);
        let dockerfile_sent = case["sent"]
            .as_array()
            .is_some_and(|s| s.iter().any(|p| p == dockerfile));
        match (&case["sent"], got) {
            // The CLI failed before sending anything: so must we.
            (Value::Null, Err(Error::Ignore(_))) => {}
            // The CLI sent a context without the Dockerfile, which the daemon rejects.
            (_, Err(Error::Ignore(_))) if !dockerfile_sent && !case["error"].is_null() => {}
            (Value::Null, Ok(t)) => failures.push(format!(
                "{name}: the CLI failed ({}), dbuild sent {:?}",
                case["error"],
                listing(&t)
            )),
            (sent, Ok(t)) => {
                let want = strings(sent);
                let got = listing(&t);
                if got != want {
                    failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
                }
            }
            (_, Err(e)) => failures.push(format!("{name}: unexpected error {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The daemon drops the Dockerfile and `.dockerignore` from what `COPY` sees when the patterns
/// exclude them; everything else `COPY` sees was sent. Keeps the fixtures honest.
#[test]
fn copied_is_sent_minus_build_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerignore");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if case["copied"].is_null() {
            continue;
        }
        let sent: Vec<String> = strings(&case["sent"]);
        let copied: Vec<String> = strings(&case["copied"]);
        let dockerfile = case["dockerfile"].as_str().unwrap();
        for c in &copied {
            // Parent directories of re-included files are created by the daemon.
            let implied = c.ends_with('/') && sent.iter().any(|s| s.starts_with(c.as_str()));
            assert!(
                sent.contains(c) || implied,
                "{path:?}: {c} copied, not sent"
            );
        }
        for s in &sent {
            let build_file = s == dockerfile || s == ".dockerignore";
            assert!(
                copied.contains(s) || build_file,
                "{path:?}: {s} sent, not copied"
            );
        }
    }
}
