//! Decoding the engine's progress stream: newline-delimited JSON messages.
//!
//! Why its own module: the framing is the subtle part of the engine API. Docker ends each
//! message with `\r\n`, Podman with `\n`; one HTTP chunk may hold part of a message or several;
//! the last message may lack a newline. The decoder buffers only the unfinished line.

use bytes::{Buf, BytesMut};
use serde::Deserialize;

/// One message of a `/build` or `/push` stream. Fields the engine did not send are `None`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Message {
    /// Build output (a step, or what a `RUN` printed).
    pub stream: Option<String>,
    /// A status line (`Pushing`, `Pushed`, a digest line).
    pub status: Option<String>,
    /// Layer or step id the status refers to.
    pub id: Option<String>,
    /// Human-readable progress bar, as the CLI shows it.
    pub progress: Option<String>,
    /// Progress in bytes.
    #[serde(rename = "progressDetail")]
    pub progress_detail: Option<ProgressDetail>,
    /// Legacy error string.
    pub error: Option<String>,
    /// Structured error.
    #[serde(rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    /// Auxiliary data: `{"ID": …}` after a build, `{"Tag","Digest","Size"}` after a push.
    pub aux: Option<serde_json::Value>,
}

/// Byte progress of one layer or step.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ProgressDetail {
    /// Bytes done.
    pub current: Option<u64>,
    /// Bytes in all.
    pub total: Option<u64>,
}

/// The engine's structured error.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct ErrorDetail {
    /// Exit code of the failed step, when the engine gives one.
    pub code: Option<i64>,
    /// The error text.
    pub message: Option<String>,
}

impl Message {
    /// The error this message reports, if any (`errorDetail.message`, else `error`).
    pub fn error_message(&self) -> Option<&str> {
        self.error_detail
            .as_ref()
            .and_then(|d| d.message.as_deref())
            .or(self.error.as_deref())
    }
}

/// A line that was not a JSON message.
#[derive(Debug, thiserror::Error)]
#[error(
    "the engine sent a line that is not a JSON message ({len} bytes, starting {start:?}): {why}"
)]
pub struct DecodeError {
    /// Length of the line.
    pub len: usize,
    /// The first bytes of the line, lossily decoded.
    pub start: String,
    /// What the JSON parser said.
    pub why: String,
}

/// Incremental decoder: feed bytes as they arrive, take complete messages out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes that arrived from the engine.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if a whole line is buffered. Blank lines are skipped.
    pub fn next_message(&mut self) -> Option<Result<Message, DecodeError>> {
        loop {
            let nl = self.buf.iter().position(|b| *b == b'\n')?;
            let line = self.buf.split_to(nl + 1);
            let line = trim(&line[..nl]);
            if !line.is_empty() {
                return Some(parse(line));
            }
        }
    }

    /// Call when the stream has ended: the final message if it lacked a newline.
    pub fn finish(&mut self) -> Option<Result<Message, DecodeError>> {
        let rest = std::mem::take(&mut self.buf);
        let line = trim(rest.chunk());
        (!line.is_empty()).then(|| parse(line))
    }

    /// Bytes of an unfinished line held back.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &line[start..end]
}

fn parse(line: &[u8]) -> Result<Message, DecodeError> {
    // The engines send JSON objects only. serde's derive would also read a JSON array as the
    // fields in order (`["text"]` as `{"stream":"text"}`), which no engine means.
    if line.first() != Some(&b'{') {
        return Err(DecodeError {
            len: line.len(),
            start: String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned(),
            why: "not a JSON object".into(),
        });
    }
    serde_json::from_slice(line).map_err(|e| DecodeError {
        len: line.len(),
        start: String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &[u8] = b"{\"stream\":\"Step 1/2 : FROM scratch\\n\"}\r\n{\"stream\":\"\\n\"}\r\n{\"aux\":{\"ID\":\"sha256:abc\"}}\r\n{\"errorDetail\":{\"code\":3,\"message\":\"boom\"},\"error\":\"boom\"}\r\n";
    const PODMAN: &[u8] = b"{\"stream\":\"STEP 1/2: FROM scratch\\n\"}\n{\"stream\":\"\\u00e9t\\u00e9\\n\"}\n\n{\"status\":\"done\",\"id\":\"x\"}";

    fn decode_split(input: &[u8], cuts: &[usize]) -> Vec<Message> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&input.len())) {
            d.push(&input[prev..c]);
            prev = c;
            while let Some(m) = d.next_message() {
                out.push(m.unwrap());
            }
        }
        if let Some(m) = d.finish() {
            out.push(m.unwrap());
        }
        out
    }

    #[test]
    fn every_single_split_gives_the_same_messages() {
        for (input, count) in [(DOCKER, 4), (PODMAN, 3)] {
            let whole = decode_split(input, &[]);
            assert_eq!(whole.len(), count, "{whole:?}");
            for cut in 0..=input.len() {
                assert_eq!(decode_split(input, &[cut]), whole, "split at {cut}");
            }
        }
    }

    #[test]
    fn every_pair_of_splits_gives_the_same_messages() {
        let whole = decode_split(DOCKER, &[]);
        for a in 0..=DOCKER.len() {
            for b in a..=DOCKER.len() {
                assert_eq!(decode_split(DOCKER, &[a, b]), whole, "splits at {a},{b}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let cuts: Vec<usize> = (1..PODMAN.len()).collect();
        assert_eq!(decode_split(PODMAN, &cuts), decode_split(PODMAN, &[]));
    }

    #[test]
    fn fields_and_errors() {
        let m = decode_split(DOCKER, &[]);
        assert_eq!(m[0].stream.as_deref(), Some("Step 1/2 : FROM scratch\n"));
        assert_eq!(m[2].aux.as_ref().unwrap()["ID"], "sha256:abc");
        assert_eq!(m[3].error_message(), Some("boom"));
        assert_eq!(m[3].error_detail.as_ref().unwrap().code, Some(3));
        let p = decode_split(PODMAN, &[]);
        assert_eq!(p[1].stream.as_deref(), Some("été\n"));
        assert_eq!(p[2].status.as_deref(), Some("done"));
    }

    #[test]
    fn non_json_line_is_an_error_not_a_panic() {
        let mut d = Decoder::new();
        d.push(b"<html>oops</html>\n{\"stream\":\"ok\"}\n");
        let e = d.next_message().unwrap().unwrap_err();
        assert!(e.to_string().contains("not a JSON message"), "{e}");
        assert_eq!(
            d.next_message().unwrap().unwrap().stream.as_deref(),
            Some("ok")
        );
        d.push(b"{\"stream\":\"cut");
        assert!(d.next_message().is_none());
        assert!(d.finish().unwrap().is_err());
    }

    #[test]
    fn only_json_objects_are_messages() {
        for line in [&b"[\"Step 1/2\"]"[..], b"\"text\"", b"42", b"null", b"true"] {
            let mut d = Decoder::new();
            d.push(line);
            d.push(b"\n");
            let e = d.next_message().unwrap().unwrap_err();
            assert!(e.to_string().contains("not a JSON object"), "{e}");
        }
    }
}
