//! Where the engine is (`DOCKER_HOST`, `-H`) and how to open a connection to it.
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
    /// `tcp://host:port` (plain HTTP).
    Tcp(String),
}

impl Host {
    /// Parses a `DOCKER_HOST`-style address.
    pub fn parse(s: &str) -> Result<Host, Error> {
        let bad = |why: &str| Error::Host {
            host: s.to_owned(),
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
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let scheme = s.split_once("://").map_or(s, |(sch, _)| sch);
        Err(bad(&format!(
            "unsupported scheme {scheme:?}; use unix:///PATH or tcp://HOST:PORT"
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

    /// Opens a new connection.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<Box<dyn Io>, Error> {
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

    fn hint(&self, e: &std::io::Error) -> String {
        use std::io::ErrorKind::*;
        match (self, e.kind()) {
            (Host::Unix(_), PermissionDenied) => "add your user to the 'docker' group or run as root".into(),
            (Host::Unix(_), NotFound) | (_, ConnectionRefused) => "is the Docker daemon running? start it (for example 'sudo systemctl start docker') or set DOCKER_HOST".into(),
            _ => "check DOCKER_HOST or -H".into(),
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in [
            "unix://",
            "tcp://",
            "http://x",
            "npipe:////./pipe/docker",
            "foo",
        ] {
            let e = Host::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
