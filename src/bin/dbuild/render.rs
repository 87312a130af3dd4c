//! `--progress`: how a job's [`Event`]s are shown on stderr.
//!
//! Why one place: every mode (plain lines for logs, a live view on a terminal, JSON lines for
//! programs, nothing) sees the same typed events from the library, so `build` and `push` show
//! progress the same way. stdout is not written here: it carries only results (see main.rs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

use dbuild::engine::stream::ProgressDetail;
use dbuild::engine::Message;
use dbuild::Event;

use crate::progress::Progress;
use crate::MID_LINE;

/// The `--progress` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The engine's text as it arrives, one status line per change: for logs and pipes.
    Plain,
    /// A live view: output as it arrives under a redrawn status line (step, elapsed time),
    /// per-layer bars for pushes.
    Tty,
    /// Nothing but warnings.
    Quiet,
    /// Every engine message as one JSON line, plus dbuild's own events as JSON lines with a
    /// `"dbuild"` key.
    RawJson,
}

impl Mode {
    /// The mode for `--progress` (`auto`, `plain`, `tty`, `quiet`, `rawjson`); `-q` wins.
    /// `auto` is `tty` when stderr is a terminal that can move the cursor, else `plain`.
    pub fn choose(arg: &str, quiet: bool) -> Mode {
        match arg {
            _ if quiet => Mode::Quiet,
            "plain" => Mode::Plain,
            "tty" => Mode::Tty,
            "quiet" => Mode::Quiet,
            "rawjson" => Mode::RawJson,
            _ if terminal() => Mode::Tty,
            _ => Mode::Plain,
        }
    }
}

fn terminal() -> bool {
    std::io::stderr().is_terminal() && !std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

/// Colour only on a terminal, and never with `NO_COLOR` set (<https://no-color.org>).
pub fn colour_allowed() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The terminal's width: the shell's `COLUMNS` when exported, else 80 (no ioctl without
/// another crate).
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w: &usize| *w >= 40)
        .unwrap_or(80)
}

/// Shows events on stderr in one [`Mode`].
pub struct Render {
    mode: Mode,
    colour: bool,
    width: usize,
    start: Instant,
    /// What is being read, for the `Fetched` line.
    source: String,
    /// The step in progress (tty), shown on the status line.
    step: Option<String>,
    /// Whether the cursor's line holds the status line or unfinished output (tty): it must
    /// be cleared before anything else is written.
    dirty: bool,
    /// tty: the unfinished last line of build output, held until its newline.
    partial: String,
    /// Push bars (tty).
    bars: Option<Progress>,
}

impl Render {
    /// A renderer for `mode`.
    pub fn new(mode: Mode) -> Render {
        Render {
            mode,
            colour: mode == Mode::Tty && colour_allowed(),
            width: width(),
            start: Instant::now(),
            source: String::new(),
            step: None,
            dirty: false,
            partial: String::new(),
            bars: None,
        }
    }

    /// Shows one event.
    pub fn event(&mut self, e: &Event) {
        let mut err = std::io::stderr().lock();
        match self.mode {
            Mode::Quiet => {
                if let Event::Warning(w) = e {
                    warning(&mut err, w);
                }
            }
            Mode::RawJson => {
                if let Some(v) = json(e) {
                    let _ = writeln!(err, "{v}");
                }
            }
            Mode::Plain => self.plain(&mut err, e),
            Mode::Tty => self.tty(&mut err, e),
        }
        let _ = err.flush();
    }

    fn plain(&mut self, err: &mut impl Write, e: &Event) {
        match e {
            Event::Fetching { source } => self.source = source.clone(),
            Event::Fetched {
                commit: Some(c), ..
            } => self.source = format!("{} at {c}", self.source),
            // Said only once the engine took the context, so that a run which fails before
            // (a bad address, a missing Dockerfile) prints its one error line and nothing else.
            Event::ContextSent { files, bytes } => {
                let _ = writeln!(err, "Sent {}: {files} files, {}", self.source, size(*bytes));
            }
            Event::Step(s) | Event::Log(s) => {
                let _ = err.write_all(s.as_bytes());
                MID_LINE.store(!s.ends_with('\n'), Ordering::Relaxed);
            }
            Event::Progress {
                layer,
                status,
                current,
                ..
            } => {
                // Byte-by-byte lines would flood a log; show only state changes.
                if current.is_some() {
                    return;
                }
                end_line(err);
                let _ = match layer {
                    Some(id) => writeln!(err, "{id}: {status}"),
                    None => writeln!(err, "{status}"),
                };
            }
            Event::Warning(w) => warning(err, w),
            _ => {}
        }
    }

    fn tty(&mut self, err: &mut impl Write, e: &Event) {
        match e {
            Event::Fetching { source } => {
                self.source = source.clone();
                self.step = Some(format!("fetching {source}"));
            }
            Event::Step(s) | Event::Log(s) => {
                if let Event::Step(s) = e {
                    self.step = Some(s.trim().to_owned());
                }
                self.partial.push_str(s);
                let Some(end) = self.partial.rfind('\n') else {
                    self.draw_status(err);
                    return;
                };
                let lines: String = self.partial.drain(..=end).collect();
                self.clear_status(err);
                for line in lines.split_inclusive('\n') {
                    // Docker sends a step's title and its newline as two messages, so steps
                    // are recognised by whole line.
                    if self.colour && dbuild::job::is_step(line) {
                        let _ = writeln!(err, "\x1b[1;36m{}\x1b[0m", line.trim_end());
                    } else {
                        let _ = err.write_all(line.as_bytes());
                    }
                }
            }
            Event::Pushing { reference } => {
                self.flush_partial(err);
                self.clear_status(err);
                self.step = None;
                self.bars = Some(Progress::new(self.colour, self.width));
                let _ = writeln!(err, "Pushing {reference}");
                return;
            }
            Event::Progress {
                reference: Some(_),
                layer,
                status,
                current,
                total,
            } => {
                let m = Message {
                    id: layer.clone(),
                    status: Some(status.clone()),
                    progress_detail: Some(ProgressDetail {
                        current: *current,
                        total: *total,
                    }),
                    ..Default::default()
                };
                if let Some(bars) = self.bars.as_mut() {
                    bars.show(err, &m);
                }
                return;
            }
            Event::Progress {
                reference: None,
                layer,
                status,
                current: None,
                ..
            } => {
                self.flush_partial(err);
                self.clear_status(err);
                let _ = match layer {
                    Some(id) => writeln!(err, "{id}: {status}"),
                    None => writeln!(err, "{status}"),
                };
            }
            Event::Fetched { .. } => self.step = Some("sending the build context".into()),
            Event::ContextSent { .. } => self.step = Some("building".into()),
            Event::Built { .. } => {
                self.flush_partial(err);
                self.clear_status(err);
                self.step = None;
                return;
            }
            Event::Warning(w) => {
                self.flush_partial(err);
                self.clear_status(err);
                if self.colour {
                    let _ = writeln!(
                        err,
                        "\x1b[33mdbuild: warning:\x1b[0m {}",
                        w.replace('\n', " ")
                    );
                } else {
                    warning(err, w);
                }
            }
            _ => {}
        }
        self.draw_status(err);
    }

    /// Redraws the tty status line with the time elapsed; called on a timer.
    pub fn tick(&mut self) {
        if self.mode == Mode::Tty && self.step.is_some() {
            let mut err = std::io::stderr().lock();
            self.draw_status(&mut err);
            let _ = err.flush();
        }
    }

    fn draw_status(&mut self, err: &mut impl Write) {
        let Some(step) = &self.step else {
            return;
        };
        if !self.partial.is_empty() {
            // An unfinished line is on screen where the status line would go.
            self.clear_status(err);
            let _ = write!(err, "{}", self.partial);
            self.dirty = true;
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let head = format!("[+] {secs:.1}s ");
        let room = self.width.saturating_sub(head.len() + 1);
        let step: String = step.chars().take(room).collect();
        let _ = if self.colour {
            write!(err, "\r\x1b[2K\x1b[34m{head}\x1b[0m{step}")
        } else {
            write!(err, "\r\x1b[2K{head}{step}")
        };
        self.dirty = true;
    }

    fn clear_status(&mut self, err: &mut impl Write) {
        if self.dirty {
            let _ = write!(err, "\r\x1b[2K");
            self.dirty = false;
        }
    }

    fn flush_partial(&mut self, err: &mut impl Write) {
        if !self.partial.is_empty() {
            self.clear_status(err);
            let _ = writeln!(err, "{}", std::mem::take(&mut self.partial));
        }
    }

    /// Leaves stderr at the start of a clean line: the tty status line removed, unfinished
    /// output ended. Called before the result or an error is printed.
    pub fn finish(&mut self) {
        let mut err = std::io::stderr().lock();
        if self.mode == Mode::Tty {
            self.flush_partial(&mut err);
            self.clear_status(&mut err);
            self.step = None;
        }
        let _ = err.flush();
    }
}

impl Drop for Render {
    fn drop(&mut self) {
        self.finish();
    }
}

fn end_line(err: &mut impl Write) {
    if MID_LINE.swap(false, Ordering::Relaxed) {
        let _ = writeln!(err);
    }
}

fn warning(err: &mut impl Write, w: &str) {
    end_line(err);
    let _ = writeln!(err, "dbuild: warning: {}", w.replace('\n', " "));
}

/// The JSON line for an event in `rawjson` mode: engine messages as the engine sent them
/// (fields it left out stay out), dbuild's own events under a `"dbuild"` key. Steps, logs and
/// progress are left out: they are the engine's messages again.
fn json(e: &Event) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match e {
        Event::Engine(m) => message_json(m),
        Event::Fetching { source } => json!({"dbuild": "fetching", "source": source}),
        Event::Fetched {
            commit,
            files,
            bytes,
        } => json!({"dbuild": "fetched", "commit": commit, "files": files, "bytes": bytes}),
        Event::ContextSent { files, bytes } => {
            json!({"dbuild": "context_sent", "files": files, "bytes": bytes})
        }
        Event::Built { image_id } => json!({"dbuild": "built", "image_id": image_id}),
        Event::Pushing { reference } => json!({"dbuild": "pushing", "reference": reference}),
        Event::Pushed { reference, digest } => {
            json!({"dbuild": "pushed", "reference": reference, "digest": digest})
        }
        Event::Warning(w) => json!({"dbuild": "warning", "message": w}),
        _ => return None,
    })
}

/// A [`Message`] back as the engine's JSON, with only the fields it had.
fn message_json(m: &Message) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    let mut put = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            o.insert(k.to_owned(), v);
        }
    };
    let s = |v: &Option<String>| v.clone().map(serde_json::Value::String);
    put("stream", s(&m.stream));
    put("status", s(&m.status));
    put("id", s(&m.id));
    put("progress", s(&m.progress));
    put(
        "progressDetail",
        m.progress_detail.as_ref().map(|d| {
            let mut p = serde_json::Map::new();
            if let Some(c) = d.current {
                p.insert("current".into(), c.into());
            }
            if let Some(t) = d.total {
                p.insert("total".into(), t.into());
            }
            serde_json::Value::Object(p)
        }),
    );
    put("error", s(&m.error));
    put(
        "errorDetail",
        m.error_detail.as_ref().map(|d| {
            let mut p = serde_json::Map::new();
            if let Some(c) = d.code {
                p.insert("code".into(), c.into());
            }
            if let Some(t) = &d.message {
                p.insert("message".into(), t.clone().into());
            }
            serde_json::Value::Object(p)
        }),
    );
    put("aux", m.aux.clone());
    serde_json::Value::Object(o)
}

/// A byte count as the Docker CLI shows it (decimal units).
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_messages_round_trip_without_added_fields() {
        let text = r#"{"status":"Pushing","id":"abc","progressDetail":{"current":1,"total":2}}"#;
        let m: Message = serde_json::from_str(text).unwrap();
        let back = message_json(&m);
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::choose("plain", true), Mode::Quiet);
        assert_eq!(Mode::choose("rawjson", false), Mode::RawJson);
        assert_eq!(Mode::choose("tty", false), Mode::Tty);
    }
}
