//! Per-layer progress bars for a push on a terminal, like the Docker CLI's: one line per layer,
//! redrawn in place with ANSI cursor movement.
//!
//! Why hand-written: it is a few dozen lines, and a progress crate would bring its own terminal
//! handling for one screen. `render.rs` uses them in `--progress=tty` mode and prints plain
//! lines otherwise. `NO_COLOR` turns the colouring of finished layers off; the bars have none.

use crate::render::size;
use std::io::Write;

use dbuild::engine::Message;

/// The bars drawn so far, in the order their layers first appeared.
pub struct Progress {
    ids: Vec<String>,
    color: bool,
    width: usize,
}

impl Progress {
    /// Bars for a terminal `width` columns wide.
    pub fn new(color: bool, width: usize) -> Progress {
        Progress {
            ids: Vec::new(),
            color,
            width,
        }
    }

    /// Shows one message. The cursor always rests at the start of the line below the bars.
    pub fn show(&mut self, out: &mut impl Write, m: &Message) {
        let Some(status) = m.status.as_deref() else {
            return;
        };
        let Some(id) = m.id.as_deref() else {
            // A line of its own ("The push refers to…", the digest line); bars above it are
            // finished, so later layers start a new group below.
            self.ids.clear();
            let _ = writeln!(out, "{status}");
            return;
        };
        let line = self.line(id, status, m);
        match self.ids.iter().position(|i| i == id) {
            None => {
                self.ids.push(id.to_owned());
                let _ = writeln!(out, "{line}");
            }
            Some(i) => {
                // Up to the layer's line, clear it, write, and back down.
                let up = self.ids.len() - i;
                let _ = write!(out, "\x1b[{up}A\x1b[2K\r{line}\r\x1b[{up}B");
            }
        }
        let _ = out.flush();
    }

    /// `id: Status [=====>     ] 1.2MB/3.4MB`, fitted to the width.
    fn line(&self, id: &str, status: &str, m: &Message) -> String {
        let id: String = id.chars().take(12).collect();
        let done = matches!(status, "Pushed" | "Layer already exists")
            || status.starts_with("Mounted from");
        let shown = if done && self.color {
            format!("\x1b[32m{status}\x1b[0m")
        } else {
            status.to_owned()
        };
        let head_len = id.len() + 2 + status.chars().count();
        let detail = m.progress_detail.as_ref();
        let bar = match (
            detail.and_then(|d| d.current),
            detail.and_then(|d| d.total).filter(|t| *t > 0),
        ) {
            (Some(cur), Some(total)) => {
                let amount = format!(" {}/{}", size(cur), size(total));
                let room = self.width.saturating_sub(head_len + amount.len() + 4);
                let cells = room.min(50);
                if cells < 10 {
                    amount
                } else {
                    let filled = (cur.min(total) as u128 * cells as u128 / total as u128) as usize;
                    let arrow = if filled < cells { ">" } else { "" };
                    let rest = cells.saturating_sub(filled + arrow.len());
                    format!(
                        " [{}{arrow}{}]{amount}",
                        "=".repeat(filled),
                        " ".repeat(rest)
                    )
                }
            }
            (Some(cur), None) if cur > 0 => format!(" {}", size(cur)),
            _ => String::new(),
        };
        // Never wider than the terminal: a wrapped line would break the cursor arithmetic.
        let room = self.width.saturating_sub(head_len + 1);
        let bar: String = bar.chars().take(room).collect();
        format!("{id}: {shown}{bar}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbuild::engine::stream::ProgressDetail;

    fn msg(id: Option<&str>, status: &str, cur: Option<u64>, total: Option<u64>) -> Message {
        Message {
            id: id.map(Into::into),
            status: Some(status.into()),
            progress_detail: Some(ProgressDetail {
                current: cur,
                total,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn bars_are_redrawn_in_place() {
        let mut p = Progress::new(false, 80);
        let mut out = Vec::new();
        p.show(
            &mut out,
            &msg(None, "The push refers to repository [r/x]", None, None),
        );
        p.show(&mut out, &msg(Some("aaa"), "Preparing", None, None));
        p.show(&mut out, &msg(Some("bbb"), "Preparing", None, None));
        p.show(
            &mut out,
            &msg(Some("aaa"), "Pushing", Some(500), Some(1000)),
        );
        p.show(&mut out, &msg(Some("aaa"), "Pushed", None, None));
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("The push refers to repository [r/x]\naaa: Preparing\nbbb: Preparing\n"),
            "{s:?}"
        );
        assert!(
            s.contains("\x1b[2A\x1b[2K\raaa: Pushing [=========================>"),
            "{s:?}"
        );
        assert!(s.contains("] 500B/1.0kB\r\x1b[2B"), "{s:?}");
        assert!(s.ends_with("\x1b[2A\x1b[2K\raaa: Pushed\r\x1b[2B"), "{s:?}");
        assert!(!s.contains("\x1b[32m"), "NO_COLOR: {s:?}");
    }

    #[test]
    fn colour_only_when_allowed_and_lines_fit_the_width() {
        let mut p = Progress::new(true, 40);
        let mut out = Vec::new();
        p.show(&mut out, &msg(Some("aaa"), "Pushed", None, None));
        p.show(
            &mut out,
            &msg(Some("bbb"), "Pushing", Some(1), Some(3_000_000_000)),
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\x1b[32mPushed\x1b[0m"), "{s:?}");
        let last = s.lines().last().unwrap();
        assert!(last.chars().count() <= 40, "{last:?}");
    }
}
