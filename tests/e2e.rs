//! End to end: the real `dbuild` binary against the test bed's real git daemon, Docker Engine and
//! registry (`scripts/testbed.sh up`). Images are checked by running them, pushes through the
//! registry's own API.

mod common;

use common::*;

#[test]
fn builds_from_git_and_the_image_has_run_output_and_repo_files_with_modes() {
    let bed = bed();
    let tag = format!("dbuild-e2e-demo:{}", unique("t"));
    let out = dbuild(
        &["build", &format!("{}/demo.git", bed.git), "-t", &tag],
        None,
        &[],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "image id on stdout: {id:?}"
    );
    assert!(
        text(&out.stderr).contains("Step 1/"),
        "build log shown live: {}",
        text(&out.stderr)
    );
    assert_eq!(run_in(&tag, &["cat", "/from-run.txt"]), "built-by-run");
    assert_eq!(run_in(&tag, &["stat", "-c", "%a", "/hello.sh"]), "755");
    assert_eq!(run_in(&tag, &["stat", "-c", "%a", "/data.txt"]), "644");
    let inspect = docker(&["image", "inspect", "--format", "{{.Id}}", &tag]);
    assert_eq!(text(&inspect.stdout).trim(), id);
    docker(&["rmi", "-f", &tag]);
}

#[test]
fn builds_a_subdirectory_given_by_the_fragment() {
    let bed = bed();
    let tag = format!("dbuild-e2e-nested:{}", unique("t"));
    let out = dbuild(
        &[
            "build",
            &format!("{}/nested.git#main:app", bed.git),
            "-t",
            &tag,
        ],
        None,
        &[],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    docker(&["rmi", "-f", &tag]);
}

/// `dbuild build demo.git -t NAME --push` as alice, with `password` on stdin.
fn build_and_push(bed: &Bed, name: &str, password: &str) -> std::process::Output {
    let url = format!("{}/demo.git", bed.git);
    let args = [
        "build",
        &url,
        "-t",
        name,
        "--push",
        "--username",
        &bed.user,
        "--password-stdin",
    ];
    dbuild(&args, Some(password), &[], None)
}

#[test]
fn pushes_with_correct_credentials_and_the_registry_has_the_printed_digest() {
    let bed = bed();
    let tag = unique("v");
    let name = format!("{}/e2e-push:{tag}", bed.registry);
    let out = build_and_push(&bed, &name, &format!("{}\n", bed.password));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stderr: {stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}@")))
        .unwrap_or_else(|| panic!("no digest line in {stdout:?}"));
    let printed = line.rsplit('@').next().unwrap();
    assert_eq!(printed, registry_digest(&bed, "e2e-push", &tag));
    assert!(!stdout.contains(&bed.password) && !stderr.contains(&bed.password));
    docker(&["rmi", "-f", &name]);
}

#[test]
fn push_with_a_wrong_password_fails_with_unauthorized_and_never_shows_it() {
    let bed = bed();
    let name = format!("{}/e2e-denied:{}", bed.registry, unique("v"));
    let wrong = "Wr0ng-Pa55word-e2e-QZX";
    let out = build_and_push(&bed, &name, wrong);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("dbuild: error: push of") && last.contains("unauthorized"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "password leaked"
    );
    docker(&["rmi", "-f", &name]);
}

#[test]
fn a_failing_run_step_fails_with_the_daemons_message() {
    let bed = bed();
    let out = dbuild(
        &[
            "build",
            &format!("{}/failing.git", bed.git),
            "-t",
            &format!("dbuild-e2e-fail:{}", unique("t")),
        ],
        None,
        &[],
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("dbuild-expected-failure"),
        "RUN output streamed: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("dbuild: error: build failed:")
            && last.contains("returned a non-zero code: 3"),
        "{last}"
    );
}

#[test]
fn leaves_no_file_in_home_tmpdir_or_the_working_directory() {
    let bed = bed();
    let (home, tmp, cwd) = (empty_dir("home"), empty_dir("tmp"), empty_dir("cwd"));
    let tag = format!("dbuild-e2e-nofiles:{}", unique("t"));
    let out = dbuild(
        &["build", &format!("{}/demo.git", bed.git), "-t", &tag],
        None,
        &[
            ("HOME", &home),
            ("TMPDIR", &tmp),
            ("XDG_CACHE_HOME", &home),
            ("XDG_CONFIG_HOME", &home),
        ],
        Some(&cwd),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    for d in [&home, &tmp, &cwd] {
        assert_eq!(
            is_empty_dir(d),
            Vec::<String>::new(),
            "dbuild wrote into {}",
            d.display()
        );
        std::fs::remove_dir(d).unwrap();
    }
    docker(&["rmi", "-f", &tag]);
}

#[test]
fn context_command_writes_the_tar_build_would_send() {
    let bed = bed();
    let url = format!("{}/demo.git", bed.git);
    let a = dbuild(&["context", &url], None, &[], None);
    assert!(a.status.success(), "{}", text(&a.stderr));
    let b = dbuild(&["context", &url], None, &[], None);
    assert_eq!(a.stdout, b.stdout, "the context is deterministic");
    let mut ar = tar::Archive::new(&a.stdout[..]);
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        names.push((
            e.path().unwrap().display().to_string(),
            e.header().mode().unwrap(),
        ));
    }
    assert!(names.contains(&("Dockerfile".into(), 0o644)), "{names:?}");
    assert!(names.contains(&("hello.sh".into(), 0o755)), "{names:?}");
}

#[test]
fn dockerignore_applies_to_local_directories_and_stdin_tars() {
    let dir = empty_dir("ignore-ctx");
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        dir.join(".dockerignore"),
        "*.log\nsecret/\n!secret/keep.txt\nDockerfile\n",
    )
    .unwrap();
    std::fs::write(dir.join("app.txt"), "app").unwrap();
    std::fs::write(dir.join("debug.log"), "log").unwrap();
    std::fs::create_dir(dir.join("secret")).unwrap();
    std::fs::write(dir.join("secret/key"), "k").unwrap();
    std::fs::write(dir.join("secret/keep.txt"), "keep").unwrap();
    let names = |tar: &[u8]| {
        let mut v: Vec<String> = tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        v.sort();
        v
    };
    let out = dbuild(&["context", dir.to_str().unwrap()], None, &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The Dockerfile and .dockerignore are always sent, as the Docker CLI does; an excluded
    // directory gets no entry of its own even when an exception re-includes a file in it.
    let want = [".dockerignore", "Dockerfile", "app.txt", "secret/keep.txt"];
    assert_eq!(names(&out.stdout), want);
    // The same rules for a tar on stdin.
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", &dir).unwrap();
    let input = tar.into_inner().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dbuild"))
        .args(["context", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(names(&out.stdout), want);
    // A Dockerfile that is not there: `context` warns, `build` refuses with a usage error.
    let ctx = dir.to_str().unwrap();
    let out = dbuild(&["context", ctx, "-f", "nope/Dockerfile"], None, &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let warning = "dbuild: warning: Dockerfile \"nope/Dockerfile\" not found";
    assert!(
        text(&out.stderr).starts_with(warning),
        "{}",
        text(&out.stderr)
    );
    let out = dbuild(&["build", ctx, "-f", "nope/Dockerfile"], None, &[], None);
    assert_eq!(out.status.code(), Some(2));
    let error = "dbuild: error: Dockerfile \"nope/Dockerfile\" not found";
    assert!(
        text(&out.stderr).starts_with(error),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
