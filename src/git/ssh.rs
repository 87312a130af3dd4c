//! `ssh://` and scp-like (`git@host:org/repo.git`) repositories, through the system's `ssh`.
//!
//! As git does, dbuild runs `ssh [-p PORT] [USER@]HOST "git-upload-pack '/path'"` and speaks
//! protocol v2 over its stdin and stdout, asking for v2 with `GIT_PROTOCOL` (sent with
//! `-o SendEnv=GIT_PROTOCOL`; the server must `AcceptEnv GIT_PROTOCOL`, as GitHub, GitLab and
//! Debian's sshd do not all do by default). The user's keys, agent, `~/.ssh/config` and known
//! hosts apply; ssh runs in batch mode, so it never prompts (an unknown host key is an error).
//! `DBUILD_SSH_COMMAND` replaces `ssh` (split on blanks, no quoting), e.g. to name a key.

use std::cell::RefCell;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use gix_transport::client::git::blocking_io::Connection;
use gix_transport::client::git::ConnectMode;
use gix_transport::Protocol;

use super::fetch::{self, Session};
use super::{odb, Address, Error};

/// Environment variable replacing the `ssh` command line.
pub const SSH_COMMAND_ENV: &str = "DBUILD_SSH_COMMAND";
/// What an ssh process printed on stderr (its last few KiB), filled by a reader thread.
type StderrBuf = Arc<Mutex<Vec<u8>>>;

/// How much of ssh's stderr is kept for error messages.
const STDERR_KEEP: usize = 8 << 10;

/// Fetches the commit `addr` names over ssh and returns its whole tree.
pub(crate) fn fetch_ssh(addr: &Address) -> Result<odb::Resolved, Error> {
    let url = addr.redacted_url();
    let fail = |why: String| Error::Fetch {
        url: url.clone(),
        why,
    };
    let host = addr
        .host()
        .ok_or_else(|| fail("the address has no host".into()))?;
    // A host or user starting with '-' would be read by ssh as an option (CVE-2017-1000117).
    if host.starts_with('-') || addr.user().is_some_and(|u| u.starts_with('-')) {
        return Err(fail(
            "the host and user name must not start with '-'".into(),
        ));
    }
    let destination = match addr.user() {
        Some(u) => format!("{u}@{host}"),
        None => host.to_owned(),
    };
    let command = std::env::var(SSH_COMMAND_ENV)
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "ssh".into());
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or("ssh").to_owned();
    let options: Vec<String> = words.map(str::to_owned).collect();
    // Every ssh started (one per connection), with what it printed, for cleanup and errors.
    let children: RefCell<Vec<(Child, StderrBuf)>> = RefCell::new(Vec::new());
    let result = (|| {
        let mut session = fetch::Reconnecting::new(|| {
            let mut cmd = Command::new(&program);
            cmd.args(&options)
                .args(["-o", "BatchMode=yes", "-o", "SendEnv=GIT_PROTOCOL"])
                .env("GIT_PROTOCOL", "version=2");
            if let Some(p) = addr.port() {
                cmd.args(["-p", &p.to_string()]);
            }
            cmd.arg(&destination)
                .arg(format!(
                    "git-upload-pack {}",
                    shell_quote(&remote_path(addr))
                ))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot run {program:?} (is OpenSSH installed?): {e}"))?;
            let stderr = collect_stderr(&mut child);
            let pipes = (child.stdout.take(), child.stdin.take());
            children.borrow_mut().push((child, stderr));
            let (Some(stdout), Some(stdin)) = pipes else {
                return Err("cannot talk to ssh".into());
            };
            Ok(Connection::new(
                stdout,
                stdin,
                Protocol::V2,
                addr.path(),
                None::<(String, Option<u16>)>,
                ConnectMode::Process,
                false,
            ))
        });
        let shallow = session.shallow().map_err(&fail)?;
        let serves_any = session.serves_any_commit();
        let want = fetch::want_for(addr, &url, |prefixes| session.ls_refs(prefixes))?;
        let objects = fetch::fetch_commit(&mut session, want, shallow, serves_any, &url)?;
        drop(session);
        fetch::finish(addr, objects, want)
    })();
    let mut stderr = None;
    for (mut child, err) in children.into_inner() {
        let _ = child.kill();
        let _ = child.wait();
        stderr = Some(err);
    }
    let stderr = stderr.unwrap_or_default();
    result.map_err(|e| match e {
        // What ssh or the remote git said is the useful part of a failed handshake.
        Error::Fetch { url, why } => {
            let said = last_line(&stderr);
            Error::Fetch {
                url,
                why: match said {
                    Some(s)
                        if why.contains("handshake") || why.contains("closed the connection") =>
                    {
                        explain(&s)
                    }
                    _ => why,
                },
            }
        }
        other => other,
    })
}

/// The path to give git-upload-pack: scp-like paths stay relative to the login directory,
/// `ssh://host/~user/x` becomes `~user/x` (git's rule).
fn remote_path(addr: &Address) -> String {
    let p = addr.path();
    match p.strip_prefix("/~") {
        Some(rest) => format!("~{rest}"),
        None => p.to_owned(),
    }
}

/// Single-quotes `s` for the remote shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Reads ssh's stderr on a thread, keeping the last few KiB.
fn collect_stderr(child: &mut Child) -> StderrBuf {
    let buf = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut err) = child.stderr.take() {
        let sink = Arc::clone(&buf);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = sink.lock() {
                    b.extend_from_slice(&chunk[..n]);
                    let excess = b.len().saturating_sub(STDERR_KEEP);
                    b.drain(..excess);
                }
            }
        });
    }
    buf
}

/// The last non-empty line ssh (or the remote side) printed, waiting briefly for it.
fn last_line(buf: &StderrBuf) -> Option<String> {
    // ssh has exited (we waited for it); its stderr reader finishes right after.
    for _ in 0..50 {
        if Arc::strong_count(buf) == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let b = buf.lock().ok()?;
    String::from_utf8_lossy(&b)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Turns what ssh printed into a message naming the problem.
fn explain(said: &str) -> String {
    let lower = said.to_ascii_lowercase();
    let what = if lower.contains("could not resolve hostname") {
        "unknown host"
    } else if lower.contains("connection refused") {
        "connection refused: is an ssh server running there, and is the port right?"
    } else if lower.contains("permission denied") {
        "authentication failed: ssh has no key the server accepts (check ssh-agent, ~/.ssh, or DBUILD_SSH_COMMAND)"
    } else if lower.contains("host key verification failed") {
        "the server's host key is not in known_hosts (ssh runs in batch mode and does not ask)"
    } else if lower.contains("does not appear to be a git repository")
        || lower.contains("no such file or directory")
        || lower.contains("not found")
    {
        "repository not found: check the path in the address"
    } else {
        "ssh failed"
    };
    format!("{what} (ssh: {said})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_paths() {
        assert_eq!(shell_quote("/a b/it's.git"), r"'/a b/it'\''s.git'");
        let a = Address::parse("ssh://git@h/~me/r.git").unwrap();
        assert_eq!(remote_path(&a), "~me/r.git");
        let a = Address::parse("git@h:org/r.git").unwrap();
        assert_eq!(remote_path(&a), "org/r.git");
    }
}
