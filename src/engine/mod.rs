//! A small client for the Docker Engine API, written by hand on hyper 1.
//!
//! Why by hand: dbuild needs four endpoints (`_ping`, `build`, `push`, `version`), a streamed
//! request body and a streamed response; an SDK would bring far more than that. Each request
//! gets its own HTTP/1.1 connection, whose driver task is aborted when the response is dropped:
//! dropping a build future closes the socket, and Docker then stops the build.
//!
//! All HTTP lives in this module; the rest of the crate sees typed requests and [`Message`]s.

mod build;
mod host;
mod push;
pub mod stream;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;

pub use self::build::{BuildOptions, BuildOutcome};
pub use self::host::{Host, DEFAULT_SOCKET};
pub use self::push::PushOutcome;
pub use self::stream::Message;

/// The newest API version dbuild speaks; it uses the engine's version when that is lower.
pub const MAX_API_VERSION: ApiVersion = ApiVersion(1, 45);
/// The oldest API version dbuild supports (Docker 19.03): every `/build` parameter dbuild sends
/// exists there.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 40);

/// Errors from the engine or from talking to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine address could not be understood.
    #[error("invalid engine address {host:?}: {why}")]
    Host {
        /// The address as given.
        host: String,
        /// What is wrong.
        why: String,
    },
    /// No connection could be made.
    #[error("cannot connect to the engine at {host}: {why} ({hint})")]
    Connect {
        /// The engine address.
        host: String,
        /// The operating system's reason.
        why: String,
        /// What to do about it.
        hint: String,
    },
    /// The connection failed after it was made.
    #[error("connection to the engine failed: {0}")]
    Http(String),
    /// The engine refused a request (non-2xx) with this message.
    #[error("the engine answered {status}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// The engine's API version is not one dbuild can use.
    #[error("{0}")]
    Version(String),
    /// A line of the progress stream could not be decoded.
    #[error(transparent)]
    Decode(#[from] stream::DecodeError),
    /// The build failed; the engine's message (and a step's exit code, when given).
    #[error("build failed: {message}")]
    Build {
        /// The engine's message.
        message: String,
        /// The failed step's exit code, if the engine sent one.
        code: Option<i64>,
    },
    /// The push failed; the engine's (or registry's) message.
    #[error("push of {reference} failed: {message}")]
    Push {
        /// The reference being pushed.
        reference: String,
        /// The message, for example `unauthorized: authentication required`.
        message: String,
    },
    /// The engine's answer lacked something it must hold.
    #[error("{0}")]
    Protocol(String),
}

/// An engine API version such as 1.41.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u16, pub u16);

impl ApiVersion {
    /// Parses `1.41`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.trim().split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the engine is.
    pub host: Host,
    /// Use exactly this API version instead of negotiating (`DOCKER_API_VERSION`).
    pub api_version: Option<ApiVersion>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
}

impl Settings {
    /// Settings from `-H` (if given) and the environment (`DOCKER_HOST`, `DOCKER_API_VERSION`).
    pub fn from_env(host: Option<&str>) -> Result<Settings, Error> {
        let api_version = match std::env::var("DOCKER_API_VERSION") {
            Ok(v) if !v.is_empty() => Some(ApiVersion::parse(&v).ok_or_else(|| {
                Error::Version(format!(
                    "DOCKER_API_VERSION={v:?} is not a version like 1.41"
                ))
            })?),
            _ => None,
        };
        Ok(Settings {
            host: Host::from_env(host)?,
            api_version,
            connect_timeout: Duration::from_secs(10),
        })
    }
}

/// A connected engine: its address and the API version agreed with it.
#[derive(Clone, Debug)]
pub struct Engine {
    settings: Settings,
    version: ApiVersion,
    podman: bool,
}

/// A response whose body is still arriving. Dropping it closes the connection.
pub(crate) struct Streaming {
    body: Incoming,
    _conn: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Engine {
    /// Connects to the engine: `GET /_ping`, then settles the API version.
    pub async fn connect(settings: Settings) -> Result<Engine, Error> {
        let mut engine = Engine {
            settings,
            version: MIN_API_VERSION,
            podman: false,
        };
        let resp = engine
            .send(
                "GET",
                "/_ping".into(),
                Vec::new(),
                http_body_util::Empty::<Bytes>::new(),
            )
            .await?;
        let headers = resp.0;
        let theirs = headers
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiVersion::parse);
        engine.podman = headers.contains_key("libpod-api-version");
        engine.version = match (engine.settings.api_version, theirs) {
            (Some(pinned), _) => pinned,
            (None, Some(v)) if v < MIN_API_VERSION => {
                return Err(Error::Version(format!(
                    "the engine at {} speaks API {v}, older than {MIN_API_VERSION}, the oldest dbuild supports (Docker 19.03): upgrade the engine",
                    engine.settings.host
                )))
            }
            (None, Some(v)) => v.min(MAX_API_VERSION),
            // An engine that does not say is old; the CLI then assumes its minimum too.
            (None, None) => MIN_API_VERSION,
        };
        Ok(engine)
    }

    /// The API version used in every request path.
    pub fn api_version(&self) -> ApiVersion {
        self.version
    }

    /// Whether the engine is Podman's Docker-compatible service.
    pub fn is_podman(&self) -> bool {
        self.podman
    }

    /// The engine's address.
    pub fn host(&self) -> &Host {
        &self.settings.host
    }

    /// Sends a request on a fresh connection and returns the response once its head arrived;
    /// a non-2xx status becomes [`Error::Api`] with the engine's message.
    async fn send<B>(
        &self,
        method: &str,
        path_and_query: String,
        headers: Vec<(&'static str, String)>,
        body: B,
    ) -> Result<(hyper::HeaderMap, Streaming), Error>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let io = self
            .settings
            .host
            .connect(self.settings.connect_timeout)
            .await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        let guard = AbortOnDrop(tokio::spawn(async move {
            // Errors surface through the response future; nothing to do here.
            let _ = conn.await;
        }));
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", "docker");
        req = req.header("user-agent", concat!("dbuild/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(body).map_err(|e| Error::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Error::Http(describe_hyper(&e)))?;
        let (parts, body) = resp.into_parts();
        let streaming = Streaming { body, _conn: guard };
        if !parts.status.is_success() {
            let text = streaming.collect().await.unwrap_or_default();
            return Err(Error::Api {
                status: parts.status.as_u16(),
                message: error_message(&text),
            });
        }
        Ok((parts.headers, streaming))
    }

    /// A versioned path: `/v1.41/build?…`.
    fn path(&self, p: &str) -> String {
        format!("/v{}{}", self.version, p)
    }
}

impl Streaming {
    /// The next piece of the body, or `None` at its end.
    async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Http(describe_hyper(&e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The whole body (for small answers such as errors).
    async fn collect(mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await? {
            out.extend_from_slice(&c);
            if out.len() > 1 << 20 {
                break;
            }
        }
        Ok(out)
    }

    /// Decodes the body as a message stream, handing each message to `on` as it arrives.
    async fn messages(
        mut self,
        mut on: impl FnMut(Message) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut decoder = stream::Decoder::new();
        while let Some(chunk) = self.chunk().await? {
            decoder.push(&chunk);
            while let Some(m) = decoder.next_message() {
                on(m?)?;
            }
        }
        if let Some(m) = decoder.finish() {
            on(m?)?;
        }
        Ok(())
    }
}

/// hyper's errors say little on their own; include the cause (e.g. "connection reset").
fn describe_hyper(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The human message of an error body: Docker's `{"message"}`, Podman's `{"cause","message"}`,
/// or the text itself.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body { message: Some(m) }) => m,
        _ => {
            let t = String::from_utf8_lossy(body);
            let t = t.trim();
            if t.is_empty() {
                "(no message)".into()
            } else {
                t.chars().take(300).collect()
            }
        }
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_and_parse() {
        assert!(ApiVersion(1, 41) < ApiVersion(1, 45));
        assert!(ApiVersion(1, 9) < ApiVersion(1, 10));
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion(1, 41)));
        assert_eq!(ApiVersion::parse("x"), None);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(br#"{"message":"no such image"}"#),
            "no such image"
        );
        assert_eq!(
            error_message(br#"{"cause":"x","message":"podman says","response":400}"#),
            "podman says"
        );
        assert_eq!(error_message(b"plain text\n"), "plain text");
    }

    #[test]
    fn escaping() {
        assert_eq!(query_escape("a b/c:{\"x\"}"), "a%20b%2Fc%3A%7B%22x%22%7D");
    }
}
