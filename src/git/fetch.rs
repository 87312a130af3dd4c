//! The `git://` transport: protocol v2 `ls-refs` + a depth-1 `fetch`, pack kept in memory.
//!
//! gix's high-level fetch always writes the received pack to disk, which dbuild must never do.
//! So this module drives the protocol itself on top of gix-transport's blocking connection:
//! it lists only the refs it needs, asks for one commit with `deepen 1`, demultiplexes the
//! side-band pack and hands the stream to [`super::pack::read_pack`].
//!
//! What every transport shares also lives here: ref resolution ([`want_for`]), the [`Session`]
//! a transport offers (`ls-refs`, `fetch`), [`Reconnecting`] for connection-oriented transports
//! (git daemon, ssh), and [`fetch_commit`], which falls back to deepening the history when a
//! server refuses a commit by id.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use gix_hash::ObjectId;
use gix_transport::bstr::BString;
use gix_transport::client::blocking_io::{
    ExtendedBufRead, ReadlineBufRead, Transport, TransportV2Ext,
};
use gix_transport::client::git::blocking_io::Connection;
use gix_transport::client::git::ConnectMode;
use gix_transport::client::{Capabilities, MessageKind};
use gix_transport::packetline::PacketLineRef;
use gix_transport::{Protocol, Service};

use super::pack::{chain, read_pack};
use super::{odb, Address, Error};

/// The git daemon's registered port.
const DEFAULT_PORT: u16 = 9418;
/// How long to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any single read or write may stall before the fetch is abandoned.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// One advertised ref, as `ls-refs` reports it.
#[derive(Debug)]
pub(crate) struct RemoteRef {
    name: BString,
    /// What the ref points to (an annotated tag's own id for tags).
    id: ObjectId,
    /// For annotated tags: the object the tag points to.
    peeled: Option<ObjectId>,
}

/// Fetches the commit `addr` names from a git daemon and returns its whole tree.
pub(crate) fn fetch_daemon(addr: &Address) -> Result<odb::Resolved, Error> {
    let url = addr.redacted_url();
    let fail = |why: String| Error::Fetch {
        url: url.clone(),
        why,
    };
    let host = addr
        .host()
        .ok_or_else(|| fail("the address has no host".into()))?;
    let port = addr.port().unwrap_or(DEFAULT_PORT);
    // The daemon reads `host=` as `name[:port]`, so IPv6 literals need their brackets back.
    let virtual_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let mut session = Reconnecting::new(|| {
        let stream = connect(host, port)?;
        let read = io::BufReader::new(QuickAck(
            stream
                .try_clone()
                .map_err(|e| format!("cannot use the connection: {e}"))?,
        ));
        // Buffered: gix writes a request one pkt-line piece at a time and flushes at its end,
        // so each request leaves in one segment instead of twenty.
        let write = io::BufWriter::new(
            stream
                .try_clone()
                .map_err(|e| format!("cannot use the connection: {e}"))?,
        );
        Ok(Connection::new(
            read,
            write,
            Protocol::V2,
            addr.path(),
            Some((virtual_host.clone(), addr.port())),
            ConnectMode::Daemon,
            false,
        ))
    });
    let shallow = session.shallow().map_err(&fail)?;
    let serves_any = session.serves_any_commit();
    let want = want_for(addr, &url, |prefixes| session.ls_refs(prefixes))?;
    let objects = fetch_commit(&mut session, want, shallow, serves_any, &url)?;
    finish(addr, objects, want)
}

/// The read half of a git daemon connection, asking the kernel before each read to acknowledge
/// at once what arrives.
///
/// Why: `upload-pack` writes its answer one pkt-line per `write`, and with Nagle's algorithm on
/// its socket every small write after the first waits for our ACK, which Linux delays by up to
/// 40 ms once the connection looks interactive. That stall came once per fetch (between
/// `shallow-info` and its `shallow` line) and was a third of a small fetch's time.
struct QuickAck(TcpStream);

impl io::Read for QuickAck {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Not sticky: the kernel leaves quick-ACK mode by itself, so it is asked for every time.
        let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        self.0.read(buf)
    }
}

/// One repository conversation, whatever the transport: list refs, fetch a pack.
pub(crate) trait Session {
    /// `ls-refs` restricted to `prefixes`.
    fn ls_refs(&mut self, prefixes: &[String]) -> Result<Vec<RemoteRef>, String>;
    /// `fetch` of `wants`, `deepen N` when given, decoded into memory.
    fn fetch(&mut self, wants: &[ObjectId], deepen: Option<u32>) -> Result<odb::MemoryOdb, String>;
}

/// A connection-oriented transport (git daemon, ssh) that connects again, handshake
/// included, when its connection has been used up by a fetch or broken by an error.
pub(crate) struct Reconnecting<T, F> {
    connect: F,
    conn: Option<T>,
    capabilities: Option<Capabilities>,
}

impl<T: Transport, F: FnMut() -> Result<T, String>> Reconnecting<T, F> {
    pub(crate) fn new(connect: F) -> Self {
        Reconnecting {
            connect,
            conn: None,
            capabilities: None,
        }
    }

    /// The open connection, opened (and the handshake done) if needed.
    fn conn(&mut self) -> Result<&mut T, String> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => {
                // A busy server (git daemon listens with a backlog of 5) may reset a new
                // connection before answering; nothing was exchanged yet, so try again.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let mut c = (self.connect)()?;
                    match handshake(&mut c) {
                        Ok(caps) => {
                            self.capabilities.get_or_insert(caps);
                            break c;
                        }
                        Err(e) if attempt < HANDSHAKE_ATTEMPTS && e.contains("reset by peer") => {
                            std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// Whether the server is git's own upload-pack (see [`agent_serves_any_commit`]); call
    /// after [`Self::shallow`].
    pub(crate) fn serves_any_commit(&self) -> bool {
        self.capabilities
            .as_ref()
            .and_then(|c| c.capability("agent"))
            .and_then(|a| a.value().map(|v| agent_serves_any_commit(&v.to_string())))
            .unwrap_or(false)
    }

    /// Whether the server can send shallow packs (connects if needed).
    pub(crate) fn shallow(&mut self) -> Result<bool, String> {
        self.conn()?;
        Ok(self
            .capabilities
            .as_ref()
            .and_then(|c| c.capability("fetch"))
            .and_then(|c| c.supports("shallow"))
            .unwrap_or(false))
    }
}

impl<T: Transport, F: FnMut() -> Result<T, String>> Session for Reconnecting<T, F> {
    fn ls_refs(&mut self, prefixes: &[String]) -> Result<Vec<RemoteRef>, String> {
        let r = ls_refs(self.conn()?, prefixes);
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    fn fetch(&mut self, wants: &[ObjectId], deepen: Option<u32>) -> Result<odb::MemoryOdb, String> {
        let r = fetch_pack(self.conn()?, wants, deepen);
        // After a pack (or an error) the server is done with this connection.
        self.conn = None;
        r
    }
}

/// Whether the `agent` capability names git's own upload-pack (git 2.x), whose protocol v2
/// serves any object it has: then "not our ref" means the commit is not there, and deepening
/// the history to look for it would only download the whole repository in vain.
pub(crate) fn agent_serves_any_commit(agent: &str) -> bool {
    agent.starts_with("git/2.")
}

/// Depths tried, in order, when a server refuses to send a commit by id; `None` is the
/// whole history.
const DEEPEN_STEPS: [Option<u32>; 3] = [Some(64), Some(1024), None];

/// Fetches the commit `want`: directly (depth 1 when `shallow`), or, if a server other than
/// git's own (`serves_any` false) refuses a commit that no ref points to ("not our ref"), by
/// fetching every branch and tag with a growing depth until the commit is among the objects.
pub(crate) fn fetch_commit(
    session: &mut impl Session,
    want: ObjectId,
    shallow: bool,
    serves_any: bool,
    url: &str,
) -> Result<odb::MemoryOdb, Error> {
    let why = match session.fetch(&[want], shallow.then_some(1)) {
        Ok(objects) => return Ok(objects),
        Err(why) if why.contains("not our ref") && !serves_any => why,
        Err(why) => return Err(pack_error(url, want, why)),
    };
    let fail = |why: String| Error::Fetch {
        url: url.to_owned(),
        why,
    };
    let refs = session
        .ls_refs(&["refs/heads/".into(), "refs/tags/".into()])
        .map_err(&fail)?;
    let mut tips: Vec<ObjectId> = refs.iter().map(|r| r.peeled.unwrap_or(r.id)).collect();
    tips.sort();
    tips.dedup();
    if tips.is_empty() {
        return Err(pack_error(url, want, why));
    }
    let steps: &[Option<u32>] = if shallow { &DEEPEN_STEPS } else { &[None] };
    for depth in steps {
        let objects = session.fetch(&tips, *depth).map_err(&fail)?;
        if objects.contains(&want) {
            return Ok(objects);
        }
    }
    Err(fail(format!(
        "commit {want} is not in the history of any branch or tag of the repository, and the \
         server refuses to send it by id: check the commit id"
    )))
}

/// The commit to ask for: the full id after `#`, or what the named ref (or HEAD) points to,
/// found with `list` (an `ls-refs` restricted to the given prefixes).
pub(crate) fn want_for(
    addr: &Address,
    url: &str,
    list: impl FnOnce(&[String]) -> Result<Vec<RemoteRef>, String>,
) -> Result<ObjectId, Error> {
    match addr.reference.as_deref() {
        Some(r) if is_full_hex_id(r) => {
            ObjectId::from_hex(r.as_bytes()).map_err(|e| Error::Fetch {
                url: url.to_owned(),
                why: format!("bad commit id: {e}"),
            })
        }
        reference => resolve_ref(list, reference, url),
    }
}

/// Turns a failed pack request into an error a person can act on.
pub(crate) fn pack_error(url: &str, want: ObjectId, why: String) -> Error {
    let why = if why.contains("not our ref") {
        // Protocol v2 servers (git's upload-pack) serve any object they have, so in practice
        // this means the commit is not there; older servers also refuse non-tip commits.
        format!(
            "the server does not have commit {want} or refuses to send it (servers may only \
             serve commits a branch or tag points to unless uploadpack.allowReachableSHA1InWant \
             or allowAnySHA1InWant is set): check the commit id, or name a branch or tag"
        )
    } else {
        why
    };
    Error::Fetch {
        url: url.to_owned(),
        why,
    }
}

/// Reads the commit's whole tree out of the fetched objects, then drops them.
pub(crate) fn finish(
    addr: &Address,
    objects: odb::MemoryOdb,
    want: ObjectId,
) -> Result<odb::Resolved, Error> {
    odb::checkout(&objects, want).map_err(|why| Error::Fetch {
        url: addr.redacted_url(),
        why,
    })
}

/// Whether `s` is a full SHA-1 commit id (what can be asked for directly with `want`).
pub(crate) fn is_full_hex_id(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Opens a TCP connection, trying every address the host resolves to.
pub(crate) fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("unknown host {host:?}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("unknown host {host:?}: it resolves to no address"));
    }
    let mut last = None;
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT) {
            Ok(s) => {
                // Timeouts keep a silent or stalled server from hanging the build forever.
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                // Requests are small and answered at once: Nagle's algorithm plus the server's
                // delayed ACK held each one back by 40 ms (docs/performance.md).
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no address"));
    Err(match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("connection refused by {host}:{port}: is the git server running, and is the port right?")
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("timed out connecting to {host}:{port}")
        }
        _ => format!("cannot connect to {host}:{port}: {e}"),
    })
}

/// How often a handshake reset by the server is tried before giving up.
const HANDSHAKE_ATTEMPTS: u32 = 4;

/// Performs the protocol v2 handshake and returns the server's capabilities.
pub(crate) fn handshake<T: Transport>(conn: &mut T) -> Result<Capabilities, String> {
    let resp = conn
        .handshake(Service::UploadPack, &[])
        .map_err(|e| handshake_error(&e))?;
    if resp.actual_protocol != Protocol::V2 {
        return Err(format!(
            "the server only speaks git protocol {:?}; dbuild needs protocol v2 (git 2.18 or newer on the server)",
            resp.actual_protocol
        ));
    }
    Ok(resp.capabilities)
}

/// Turns a handshake failure into a message a person can act on.
fn handshake_error(e: &gix_transport::client::Error) -> String {
    let text = chain(e);
    if text.contains("not exported")
        || text.contains("does not appear to be a git repository")
        || text.contains("no such repository")
    {
        "repository not found (or not exported by the git daemon): check the path in the URL".into()
    } else if let Some(msg) = server_error_text(&text) {
        format!("the server refused the connection: {msg}")
    } else if text.contains("end of file") || text.contains("EOF") || text.contains("eof") {
        "the server closed the connection during the handshake: the repository may not exist or may not be exported"
            .into()
    } else {
        format!("handshake failed: {text}")
    }
}

/// The text of an `ERR` packet line inside an error message, if there is one.
pub(crate) fn server_error_text(text: &str) -> Option<&str> {
    text.find("ERR ").map(|i| text[i + 4..].trim())
}

/// Lists the refs that could match `reference` and picks the one git would.
///
/// No reference means the remote's `HEAD`, i.e. its default branch (like BuildKit; never a
/// hard-coded `master`). A name is tried as a full ref, then as `refs/<name>`, a tag, and a
/// branch (git's own order, so a tag wins over a branch of the same name).
fn resolve_ref(
    list: impl FnOnce(&[String]) -> Result<Vec<RemoteRef>, String>,
    reference: Option<&str>,
    url: &str,
) -> Result<ObjectId, Error> {
    let fail = |why: String| Error::Fetch {
        url: url.to_owned(),
        why,
    };
    let candidates: Vec<String> = match reference {
        None => vec!["HEAD".into()],
        Some(r) if r.starts_with("refs/") || r == "HEAD" => vec![r.to_owned()],
        Some(r) => vec![
            format!("refs/{r}"),
            format!("refs/tags/{r}"),
            format!("refs/heads/{r}"),
        ],
    };
    let refs = list(&candidates).map_err(&fail)?;
    for c in &candidates {
        if let Some(r) = refs.iter().find(|r| r.name == c.as_bytes()) {
            return Ok(r.peeled.unwrap_or(r.id));
        }
    }
    match reference {
        None => Err(fail(
            "the repository is empty: its HEAD (default branch) has no commits".into(),
        )),
        Some(r) => {
            let hint = if r.len() < 40 && r.len() >= 4 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
                " (abbreviated commit ids cannot be fetched: use the full 40-character id)"
            } else {
                ""
            };
            Err(Error::RefNotFound {
                reference: format!("{r}{hint}"),
                url: url.to_owned(),
            })
        }
    }
}

/// Runs `ls-refs` restricted to `prefixes` (the server lists refs starting with any of them).
pub(crate) fn ls_refs<T: Transport>(
    conn: &mut T,
    prefixes: &[String],
) -> Result<Vec<RemoteRef>, String> {
    let mut args: Vec<BString> = vec!["symrefs".into(), "peel".into()];
    args.extend(
        prefixes
            .iter()
            .map(|p| BString::from(format!("ref-prefix {p}"))),
    );
    let mut reader = conn
        .invoke(
            "ls-refs",
            std::iter::empty::<(&str, Option<&str>)>(),
            Some(args.into_iter()),
            false,
        )
        .map_err(|e| format!("listing refs failed: {}", chain(&e)))?;
    let mut refs = Vec::new();
    while let Some(line) = reader.readline() {
        let line = line
            .map_err(|e| format!("listing refs failed: {e}"))?
            .map_err(|e| format!("listing refs failed: {}", chain(&e)))?;
        let PacketLineRef::Data(data) = line else {
            break;
        };
        let data = data.strip_suffix(b"\n").unwrap_or(data);
        if let Some(msg) = data.strip_prefix(b"ERR ") {
            return Err(format!(
                "the server refused to list refs: {}",
                String::from_utf8_lossy(msg)
            ));
        }
        refs.push(parse_ref_line(data)?);
    }
    Ok(refs)
}

/// Parses `<oid> <name>[ symref-target:<ref>][ peeled:<oid>]`.
pub(crate) fn parse_ref_line(line: &[u8]) -> Result<RemoteRef, String> {
    let bad = || format!("malformed ls-refs line {:?}", String::from_utf8_lossy(line));
    let mut fields = line.split(|b| *b == b' ');
    let id = fields.next().ok_or_else(bad)?;
    let name = fields.next().ok_or_else(bad)?;
    let id = ObjectId::from_hex(id).map_err(|_| bad())?;
    let mut r = RemoteRef {
        name: name.into(),
        id,
        peeled: None,
    };
    // `symref-target:` is ignored: HEAD's own id already is the default branch's commit.
    for attr in fields {
        if let Some(p) = attr.strip_prefix(b"peeled:") {
            r.peeled = Some(ObjectId::from_hex(p).map_err(|_| bad())?);
        }
    }
    Ok(r)
}

/// Asks for `wants` (with `deepen N` when given), reads the response sections and decodes the
/// pack into memory.
pub(crate) fn fetch_pack<T: Transport>(
    conn: &mut T,
    wants: &[ObjectId],
    deepen: Option<u32>,
) -> Result<odb::MemoryOdb, String> {
    let mut args: Vec<BString> = vec!["no-progress".into(), "ofs-delta".into()];
    args.extend(wants.iter().map(|w| BString::from(format!("want {w}"))));
    if let Some(n) = deepen {
        args.push(format!("deepen {n}").into());
    }
    // We have nothing, so there is nothing to negotiate.
    args.push("done".into());
    let mut reader = conn
        .invoke(
            "fetch",
            std::iter::empty::<(&str, Option<&str>)>(),
            Some(args.into_iter()),
            false,
        )
        .map_err(|e| format!("requesting the pack failed: {}", chain(&e)))?;

    // Sections (acknowledgments, shallow-info, wanted-refs, packfile-uris) are separated by
    // delimiter packets; only "packfile" matters, and it is always last.
    loop {
        let header = match reader.readline() {
            Some(line) => {
                let line = line
                    .map_err(|e| format!("reading the server's response failed: {e}"))?
                    .map_err(|e| server_error(&chain(&e)))?;
                match line {
                    PacketLineRef::Data(d) => Some(d.strip_suffix(b"\n").unwrap_or(d).to_vec()),
                    // A section ended; the next line is the next section's header.
                    PacketLineRef::Delimiter => continue,
                    PacketLineRef::Flush | PacketLineRef::ResponseEnd => {
                        return Err("the server ended its response without sending a pack".into());
                    }
                }
            }
            None => None,
        };
        match header {
            Some(h) if h == b"packfile" => break,
            Some(h) if h.starts_with(b"ERR ") => {
                return Err(server_error(&String::from_utf8_lossy(&h)));
            }
            // Any other section header or section line: skip until the next delimiter.
            Some(_) => continue,
            None => match reader.stopped_at() {
                Some(MessageKind::Delimiter) => reader.reset(Protocol::V2),
                _ => return Err("the server ended its response without sending a pack".into()),
            },
        }
    }

    // From here on every packet carries a side-band byte: 1 = pack data, 2 = progress,
    // 3 = fatal error. Setting a handler is what makes the reader demultiplex them.
    let server_err = Rc::new(RefCell::new(None::<String>));
    let sink = Rc::clone(&server_err);
    reader.set_progress_handler(Some(Box::new(move |is_error: bool, text: &[u8]| {
        if is_error {
            *sink.borrow_mut() = Some(String::from_utf8_lossy(text).trim().to_owned());
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })));
    let result = read_pack(&mut reader);
    let server_err = server_err.borrow_mut().take();
    match (result, server_err) {
        (_, Some(msg)) => Err(format!("the server failed while sending the pack: {msg}")),
        (r, None) => r,
    }
}

/// Formats an error the server reported (`ERR …`), keeping only its message.
fn server_error(text: &str) -> String {
    match server_error_text(text) {
        Some(msg) => format!("the server reported an error: {msg}"),
        None => format!("reading the server's response failed: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_lines() {
        let id = "1111111111111111111111111111111111111111";
        let p = "2222222222222222222222222222222222222222";
        let r =
            parse_ref_line(format!("{id} HEAD symref-target:refs/heads/main").as_bytes()).unwrap();
        assert_eq!(r.name, "HEAD");
        assert_eq!(r.id.to_string(), id);
        let r = parse_ref_line(format!("{id} refs/tags/v1 peeled:{p}").as_bytes()).unwrap();
        assert_eq!(r.peeled.unwrap().to_string(), p);
        for bad in ["", "zz refs/heads/x", id, &format!("{id} x peeled:q")] {
            assert!(parse_ref_line(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hex_ids() {
        assert!(is_full_hex_id("0123456789abcdef0123456789ABCDEF01234567"));
        assert!(!is_full_hex_id("0123456789abcdef"));
        assert!(!is_full_hex_id("g123456789abcdef0123456789abcdef01234567"));
    }
}
