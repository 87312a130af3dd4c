//! Small ports of the Go standard library functions whose exact behaviour decides what a
//! `.dockerignore` line means: `strings.TrimSpace`, `path/filepath.Clean`, the syntax check
//! that `filepath.Match` performs, and UTF-8 decoding the way Go does it.

/// The rune Go substitutes for each byte of invalid UTF-8.
pub(super) const RUNE_ERROR: char = '\u{FFFD}';

/// Decodes the first rune of `s` like Go's `utf8.DecodeRune`: an invalid byte decodes as
/// [`RUNE_ERROR`] of width 1. `s` must not be empty.
pub(super) fn decode_rune(s: &[u8]) -> (char, usize) {
    let len = match s[0] {
        0x00..=0x7F => return (char::from(s[0]), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (RUNE_ERROR, 1),
    };
    // `from_utf8` rejects overlong forms and surrogates exactly as Go does.
    match s.get(..len).map(std::str::from_utf8) {
        Some(Ok(t)) => (t.chars().next().unwrap_or(RUNE_ERROR), len),
        _ => (RUNE_ERROR, 1),
    }
}

/// Decodes all of `s` into runes, Go style (see [`decode_rune`]).
pub(super) fn runes(mut s: &[u8]) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len());
    while !s.is_empty() {
        let (c, n) = decode_rune(s);
        out.push(c);
        s = &s[n..];
    }
    out
}

/// Go's `unicode.IsSpace`.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | ' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Go's `strings.TrimSpace`: trims Unicode white space, not just ASCII.
pub(super) fn trim_space(s: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < s.len() {
        let (c, n) = decode_rune(&s[start..]);
        if !is_space(c) {
            break;
        }
        start += n;
    }
    // Decoding forwards finds the same rune boundaries as Go's backwards scan.
    let (mut end, mut i) = (start, start);
    while i < s.len() {
        let (c, n) = decode_rune(&s[i..]);
        i += n;
        if !is_space(c) {
            end = i;
        }
    }
    &s[start..end]
}

/// Go's `path/filepath.Clean` on Unix: purely lexical `.`/`..`/`//` removal.
pub(super) fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        // An empty or `.` element.
        if path[r] == b'/' || (path[r] == b'.' && (r + 1 == n || path[r + 1] == b'/')) {
            r += 1;
        } else if path[r] == b'.' && path[r + 1] == b'.' && (r + 2 == n || path[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                out.pop();
                while out.len() > dotdot && out[out.len() - 1] != b'/' {
                    out.pop();
                }
                // Drop the separator that preceded the removed element.
                if out.len() > dotdot {
                    out.pop();
                }
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Go's `filepath.Dir` for a clean relative path: everything before the last `/`, or `.`.
pub(super) fn dir(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|b| *b == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => b".",
    }
}

/// Whether `filepath.Match` (Go 1.16 and later) rejects `pattern` with `ErrBadPattern`.
///
/// Since Go 1.16 it validates the whole pattern whatever the name, so the outcome depends on the
/// pattern alone: a bad character class or a trailing backslash anywhere.
pub(super) fn bad_glob(mut pattern: &[u8]) -> bool {
    while !pattern.is_empty() {
        let (chunk, rest) = scan_chunk(pattern);
        if !chunk_ok(chunk) {
            return true;
        }
        pattern = rest;
    }
    false
}

/// `filepath.scanChunk`: skips leading stars and returns the star-free chunk and the rest.
fn scan_chunk(mut p: &[u8]) -> (&[u8], &[u8]) {
    while p.first() == Some(&b'*') {
        p = &p[1..];
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (&p[..i], &p[i..])
}

/// The syntax half of `filepath.matchChunk`.
fn chunk_ok(mut chunk: &[u8]) -> bool {
    while let Some(&c) = chunk.first() {
        chunk = &chunk[1..];
        match c {
            b'[' => {
                if chunk.first() == Some(&b'^') {
                    chunk = &chunk[1..];
                }
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Some(rest) = get_esc(chunk) else {
                        return false;
                    };
                    chunk = rest;
                    if chunk[0] == b'-' {
                        let Some(rest) = get_esc(&chunk[1..]) else {
                            return false;
                        };
                        chunk = rest;
                    }
                    nrange += 1;
                }
            }
            b'\\' => {
                if chunk.is_empty() {
                    return false;
                }
                chunk = &chunk[1..];
            }
            _ => {}
        }
    }
    true
}

/// `filepath.getEsc`: one possibly escaped class character; `None` on a syntax error.
/// On success the rest is never empty (a class needs its closing `]`).
fn get_esc(mut chunk: &[u8]) -> Option<&[u8]> {
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return None,
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return None;
            }
        }
        _ => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == RUNE_ERROR && n == 1 {
        return None;
    }
    let rest = &chunk[n..];
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // Expectations from Go's path/filepath tests.
        let cases: &[(&str, &str)] = &[
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("!../x", "!../x"),
        ];
        for (i, o) in cases {
            assert_eq!(clean(i.as_bytes()), o.as_bytes(), "Clean({i:?})");
        }
    }

    #[test]
    fn trim_space_is_unicode() {
        assert_eq!(trim_space(b" \t a b \r\n"), b"a b");
        assert_eq!(trim_space("\u{A0}x\u{3000}".as_bytes()), b"x");
        assert_eq!(trim_space(b"\xFFx\xFF"), b"\xFFx\xFF");
        assert_eq!(trim_space(b"   "), b"");
    }

    #[test]
    fn bad_glob_matches_go() {
        for ok in [
            "", "*", "a*b", "[a-z]", "[^a]", "[!a]", "[*]", "\\*", "[\\]]", "[\\-a]", "a]",
        ] {
            assert!(!bad_glob(ok.as_bytes()), "{ok:?} rejected");
        }
        for bad in [
            "[", "[]", "[^]", "a\\", "[a", "[a-]", "[-a]", "[]a]", "[a*", "[\\", "x[\u{FF}",
        ] {
            assert!(bad_glob(bad.as_bytes()), "{bad:?} accepted");
        }
        assert!(bad_glob(b"[\xFF]"));
    }
}
