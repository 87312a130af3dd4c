//! A small client for the Docker Engine API, written by hand on hyper 1.
//!
//! Why by hand: dbuild needs four endpoints (`_ping`, `build`, `push`, `version`), a streamed
//! request body and a streamed response; an SDK would bring far more than that. Each request
//! gets its own HTTP/1.1 connection, whose driver task is aborted when the response is dropped:
//! dropping a build future closes the socket, and Docker then stops the build.
//!
//! All HTTP lives in this module; the rest of the crate sees typed requests and [`Message`]s.
//! `docs/engine.md` describes transports, version negotiation, Podman's differences, timeouts
//! and cancellation.

mod build;
pub mod buildkit;
pub mod contexts;
mod host;
mod push;
pub mod stream;
mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

pub use self::build::{BuildOptions, BuildOutcome, Builder, Ulimit, PARAMETER_SINCE};
pub use self::host::{Host, DEFAULT_SOCKET};
pub use self::push::PushOutcome;
pub use self::stream::Message;
pub use self::tls::TlsFiles;

/// The newest API version dbuild speaks; it uses the engine's version when that is lower.
pub const MAX_API_VERSION: ApiVersion = ApiVersion(1, 45);
/// The oldest API version dbuild supports (Docker 17.06): from 1.30 on a build reports the image
/// ID in an `aux` message, which is how dbuild learns it. Newer `/build` parameters are checked
/// against the negotiated version ([`PARAMETER_SINCE`]).
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 30);

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
    /// The engine cannot do what was asked (for example BuildKit on Podman).
    #[error("{0}")]
    Unsupported(String),
    /// A timeout set in [`Settings`] expired.
    #[error("{0}")]
    Timeout(String),
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

/// How long to wait for a connection unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection settings. Build them with [`Settings::new`] or [`Settings::from_env`] and change
/// fields as needed.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the engine is.
    pub host: Host,
    /// Use exactly this API version instead of negotiating (`DOCKER_API_VERSION`).
    pub api_version: Option<ApiVersion>,
    /// How long to wait for a connection (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// Fail a request when the engine sends nothing for this long, while waiting for its
    /// answer or reading its stream. Off (`None`) by default: a `RUN` step may be silent for
    /// as long as it likes, and Docker 20.10 answers a build only after reading the whole body.
    pub idle_timeout: Option<Duration>,
    /// Fail a request (one build, one push) that has not finished after this long. Off by
    /// default.
    pub timeout: Option<Duration>,
    /// TLS for a `tcp://` host (needs the `tls` feature); `None` is plain TCP.
    pub tls: Option<TlsFiles>,
    /// Extra arguments for `ssh` with `ssh://` hosts, before the destination (for example
    /// `-i KEY` or `-o StrictHostKeyChecking=yes`); empty by default.
    pub ssh_options: Vec<String>,
}

impl Settings {
    /// Settings for `host` with the defaults: negotiated version, 10 s connect timeout, no idle
    /// or overall timeout.
    pub fn new(host: Host) -> Settings {
        Settings {
            host,
            api_version: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: None,
            timeout: None,
            tls: None,
            ssh_options: Vec::new(),
        }
    }

    /// Settings as the Docker CLI would choose them: `host` (`-H`) or `context` (`--context`)
    /// if given, else `DOCKER_HOST`, `DOCKER_CONTEXT`, `currentContext` in
    /// `$DOCKER_CONFIG/config.json`, the default socket; TLS from `DOCKER_TLS_VERIFY`,
    /// `DOCKER_CERT_PATH` or the context; `DOCKER_API_VERSION`.
    pub fn resolve(host: Option<&str>, context: Option<&str>) -> Result<Settings, Error> {
        let env = |k: &str| std::env::var(k).ok();
        let r = contexts::resolve(host, context, &env)?;
        Ok(Settings {
            tls: r.tls,
            api_version: api_version_from_env()?,
            ..Settings::new(r.host)
        })
    }
}

fn api_version_from_env() -> Result<Option<ApiVersion>, Error> {
    match std::env::var("DOCKER_API_VERSION") {
        Ok(v) if !v.is_empty() => Ok(Some(ApiVersion::parse(&v).ok_or_else(|| {
            Error::Version(format!(
                "DOCKER_API_VERSION={v:?} is not a version like 1.41"
            ))
        })?)),
        _ => Ok(None),
    }
}

impl Settings {
    /// Settings from `-H` (if given) and the environment, contexts included: the same as
    /// [`Settings::resolve`] without `--context`.
    pub fn from_env(host: Option<&str>) -> Result<Settings, Error> {
        Settings::resolve(host, None)
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
    idle: Option<Duration>,
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
            .await
            .map_err(|e| not_an_engine(e, &engine.settings.host))?;
        let headers = resp.0;
        let theirs = headers
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiVersion::parse);
        engine.podman = headers.contains_key("libpod-api-version");
        engine.version = match (engine.settings.api_version, theirs) {
            (Some(pinned), theirs) => check_pinned(pinned, theirs, &engine.settings.host)?,
            (None, Some(v)) if v < MIN_API_VERSION => {
                return Err(Error::Version(format!(
                    "the engine at {} speaks API {v}, older than {MIN_API_VERSION}, the oldest dbuild supports (Docker 17.06): upgrade the engine",
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

    /// The settings this engine was connected with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `GET /images/{name}/json`: the engine's description of an image (its `Id`,
    /// `Config.Labels`, …), as JSON.
    pub async fn inspect_image(&self, name: &str) -> Result<serde_json::Value, Error> {
        let path = self.path(&format!("/images/{}/json", path_escape(name)));
        let (_, body) = self
            .send(
                "GET",
                path,
                Vec::new(),
                http_body_util::Empty::<Bytes>::new(),
            )
            .await?;
        let text = body.collect().await?;
        serde_json::from_slice(&text).map_err(|e| {
            Error::Protocol(format!("the engine's image description is not JSON: {e}"))
        })
    }

    /// `GET /version`: the engine's description of itself (`Version`, `ApiVersion`,
    /// `MinAPIVersion`, `Os`, `Arch`, …), as JSON.
    pub async fn server_version(&self) -> Result<serde_json::Value, Error> {
        let path = self.path("/version");
        let (_, body) = self
            .send(
                "GET",
                path,
                Vec::new(),
                http_body_util::Empty::<Bytes>::new(),
            )
            .await?;
        let text = body.collect().await?;
        serde_json::from_slice(&text)
            .map_err(|e| Error::Protocol(format!("the engine's version is not JSON: {e}")))
    }

    /// When a request started now must be finished, if [`Settings::timeout`] is set.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.settings.timeout.map(|t| Instant::now() + t)
    }

    /// [`Engine::send_until`] with a deadline from [`Settings::timeout`].
    async fn send<B>(
        &self,
        method: &str,
        path_and_query: String,
        headers: Vec<(&'static str, String)>,
        body: B,
    ) -> Result<(hyper::HeaderMap, Streaming), Error>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let deadline = self.deadline();
        self.send_until(method, path_and_query, headers, body, deadline)
            .await
    }

    /// Sends a request on a fresh connection and returns the response once its head arrived;
    /// a non-2xx status becomes [`Error::Api`] with the engine's message. The idle timeout
    /// counts from the last body chunk taken by the socket, so a slow upload is not idle.
    async fn send_until<B>(
        &self,
        method: &str,
        path_and_query: String,
        headers: Vec<(&'static str, String)>,
        body: B,
        deadline: Option<Instant>,
    ) -> Result<(hyper::HeaderMap, Streaming), Error>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let io = self
            .settings
            .host
            .connect(
                self.settings.connect_timeout,
                self.settings.tls.as_ref(),
                &self.settings.ssh_options,
            )
            .await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        // Most connection errors surface through the response future; one that ends the
        // connection before the request went out (a server that talks first) only says
        // "canceled" there, so the connection's own error is kept for the message.
        let conn_error: Arc<std::sync::Mutex<Option<(bool, String)>>> = Arc::default();
        let slot = conn_error.clone();
        let guard = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = conn.await {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((e.is_parse(), describe_hyper(&e)));
            }
        }));
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", "docker");
        req = req.header("user-agent", concat!("dbuild/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let activity = Arc::new(Activity::new());
        let body = Watched {
            inner: body,
            activity: activity.clone(),
        };
        let req = req.body(body).map_err(|e| Error::Http(e.to_string()))?;
        let idle = self.settings.idle_timeout;
        let mut answer = std::pin::pin!(sender.send_request(req));
        let resp = loop {
            let idle_at = idle.map(|d| activity.last() + d);
            let Some(wake) = earliest(deadline, idle_at) else {
                break answer.await;
            };
            tokio::select! {
                r = &mut answer => break r,
                _ = tokio::time::sleep_until(wake) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(overall_timeout(self.settings.timeout));
                    }
                    // The body may have moved on since `wake` was computed.
                    if let Some(d) = idle.filter(|d| Instant::now() >= activity.last() + *d) {
                        return Err(idle_timeout(d));
                    }
                }
            }
        };
        let resp = match resp {
            Ok(r) => Ok(r),
            Err(e) if e.is_canceled() => {
                // Give the connection task a moment to record why it ended.
                let mut cause = None;
                for _ in 0..50 {
                    cause = conn_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if cause.is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, cause))
            }
            Err(e) => Err((e, None)),
        };
        let resp = resp.map_err(|(e, cause)| {
            let mut why = describe_hyper(&e);
            let parse = match cause {
                Some((parse, c)) => {
                    why = c;
                    parse
                }
                None => e.is_parse(),
            };
            if parse || why.contains("unexpected message") {
                // Bytes that are not an HTTP answer (perhaps sent before the request was
                // even written): something else listens there.
                return Error::Protocol(format!(
                    "the server at {} does not answer in HTTP ({why}): it is not a Docker engine; check -H, DOCKER_HOST or the Docker context",
                    self.settings.host
                ));
            }
            if why.contains("closed before message completed") {
                why.push_str(": the engine stopped, restarted or dropped the connection before answering; check that it runs and see its log");
            }
            // With TLS 1.3 the engine's verdict on our certificate arrives only now.
            if self.settings.tls.is_some() && why.contains("alert") {
                why.push_str(" (the engine refused this client's TLS certificate: check cert.pem and key.pem)");
            }
            Error::Http(why)
        })?;
        let (parts, body) = resp.into_parts();
        let streaming = Streaming {
            body,
            idle,
            _conn: guard,
        };
        if !parts.status.is_success() {
            let text = streaming.collect().await.unwrap_or_default();
            return Err(Error::Api {
                status: parts.status.as_u16(),
                message: match error_message(&text) {
                    // Podman answers a query it cannot decode with an empty 400.
                    m if m == NO_MESSAGE && self.podman => format!(
                        "{NO_MESSAGE}; Podman answers a request it cannot decode this way: check the build options"
                    ),
                    m => m,
                },
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
    /// The next piece of the body, or `None` at its end; the idle timeout and `deadline`
    /// bound the wait.
    async fn chunk_until(&mut self, deadline: Option<Instant>) -> Result<Option<Bytes>, Error> {
        loop {
            let idle_at = self.idle.map(|d| Instant::now() + d);
            let frame = match earliest(deadline, idle_at) {
                None => self.body.frame().await,
                Some(wake) => match tokio::time::timeout_at(wake, self.body.frame()).await {
                    Ok(f) => f,
                    Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                        return Err(overall_timeout(None))
                    }
                    Err(_) => return Err(idle_timeout(self.idle.unwrap_or_default())),
                },
            };
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(Error::Http(format!(
                        "{}: the engine stopped, restarted or dropped the connection in the middle of its answer; check that it runs and see its log",
                        describe_hyper(&e)
                    )))
                }
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
        while let Some(c) = self.chunk_until(None).await? {
            out.extend_from_slice(&c);
            if out.len() > 1 << 20 {
                break;
            }
        }
        Ok(out)
    }

    /// Decodes the body as a message stream, handing each message to `on` as it arrives,
    /// until the stream ends or `deadline` passes.
    async fn messages(
        mut self,
        deadline: Option<Instant>,
        mut on: impl FnMut(Message) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut decoder = stream::Decoder::new();
        while let Some(chunk) = self.chunk_until(deadline).await? {
            decoder.push(&chunk);
            while let Some(m) = decoder.next_message() {
                on(m?)?;
            }
        }
        match decoder.finish() {
            // A last line without a newline is fine if it is a whole message; if it is not,
            // the stream was cut in the middle of one.
            Some(Err(e)) => Err(Error::Protocol(format!(
                "the engine's stream ended in the middle of a message ({} bytes, starting {:?}): the connection was cut or the engine stopped",
                e.len, e.start
            ))),
            Some(Ok(m)) => on(m),
            None => Ok(()),
        }
    }
}

/// When the request body last handed a chunk to the socket (or when the request started).
struct Activity {
    start: Instant,
    millis: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.millis.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.millis.load(Ordering::Relaxed))
    }
}

/// A request body that records when it last produced data, for the idle timeout.
struct Watched<B> {
    inner: B,
    activity: Arc<Activity>,
}

impl<B: hyper::body::Body<Data = Bytes> + Unpin> hyper::body::Body for Watched<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, B::Error>>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if r.is_ready() {
            self.activity.touch();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn idle_timeout(d: Duration) -> Error {
    Error::Timeout(format!(
        "the engine sent nothing for {} s (the idle timeout): it may be stuck; raise the idle timeout if a build step is silent for longer",
        d.as_secs_f32()
    ))
}

fn overall_timeout(d: Option<Duration>) -> Error {
    Error::Timeout(match d {
        Some(d) => format!(
            "the request did not finish within {} s (the overall timeout): raise the timeout or check the engine",
            d.as_secs_f32()
        ),
        None => "the request did not finish within the overall timeout: raise the timeout or check the engine".into(),
    })
}

/// A refused `GET /_ping` means whatever listens is not a Docker engine (Docker and Podman
/// answer it without authentication, even when busy); say so instead of quoting its 404 page.
fn not_an_engine(e: Error, host: &Host) -> Error {
    match e {
        Error::Api { status, message } => {
            let said: String = message
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .chars()
                .take(80)
                .collect();
            Error::Protocol(format!(
                "the server at {host} answered GET /_ping with HTTP {status} ({said}): it is not a Docker engine; check -H, DOCKER_HOST or the Docker context"
            ))
        }
        e => e,
    }
}

/// Checks a pinned API version (`DOCKER_API_VERSION`) against dbuild's range and the engine's
/// own version, so a mismatch fails here with a clear message instead of in the first request.
fn check_pinned(
    pinned: ApiVersion,
    theirs: Option<ApiVersion>,
    host: &Host,
) -> Result<ApiVersion, Error> {
    if pinned < MIN_API_VERSION || pinned > MAX_API_VERSION {
        return Err(Error::Version(format!(
            "the pinned API version {pinned} (DOCKER_API_VERSION) is outside what dbuild speaks, {MIN_API_VERSION} to {MAX_API_VERSION}: unset it or pick a version in that range"
        )));
    }
    match theirs {
        Some(v) if pinned > v => Err(Error::Version(format!(
            "the pinned API version {pinned} (DOCKER_API_VERSION) is newer than the engine at {host} speaks ({v}): unset DOCKER_API_VERSION or set it to {v} or lower"
        ))),
        _ => Ok(pinned),
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

/// What an error without a body says.
const NO_MESSAGE: &str = "(no message)";

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
                NO_MESSAGE.into()
            } else {
                t.chars().take(300).collect()
            }
        }
    }
}

/// Percent-encodes an image name for a path segment, keeping `/` and `:` as the CLI does.
pub(crate) fn path_escape(s: &str) -> String {
    percent_escape(s, b"-._~/:@")
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub(crate) fn query_escape(s: &str) -> String {
    percent_escape(s, b"-._~")
}

/// `%XX` for every byte that is neither alphanumeric nor in `keep`.
fn percent_escape(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
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
