//! A FAULT-INJECTING PROXY for tests: it sits in front of a real service (the engine's unix
//! socket, the git daemon's TCP port) and passes bytes through until told to break something
//! no real component breaks on demand: cut a connection at a chosen byte, end a chunked body
//! cleanly in the middle of a JSON message, stall, rewrite the engine's version header, or
//! "die" (close every connection and stop listening) and later "restart".
//!
//! It is never a stand-in for the service: every byte it forwards comes from the real one.
//! Include it with `#[path = "common/fault_proxy.rs"] mod fault_proxy;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a connection whose first request bytes contain `matching`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Forward this many bytes of the answer (head included), then close both sides.
    CutAnswerAt(u64),
    /// Forward the answer's head and this many bytes of its chunked body, then end the body
    /// properly (`0\r\n\r\n`): a well-formed HTTP answer whose last message is torn.
    TruncateChunkedBodyAt(u64),
    /// Forward this many bytes of the answer, then forward nothing more (keep the connection).
    StallAnswerAfter(u64),
    /// Forward this many bytes of the request, then stop reading it (the client's writes block).
    StallRequestAfter(u64),
    /// Replace these bytes in the answer with others of the same length.
    Rewrite(Vec<u8>, Vec<u8>),
}

/// Where the proxy listens and where it forwards to.
#[derive(Clone, Debug)]
pub enum Addr {
    Unix(PathBuf),
    Tcp(String),
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn connect(a: &Addr) -> std::io::Result<Conn> {
        Ok(match a {
            Addr::Unix(p) => Conn::Unix(UnixStream::connect(p)?),
            Addr::Tcp(h) => Conn::Tcp(TcpStream::connect(h)?),
        })
    }
    fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }
    fn shutdown(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(b),
            Conn::Tcp(s) => s.read(b),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(b),
            Conn::Tcp(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Shared {
    upstream: Addr,
    matching: Vec<u8>,
    fault: Mutex<Fault>,
    open: Mutex<Vec<Conn>>,
    dead: AtomicBool,
    /// Set once a fault has been applied (the cut made, the stall begun).
    fired: AtomicBool,
    /// Answer bytes forwarded on matching connections.
    answered: AtomicU64,
}

/// A running proxy. Dropping it stops it and removes its socket.
pub struct FaultProxy {
    pub listen: Addr,
    shared: Arc<Shared>,
    dir: Option<PathBuf>,
}

impl FaultProxy {
    /// A proxy on a fresh unix socket in front of `upstream`, applying `fault` to connections
    /// whose request starts with bytes containing `matching` (for example `/build?`).
    pub fn unix(upstream: Addr, matching: &str, fault: Fault) -> FaultProxy {
        let dir = std::env::temp_dir().join(format!(
            "dbuild-fault-proxy-{}-{}",
            std::process::id(),
            super::common::unique("p")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let listen = Addr::Unix(dir.join("engine.sock"));
        let p = FaultProxy {
            listen,
            shared: Arc::new(Shared {
                upstream,
                matching: matching.as_bytes().to_vec(),
                fault: Mutex::new(fault),
                open: Mutex::new(Vec::new()),
                dead: AtomicBool::new(false),
                fired: AtomicBool::new(false),
                answered: AtomicU64::new(0),
            }),
            dir: Some(dir),
        };
        p.start();
        p
    }

    /// A proxy on a free 127.0.0.1 port in front of `upstream`.
    pub fn tcp(upstream: Addr, matching: &str, fault: Fault) -> FaultProxy {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = FaultProxy {
            listen: Addr::Tcp(format!("127.0.0.1:{port}")),
            shared: Arc::new(Shared {
                upstream,
                matching: matching.as_bytes().to_vec(),
                fault: Mutex::new(fault),
                open: Mutex::new(Vec::new()),
                dead: AtomicBool::new(false),
                fired: AtomicBool::new(false),
                answered: AtomicU64::new(0),
            }),
            dir: None,
        };
        p.start();
        p
    }

    /// `-H` value for a unix proxy.
    pub fn docker_host(&self) -> String {
        match &self.listen {
            Addr::Unix(p) => format!("unix://{}", p.display()),
            Addr::Tcp(h) => format!("tcp://{h}"),
        }
    }

    /// Whether the fault has been applied.
    pub fn fired(&self) -> bool {
        self.shared.fired.load(Ordering::SeqCst)
    }

    /// Answer bytes forwarded so far on matching connections.
    pub fn answered(&self) -> u64 {
        self.shared.answered.load(Ordering::SeqCst)
    }

    /// Waits (up to `limit`) until the fault has been applied.
    pub fn wait_fired(&self, limit: Duration) -> bool {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if self.fired() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The engine "dies": every open connection is closed and the socket stops answering.
    pub fn kill(&self) {
        self.shared.dead.store(true, Ordering::SeqCst);
        for c in self.shared.open.lock().unwrap().drain(..) {
            c.shutdown();
        }
        if let Addr::Unix(p) = &self.listen {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The engine "restarts": the socket answers again, passing everything through.
    pub fn restart(&self) {
        *self.shared.fault.lock().unwrap() = Fault::None;
        self.shared.dead.store(false, Ordering::SeqCst);
        self.start();
    }

    fn start(&self) {
        let shared = self.shared.clone();
        match &self.listen {
            Addr::Unix(p) => {
                let l = UnixListener::bind(p).unwrap();
                std::thread::spawn(move || {
                    for s in l.incoming() {
                        if shared.dead.load(Ordering::SeqCst) {
                            return;
                        }
                        if let Ok(s) = s {
                            serve(shared.clone(), Conn::Unix(s));
                        }
                    }
                });
            }
            Addr::Tcp(h) => {
                let l = TcpListener::bind(h).unwrap();
                std::thread::spawn(move || {
                    for s in l.incoming() {
                        if shared.dead.load(Ordering::SeqCst) {
                            return;
                        }
                        if let Ok(s) = s {
                            serve(shared.clone(), Conn::Tcp(s));
                        }
                    }
                });
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.kill();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn serve(shared: Arc<Shared>, client: Conn) {
    let Ok(up) = Conn::connect(&shared.upstream) else {
        client.shutdown();
        return;
    };
    {
        let mut open = shared.open.lock().unwrap();
        open.push(client.try_clone().unwrap());
        open.push(up.try_clone().unwrap());
    }
    let matched = Arc::new(AtomicBool::new(false));
    let decided = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    // Request direction: note whether this connection is one to break, then copy.
    {
        let shared = shared.clone();
        let (mut from, mut to) = (client.try_clone().unwrap(), up.try_clone().unwrap());
        let matched = matched.clone();
        let decided = decided.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            let mut first = true;
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if first {
                    first = false;
                    let hit = shared.matching.is_empty()
                        || buf[..n]
                            .windows(shared.matching.len().max(1))
                            .any(|w| w == &shared.matching[..]);
                    matched.store(hit, Ordering::SeqCst);
                    *decided.0.lock().unwrap() = true;
                    decided.1.notify_all();
                }
                let mut chunk = &buf[..n];
                if matched.load(Ordering::SeqCst) {
                    if let Fault::StallRequestAfter(limit) = *shared.fault.lock().unwrap() {
                        if sent + n as u64 >= limit {
                            let keep = (limit - sent) as usize;
                            let _ = to.write_all(&chunk[..keep]);
                            shared.fired.store(true, Ordering::SeqCst);
                            // Stop reading: the client's socket buffers fill and it blocks.
                            while !shared.dead.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            return;
                        }
                    }
                }
                sent += n as u64;
                if to.write_all(chunk).is_err() {
                    break;
                }
                chunk = &[];
                let _ = chunk;
            }
            if !first {
                // Half-close: the request is over.
                let _ = match &to {
                    Conn::Unix(s) => s.shutdown(Shutdown::Write),
                    Conn::Tcp(s) => s.shutdown(Shutdown::Write),
                };
            } else {
                *decided.0.lock().unwrap() = true;
                decided.1.notify_all();
            }
        });
    }
    // Answer direction.
    std::thread::spawn(move || {
        let (mut from, mut to) = (up, client);
        {
            let mut d = decided.0.lock().unwrap();
            while !*d {
                d = decided.1.wait(d).unwrap();
            }
        }
        let fault = if matched.load(Ordering::SeqCst) {
            shared.fault.lock().unwrap().clone()
        } else {
            Fault::None
        };
        let r = match fault {
            Fault::TruncateChunkedBodyAt(limit) => {
                truncate_chunked(&shared, &mut from, &mut to, limit)
            }
            f => copy_answer(
                &shared,
                &mut from,
                &mut to,
                &f,
                matched.load(Ordering::SeqCst),
            ),
        };
        let _ = r;
        from.shutdown();
        to.shutdown();
    });
}

fn copy_answer(
    shared: &Shared,
    from: &mut Conn,
    to: &mut Conn,
    fault: &Fault,
    matched: bool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut chunk = buf[..n].to_vec();
        match fault {
            Fault::CutAnswerAt(limit) | Fault::StallAnswerAfter(limit)
                if sent + n as u64 >= *limit =>
            {
                let keep = (*limit - sent) as usize;
                to.write_all(&chunk[..keep])?;
                shared.answered.fetch_add(keep as u64, Ordering::SeqCst);
                shared.fired.store(true, Ordering::SeqCst);
                if let Fault::StallAnswerAfter(_) = fault {
                    while !shared.dead.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                return Ok(());
            }
            Fault::Rewrite(a, b) => {
                if let Some(i) = chunk.windows(a.len()).position(|w| w == &a[..]) {
                    chunk[i..i + a.len()].copy_from_slice(b);
                    shared.fired.store(true, Ordering::SeqCst);
                }
            }
            _ => {}
        }
        to.write_all(&chunk)?;
        sent += n as u64;
        if matched {
            shared.answered.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
}

/// Reads one line ending in `\r\n` (without it).
fn read_line(from: &mut Conn) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if from.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.push(b[0]);
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            return Ok(line);
        }
    }
}

fn truncate_chunked(
    shared: &Shared,
    from: &mut Conn,
    to: &mut Conn,
    limit: u64,
) -> std::io::Result<()> {
    // The head, verbatim.
    loop {
        let line = read_line(from)?;
        to.write_all(&line)?;
        to.write_all(b"\r\n")?;
        if line.is_empty() {
            break;
        }
    }
    let mut body = 0u64;
    loop {
        let size_line = read_line(from)?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&size_line)
                .unwrap_or("0")
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        let mut data = vec![0u8; size + 2];
        from.read_exact(&mut data)?;
        data.truncate(size);
        if size == 0 || body + size as u64 >= limit {
            let keep = (limit - body).min(size as u64) as usize;
            if keep > 0 {
                write!(to, "{keep:x}\r\n")?;
                to.write_all(&data[..keep])?;
                to.write_all(b"\r\n")?;
            }
            to.write_all(b"0\r\n\r\n")?;
            shared.fired.store(true, Ordering::SeqCst);
            // Keep the connection open a moment so the client reads the clean end first.
            std::thread::sleep(Duration::from_millis(500));
            return Ok(());
        }
        write!(to, "{size:x}\r\n")?;
        to.write_all(&data)?;
        to.write_all(b"\r\n")?;
        body += size as u64;
        shared.answered.fetch_add(size as u64, Ordering::SeqCst);
    }
}

/// The real engine's socket, as the test bed runs it.
pub fn engine_socket() -> Addr {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    Addr::Unix(PathBuf::from(
        host.strip_prefix("unix://")
            .filter(|p| Path::new(p).exists())
            .unwrap_or("/var/run/docker.sock"),
    ))
}
