//! Push and credentials against the real test bed: the registry at 127.0.0.1:5000 (htpasswd,
//! every repository needs auth), Docker 20.10 and Podman's compat API. Every credential source is
//! exercised through the real `dbuild` binary, run with `HOME` and `DOCKER_CONFIG` in temp dirs
//! the test creates (the developer's own config is never read), and every successful push is
//! checked through the registry's own API. Credential helpers are small shell scripts the tests
//! write and put first on `PATH`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use common::*;

/// A recognisable wrong password: it must never appear in any output.
const WRONG: &str = "Wr0ng-Secret-Mark-4417";

/// An isolated user environment for one dbuild run.
struct UserEnv {
    home: PathBuf,
    bin: PathBuf,
    vars: Vec<(String, String)>,
}

impl UserEnv {
    fn new(name: &str) -> UserEnv {
        let home = empty_dir(&format!("auth-{name}"));
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        UserEnv {
            home,
            bin,
            vars: Vec::new(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.home.join(".docker")
    }

    fn config(&self, json: &str) -> &Self {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.config_dir().join("config.json"), json).unwrap();
        self
    }

    fn var(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.push((k.into(), v.into()));
        self
    }

    /// Writes `docker-credential-<name>`: it logs `action|stdin` to `<home>/<name>.log` and
    /// answers for `127.0.0.1:5000` with `password` (or fails with `fail` when given).
    fn helper(&self, name: &str, bed: &Bed, password: &str, fail: Option<&str>) {
        let log = self.home.join(format!("{name}.log"));
        let body = match fail {
            Some(msg) => format!("echo '{msg}'\nexit 3\n"),
            None => format!(
                r#"case "$1" in
get) if [ "$input" = "{reg}" ]; then printf '{{"ServerURL":"%s","Username":"%s","Secret":"%s"}}' "$input" '{user}' '{password}'; else echo "credentials not found in native keychain"; exit 1; fi ;;
list) printf '{{"{reg}":"{user}"}}' ;;
*) exit 1 ;;
esac
"#,
                reg = bed.registry,
                user = bed.user,
            ),
        };
        let script = format!(
            "#!/bin/sh\ninput=$(cat; echo x)\ninput=${{input%x}}\nprintf '%s|%s\\n' \"$1\" \"$input\" >> '{}'\n{body}",
            log.display()
        );
        let p = self.bin.join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn helper_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.home.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbuild"));
        cmd.args(args)
            .env_remove("DBUILD_USERNAME")
            .env_remove("DBUILD_PASSWORD")
            .env_remove("DOCKER_AUTH_CONFIG")
            .env("HOME", &self.home)
            .env("DOCKER_CONFIG", self.config_dir())
            .env("PATH", path)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run dbuild");
        if let Some(s) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for UserEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A config.json with an `auths` entry for the registry.
fn auths_config(bed: &Bed, password: &str) -> String {
    format!(
        r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
        bed.registry,
        b64(&format!("{}:{password}", bed.user))
    )
}

/// Asserts that no form of any of `secrets` appears in the run's output.
fn no_leak(out: &Output, bed: &Bed, secrets: &[&str]) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for s in secrets {
        for form in [
            s.to_string(),
            b64(&format!("{}:{s}", bed.user)),
            base64::engine::general_purpose::URL_SAFE.encode(s),
        ] {
            assert!(
                !all.contains(&form),
                "a secret leaked into the output: {all}"
            );
        }
    }
}

/// Tags the base image into `engine` (None: Docker) as `127.0.0.1:5000/issue6-<name>:<unique>`.
fn prepare(bed: &Bed, engine: Option<&str>, name: &str) -> (String, String, String) {
    let repo = format!("issue6-{name}");
    let tag = unique("t");
    let full = format!("{}/{repo}:{tag}", bed.registry);
    let mut args = Vec::new();
    if let Some(h) = engine {
        args.extend(["-H", h]);
    }
    args.extend(["tag", "localbusybox:latest", &full]);
    let out = docker(&args);
    assert!(out.status.success(), "docker tag: {}", text(&out.stderr));
    (full, repo, tag)
}

fn remove(engine: Option<&str>, name: &str) {
    let mut args = Vec::new();
    if let Some(h) = engine {
        args.extend(["-H", h]);
    }
    args.extend(["rmi", name]);
    docker(&args);
}

fn podman_host() -> String {
    std::env::var("DBUILD_TEST_PODMAN_HOST")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unix:///var/lib/dbuild-testbed/podman.sock".into())
}

/// Asserts success, that stdout has `full@digest`, and that the registry holds that digest.
fn assert_pushed(out: &Output, bed: &Bed, full: &str, repo: &str, tag: &str) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "push failed: {stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{full}@")))
        .unwrap_or_else(|| panic!("no digest line for {full} in {stdout:?}"));
    let printed = line.rsplit('@').next().unwrap().to_owned();
    assert_eq!(
        printed,
        registry_digest(bed, repo, tag),
        "registry's digest"
    );
    printed
}

fn last_line(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn flags_right_password_pushes_and_the_registry_has_the_digest() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "flags");
    let env = UserEnv::new("flags");
    let out = env.run(
        &["push", &full, "--username", &bed.user, "--password-stdin"],
        Some(&format!("{}\n", bed.password)),
    );
    assert_pushed(&out, &bed, &full, &repo, &tag);
    no_leak(&out, &bed, &[&bed.password]);
    assert!(
        !env.config_dir().exists(),
        "reading credentials created {}",
        env.config_dir().display()
    );
    remove(None, &full);
}

#[test]
fn wrong_password_fails_with_unauthorized_and_is_never_shown() {
    let bed = bed();
    let (full, ..) = prepare(&bed, None, "wrong");
    let env = UserEnv::new("wrong");
    let out = env.run(
        &["push", &full, "-u", &bed.user, "--password-stdin"],
        Some(WRONG),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let last = last_line(&out);
    assert!(
        last.starts_with(&format!("dbuild: error: push of {full} failed:"))
            && last.contains("unauthorized"),
        "{last}"
    );
    no_leak(&out, &bed, &[WRONG]);
    remove(None, &full);
}

#[test]
fn no_credentials_fails_clearly() {
    let bed = bed();
    let (full, ..) = prepare(&bed, None, "anon");
    let env = UserEnv::new("anon");
    let out = env.run(&["push", &full], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let last = last_line(&out);
    assert!(
        last.starts_with("dbuild: error: push of")
            && (last.contains("no basic auth credentials") || last.contains("unauthorized")),
        "{last}"
    );
    remove(None, &full);
}

#[test]
fn config_json_auths_entry_is_used() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "auths");
    let env = UserEnv::new("auths");
    env.config(&auths_config(&bed, &bed.password));
    let before = std::fs::read(env.config_dir().join("config.json")).unwrap();
    let out = env.run(&["push", &full], None);
    assert_pushed(&out, &bed, &full, &repo, &tag);
    no_leak(&out, &bed, &[&bed.password]);
    assert_eq!(
        std::fs::read(env.config_dir().join("config.json")).unwrap(),
        before,
        "config.json is never rewritten"
    );
    assert_eq!(is_empty_dir(&env.config_dir()), vec!["config.json"]);
    remove(None, &full);
}

#[test]
fn auths_with_an_http_url_key_and_username_password_fields() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "urlkey");
    let env = UserEnv::new("urlkey");
    env.config(&format!(
        r#"{{"auths":{{"http://{}/v2/":{{"username":"{}","password":"{}"}}}}}}"#,
        bed.registry, bed.user, bed.password
    ));
    let out = env.run(&["push", &full], None);
    assert_pushed(&out, &bed, &full, &repo, &tag);
    remove(None, &full);
}

#[test]
fn cred_helpers_entry_runs_the_helper_with_the_server_on_stdin() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "credhelper");
    let env = UserEnv::new("credhelper");
    env.helper("issue6test", &bed, &bed.password, None);
    // The wrong password in `auths` shows that the helper wins, as in Docker.
    let mut cfg: serde_json::Value = serde_json::from_str(&auths_config(&bed, WRONG)).unwrap();
    cfg["credHelpers"] = serde_json::json!({ bed.registry.clone(): "issue6test" });
    env.config(&cfg.to_string());
    let out = env.run(&["push", &full], None);
    assert_pushed(&out, &bed, &full, &repo, &tag);
    no_leak(&out, &bed, &[&bed.password, WRONG]);
    assert_eq!(
        env.helper_log("issue6test"),
        format!("get|{}\n", bed.registry),
        "called like the Docker CLI: `get`, the server on stdin without a newline"
    );
    remove(None, &full);
}

#[test]
fn creds_store_is_used_for_every_registry() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "credstore");
    let env = UserEnv::new("credstore");
    env.helper("issue6store", &bed, &bed.password, None);
    env.config(r#"{"auths":{},"credsStore":"issue6store"}"#);
    let out = env.run(&["push", &full], None);
    assert_pushed(&out, &bed, &full, &repo, &tag);
    no_leak(&out, &bed, &[&bed.password]);
    remove(None, &full);
}

#[test]
fn docker_auth_config_wins_over_config_json() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "envcfg");
    let mut env = UserEnv::new("envcfg");
    env.config(&auths_config(&bed, WRONG));
    env.var("DOCKER_AUTH_CONFIG", &auths_config(&bed, &bed.password));
    let out = env.run(&["push", &full], None);
    assert_pushed(&out, &bed, &full, &repo, &tag);
    no_leak(&out, &bed, &[&bed.password, WRONG]);
    remove(None, &full);
}

#[test]
fn dbuild_username_and_password_variables_win_over_config_json() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "envvars");
    let mut env = UserEnv::new("envvars");
    env.config(&auths_config(&bed, WRONG));
    env.var("DBUILD_USERNAME", &bed.user.clone())
        .var("DBUILD_PASSWORD", &bed.password.clone());
    let out = env.run(&["push", &full], None);
    assert_pushed(&out, &bed, &full, &repo, &tag);
    no_leak(&out, &bed, &[&bed.password, WRONG]);
    remove(None, &full);
}

#[test]
fn a_registry_that_is_not_running_is_a_clear_error() {
    let bed = bed();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let full = format!("127.0.0.1:{port}/issue6-closed:{}", unique("t"));
    let out = docker(&["tag", "localbusybox:latest", &full]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let env = UserEnv::new("closed");
    let out = env.run(
        &["push", &full, "-u", &bed.user, "--password-stdin"],
        Some(&bed.password),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let last = last_line(&out);
    assert!(
        last.starts_with(&format!("dbuild: error: push of {full} failed:"))
            && last.contains("connection refused"),
        "{last}"
    );
    remove(None, &full);
}

#[test]
fn several_tags_in_one_run_each_get_a_digest_and_metadata_is_written() {
    let bed = bed();
    let env = UserEnv::new("multi");
    env.config(&auths_config(&bed, &bed.password));
    let ctx = env.home.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM localbusybox:latest\nLABEL issue6={}\n", unique("m")),
    )
    .unwrap();
    let (repo_a, repo_b) = ("issue6-multi-a", "issue6-multi-b");
    let (tag_a, tag_b) = (unique("a"), unique("b"));
    let a = format!("{}/{repo_a}:{tag_a}", bed.registry);
    let b = format!("{}/{repo_b}:{tag_b}", bed.registry);
    let outdir = env.home.join("out");
    std::fs::create_dir_all(&outdir).unwrap();
    let meta = outdir.join("meta.json");
    let ctx_s = ctx.display().to_string();
    let meta_s = meta.display().to_string();
    let out = env.run(
        &[
            "build",
            &ctx_s,
            "-t",
            &a,
            "-t",
            &b,
            "--push",
            "--metadata-file",
            &meta_s,
        ],
        None,
    );
    let da = assert_pushed(&out, &bed, &a, repo_a, &tag_a);
    let db = assert_pushed(&out, &bed, &b, repo_b, &tag_b);
    let image_id = text(&out.stdout).lines().next().unwrap().to_owned();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        m,
        serde_json::json!({
            "image_id": image_id,
            "tags": [a, b],
            "digests": { a.clone(): da, b.clone(): db },
        })
    );
    assert_eq!(
        is_empty_dir(&outdir),
        vec!["meta.json"],
        "no temp file left"
    );
    no_leak(&out, &bed, &[&bed.password]);

    // A failed push writes no metadata.
    std::fs::remove_file(&meta).unwrap();
    let mut bad = UserEnv::new("multi-bad");
    bad.config(&auths_config(&bed, WRONG));
    bad.var("HOME", &env.home.display().to_string());
    let out = bad.run(
        &[
            "build",
            &ctx_s,
            "-t",
            &a,
            "--push",
            "--metadata-file",
            &meta_s,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(is_empty_dir(&outdir).is_empty(), "metadata only on success");
    no_leak(&out, &bed, &[WRONG]);
    remove(None, &a);
    remove(None, &b);
}

/// Pushes a base image to the registry under a name that needs auth, removes it from `engine`,
/// then builds `FROM` it: without credentials the engine's own error, with them given by
/// `credentials` (sent as `X-Registry-Config`) success.
fn private_base_image(engine: Option<&str>, name: &str, credentials: fn(&mut UserEnv, &Bed)) {
    let bed = bed();
    let mut env = UserEnv::new(name);
    let host: Vec<&str> = engine.map(|h| vec!["-H", h]).unwrap_or_default();
    let (base, ..) = prepare(&bed, engine, name);
    let mut args = host.clone();
    args.extend(["push", &base, "-u", &bed.user, "--password-stdin"]);
    let out = env.run(&args, Some(&bed.password));
    assert!(out.status.success(), "{}", text(&out.stderr));
    remove(engine, &base);
    let ctx = env.home.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        // A label of its own: identical images built by parallel tests would share an ID, and
        // one test's `rmi` would pull it from under another's build.
        format!("FROM {base}\nLABEL issue6={}\n", unique(name)),
    )
    .unwrap();
    let ctx_s = ctx.display().to_string();
    let image = format!("issue6-{name}-built:{}", unique("t"));
    let mut args = host.clone();
    args.extend(["build", &ctx_s, "-t", &image, "--pull"]);

    let out = env.run(&args, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let last = last_line(&out);
    assert!(
        last.starts_with("dbuild: error: build failed:")
            && (last.contains("no basic auth credentials")
                || last.contains("unauthorized")
                || last.contains("authentication required")),
        "without credentials the engine's message: {last}"
    );

    credentials(&mut env, &bed);
    let out = env.run(&args, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_leak(&out, &bed, &[&bed.password]);
    remove(engine, &image);
    remove(engine, &base);
}

#[test]
fn a_private_base_image_is_pulled_with_credentials_from_config_json() {
    private_base_image(None, "privbase", |env, bed| {
        env.config(&auths_config(bed, &bed.password));
    });
}

#[test]
fn a_private_base_image_is_pulled_with_credentials_from_a_creds_store() {
    // The build gathers a credsStore's credentials with `list` then `get`, as the CLI does.
    private_base_image(None, "privbase-store", |env, bed| {
        env.helper("issue6buildstore", bed, &bed.password, None);
        env.config(r#"{"credsStore":"issue6buildstore"}"#);
    });
}

#[test]
fn a_private_base_image_is_pulled_with_credentials_from_docker_auth_config() {
    private_base_image(None, "privbase-env", |env, bed| {
        env.var("DOCKER_AUTH_CONFIG", &auths_config(bed, &bed.password));
    });
}

#[test]
fn podman_pulls_a_private_base_image_with_credentials_from_config_json() {
    private_base_image(Some(&podman_host()), "privbase-podman", |env, bed| {
        env.config(&auths_config(bed, &bed.password));
    });
}

#[test]
fn podman_push_with_config_auths_and_a_wrong_password() {
    let bed = bed();
    let podman = podman_host();
    let (full, repo, tag) = prepare(&bed, Some(&podman), "podman");
    let env = UserEnv::new("podman");
    env.config(&auths_config(&bed, &bed.password));
    let out = env.run(&["-H", &podman, "push", &full], None);
    // Podman reports the digest only in a status line; dbuild reads it there.
    assert_pushed(&out, &bed, &full, &repo, &tag);
    no_leak(&out, &bed, &[&bed.password]);

    let bad = UserEnv::new("podman-bad");
    bad.config(&auths_config(&bed, WRONG));
    let out = bad.run(&["-H", &podman, "push", &full], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        last_line(&out).contains("unauthorized"),
        "{}",
        last_line(&out)
    );
    no_leak(&out, &bed, &[WRONG]);
    remove(Some(&podman), &full);
}

/// One failing case: what it is, the user's environment, the arguments, stdin, and what the
/// error line must say.
type Case<'a> = (&'a str, UserEnv, Vec<&'a str>, Option<&'a str>, &'a str);

/// Every failing path, each with a recognisable secret somewhere in its input: the secret never
/// appears in the output, and each failure is one line naming what is wrong.
#[test]
fn no_failing_path_shows_a_secret() {
    let bed = bed();
    let (full, ..) = prepare(&bed, None, "leaks");
    let mut cases: Vec<Case> = Vec::new();

    let e = UserEnv::new("leak-argv");
    cases.push((
        "password on argv",
        e,
        vec!["push", &full, "-u", "alice", "--password", WRONG],
        None,
        "--password is not accepted",
    ));

    let e = UserEnv::new("leak-notjson");
    e.config(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{WRONG}"#,
        bed.registry
    ));
    cases.push((
        "config not JSON",
        e,
        vec!["push", &full],
        None,
        "config.json: it is not valid JSON",
    ));

    let e = UserEnv::new("leak-badauth");
    e.config(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{WRONG}"}}}}}}"#,
        bed.registry
    ));
    cases.push((
        "auth not base64",
        e,
        vec!["push", &full],
        None,
        "auth is not base64",
    ));

    let e = UserEnv::new("leak-badtype");
    e.config(&format!(
        r#"{{"auths":{{"{}":{{"password":["{WRONG}"]}}}}}}"#,
        bed.registry
    ));
    cases.push((
        "password not a string",
        e,
        vec!["push", &full],
        None,
        "password is not a string",
    ));

    let mut e = UserEnv::new("leak-envbroken");
    e.var("DOCKER_AUTH_CONFIG", &format!("{{\"auths\": {WRONG}"));
    cases.push((
        "DOCKER_AUTH_CONFIG broken",
        e,
        vec!["push", &full],
        None,
        "$DOCKER_AUTH_CONFIG",
    ));

    let e = UserEnv::new("leak-missing");
    e.config(r#"{"credsStore":"issue6-not-installed"}"#);
    cases.push((
        "missing helper",
        e,
        vec!["push", &full],
        None,
        "docker-credential-issue6-not-installed is not on PATH",
    ));

    let e = UserEnv::new("leak-failing");
    e.helper("issue6fail", &bed, WRONG, Some("backend locked"));
    e.config(&format!(
        r#"{{"credHelpers":{{"{}":"issue6fail"}}}}"#,
        bed.registry
    ));
    cases.push(("failing helper", e, vec!["push", &full], None, "docker-credential-issue6fail failed for 127.0.0.1:5000: it exited with status 3: backend locked"));

    let e = UserEnv::new("leak-helper-wrong");
    e.helper("issue6wrong", &bed, WRONG, None);
    e.config(&format!(
        r#"{{"credHelpers":{{"{}":"issue6wrong"}}}}"#,
        bed.registry
    ));
    cases.push((
        "helper with a wrong password",
        e,
        vec!["push", &full],
        None,
        "unauthorized",
    ));

    let mut e = UserEnv::new("leak-env-wrong");
    e.var("DOCKER_AUTH_CONFIG", &auths_config(&bed, WRONG));
    cases.push((
        "DOCKER_AUTH_CONFIG with a wrong password",
        e,
        vec!["push", &full],
        None,
        "unauthorized",
    ));

    let e = UserEnv::new("leak-stdin-wrong");
    cases.push((
        "flags with a wrong password",
        e,
        vec!["push", &full, "-u", "alice", "--password-stdin"],
        Some(WRONG),
        "unauthorized",
    ));

    for (what, env, args, stdin, expect) in &cases {
        let out = env.run(args, *stdin);
        assert!(!out.status.success(), "{what}: should fail");
        let stderr = text(&out.stderr);
        let last = last_line(&out);
        assert!(
            last.starts_with("dbuild: error: ") && last.contains(expect),
            "{what}: {stderr}"
        );
        no_leak(&out, &bed, &[WRONG]);
    }
    remove(None, &full);
}

/// A build without `--push` warns about a broken config and goes on; the warning names the file.
#[test]
fn a_build_warns_about_a_broken_config_and_goes_on() {
    let bed = bed();
    let env = UserEnv::new("buildwarn");
    env.config(&format!("{{\"auths\": {WRONG}"));
    let ctx = env.home.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM localbusybox:latest\nLABEL issue6={}\n",
            unique("warn")
        ),
    )
    .unwrap();
    let image = format!("issue6-warn:{}", unique("t"));
    let out = env.run(&["build", &ctx.display().to_string(), "-t", &image], None);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.lines().any(
            |l| l.starts_with("dbuild: warning: cannot use the Docker config ")
                && l.contains("config.json: it is not valid JSON")
        ),
        "{stderr}"
    );
    no_leak(&out, &bed, &[WRONG]);
    remove(None, &image);
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), the push draws per-layer bars
/// with cursor movement, green for finished layers unless `NO_COLOR` is set.
#[test]
fn progress_bars_on_a_terminal_respect_no_color() {
    let bed = bed();
    let (full, repo, tag) = prepare(&bed, None, "tty");
    let mut env = UserEnv::new("tty");
    env.config(&auths_config(&bed, &bed.password));
    env.var("TERM", "xterm").var("COLUMNS", "100");
    let cmd = format!("{} push {full}", env!("CARGO_BIN_EXE_dbuild"));
    let run = |env: &UserEnv| {
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("DOCKER_AUTH_CONFIG")
            .env_remove("NO_COLOR")
            .env("HOME", &env.home)
            .env("DOCKER_CONFIG", env.config_dir())
            .envs(env.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("util-linux `script` runs dbuild on a pseudo-terminal");
        assert!(out.status.success(), "{}", text(&out.stdout));
        text(&out.stdout)
    };
    let coloured = run(&env);
    assert!(
        coloured.contains("\x1b[2K"),
        "bars redrawn in place: {coloured:?}"
    );
    assert!(
        coloured.contains("\x1b[32m"),
        "finished layers green: {coloured:?}"
    );
    let digest = registry_digest(&bed, &repo, &tag);
    assert!(
        coloured.contains(&format!("{full}@{digest}")),
        "{coloured:?}"
    );
    env.var("NO_COLOR", "1");
    let plain = run(&env);
    assert!(plain.contains("\x1b[2K"), "{plain:?}");
    assert!(!plain.contains("\x1b[32m"), "NO_COLOR: {plain:?}");
    remove(None, &full);
}
