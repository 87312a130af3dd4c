//! The subset of Go's `regexp` that moby/patternmatcher's translated patterns can reach.
//!
//! patternmatcher turns a glob into a Go regular expression and passes `[`, `]`, `^` and
//! backslash escapes through untouched, so what a pattern means (and whether it is an error)
//! depends on Go's RE2 syntax: `\d` is a digit class, `\b` a word boundary, `[[:alpha:]]` a POSIX
//! class, `[z-a]` a compile error. This module parses exactly that syntax and matches with a
//! Pike VM, which runs in time linear in the path for any pattern.
//!
//! Not supported (reported as errors, so they can never silently match the wrong files):
//! Unicode classes (`\pL`), which need Unicode tables, and `(?` flag groups, which a translated
//! pattern cannot produce.

/// A compiled regular expression.
#[derive(Clone, Debug)]
pub(super) struct Regexp {
    prog: Vec<Inst>,
}

/// Why a regular expression did not compile; Docker reports all of these as
/// `syntax error in pattern`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SyntaxError;

#[derive(Clone, Debug)]
enum Node {
    Empty,
    Char(char),
    /// Sorted, non-overlapping inclusive ranges.
    Class(Vec<(u32, u32)>),
    AnyNotNl,
    Assert(Assert),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, Rep),
}

#[derive(Clone, Copy, Debug)]
enum Rep {
    Star,
    Plus,
    Quest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Assert {
    BeginText,
    EndText,
    WordBoundary,
    NotWordBoundary,
}

#[derive(Clone, Debug)]
enum Inst {
    Char(char),
    Class(Vec<(u32, u32)>),
    AnyNotNl,
    Assert(Assert, usize),
    Split(usize, usize),
    Jmp(usize),
    Match,
}

const MAX_RUNE: u32 = 0x10FFFF;

/// Go refuses deeper nesting; it also keeps parsing away from stack overflows.
const MAX_DEPTH: usize = 1000;

impl Regexp {
    /// Parses `re` with Go's default (`regexp.Compile`, Perl) syntax.
    pub(super) fn new(re: &[char]) -> Result<Regexp, SyntaxError> {
        let mut p = Parser { s: re, pos: 0 };
        let node = p.alternation(0)?;
        if p.pos != re.len() {
            // A stray ')'.
            return Err(SyntaxError);
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog);
        prog.push(Inst::Match);
        Ok(Regexp { prog })
    }

    /// Go's `MatchString`: whether the expression matches anywhere in `text` (unanchored; the
    /// translated patterns anchor themselves with `^` and `$`).
    pub(super) fn is_match(&self, text: &[char]) -> bool {
        let n = self.prog.len();
        let mut clist = Threads::new(n);
        let mut nlist = Threads::new(n);
        for pos in 0..=text.len() {
            // Unanchored search: a new thread may start at every position.
            self.add(&mut clist, 0, pos, text);
            if clist
                .dense
                .iter()
                .any(|&pc| matches!(self.prog[pc], Inst::Match))
            {
                return true;
            }
            let Some(&c) = text.get(pos) else { break };
            nlist.clear();
            for i in 0..clist.dense.len() {
                let pc = clist.dense[i];
                let ok = match &self.prog[pc] {
                    Inst::Char(want) => *want == c,
                    Inst::Class(ranges) => in_ranges(ranges, c),
                    Inst::AnyNotNl => c != '\n',
                    _ => false,
                };
                if ok {
                    self.add(&mut nlist, pc + 1, pos + 1, text);
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
        }
        false
    }

    /// Adds `pc` and everything reachable from it without consuming input.
    fn add(&self, list: &mut Threads, pc: usize, pos: usize, text: &[char]) {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if !list.insert(pc) {
                continue;
            }
            match &self.prog[pc] {
                Inst::Jmp(to) => stack.push(*to),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::Assert(a, to) if assert_holds(*a, pos, text) => stack.push(*to),
                _ => {}
            }
        }
    }
}

/// A sparse set of program counters, in insertion order.
struct Threads {
    dense: Vec<usize>,
    member: Vec<bool>,
}

impl Threads {
    fn new(n: usize) -> Self {
        Threads {
            dense: Vec::new(),
            member: vec![false; n],
        }
    }
    fn insert(&mut self, pc: usize) -> bool {
        if self.member[pc] {
            return false;
        }
        self.member[pc] = true;
        self.dense.push(pc);
        true
    }
    fn clear(&mut self) {
        for &pc in &self.dense {
            self.member[pc] = false;
        }
        self.dense.clear();
    }
}

fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Go's `\b` only knows ASCII word characters.
fn is_word(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
}

fn assert_holds(a: Assert, pos: usize, text: &[char]) -> bool {
    match a {
        Assert::BeginText => pos == 0,
        Assert::EndText => pos == text.len(),
        Assert::WordBoundary | Assert::NotWordBoundary => {
            let before = pos.checked_sub(1).and_then(|i| text.get(i));
            let boundary = is_word(before) != is_word(text.get(pos));
            boundary == (a == Assert::WordBoundary)
        }
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Empty => {}
        Node::Char(c) => prog.push(Inst::Char(*c)),
        Node::Class(r) => prog.push(Inst::Class(r.clone())),
        Node::AnyNotNl => prog.push(Inst::AnyNotNl),
        Node::Assert(a) => {
            let next = prog.len() + 1;
            prog.push(Inst::Assert(*a, next));
        }
        Node::Concat(items) => items.iter().for_each(|n| compile(n, prog)),
        Node::Alt(alts) => {
            let mut jumps = Vec::new();
            for (i, alt) in alts.iter().enumerate() {
                if i + 1 < alts.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(alt, prog);
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    compile(alt, prog);
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat(inner, Rep::Plus) => {
            let start = prog.len();
            compile(inner, prog);
            let next = prog.len() + 1;
            prog.push(Inst::Split(start, next));
        }
        Node::Repeat(inner, rep) => {
            // Star and Quest both start with a split around the body.
            let split = prog.len();
            prog.push(Inst::Split(split + 1, 0));
            compile(inner, prog);
            if matches!(rep, Rep::Star) {
                prog.push(Inst::Jmp(split));
            }
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
    }
}

struct Parser<'a> {
    s: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn alternation(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(SyntaxError);
        }
        let mut alts = vec![self.concat(depth)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.concat(depth)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn concat(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let mut items: Vec<Node> = Vec::new();
        // Whether the last item came from a repetition operator: Go rejects `a**`.
        let mut last_repeat = false;
        while let Some(c) = self.peek() {
            match c {
                '|' | ')' => break,
                '*' | '+' | '?' => {
                    self.pos += 1;
                    if self.peek() == Some('?') {
                        // Non-greedy: same set of matches.
                        self.pos += 1;
                    }
                    let Some(prev) = items.pop() else {
                        return Err(SyntaxError); // missing argument to repetition operator
                    };
                    if last_repeat {
                        return Err(SyntaxError); // invalid nested repetition operator
                    }
                    let rep = match c {
                        '*' => Rep::Star,
                        '+' => Rep::Plus,
                        _ => Rep::Quest,
                    };
                    items.push(Node::Repeat(Box::new(prev), rep));
                    last_repeat = true;
                    continue;
                }
                '{' => {
                    // The translation escapes every '{' the pattern had, so a counted repetition
                    // cannot occur; treat one as unsupported rather than guess.
                    return Err(SyntaxError);
                }
                '(' => {
                    self.pos += 1;
                    if self.peek() == Some('?') {
                        return Err(SyntaxError); // flags and named groups: unsupported
                    }
                    let inner = self.alternation(depth + 1)?;
                    if self.peek() != Some(')') {
                        return Err(SyntaxError); // missing closing )
                    }
                    self.pos += 1;
                    items.push(inner);
                }
                '[' => {
                    let class = self.class()?;
                    items.push(Node::Class(class));
                }
                '.' => {
                    self.pos += 1;
                    items.push(Node::AnyNotNl);
                }
                '^' => {
                    self.pos += 1;
                    items.push(Node::Assert(Assert::BeginText));
                }
                '$' => {
                    self.pos += 1;
                    items.push(Node::Assert(Assert::EndText));
                }
                '\\' => self.escape_atom(&mut items)?,
                _ => {
                    self.pos += 1;
                    items.push(Node::Char(c));
                }
            }
            last_repeat = false;
        }
        Ok(Node::Concat(items))
    }

    /// A backslash sequence outside a class.
    fn escape_atom(&mut self, items: &mut Vec<Node>) -> Result<(), SyntaxError> {
        let assert = match self.s.get(self.pos + 1) {
            Some('A') => Some(Assert::BeginText),
            Some('z') => Some(Assert::EndText),
            Some('b') => Some(Assert::WordBoundary),
            Some('B') => Some(Assert::NotWordBoundary),
            Some('C') | Some('p') | Some('P') => return Err(SyntaxError),
            Some('Q') => {
                // \Q...\E: everything up to \E (or the end) is literal.
                self.pos += 2;
                while self.pos < self.s.len() {
                    if self.s[self.pos] == '\\' && self.s.get(self.pos + 1) == Some(&'E') {
                        self.pos += 2;
                        break;
                    }
                    items.push(Node::Char(self.s[self.pos]));
                    self.pos += 1;
                }
                return Ok(());
            }
            _ => None,
        };
        if let Some(a) = assert {
            self.pos += 2;
            items.push(Node::Assert(a));
            return Ok(());
        }
        if let Some(ranges) = self.perl_class() {
            items.push(Node::Class(ranges));
            return Ok(());
        }
        let c = self.escape()?;
        items.push(Node::Char(c));
        Ok(())
    }

    /// `\d \D \s \S \w \W` at the current position, consumed if present.
    fn perl_class(&mut self) -> Option<Vec<(u32, u32)>> {
        if self.peek() != Some('\\') {
            return None;
        }
        let (ranges, negate): (&[(u32, u32)], bool) = match self.s.get(self.pos + 1)? {
            'd' => (DIGIT, false),
            'D' => (DIGIT, true),
            's' => (PERL_SPACE, false),
            'S' => (PERL_SPACE, true),
            'w' => (WORD, false),
            'W' => (WORD, true),
            _ => return None,
        };
        self.pos += 2;
        let v = normalize(ranges.to_vec());
        Some(if negate { complement(&v) } else { v })
    }

    /// Go's `parseEscape`: a single-character escape at the current `\`.
    fn escape(&mut self) -> Result<char, SyntaxError> {
        self.pos += 1; // the backslash
        let Some(c) = self.peek() else {
            return Err(SyntaxError); // trailing backslash
        };
        self.pos += 1;
        let octal = |c: Option<char>| c.filter(|c| ('0'..='7').contains(c));
        match c {
            '1'..='7' if octal(self.peek()).is_none() => Err(SyntaxError), // backreference
            '0'..='7' => {
                let mut r = c as u32 - '0' as u32;
                for _ in 1..3 {
                    let Some(d) = octal(self.peek()) else { break };
                    r = r * 8 + (d as u32 - '0' as u32);
                    self.pos += 1;
                }
                char::from_u32(r).ok_or(SyntaxError)
            }
            'x' => {
                let hi = self.peek().and_then(|c| c.to_digit(16));
                let lo = self.s.get(self.pos + 1).and_then(|c| c.to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        self.pos += 2;
                        char::from_u32(h * 16 + l).ok_or(SyntaxError)
                    }
                    // Includes the `\x{...}` form, which a translated pattern cannot produce.
                    _ => Err(SyntaxError),
                }
            }
            'a' => Ok('\u{07}'),
            'f' => Ok('\u{0C}'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            'v' => Ok('\u{0B}'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
            _ => Err(SyntaxError), // invalid escape sequence
        }
    }

    /// Go's `parseClass`, at the current `[`.
    fn class(&mut self) -> Result<Vec<(u32, u32)>, SyntaxError> {
        self.pos += 1;
        let negate = self.peek() == Some('^');
        if negate {
            // With Go's ClassNL flag a negated class also matches '\n'.
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            match self.peek() {
                None => return Err(SyntaxError), // missing closing ]
                Some(']') if !first => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            first = false;
            if self.peek() == Some('[') && self.s.get(self.pos + 1) == Some(&':') {
                if let Some(r) = self.posix_class()? {
                    ranges.extend(r);
                    continue;
                }
            }
            if self.peek() == Some('\\') && matches!(self.s.get(self.pos + 1), Some('p' | 'P')) {
                return Err(SyntaxError); // Unicode classes: unsupported
            }
            if let Some(r) = self.perl_class() {
                ranges.extend(r);
                continue;
            }
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.peek() == Some('-') && self.s.get(self.pos + 1).is_some_and(|c| *c != ']') {
                self.pos += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return Err(SyntaxError); // invalid character class range
                }
            }
            ranges.push((lo as u32, hi as u32));
        }
        let ranges = normalize(ranges);
        Ok(if negate { complement(&ranges) } else { ranges })
    }

    fn class_char(&mut self) -> Result<char, SyntaxError> {
        match self.peek() {
            None => Err(SyntaxError),
            Some('\\') => self.escape(),
            Some(c) => {
                self.pos += 1;
                Ok(c)
            }
        }
    }

    /// `[:name:]` at the current position. Like Go, the name runs to the next `:]` anywhere
    /// later in the expression; no `:]` at all means a plain `[`.
    fn posix_class(&mut self) -> Result<Option<Vec<(u32, u32)>>, SyntaxError> {
        let rest = &self.s[self.pos + 2..];
        let Some(i) = rest.windows(2).position(|w| w == [':', ']']) else {
            return Ok(None);
        };
        let mut name: String = rest[..i].iter().collect();
        let negate = name.starts_with('^');
        if negate {
            name.remove(0);
        }
        let ranges: &[(u32, u32)] = match name.as_str() {
            "alnum" => &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
            "alpha" => &[(0x41, 0x5A), (0x61, 0x7A)],
            "ascii" => &[(0x00, 0x7F)],
            "blank" => &[(0x09, 0x09), (0x20, 0x20)],
            "cntrl" => &[(0x00, 0x1F), (0x7F, 0x7F)],
            "digit" => DIGIT,
            "graph" => &[(0x21, 0x7E)],
            "lower" => &[(0x61, 0x7A)],
            "print" => &[(0x20, 0x7E)],
            "punct" => &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
            "space" => &[(0x09, 0x0D), (0x20, 0x20)],
            "upper" => &[(0x41, 0x5A)],
            "word" => WORD,
            "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
            _ => return Err(SyntaxError), // invalid character class range
        };
        self.pos += 2 + i + 2;
        let v = normalize(ranges.to_vec());
        Ok(Some(if negate { complement(&v) } else { v }))
    }
}

const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
const PERL_SPACE: &[(u32, u32)] = &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

/// Sorts and merges ranges.
fn normalize(mut r: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    r.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The complement of normalized ranges within all of Unicode.
fn complement(r: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next = 0u32;
    for &(lo, hi) in r {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = hi.saturating_add(1);
    }
    if next <= MAX_RUNE {
        out.push((next, MAX_RUNE));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, text: &str) -> bool {
        let re: Vec<char> = re.chars().collect();
        let text: Vec<char> = text.chars().collect();
        Regexp::new(&re)
            .unwrap_or_else(|_| panic!("compile {re:?}"))
            .is_match(&text)
    }

    fn bad(re: &str) -> bool {
        Regexp::new(&re.chars().collect::<Vec<_>>()).is_err()
    }

    #[test]
    fn basics() {
        assert!(m("^a[^/]*b$", "axxb"));
        assert!(!m("^a[^/]*b$", "ax/b"));
        assert!(m("^a(.*/)?b$", "ab"));
        assert!(m("^a(.*/)?b$", "ax/y/b"));
        assert!(!m("^a(.*/)?b$", "axb"));
        assert!(!m("^(.*/)?x$", "a\n/x")); // '.' does not match a newline
        assert!(m("^[^/]$", "\n")); // a negated class does
        assert!(m("^\\d\\.txt$", "1.txt"));
        assert!(m("^dir\\sub$", "dir ub"));
        assert!(m("^[[:digit:]]x$", "7x"));
        assert!(m("^[[^/]*]$", "]"));
        assert!(m("^[[^/]*]$", "[^]"));
        assert!(!m("^[[^/]*]$", "*"));
        assert!(m("^^a$", "a"));
        assert!(!m("^a^b$", "ab"));
        assert!(m("^\\Qa[^/]*$", "a[^/]*$"));
        assert!(m("^\\Qa$", "a$bc")); // \Q swallowed the end anchor
        assert!(!m("^\\Qa$", "abc"));
        assert!(m("^a\\b$", "a"));
        assert!(m("^\\x41\\101\\0$", "AA\0"));
        assert!(m("^[a\\-z]$", "-"));
        assert!(m("^[a-]$", "-"));
        assert!(m("^[\\D]$", "x"));
        assert!(m("^[[:^alpha:]]$", "1"));
    }

    #[test]
    fn errors() {
        for re in [
            "[z-a]",
            "\\1",
            "\\8",
            "\\c",
            "\\pL",
            "[\\pL]",
            "[[:foo:]]",
            "a**",
            "*",
            "(a",
            "a)",
            "\\",
            "[a",
            "\\x4",
            "\\é",
            "(?i)a",
            "a{2}",
        ] {
            assert!(bad(re), "{re:?} compiled");
        }
    }
}
