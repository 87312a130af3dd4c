//! Docker credential helpers (`docker-credential-<name>`), called exactly as the Docker CLI calls
//! them: `get` with the server URL on stdin (no newline) answering
//! `{"ServerURL","Username","Secret"}`, `list` answering `{server: username}`.
//!
//! Why its own module: a helper is another program, so everything about it can fail (missing,
//! non-zero exit, garbage on stdout), and each failure must be one line that names the helper
//! and never repeats what it printed on success (that holds the secret).

use std::io::Write;
use std::process::{Command, Stdio};

use super::{Credentials, Error, Secret};

/// What helpers print when they hold nothing for a server (docker-credential-helpers'
/// `errCredentialsNotFoundMessage`): not an error, just anonymous.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The user name helpers return for an identity token (the secret is then the token).
const TOKEN_USERNAME: &str = "<token>";

/// Runs `docker-credential-<helper> get` for `server`. `Ok(None)` when the helper holds no
/// credentials for it.
pub fn get(helper: &str, server: &str) -> Result<Option<Credentials>, Error> {
    get_from(&format!("docker-credential-{helper}"), helper, server)
}

/// [`get`] with the program given (a path in tests).
fn get_from(program: &str, helper: &str, server: &str) -> Result<Option<Credentials>, Error> {
    let out = run(program, helper, "get", server, server)?;
    let fail = |why: String| Error::Helper {
        helper: helper.to_owned(),
        server: server.to_owned(),
        why,
    };
    // Parsed as a `Value` first: serde's type errors quote values, and this one holds a secret.
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|_| {
        fail(format!(
            "it printed {} bytes that are not JSON credentials",
            out.len()
        ))
    })?;
    let field = |name: &str| v.get(name).and_then(|x| x.as_str()).unwrap_or_default();
    let (username, secret) = (field("Username"), field("Secret"));
    if !v.is_object() {
        return Err(fail("it printed JSON that is not an object".into()));
    }
    if username.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    let mut c = Credentials {
        server_address: server.to_owned(),
        ..Default::default()
    };
    if username == TOKEN_USERNAME {
        c.identity_token = Secret::new(secret);
    } else {
        c.username = username.to_owned();
        c.password = Secret::new(secret);
    }
    Ok(Some(c))
}

/// Runs `docker-credential-<helper> list`: the servers it holds credentials for.
pub fn list(helper: &str) -> Result<Vec<String>, Error> {
    let program = format!("docker-credential-{helper}");
    let out = run(&program, helper, "list", "unused", "(list)")?;
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out).map_err(|_| Error::Helper {
            helper: helper.to_owned(),
            server: "(list)".into(),
            why: "its `list` answer is not a JSON object".into(),
        })?;
    Ok(v.keys().cloned().collect())
}

/// Runs the helper with `action`, `input` on stdin; its stdout on success.
fn run(
    program: &str,
    helper: &str,
    action: &str,
    input: &str,
    server: &str,
) -> Result<Vec<u8>, Error> {
    let fail = |why: String| Error::Helper {
        helper: helper.to_owned(),
        server: server.to_owned(),
        why,
    };
    let spawn = || {
        Command::new(program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let mut attempt = spawn();
    // ETXTBSY: a helper just written (an installer, a test) can be briefly held open for writing
    // by another process's fork; it clears within moments.
    for _ in 0..5 {
        match &attempt {
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                attempt = spawn();
            }
            _ => break,
        }
    }
    let mut child = attempt.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                fail(format!(
                    "{program} is not on PATH: install it, or remove it from credsStore/credHelpers in config.json"
                ))
            } else {
                fail(format!("cannot run {program}: {e}"))
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input closes the pipe; its exit status says
        // what happened, so a write error here is not the error to report.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot read its answer: {e}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    // Helpers write their error to stdout (docker-credential-helpers), some to stderr.
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if said == NOT_FOUND && action == "get" {
        return Ok(b"{}".to_vec());
    }
    let said = if said.is_empty() {
        String::from_utf8_lossy(&out.stderr).trim().to_owned()
    } else {
        said
    };
    let said: String = said
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(fail(match out.status.code() {
        Some(c) if said.is_empty() => format!("it exited with status {c}"),
        Some(c) => format!("it exited with status {c}: {said}"),
        None => "it was killed by a signal".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes a script's directory when the test ends, however it ends.
    struct Cleanup(std::path::PathBuf);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes an executable helper script; tests may write files.
    fn script(name: &str, body: &str) -> (String, Cleanup) {
        let dir = std::env::temp_dir().join(format!("dbuild-helper-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        (p.display().to_string(), Cleanup(dir))
    }

    #[test]
    fn token_username_means_identity_token() {
        let (p, _dir) = script(
            "tok",
            r#"read -r s; printf '{"ServerURL":"%s","Username":"<token>","Secret":"IdTok-1"}' "$s""#,
        );
        let c = get_from(&p, "tok", "r.example.com").unwrap().unwrap();
        assert_eq!(c.identity_token.expose(), "IdTok-1");
        assert!(c.username.is_empty() && c.password.is_empty());
        assert_eq!(c.server_address, "r.example.com");
    }

    #[test]
    fn not_found_is_anonymous() {
        let (p, _dir) = script(
            "nf",
            "cat >/dev/null; echo 'credentials not found in native keychain'; exit 1",
        );
        assert!(get_from(&p, "nf", "r.example.com").unwrap().is_none());
    }

    #[test]
    fn garbage_and_failures_are_one_line_without_the_output() {
        let (p, _dir) = script(
            "garbage",
            "cat >/dev/null; echo 'Secret: Leak-Me-42 not json'",
        );
        let e = get_from(&p, "garbage", "r").unwrap_err().to_string();
        assert!(
            e.contains("not JSON credentials") && !e.contains("Leak-Me-42"),
            "{e}"
        );
        let (p, _dir) = script(
            "stderr",
            "cat >/dev/null; echo 'keyring locked' >&2; echo 'second line' >&2; exit 4",
        );
        let e = get_from(&p, "stderr", "r").unwrap_err().to_string();
        assert_eq!(
            e,
            "credential helper docker-credential-stderr failed for r: it exited with status 4: keyring locked"
        );
    }
}
