//! Where the engine is (`DOCKER_HOST`, `-H`, Docker contexts) and how to open a connection to
//! it: a unix socket, TCP (plain, or TLS with the `tls` feature), or `ssh` running
//! `docker system dial-stdio` on the remote host as the Docker CLI does.
//!
//! Why its own module: every transport ends in the same thing, a byte stream hyper can speak
//! HTTP/1.1 over; only this module knows how each kind of address gets one.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tower_service::Service;

use super::Error;

/// The socket Docker listens on when nothing else is said.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// A byte stream to the engine.
pub(crate) trait Io: hyper::rt::Read + hyper::rt::Write + Send + Unpin {}
impl<T: hyper::rt::Read + hyper::rt::Write + Send + Unpin> Io for T {}

/// An engine address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// `unix:///path/to/socket`
    Unix(PathBuf),
    /// `tcp://host:port` (plain HTTP, or TLS when [`super::Settings::tls`] is set).
    Tcp(String),
    /// `ssh://[user@]host[:port][/socket]`: the system `ssh` runs `docker system dial-stdio`
    /// on the remote host (Docker 18.09 or later there).
    Ssh {
        /// User name, if given.
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// Port, if given.
        port: Option<u16>,
        /// The remote engine's socket, if not the remote CLI's default.
        socket: Option<String>,
    },
}

impl Host {
    /// Parses a `DOCKER_HOST`-style address.
    pub fn parse(s: &str) -> Result<Host, Error> {
        let bad = |why: &str| Error::Host {
            host: without_userinfo(s),
            why: why.to_owned(),
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad(
                    "the unix socket path is empty; write unix:///var/run/docker.sock",
                ));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let hostport = rest.trim_end_matches('/');
            if hostport.is_empty() || hostport.contains('/') || hostport.contains('@') {
                return Err(bad("write tcp://HOST:PORT"));
            }
            let with_port = if hostport
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                && !hostport.ends_with(']')
            {
                hostport.to_owned()
            } else {
                format!("{hostport}:2375")
            };
            return Ok(Host::Tcp(with_port));
        }
        if let Some(rest) = s.strip_prefix("ssh://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => {
                    if u.contains(':') {
                        // Never echo the password back: `bad` shows the address as given,
                        // so describe it without it.
                        return Err(Error::Host {
                            host: "ssh://…".into(),
                            why: "a password in an ssh:// address is not supported; use ssh keys or an agent".into(),
                        });
                    }
                    (Some(u.to_owned()).filter(|u| !u.is_empty()), h)
                }
                None => (None, authority),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) if !hostport.ends_with(']') => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| bad("the ssh port is not a number"))?,
                    ),
                ),
                _ => (hostport, None),
            };
            if host.is_empty() || host.starts_with('-') {
                return Err(bad("write ssh://USER@HOST[:PORT]"));
            }
            let socket = (!path.is_empty() && path != "/").then(|| path.to_owned());
            return Ok(Host::Ssh {
                user,
                host: host.to_owned(),
                port,
                socket,
            });
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let scheme = s.split_once("://").map_or(s, |(sch, _)| sch);
        Err(bad(&format!(
            "unsupported scheme {scheme:?}; use unix:///PATH, tcp://HOST:PORT or ssh://USER@HOST"
        )))
    }

    /// `-H`/`--host` if given, else `DOCKER_HOST`, else the default socket.
    pub fn from_env(explicit: Option<&str>) -> Result<Host, Error> {
        match explicit
            .map(str::to_owned)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
        {
            Some(h) => Host::parse(&h),
            None => Ok(Host::Unix(PathBuf::from(DEFAULT_SOCKET))),
        }
    }

    /// Opens a new connection; TLS on top when `tls` is given (TCP only).
    pub(crate) async fn connect(
        &self,
        timeout: Duration,
        tls: Option<&super::tls::TlsFiles>,
        ssh_options: &[String],
    ) -> Result<Box<dyn Io>, Error> {
        if let Some(tls) = tls {
            let Host::Tcp(addr) = self else {
                return Err(Error::Host {
                    host: self.to_string(),
                    why: "TLS settings apply to tcp:// addresses only".into(),
                });
            };
            return super::tls::connect(self, addr, tls, timeout).await;
        }
        if let Host::Ssh { .. } = self {
            return ssh_connect(self, ssh_options).await;
        }
        let fut = async {
            match self {
                Host::Unix(path) => {
                    let uri: hyper::Uri = hyperlocal::Uri::new(path, "/").into();
                    hyperlocal::UnixConnector
                        .call(uri)
                        .await
                        .map(|s| Box::new(s) as Box<dyn Io>)
                }
                Host::Tcp(addr) => {
                    let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
                    s.set_nodelay(true)?;
                    Ok(Box::new(TokioIo::new(s)) as Box<dyn Io>)
                }
                Host::Ssh { .. } => unreachable!("handled above"),
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(io)) => Ok(io),
            Ok(Err(e)) => Err(Error::Connect {
                host: self.to_string(),
                hint: self.hint(&e),
                why: e.to_string(),
            }),
            Err(_) => Err(Error::Connect {
                host: self.to_string(),
                why: format!("no connection after {} s", timeout.as_secs_f32()),
                hint: "check that the engine is running and reachable".into(),
            }),
        }
    }

    pub(crate) fn hint(&self, e: &std::io::Error) -> String {
        use std::io::ErrorKind::*;
        use std::os::unix::fs::FileTypeExt;
        if let Host::Unix(p) = self {
            // A wrong path answers "connection refused" too; say what the path really is.
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {
                    return format!("{} is a directory, not the engine's socket: point -H or DOCKER_HOST at the socket, for example unix:///var/run/docker.sock", p.display())
                }
                Ok(m) if !m.file_type().is_socket() => {
                    return format!("{} is not a socket: point -H or DOCKER_HOST at the engine's socket, for example unix:///var/run/docker.sock", p.display())
                }
                _ => {}
            }
        }
        match (self, e.kind()) {
            (Host::Unix(_), PermissionDenied) => "add your user to the 'docker' group or run as root".into(),
            (Host::Unix(_), NotFound) | (_, ConnectionRefused) => "is the Docker daemon running? start it (for example 'sudo systemctl start docker') or set DOCKER_HOST".into(),
            _ => "check DOCKER_HOST or -H".into(),
        }
    }
}

/// `s` with any `user:password@` after the scheme replaced by `…@`, so an address given with
/// a password (which dbuild refuses) is never echoed back in an error.
fn without_userinfo(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => s.to_owned(),
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
            Host::Ssh {
                user,
                host,
                port,
                socket,
            } => {
                write!(f, "ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                write!(f, "{host}")?;
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                write!(f, "{}", socket.as_deref().unwrap_or(""))
            }
        }
    }
}

/// The `ssh` command line the Docker CLI uses for `ssh://` hosts (its connhelper): no
/// pseudo-terminal, a connect timeout, and `docker system dial-stdio` as the remote command.
/// `options` (for example `-i KEY`) go before the destination.
pub(crate) fn ssh_args(host: &Host, options: &[String]) -> Vec<String> {
    let Host::Ssh {
        user,
        host,
        port,
        socket,
    } = host
    else {
        return Vec::new();
    };
    let mut a: Vec<String> = options.to_vec();
    a.extend(["-o".into(), "ConnectTimeout=30".into(), "-T".into()]);
    if let Some(u) = user {
        a.extend(["-l".into(), u.clone()]);
    }
    if let Some(p) = port {
        a.extend(["-p".into(), p.to_string()]);
    }
    a.extend(["--".into(), host.clone(), "docker".into()]);
    if let Some(s) = socket {
        a.push(format!("--host=unix://{s}"));
    }
    a.extend(["system".into(), "dial-stdio".into()]);
    a
}

/// The child's stdout and stdin as one byte stream; the child is killed when it is dropped.
struct SshIo {
    out: tokio::process::ChildStdout,
    inp: tokio::process::ChildStdin,
    _child: tokio::process::Child,
}

impl tokio::io::AsyncRead for SshIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.out).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SshIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inp).poll_shutdown(cx)
    }
}

/// Starts `ssh … docker system dial-stdio`. A failure to log in shows up as the connection
/// closing; ssh's own message goes to stderr, which is inherited so the user sees it.
async fn ssh_connect(host: &Host, options: &[String]) -> Result<Box<dyn Io>, Error> {
    let mut child = tokio::process::Command::new("ssh")
        .args(ssh_args(host, options))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Connect {
            host: host.to_string(),
            why: format!("cannot run ssh: {e}"),
            hint: "install an OpenSSH client, or use unix:// or tcp://".into(),
        })?;
    let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(Error::Connect {
            host: host.to_string(),
            why: "ssh started without pipes".into(),
            hint: "try again".into(),
        });
    };
    Ok(Box::new(TokioIo::new(SshIo {
        out,
        inp,
        _child: child,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_address_never_shows_its_password() {
        let e = Host::parse("tcp://alice:hunter2@127.0.0.1:1").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("tcp://…@127.0.0.1:1"), "{e}");
        assert_eq!(without_userinfo("unix:///a@b/sock"), "unix:///a@b/sock");
    }

    #[test]
    fn parses_hosts() {
        assert_eq!(
            Host::parse("unix:///var/run/docker.sock").unwrap(),
            Host::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Host::parse("/run/podman.sock").unwrap(),
            Host::Unix("/run/podman.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2376").unwrap(),
            Host::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            Host::parse("tcp://example").unwrap(),
            Host::Tcp("example:2375".into())
        );
        let ssh = Host::parse("ssh://me@example.com:2222/run/d.sock").unwrap();
        assert_eq!(ssh.to_string(), "ssh://me@example.com:2222/run/d.sock");
        assert_eq!(
            ssh_args(&ssh, &[]).join(" "),
            "-o ConnectTimeout=30 -T -l me -p 2222 -- example.com docker --host=unix:///run/d.sock system dial-stdio"
        );
        assert_eq!(
            ssh_args(
                &Host::parse("ssh://box").unwrap(),
                &["-i".into(), "k".into()]
            )
            .join(" "),
            "-i k -o ConnectTimeout=30 -T -- box docker system dial-stdio"
        );
        let e = Host::parse("ssh://me:hunter2@box").unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("password"), "{e}");
        for bad in [
            "unix://",
            "tcp://",
            "ssh://",
            "ssh://-oProxyCommand=x",
            "http://x",
            "npipe:////./pipe/docker",
            "foo",
        ] {
            let e = Host::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
