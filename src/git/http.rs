//! Smart HTTP (`http://`, `https://`): git protocol v2 spoken directly over hyper.
//!
//! Why not gix-transport's HTTP layer: its ready backends are curl or reqwest (reqwest plus
//! rustls is about 80 more crates), and its pluggable `Http` trait drags in gix-credentials and
//! a writer/reader pipe design. Smart HTTP v2 is three requests — `GET info/refs` (capabilities),
//! `POST git-upload-pack` with `ls-refs`, then with `fetch` — so this module speaks it over
//! hyper, the HTTP stack dbuild already uses for the engine. A small current-thread runtime
//! owned by the blocking fetch thread drives each request, and the response body is read as a
//! blocking stream straight into the same pack decoder `git://` uses, so the pack is never held
//! whole in memory.
//!
//! Credentials (URL userinfo, or the token in [`super::TOKEN_ENV`]) are sent only after the
//! server asks for them with a 401, never to another host after a redirect, and never appear
//! in errors.

use std::cell::RefCell;
use std::io::{self, Read};
use std::time::Duration;

use bytes::Bytes;
use gix_hash::ObjectId;
use gix_transport::packetline::blocking_io::StreamingPeekableIter;
use gix_transport::packetline::PacketLineRef;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;

use super::fetch::{self, RemoteRef};
use super::pack::read_pack;
use super::{odb, Address, Error, Scheme};
use crate::auth::Secret;

/// How many redirects of the first request are followed (git's curl follows a handful too).
const MAX_REDIRECTS: usize = 5;
/// How long any single request or body read may stall before the fetch is abandoned.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// The content type a smart (not dumb) HTTP server answers `info/refs` with.
const ADVERTISEMENT: &str = "application/x-git-upload-pack-advertisement";
/// The user name sent with [`super::TOKEN_ENV`] when the URL names none (GitHub and Gitea
/// accept any name with a token; others want the account name in the URL).
const TOKEN_USER: &str = "x-access-token";

/// Where requests go: changes only when the first request is redirected.
#[derive(Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    host: String,
    port: Option<u16>,
    /// The repository path, starting with '/', without a trailing '/'.
    path: String,
}

impl Target {
    fn port(&self) -> u16 {
        self.port.unwrap_or(if self.https { 443 } else { 80 })
    }

    /// `host[:port]` as the `Host` header wants it (IPv6 in brackets).
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// The URL, safe to print (a target never holds credentials).
    fn display(&self) -> String {
        format!(
            "{}://{}{}",
            if self.https { "https" } else { "http" },
            self.authority(),
            self.path
        )
    }
}

/// A user name and a password or token.
struct Auth {
    user: String,
    password: Secret,
}

/// One repository's smart HTTP conversation.
struct Client {
    rt: Runtime,
    target: Target,
    /// The host the credentials belong to; they are never sent anywhere else.
    auth_host: String,
    auth: Option<Auth>,
    /// Whether the server asked for credentials (then every later request carries them).
    send_auth: bool,
    #[cfg(feature = "https")]
    tls: Option<tls::Connector>,
}

/// Fetches the commit `addr` names over smart HTTP and returns its whole tree.
pub(crate) fn fetch_http(addr: &Address) -> Result<odb::Resolved, Error> {
    let url = addr.redacted_url();
    let fail = |why: String| Error::Fetch {
        url: url.clone(),
        why,
    };
    let mut client = Client::new(addr).map_err(&fail)?;
    let capabilities = client.capabilities().map_err(&fail)?;
    let shallow = capabilities.iter().any(|c| {
        c.strip_prefix("fetch=")
            .is_some_and(|f| f.split(' ').any(|f| f == "shallow"))
    });
    let serves_any = capabilities.iter().any(|c| {
        c.strip_prefix("agent=")
            .is_some_and(fetch::agent_serves_any_commit)
    });
    let want = fetch::want_for(addr, &url, |prefixes| client.list_refs(prefixes))?;
    let objects = fetch::fetch_commit(&mut client, want, shallow, serves_any, &url)?;
    drop(client);
    fetch::finish(addr, objects, want)
}

impl Client {
    fn new(addr: &Address) -> Result<Client, String> {
        let https = addr.scheme() == Scheme::Https;
        #[cfg(not(feature = "https"))]
        if https {
            return Err(
                "https:// needs dbuild built with the `https` feature (cargo build --features https); \
                 this build only speaks http://"
                    .into(),
            );
        }
        let host = addr.host().ok_or("the address has no host")?.to_owned();
        let password = match addr.password() {
            Some(p) => Some(Secret::new(percent_decode(p))),
            None => std::env::var(super::TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty())
                .map(Secret::new),
        };
        let auth = password.map(|password| Auth {
            user: addr
                .user()
                .map(percent_decode)
                .unwrap_or_else(|| TOKEN_USER.to_owned()),
            password,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
        Ok(Client {
            rt,
            target: Target {
                https,
                host: host.clone(),
                port: addr.port(),
                path: addr.path().trim_end_matches('/').to_owned(),
            },
            auth_host: host,
            auth,
            send_auth: false,
            #[cfg(feature = "https")]
            tls: None,
        })
    }

    /// `GET info/refs`: checks that the server is a smart HTTP server speaking protocol v2
    /// and returns its capability lines.
    fn capabilities(&mut self) -> Result<Vec<String>, String> {
        let resp = self.send(
            Method::GET,
            "/info/refs?service=git-upload-pack",
            Bytes::new(),
        )?;
        let content_type = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if content_type != ADVERTISEMENT {
            return Err(format!(
                "not a smart HTTP git server (it answered info/refs with content type {content_type:?}); \
                 the dumb HTTP protocol is not supported: check the URL"
            ));
        }
        let mut lines = self.lines(resp.into_body());
        let mut first = next_data(&mut lines)?;
        // Servers may start with `# service=git-upload-pack` and a flush (git does not in v2).
        if first
            .as_deref()
            .is_some_and(|l| l.starts_with(b"# service="))
        {
            lines.reset();
            first = next_data(&mut lines)?;
        }
        if first.as_deref() != Some(b"version 2") {
            return Err(
                "the server does not speak git protocol v2 over HTTP; dbuild needs it (git 2.18 or \
                 newer on the server, with protocol.version not forced to 0 or 1)"
                    .into(),
            );
        }
        let mut caps = Vec::new();
        while let Some(line) = next_data(&mut lines)? {
            caps.push(String::from_utf8_lossy(&line).into_owned());
        }
        Ok(caps)
    }

    /// `ls-refs` restricted to `prefixes`.
    fn list_refs(&mut self, prefixes: &[String]) -> Result<Vec<RemoteRef>, String> {
        let mut body = command("ls-refs");
        pkt(&mut body, "symrefs");
        pkt(&mut body, "peel");
        for p in prefixes {
            pkt(&mut body, &format!("ref-prefix {p}"));
        }
        body.extend_from_slice(b"0000");
        let resp = self
            .send(Method::POST, "/git-upload-pack", body.into())
            .map_err(|e| format!("listing refs failed: {e}"))?;
        let mut lines = self.lines(resp.into_body());
        let mut refs = Vec::new();
        while let Some(line) =
            next_data(&mut lines).map_err(|e| format!("listing refs failed: {e}"))?
        {
            if let Some(msg) = line.strip_prefix(b"ERR ") {
                return Err(format!(
                    "the server refused to list refs: {}",
                    String::from_utf8_lossy(msg)
                ));
            }
            refs.push(fetch::parse_ref_line(&line)?);
        }
        Ok(refs)
    }

    /// `fetch` of `wants` (`deepen N` when given), decoding the pack as it streams in.
    fn fetch_pack(
        &mut self,
        wants: &[ObjectId],
        deepen: Option<u32>,
    ) -> Result<odb::MemoryOdb, String> {
        let mut body = command("fetch");
        pkt(&mut body, "no-progress");
        pkt(&mut body, "ofs-delta");
        for want in wants {
            pkt(&mut body, &format!("want {want}"));
        }
        if let Some(n) = deepen {
            pkt(&mut body, &format!("deepen {n}"));
        }
        pkt(&mut body, "done");
        body.extend_from_slice(b"0000");
        let resp = self
            .send(Method::POST, "/git-upload-pack", body.into())
            .map_err(|e| format!("requesting the pack failed: {e}"))?;
        // No delimiters: section boundaries come back as lines and are skipped explicitly.
        let mut lines = StreamingPeekableIter::new(
            BodyReader {
                rt: &self.rt,
                body: resp.into_body(),
                chunk: Bytes::new(),
            },
            &[],
            false,
        );
        loop {
            let line = match lines.read_line() {
                None => return Err("the server ended its response without sending a pack".into()),
                Some(Err(e)) => return Err(format!("reading the server's response failed: {e}")),
                Some(Ok(Err(e))) => return Err(format!("malformed response from the server: {e}")),
                Some(Ok(Ok(line))) => line,
            };
            match line {
                PacketLineRef::Data(d) => {
                    let d = d.strip_suffix(b"\n").unwrap_or(d);
                    if d == b"packfile" {
                        break;
                    }
                    if let Some(msg) = d.strip_prefix(b"ERR ") {
                        return Err(format!(
                            "the server reported an error: {}",
                            String::from_utf8_lossy(msg).trim()
                        ));
                    }
                }
                PacketLineRef::Delimiter => {}
                PacketLineRef::Flush | PacketLineRef::ResponseEnd => {
                    return Err("the server ended its response without sending a pack".into())
                }
            }
        }
        // The pack section: side-band 1 = data, 2 = progress, 3 = fatal error; ends at flush.
        lines.reset_with(&[PacketLineRef::Flush]);
        let server_err = RefCell::new(None::<String>);
        let result = {
            let mut reader = lines.as_read_with_sidebands(|is_error: bool, text: &[u8]| {
                if is_error {
                    *server_err.borrow_mut() =
                        Some(String::from_utf8_lossy(text).trim().to_owned());
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            });
            read_pack(&mut reader)
        };
        match (result, server_err.into_inner()) {
            (_, Some(msg)) => Err(format!("the server failed while sending the pack: {msg}")),
            (r, None) => r,
        }
    }

    /// A packet-line reader over a response body that stops at a flush.
    fn lines(&self, body: Incoming) -> StreamingPeekableIter<BodyReader<'_>> {
        StreamingPeekableIter::new(
            BodyReader {
                rt: &self.rt,
                body,
                chunk: Bytes::new(),
            },
            &[PacketLineRef::Flush],
            false,
        )
    }

    /// Sends one request to `<repository path><suffix>`, following redirects of `GET` and
    /// answering a 401 with the credentials, and returns a successful response.
    fn send(
        &mut self,
        method: Method,
        suffix: &str,
        body: Bytes,
    ) -> Result<Response<Incoming>, String> {
        let mut redirects = 0;
        loop {
            let authorization = match (&self.auth, self.send_auth) {
                (Some(a), true) if self.target.host == self.auth_host => Some(basic(a)),
                _ => None,
            };
            let resp = self.request(&method, suffix, body.clone(), authorization.as_ref())?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            match status {
                StatusCode::UNAUTHORIZED => {
                    let can_auth = self.auth.is_some() && self.target.host == self.auth_host;
                    if can_auth && !self.send_auth {
                        self.send_auth = true;
                        continue;
                    }
                    return Err(if can_auth {
                        "authentication failed (HTTP 401): the server rejected the user name and \
                         password or token; check them"
                            .into()
                    } else {
                        format!(
                            "authentication required (HTTP 401): put the user name in the URL \
                             (https://USER@host/…) and the password or token in ${}",
                            super::TOKEN_ENV
                        )
                    });
                }
                StatusCode::FORBIDDEN => {
                    return Err("access denied (HTTP 403): the credentials are not allowed to read this repository".into())
                }
                StatusCode::NOT_FOUND => {
                    return Err(format!(
                        "repository not found (HTTP 404 for {}): check the path in the URL",
                        self.target.display()
                    ))
                }
                s if s.is_redirection() && method == Method::GET => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(format!("more than {MAX_REDIRECTS} redirects: giving up"));
                    }
                    let location = resp
                        .headers()
                        .get(hyper::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .ok_or_else(|| format!("HTTP {s} without a usable Location header"))?;
                    self.target = redirect_target(&self.target, location, suffix)?;
                }
                s => return Err(format!("the server answered HTTP {s}")),
            }
        }
    }

    /// One request on a fresh connection.
    fn request(
        &mut self,
        method: &Method,
        suffix: &str,
        body: Bytes,
        authorization: Option<&Secret>,
    ) -> Result<Response<Incoming>, String> {
        let target = self.target.clone();
        let std_stream = fetch::connect(&target.host, target.port())?;
        std_stream
            .set_nonblocking(true)
            .map_err(|e| format!("cannot use the connection: {e}"))?;
        let uri = format!("{}{suffix}", percent_encode_path(&target.path));
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(hyper::header::HOST, target.authority())
            .header(
                hyper::header::USER_AGENT,
                concat!("git/dbuild-", env!("CARGO_PKG_VERSION")),
            )
            .header("Git-Protocol", "version=2");
        if *method == Method::POST {
            req = req
                .header(
                    hyper::header::CONTENT_TYPE,
                    "application/x-git-upload-pack-request",
                )
                .header(
                    hyper::header::ACCEPT,
                    "application/x-git-upload-pack-result",
                );
        }
        if let Some(a) = authorization {
            req = req.header(hyper::header::AUTHORIZATION, a.expose());
        }
        let req = req.body(Full::new(body)).map_err(|_| {
            format!(
                "the repository path cannot be sent in an HTTP request: {:?}",
                target.path
            )
        })?;
        #[cfg(feature = "https")]
        let tls = if target.https {
            if self.tls.is_none() {
                self.tls = Some(tls::Connector::new()?);
            }
            self.tls.clone()
        } else {
            None
        };
        let rt = &self.rt;
        let _enter = rt.enter();
        rt.block_on(async move {
            let tcp = tokio::net::TcpStream::from_std(std_stream)
                .map_err(|e| format!("cannot use the connection: {e}"))?;
            #[cfg(feature = "https")]
            if let Some(tls) = tls {
                let stream = tls.connect(&target.host, tcp).await?;
                return send_on(TokioIo::new(stream), req).await;
            }
            send_on(TokioIo::new(tcp), req).await
        })
    }
}

/// Smart HTTP is stateless: every request stands alone.
impl fetch::Session for Client {
    fn ls_refs(&mut self, prefixes: &[String]) -> Result<Vec<RemoteRef>, String> {
        self.list_refs(prefixes)
    }

    fn fetch(&mut self, wants: &[ObjectId], deepen: Option<u32>) -> Result<odb::MemoryOdb, String> {
        self.fetch_pack(wants, deepen)
    }
}

/// Runs one HTTP/1.1 exchange on `io`, the connection driven by a task on the current runtime.
async fn send_on<T>(io: T, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        tokio::spawn(async move {
            // Errors surface through the response or the body; nothing to do here.
            let _ = conn.await;
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("the HTTP request failed: {}", super::pack::chain(&e)))
    };
    tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {}s", IO_TIMEOUT.as_secs()))?
}

/// A response body read as a blocking stream, each frame awaited on the client's runtime.
struct BodyReader<'a> {
    rt: &'a Runtime,
    body: Incoming,
    chunk: Bytes,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            let frame = self
                .rt
                .block_on(async { tokio::time::timeout(IO_TIMEOUT, self.body.frame()).await })
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "the server stopped sending")
                })?;
            match frame {
                None => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.chunk = data;
                    }
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The next data line (without its newline), or `None` at a flush or the end of the body.
fn next_data(lines: &mut StreamingPeekableIter<BodyReader<'_>>) -> Result<Option<Vec<u8>>, String> {
    match lines.read_line() {
        None => Ok(None),
        Some(Err(e)) => Err(format!("reading the server's response failed: {e}")),
        Some(Ok(Err(e))) => Err(format!("malformed response from the server: {e}")),
        Some(Ok(Ok(PacketLineRef::Data(d)))) => {
            Ok(Some(d.strip_suffix(b"\n").unwrap_or(d).to_vec()))
        }
        Some(Ok(Ok(_))) => Ok(None),
    }
}

/// Starts a protocol v2 request body: `command=NAME`, then the delimiter before arguments.
fn command(name: &str) -> Vec<u8> {
    let mut body = Vec::new();
    pkt(&mut body, &format!("command={name}"));
    body.extend_from_slice(b"0001");
    body
}

/// Appends one packet line holding `line` and a newline.
fn pkt(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(format!("{:04x}{line}\n", line.len() + 5).as_bytes());
}

/// `Basic base64(user:password)`, kept in a [`Secret`] so it cannot leak through `Debug`.
fn basic(a: &Auth) -> Secret {
    use base64::Engine as _;
    let raw = format!("{}:{}", a.user, a.password.expose());
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
}

/// Where a redirect of `<path><suffix>` to `location` moves the repository.
fn redirect_target(from: &Target, location: &str, suffix: &str) -> Result<Target, String> {
    let unexpected = || "redirected to an address that is not a git repository".to_owned();
    let (https, hostport, path) = match location.split_once("://") {
        Some((scheme, rest)) => {
            let https = match scheme.to_ascii_lowercase().as_str() {
                "https" => true,
                "http" => false,
                _ => return Err(unexpected()),
            };
            let end = rest.find('/').unwrap_or(rest.len());
            // Any userinfo in the Location is dropped (and never printed).
            let authority = rest[..end]
                .rsplit_once('@')
                .map_or(&rest[..end], |(_, h)| h);
            (https, Some(authority.to_owned()), &rest[end..])
        }
        None if location.starts_with('/') => (from.https, None, location),
        None => return Err(unexpected()),
    };
    if from.https && !https {
        return Err("redirected from https to plain http: refusing".into());
    }
    let (host, port) = match hostport {
        Some(hp) => super::address::split_host_port(&hp)?,
        None => (from.host.clone(), from.port),
    };
    let want_tail = suffix.split('?').next().unwrap_or(suffix);
    let path = path.split('?').next().unwrap_or(path);
    let base = path.strip_suffix(want_tail).ok_or_else(unexpected)?;
    Ok(Target {
        https,
        host,
        port,
        path: percent_decode(base).trim_end_matches('/').to_owned(),
    })
}

/// Encodes a path for a request line (space and other bytes outside RFC 3986's path set).
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (as git does for the user name and password in a URL).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let v = (h * 16 + l) as u8;
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(feature = "https")]
mod tls {
    //! TLS for `https://`: rustls with the ring provider and the Mozilla roots compiled in
    //! (webpki-roots), so no system files are needed in a minimal container. Certificates in
    //! the PEM file named by [`super::super::CA_FILE_ENV`] are trusted too (private CAs).

    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::TlsConnector;

    /// A TLS client configuration, built once per fetch.
    #[derive(Clone)]
    pub(super) struct Connector(TlsConnector);

    impl Connector {
        pub(super) fn new() -> Result<Connector, String> {
            let mut roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let env = super::super::CA_FILE_ENV;
            if let Some(file) = std::env::var_os(env).filter(|f| !f.is_empty()) {
                let shown = std::path::Path::new(&file).display().to_string();
                let certs = CertificateDer::pem_file_iter(&file)
                    .map_err(|e| format!("cannot read ${env} ({shown}): {e}"))?;
                let mut added = 0;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("${env} ({shown}) is not PEM: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("${env} ({shown}) holds a bad certificate: {e}"))?;
                    added += 1;
                }
                if added == 0 {
                    return Err(format!("${env} ({shown}) holds no certificate"));
                }
            }
            // ring rather than aws-lc-rs: pure Rust plus a little assembly, no cmake. rustls
            // deprecates ring's provider only for lacking post-quantum key exchange.
            #[allow(deprecated)]
            let provider = rustls::crypto::ring::default_provider();
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Connector(TlsConnector::from(Arc::new(config))))
        }

        pub(super) async fn connect(
            &self,
            host: &str,
            tcp: tokio::net::TcpStream,
        ) -> Result<TlsStream<tokio::net::TcpStream>, String> {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
            self.0.connect(name, tcp).await.map_err(|e| {
                let hint = if e.to_string().contains("UnknownIssuer") {
                    format!(
                        " (signed by a private CA? name its PEM file in ${})",
                        super::super::CA_FILE_ENV
                    )
                } else {
                    String::new()
                };
                format!("TLS handshake with {host} failed: {e}{hint}")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        Target {
            https: true,
            host: "a.example".into(),
            port: None,
            path: path.into(),
        }
    }

    #[test]
    fn redirects() {
        let s = "/info/refs?service=git-upload-pack";
        let t = redirect_target(
            &target("/r"),
            "/new/r.git/info/refs?service=git-upload-pack",
            s,
        )
        .unwrap();
        assert_eq!(t.display(), "https://a.example/new/r.git");
        let t = redirect_target(
            &target("/r"),
            "https://u:pw@b.example:444/x/info/refs?service=git-upload-pack",
            s,
        )
        .unwrap();
        assert_eq!(t.display(), "https://b.example:444/x");
        assert!(redirect_target(&target("/r"), "http://a.example/r/info/refs", s).is_err());
        assert!(redirect_target(&target("/r"), "https://a.example/login", s).is_err());
        assert!(redirect_target(&target("/r"), "ftp://a.example/r/info/refs", s).is_err());
    }

    #[test]
    fn packet_lines_and_escapes() {
        let mut b = command("ls-refs");
        pkt(&mut b, "peel");
        assert_eq!(b, b"0014command=ls-refs\n00010009peel\n");
        assert_eq!(percent_decode("a%40b%3a%zz%4"), "a@b:%zz%4");
        assert_eq!(percent_decode("%é%"), "%é%");
        assert_eq!(percent_encode_path("/a b/ü"), "/a%20b/%C3%BC");
    }

    #[test]
    fn the_basic_header_is_secret() {
        let a = Auth {
            user: "u".into(),
            password: Secret::new("p"),
        };
        let h = basic(&a);
        assert_eq!(h.expose(), "Basic dTpw");
        assert!(!format!("{h:?}").contains("dTpw"));
    }
}
