//! BuildKit without gRPC: the `moby.buildkit.trace` messages of a `version=2` build, decoded
//! from their protobuf form by hand and rendered like `docker buildx build --progress=plain`.
//!
//! Why by hand: a `StatusResponse` needs four message types and five wire-format rules; a
//! protobuf or gRPC crate would bring far more code than that. Unknown fields are skipped, so
//! newer engines that add fields still decode.

use std::collections::HashMap;

/// A protobuf `google.protobuf.Timestamp`, as nanoseconds since the epoch.
pub type Nanos = i128;

/// One build step (BuildKit's `Vertex`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vertex {
    /// The step's digest, its identity across messages.
    pub digest: String,
    /// What the step is, for example `[2/2] RUN echo hi`.
    pub name: String,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// When it started.
    pub started: Option<Nanos>,
    /// When it completed.
    pub completed: Option<Nanos>,
    /// Why it failed, if it did.
    pub error: String,
}

/// Progress of one part of a step (a layer being exported, a file copied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VertexStatus {
    /// What is progressing, for example a layer digest.
    pub id: String,
    /// The step it belongs to.
    pub vertex: String,
    /// A name for it, if any.
    pub name: String,
    /// Units done.
    pub current: i64,
    /// Units in all (0 when unknown).
    pub total: i64,
    /// When it completed.
    pub completed: Option<Nanos>,
}

/// Output a step printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VertexLog {
    /// The step that printed it.
    pub vertex: String,
    /// When.
    pub timestamp: Option<Nanos>,
    /// 1 for stdout, 2 for stderr.
    pub stream: i64,
    /// The bytes printed.
    pub msg: Vec<u8>,
}

/// One `moby.buildkit.trace` message: news about steps, their progress and their output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusResponse {
    /// Steps that started, finished or failed.
    pub vertexes: Vec<Vertex>,
    /// Progress updates.
    pub statuses: Vec<VertexStatus>,
    /// Output.
    pub logs: Vec<VertexLog>,
}

/// Malformed protobuf.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the engine sent a BuildKit trace that is not a valid StatusResponse: {0}")]
pub struct TraceError(pub &'static str);

/// A protobuf field: its number and value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates the fields of a protobuf message.
struct Fields<'a> {
    buf: &'a [u8],
}

fn varint(buf: &mut &[u8]) -> Result<u64, TraceError> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or(TraceError("truncated varint"))?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(TraceError("varint longer than 10 bytes"))
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Value<'a>), TraceError> {
        let key = varint(&mut self.buf)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut self.buf)?),
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                if self.buf.len() < n {
                    return Err(TraceError("truncated fixed-width field"));
                }
                self.buf = &self.buf[n..];
                Value::Fixed
            }
            2 => {
                let n = varint(&mut self.buf)?;
                let n = usize::try_from(n).map_err(|_| TraceError("length too large"))?;
                if self.buf.len() < n {
                    return Err(TraceError("length beyond the message"));
                }
                let (b, rest) = self.buf.split_at(n);
                self.buf = rest;
                Value::Bytes(b)
            }
            _ => return Err(TraceError("unsupported wire type")),
        };
        Ok((key >> 3, value))
    }
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn timestamp(b: &[u8]) -> Result<Nanos, TraceError> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    for f in fields(b) {
        match f? {
            (1, Value::Varint(v)) => secs = v as i64,
            (2, Value::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    Ok(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

/// Decodes a `StatusResponse` from its protobuf bytes.
pub fn decode(buf: &[u8]) -> Result<StatusResponse, TraceError> {
    let mut out = StatusResponse::default();
    for f in fields(buf) {
        match f? {
            (1, Value::Bytes(b)) => {
                let mut v = Vertex::default();
                for f in fields(b) {
                    match f? {
                        (1, Value::Bytes(x)) => v.digest = string(x),
                        (3, Value::Bytes(x)) => v.name = string(x),
                        (4, Value::Varint(x)) => v.cached = x != 0,
                        (5, Value::Bytes(x)) => v.started = Some(timestamp(x)?),
                        (6, Value::Bytes(x)) => v.completed = Some(timestamp(x)?),
                        (7, Value::Bytes(x)) => v.error = string(x),
                        _ => {}
                    }
                }
                out.vertexes.push(v);
            }
            (2, Value::Bytes(b)) => {
                let mut s = VertexStatus::default();
                for f in fields(b) {
                    match f? {
                        (1, Value::Bytes(x)) => s.id = string(x),
                        (2, Value::Bytes(x)) => s.vertex = string(x),
                        (3, Value::Bytes(x)) => s.name = string(x),
                        (4, Value::Varint(x)) => s.current = x as i64,
                        (5, Value::Varint(x)) => s.total = x as i64,
                        (8, Value::Bytes(x)) => s.completed = Some(timestamp(x)?),
                        _ => {}
                    }
                }
                out.statuses.push(s);
            }
            (3, Value::Bytes(b)) => {
                let mut l = VertexLog::default();
                for f in fields(b) {
                    match f? {
                        (1, Value::Bytes(x)) => l.vertex = string(x),
                        (2, Value::Bytes(x)) => l.timestamp = Some(timestamp(x)?),
                        (3, Value::Varint(x)) => l.stream = x as i64,
                        (4, Value::Bytes(x)) => l.msg = x.to_vec(),
                        _ => {}
                    }
                }
                out.logs.push(l);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Turns trace messages into `--progress=plain` text: `#N [step]` when a step starts, its
/// output as `#N 0.123 line`, then `#N CACHED`, `#N DONE 0.4s` or `#N ERROR: why`.
#[derive(Debug, Default)]
pub struct Printer {
    /// Step numbers, in order of first appearance.
    numbers: HashMap<String, usize>,
    started: HashMap<String, Nanos>,
    finished: HashMap<String, bool>,
    statuses_done: HashMap<(String, String), bool>,
}

fn secs(n: Nanos) -> String {
    format!("{:.1}s", n as f64 / 1e9)
}

impl Printer {
    /// A printer that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn number(&mut self, digest: &str, name: &str, out: &mut String) -> usize {
        if let Some(n) = self.numbers.get(digest) {
            return *n;
        }
        let n = self.numbers.len() + 1;
        self.numbers.insert(digest.to_owned(), n);
        out.push_str(&format!("#{n} {name}\n"));
        n
    }

    /// The text for one trace message (may be empty).
    pub fn render(&mut self, s: &StatusResponse) -> String {
        let mut out = String::new();
        for v in &s.vertexes {
            if v.started.is_none() && !v.cached && v.error.is_empty() {
                continue;
            }
            let n = self.number(&v.digest, &v.name, &mut out);
            if let Some(t) = v.started {
                self.started.entry(v.digest.clone()).or_insert(t);
            }
            if self.finished.get(&v.digest).copied().unwrap_or(false) {
                continue;
            }
            if !v.error.is_empty() {
                out.push_str(&format!("#{n} ERROR: {}\n", v.error));
                self.finished.insert(v.digest.clone(), true);
            } else if v.cached {
                out.push_str(&format!("#{n} CACHED\n"));
                self.finished.insert(v.digest.clone(), true);
            } else if let (Some(a), Some(b)) = (v.started, v.completed) {
                out.push_str(&format!("#{n} DONE {}\n", secs(b - a)));
                self.finished.insert(v.digest.clone(), true);
            }
        }
        for st in &s.statuses {
            let Some(&n) = self.numbers.get(&st.vertex) else {
                continue;
            };
            let key = (st.vertex.clone(), st.id.clone());
            if st.completed.is_some() && !self.statuses_done.contains_key(&key) {
                self.statuses_done.insert(key, true);
                let name = if st.name.is_empty() { &st.id } else { &st.name };
                out.push_str(&format!("#{n} {name} done\n"));
            }
        }
        for l in &s.logs {
            let Some(&n) = self.numbers.get(&l.vertex) else {
                continue;
            };
            let since = match (l.timestamp, self.started.get(&l.vertex)) {
                (Some(t), Some(s)) => format!("{:.3}", (t - s) as f64 / 1e9),
                _ => "0.000".into(),
            };
            let text = String::from_utf8_lossy(&l.msg);
            for line in text.lines() {
                out.push_str(&format!("#{n} {since} {line}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u64, wt: u64, out: &mut Vec<u8>) {
        varint_to(n << 3 | wt, out);
    }

    fn varint_to(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes(n: u64, b: &[u8], out: &mut Vec<u8>) {
        tag(n, 2, out);
        varint_to(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn ts(secs: u64, nanos: u64) -> Vec<u8> {
        let mut t = Vec::new();
        tag(1, 0, &mut t);
        varint_to(secs, &mut t);
        tag(2, 0, &mut t);
        varint_to(nanos, &mut t);
        t
    }

    #[test]
    fn decodes_and_renders_a_step() {
        let mut v = Vec::new();
        bytes(1, b"sha256:aa", &mut v);
        bytes(3, b"[2/2] RUN echo hi", &mut v);
        bytes(5, &ts(100, 0), &mut v);
        // An unknown field (fixed64) and an unknown length-delimited one are skipped.
        tag(9, 1, &mut v);
        v.extend_from_slice(&[0; 8]);
        bytes(10, b"future", &mut v);
        let mut log = Vec::new();
        bytes(1, b"sha256:aa", &mut log);
        bytes(2, &ts(100, 250_000_000), &mut log);
        tag(3, 0, &mut log);
        varint_to(1, &mut log);
        bytes(4, b"hi\n", &mut log);
        let mut msg = Vec::new();
        bytes(1, &v, &mut msg);
        bytes(3, &log, &mut msg);
        let s = decode(&msg).unwrap();
        assert_eq!(s.vertexes[0].name, "[2/2] RUN echo hi");
        assert_eq!(s.logs[0].msg, b"hi\n");
        let mut p = Printer::new();
        assert_eq!(p.render(&s), "#1 [2/2] RUN echo hi\n#1 0.250 hi\n");

        let mut done = Vec::new();
        bytes(1, b"sha256:aa", &mut done);
        bytes(3, b"[2/2] RUN echo hi", &mut done);
        bytes(5, &ts(100, 0), &mut done);
        bytes(6, &ts(100, 400_000_000), &mut done);
        let mut msg = Vec::new();
        bytes(1, &done, &mut msg);
        assert_eq!(p.render(&decode(&msg).unwrap()), "#1 DONE 0.4s\n");
        // Reported once.
        assert_eq!(p.render(&decode(&msg).unwrap()), "");
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        // The fuzz target (fuzz/fuzz_targets/buildkit_trace.rs) goes further; this keeps a
        // cheap version in every test run.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut p = Printer::new();
        for len in 0..4000usize {
            let buf: Vec<u8> = (0..len % 200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Bias toward small field keys and lengths so nested messages decode.
                    (x % if len % 2 == 0 { 64 } else { 256 }) as u8
                })
                .collect();
            if let Ok(s) = decode(&buf) {
                let _ = p.render(&s);
            }
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [&[0x0a, 0x05, 0x01][..], &[0xff; 11], &[0x0b], &[0x09, 1, 2]] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        assert_eq!(decode(&[]).unwrap(), StatusResponse::default());
    }
}
