//! `.dockerignore`, with the exact semantics of the docker CLI's classic (non-BuildKit) builder.
//!
//! The classic `docker build` reads `.dockerignore` on the client and leaves excluded files out
//! of the context tar; the daemon never sees the patterns' effect again. dbuild replaces that
//! client, so it must reproduce what the docker CLI (28.x, moby/patternmatcher 0.6) sends, quirks
//! included, or the same repository would build differently with dbuild than with `docker build`.
//!
//! What that means, as verified against the real CLI (`tests/fixtures/dockerignore`):
//!
//! * **Reading** (`ignorefile.ReadAll`): lines split on `\n` (a trailing `\r` goes with the
//!   trimming); a UTF-8 BOM is dropped from the first line; a line whose *first byte* is `#` is
//!   a comment (`  # x` is the pattern `# x`); Unicode white space is trimmed; a leading `!`
//!   marks an exception; the rest is `filepath.Clean`ed (`./a`, `a/`, `a//b`, `a/../b` are
//!   normalized, `../x` stays and never matches) and one leading `/` is dropped.
//! * **Patterns** (`patternmatcher`): `*` and `?` never cross `/`; `**` followed by `/` or at the
//!   end matches any number of directories; `[...]` classes with ranges and `^` negation (`!` is
//!   a literal); patterns are translated to Go regular expressions, so backslash escapes follow
//!   Go's RE2 (`\*` is a literal star, but `\d` a digit and `\s` white space), `^` is an anchor
//!   and `[*]` matches `]`. A pattern matching a directory excludes everything in it.
//!   Exceptions apply in order: the last pattern that matches decides.
//! * **The walk** (`TarWithOptions`): an excluded directory is not entered unless some exception
//!   pattern *textually* starts with the directory's path and a `/` (`!dir/keep` reopens `dir`,
//!   `!*/keep` and `!**/keep` do not). Files re-included inside an excluded directory are sent
//!   without the directory's own entry (the daemon creates missing parents). Patterns are
//!   checked against each path with the parent directory's results, which differs from a plain
//!   "last match wins" in corner cases (see the `walk-quirk-*` fixtures).
//! * **Build files** (`TrimBuildFilesFromExcludes`): if the patterns exclude `.dockerignore` or
//!   the Dockerfile, exceptions for them are appended, so both are still sent (the daemon then
//!   drops them before `COPY`). The CLI checks the Dockerfile with its older matcher, which only
//!   tries one parent directory: `**/c` excluding `a/b/c/Dockerfile` is not undone, and the
//!   build fails; [`apply`] reports that as an error instead.
//! * `<Dockerfile>.dockerignore` (e.g. `app.Dockerfile.dockerignore`) is a BuildKit feature: the
//!   classic path ignores it, and so does dbuild. Only `.dockerignore` at the context root counts.
//!
//! The reference is the docker CLI 28.x. The 20.10 CLI differs in four fixtures: it has no
//! plain-string fast paths (so `^a.txt` is a regexp with `^` as an anchor and `**.md` matches
//! only `.md` in any directory) and its walk uses the older single-parent matcher (the
//! `walk-quirk-*` cases come out the other way).
//!
//! Errors: a pattern Go's `filepath.Match` rejects (unterminated `[`, trailing `\`), a lone `!`,
//! and a line of 64 KiB or more fail [`DockerIgnore::parse`]. A pattern whose regular expression
//! does not compile (`[z-a]`, `\1`) fails [`apply`] when the walk first uses it, as in Docker.
//! Where Docker would silently send a truncated context after such an error, dbuild fails.

mod golang;
mod regexp;

use std::collections::{HashMap, HashSet};

use self::golang::{bad_glob, clean, dir, runes, trim_space};
use self::regexp::Regexp;
use super::{Entry, Error, Kind, Tree};

/// Longest line `bufio.Scanner` accepts: longer lines make the docker CLI fail.
const MAX_LINE: usize = 64 * 1024;

/// A parsed `.dockerignore`: its patterns, in order, compiled.
#[derive(Clone, Debug)]
pub struct DockerIgnore {
    /// The pattern strings as the CLI hands them on (`!` prefix kept).
    excludes: Vec<Vec<u8>>,
    matcher: Matcher,
}

impl DockerIgnore {
    /// Parses the bytes of a `.dockerignore` file.
    ///
    /// Fails like the docker CLI on malformed patterns (`[`, `a\`, a lone `!`) and over-long
    /// lines. Patterns only Go's regular-expression compiler rejects are reported by
    /// [`DockerIgnore::filter`] when used, as Docker does.
    pub fn parse(text: &[u8]) -> Result<DockerIgnore, Error> {
        let excludes = read_all(text)?;
        let matcher = Matcher::new(&excludes)?;
        Ok(DockerIgnore { excludes, matcher })
    }

    /// Whether the patterns exclude `path` (relative, `/`-separated), itself or through a parent
    /// directory, with the last matching pattern deciding (`MatchesOrParentMatches`).
    ///
    /// This is the per-path answer; what [`DockerIgnore::filter`] keeps can differ for files
    /// inside excluded directories (see the module documentation). A pattern Docker would
    /// reject when used counts as not matching.
    pub fn matches(&self, path: &[u8]) -> bool {
        let path = clean(path);
        path != b"."
            && self
                .matcher
                .matches_or_parent_matches(&path)
                .unwrap_or(false)
    }

    /// Removes what the patterns exclude from `tree`, exactly as the docker CLI builds its
    /// context tar, keeping `.dockerignore` and the Dockerfile (`dockerfile`, relative to the
    /// context root) as the CLI does.
    ///
    /// Directory entries that are excluded but hold re-included files are dropped like the CLI
    /// drops them; the files stay. Fails on a pattern Docker rejects while walking, and when the
    /// Dockerfile ends up excluded (the docker CLI would send a context the daemon rejects).
    pub fn filter(&self, tree: Tree, dockerfile: &str) -> Result<Tree, Error> {
        let dockerfile = dockerfile_path(dockerfile)?;
        if self.excludes.is_empty() {
            return Ok(tree);
        }
        let paths = walk_paths(&tree);
        self.validate(&paths)?;

        // TrimBuildFilesFromExcludes, with the CLI's older single-parent matcher.
        let mut excludes = self.excludes.clone();
        if deprecated_matches(b".dockerignore", &excludes) {
            excludes.push(b"!.dockerignore".to_vec());
        }
        if deprecated_matches(&dockerfile, &excludes) {
            let mut p = b"!".to_vec();
            p.extend_from_slice(&dockerfile);
            excludes.push(p);
        }
        let pm = Matcher::new(&excludes)?;

        let mtime = tree.mtime;
        let had_dockerfile = tree.get(&dockerfile).is_some();
        let keep = pm.tar_walk(&paths)?;
        let entries: Vec<Entry> = tree
            .entries()
            .iter()
            .filter(|e| keep.contains(e.path.as_slice()))
            .cloned()
            .collect();
        let out = Tree::from_entries(mtime, entries)?;
        if had_dockerfile && out.get(&dockerfile).is_none() {
            return Err(Error::Ignore(format!(
                "it excludes the Dockerfile {:?}, and the docker CLI would not re-add it (it only \
                 checks the Dockerfile's path and its first parent directories); add an exception \
                 for it",
                String::from_utf8_lossy(&dockerfile)
            )));
        }
        Ok(out)
    }

    /// `ValidateContextDirectory`: walks what is not excluded; its only observable effect here
    /// is failing on a pattern whose regular expression does not compile.
    fn validate(&self, paths: &[WalkPath]) -> Result<(), Error> {
        let mut skipped: HashSet<&[u8]> = HashSet::new();
        for p in paths {
            let parent = dir(&p.path);
            if skipped.contains(parent) {
                if p.is_dir {
                    skipped.insert(&p.path);
                }
                continue;
            }
            let excluded = self
                .matcher
                .matches_or_parent_matches(&p.path)
                .map_err(|pat| bad_regexp(&pat))?;
            if excluded && p.is_dir {
                skipped.insert(&p.path);
            }
        }
        Ok(())
    }
}

/// Reads `.dockerignore` from `tree` and removes what it excludes, as the docker CLI would; see
/// [`DockerIgnore::filter`]. `dockerfile` is the Dockerfile's path relative to the context root.
///
/// Without `.dockerignore` the tree is returned unchanged. A `.dockerignore` symlink is followed
/// within the tree; one that leads outside it, or nowhere, counts as absent (the CLI would read
/// the host's file, or nothing). Only `.dockerignore` is read, never `<Dockerfile>.dockerignore`.
pub fn apply(tree: Tree, dockerfile: &str) -> Result<Tree, Error> {
    let text = match find_dockerignore(&tree)? {
        Some(text) => text,
        None => {
            dockerfile_path(dockerfile)?;
            return Ok(tree);
        }
    };
    DockerIgnore::parse(&text)?.filter(tree, dockerfile)
}

fn find_dockerignore(tree: &Tree) -> Result<Option<bytes::Bytes>, Error> {
    let mut path = b".dockerignore".to_vec();
    // Linux gives up after 40 links; so does this.
    for _ in 0..40 {
        match tree.get(&path).map(|e| &e.kind) {
            None => return Ok(None),
            Some(Kind::File { data, .. }) => return Ok(Some(data.load()?)),
            Some(Kind::Dir) => {
                return Err(Error::Ignore(
                    "cannot read .dockerignore: it is a directory".into(),
                ))
            }
            Some(Kind::Symlink { target }) => {
                let mut joined = match dir(&path) {
                    b"." => Vec::new(),
                    d => [d, b"/"].concat(),
                };
                if target.first() == Some(&b'/') {
                    return Ok(None);
                }
                joined.extend_from_slice(target);
                path = clean(&joined);
                if path == b"." || path == b".." || path.starts_with(b"../") {
                    return Ok(None);
                }
            }
        }
    }
    Ok(None)
}

/// The Dockerfile path as the CLI names it: cleaned, relative, inside the context.
/// `dockerfile` cleaned as Go's `filepath.Clean` would (`./a//b` → `a/b`).
pub(crate) fn clean_path(dockerfile: &str) -> Vec<u8> {
    clean(dockerfile.as_bytes())
}

fn dockerfile_path(dockerfile: &str) -> Result<Vec<u8>, Error> {
    let p = clean(dockerfile.as_bytes());
    if p == b"." || p == b".." || p.starts_with(b"../") || p.starts_with(b"/") {
        return Err(Error::InvalidPath(dockerfile.to_owned()));
    }
    Ok(p)
}

fn bad_regexp(pattern: &[u8]) -> Error {
    Error::Ignore(format!(
        "syntax error in pattern {:?}",
        String::from_utf8_lossy(pattern)
    ))
}

/// `ignorefile.ReadAll`: the pattern strings of a `.dockerignore`, `!` prefix kept.
fn read_all(text: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    // bufio.ScanLines yields no empty token after a final newline.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (n, line) in lines.into_iter().enumerate() {
        if line.len() >= MAX_LINE {
            return Err(Error::Ignore(format!(
                "line {} is {} bytes long; the docker CLI stops at {} (\"token too long\")",
                n + 1,
                line.len(),
                MAX_LINE - 1
            )));
        }
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        if n == 0 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.first() == Some(&b'#') {
            continue;
        }
        let mut pattern = trim_space(line);
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern[0] == b'!';
        if invert {
            pattern = trim_space(&pattern[1..]);
        }
        let mut p = Vec::with_capacity(pattern.len() + 1);
        if invert {
            p.push(b'!');
        }
        if !pattern.is_empty() {
            let c = clean(pattern);
            let c = if c.len() > 1 && c[0] == b'/' {
                &c[1..]
            } else {
                &c[..]
            };
            p.extend_from_slice(c);
        }
        out.push(p);
    }
    Ok(out)
}

/// One patternmatcher `Pattern`.
#[derive(Clone, Debug)]
struct Pattern {
    /// The cleaned pattern without its `!`.
    text: Vec<u8>,
    exclusion: bool,
    /// Number of `/`-separated parts (the old matcher compares that many parent parts).
    parts: usize,
    how: How,
}

/// patternmatcher's match types: plain string tests when the pattern allows, else a regexp.
#[derive(Clone, Debug)]
enum How {
    Exact,
    /// `text` ends in `**`: a byte prefix test with the rest.
    Prefix,
    /// `text` starts with `**`: a byte suffix test with the rest.
    Suffix,
    /// `None` when Go's regexp compiler rejects it: an error whenever it is used.
    Regexp(Option<Regexp>),
}

/// The error of using a pattern whose regexp does not compile: carries the pattern.
type BadPattern = Vec<u8>;

impl Pattern {
    /// patternmatcher's `compile`: the regexp translation and the choice of match type.
    fn compile(text: Vec<u8>, exclusion: bool) -> Pattern {
        let mut chars = runes(&text);
        // text/scanner skips a byte order mark at the start.
        if chars.first() == Some(&'\u{FEFF}') {
            chars.remove(0);
        }
        #[derive(PartialEq)]
        enum T {
            Exact,
            Prefix,
            Suffix,
            Regexp,
        }
        let mut t = T::Exact;
        let mut re: Vec<char> = vec!['^'];
        let push = |re: &mut Vec<char>, s: &str| re.extend(s.chars());
        let mut pos = 0;
        let mut i = 0;
        while pos < chars.len() {
            let ch = chars[pos];
            pos += 1;
            match ch {
                '*' if chars.get(pos) == Some(&'*') => {
                    pos += 1;
                    if chars.get(pos) == Some(&'/') {
                        pos += 1;
                    }
                    if pos == chars.len() {
                        if t == T::Exact {
                            t = T::Prefix;
                        } else {
                            push(&mut re, ".*");
                            t = T::Regexp;
                        }
                    } else {
                        push(&mut re, "(.*/)?");
                        t = T::Regexp;
                    }
                    if i == 0 {
                        t = T::Suffix;
                    }
                }
                '*' => {
                    push(&mut re, "[^/]*");
                    t = T::Regexp;
                }
                '?' => {
                    push(&mut re, "[^/]");
                    t = T::Regexp;
                }
                '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                    re.push('\\');
                    re.push(ch);
                }
                '\\' => {
                    re.push('\\');
                    if let Some(&next) = chars.get(pos) {
                        re.push(next);
                        pos += 1;
                        t = T::Regexp;
                    }
                }
                '[' | ']' => {
                    re.push(ch);
                    t = T::Regexp;
                }
                _ => re.push(ch),
            }
            i += 1;
        }
        let how = match t {
            T::Exact => How::Exact,
            T::Prefix => How::Prefix,
            T::Suffix => How::Suffix,
            T::Regexp => {
                re.push('$');
                How::Regexp(Regexp::new(&re).ok())
            }
        };
        Pattern {
            parts: text.split(|b| *b == b'/').count(),
            text,
            exclusion,
            how,
        }
    }

    /// patternmatcher's `Pattern.match`.
    fn matches(&self, path: &[u8]) -> Result<bool, BadPattern> {
        Ok(match &self.how {
            How::Exact => path == self.text.as_slice(),
            How::Prefix => path.starts_with(&self.text[..self.text.len().saturating_sub(2)]),
            How::Suffix => {
                let suffix = self.text.get(2..).unwrap_or_default();
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            How::Regexp(Some(re)) => re.is_match(&runes(path)),
            How::Regexp(None) => return Err(self.text.clone()),
        })
    }
}

/// patternmatcher's `PatternMatcher`.
#[derive(Clone, Debug)]
struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl Matcher {
    /// `patternmatcher.New`.
    fn new(excludes: &[Vec<u8>]) -> Result<Matcher, Error> {
        let mut patterns = Vec::with_capacity(excludes.len());
        let mut exclusions = false;
        for p in excludes {
            let p = trim_space(p);
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let exclusion = p[0] == b'!';
            if exclusion {
                if p.len() == 1 {
                    return Err(Error::Ignore("illegal exclusion pattern: \"!\"".into()));
                }
                p.remove(0);
                exclusions = true;
            }
            if bad_glob(&p) {
                return Err(Error::Ignore(format!(
                    "syntax error in pattern {:?}",
                    String::from_utf8_lossy(&p)
                )));
            }
            patterns.push(Pattern::compile(p, exclusion));
        }
        Ok(Matcher {
            patterns,
            exclusions,
        })
    }

    /// `MatchesOrParentMatches`: each pattern is tried on the path and all its parents.
    fn matches_or_parent_matches(&self, file: &[u8]) -> Result<bool, BadPattern> {
        self.matches_with(file, |_, _| true)
    }

    /// The deprecated `Matches`: a pattern of `n` parts is only tried on the first `n` parts of
    /// the parent directory.
    fn matches_deprecated(&self, file: &[u8]) -> Result<bool, BadPattern> {
        self.matches_with(file, |pattern, depth| depth == pattern.parts)
    }

    /// The shared loop of both: `try_parent(pattern, depth)` picks which parent prefixes
    /// (by number of parts) are tried.
    fn matches_with(
        &self,
        file: &[u8],
        try_parent: impl Fn(&Pattern, usize) -> bool,
    ) -> Result<bool, BadPattern> {
        let parent = dir(file);
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change an excluded path, nor an exception an included one.
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(file)?;
            if !m && parent != b"." {
                m = prefixes(parent).enumerate().any(|(i, d)| {
                    try_parent(pattern, i + 1) && pattern.matches(d).unwrap_or(false)
                });
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// `MatchesUsingParentResults`: like [`Matcher::matches_or_parent_matches`], except that
    /// with the parent directory's results a pattern is only tried on the path itself and
    /// counts as matching if it matched the parent *when the parent was checked*.
    fn matches_using_parent_results(
        &self,
        file: &[u8],
        parent: Option<&[bool]>,
    ) -> Result<(bool, Vec<bool>), BadPattern> {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut m = parent.is_some_and(|p| p.get(i) == Some(&true));
            if !m {
                if pattern.exclusion != matched {
                    continue;
                }
                m = pattern.matches(file)?;
                let dir = dir(file);
                if !m && parent.is_none() && dir != b"." {
                    m = prefixes(dir).any(|d| pattern.matches(d).unwrap_or(false));
                }
            }
            info[i] = m;
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok((matched, info))
    }

    /// `Tarballer.Do`: the set of paths the CLI puts in the context tar.
    fn tar_walk<'a>(&self, paths: &'a [WalkPath]) -> Result<HashSet<&'a [u8]>, Error> {
        struct DirState {
            pruned: bool,
            info: Vec<bool>,
        }
        let mut dirs: HashMap<&[u8], DirState> = HashMap::new();
        let mut keep = HashSet::new();
        for p in paths {
            let parent = dir(&p.path);
            let parent_state = dirs.get(parent);
            if parent_state.is_some_and(|s| s.pruned) {
                if p.is_dir {
                    let info = Vec::new();
                    dirs.insert(&p.path, DirState { pruned: true, info });
                }
                continue;
            }
            let parent_info = parent_state.map(|s| s.info.as_slice());
            let (skip, info) = self
                .matches_using_parent_results(&p.path, parent_info)
                .map_err(|pat| bad_regexp(&pat))?;
            if p.is_dir {
                // An excluded directory is still entered if an exception names something in it.
                let pruned = skip
                    && (!self.exclusions
                        || !self.patterns.iter().any(|pat| {
                            pat.exclusion
                                && [pat.text.as_slice(), b"/"]
                                    .concat()
                                    .starts_with(&[p.path.as_slice(), b"/"].concat())
                        }));
                dirs.insert(&p.path, DirState { pruned, info });
            }
            if !skip && p.in_tree {
                keep.insert(p.path.as_slice());
            }
        }
        Ok(keep)
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`.
fn prefixes(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| &path[..i])
        .chain(std::iter::once(path))
}

/// The deprecated `patternmatcher.Matches(file, patterns)` the CLI uses for build files.
fn deprecated_matches(file: &[u8], excludes: &[Vec<u8>]) -> bool {
    let Ok(pm) = Matcher::new(excludes) else {
        return false;
    };
    let file = clean(file);
    file != b"." && pm.matches_deprecated(&file).unwrap_or(false)
}

/// A path the walk visits: every tree entry, plus parent directories the tree leaves implicit.
struct WalkPath {
    path: Vec<u8>,
    is_dir: bool,
    in_tree: bool,
}

/// All walked paths, parents before children.
fn walk_paths(tree: &Tree) -> Vec<WalkPath> {
    let present: HashSet<&[u8]> = tree.entries().iter().map(|e| e.path.as_slice()).collect();
    let mut parents: HashSet<&[u8]> = HashSet::new();
    for e in tree.entries() {
        for (i, _) in e.path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            parents.insert(&e.path[..i]);
        }
    }
    let mut out: Vec<WalkPath> = tree
        .entries()
        .iter()
        .map(|e| WalkPath {
            path: e.path.clone(),
            // An entry with children can only be a directory on disk.
            is_dir: matches!(e.kind, Kind::Dir) || parents.contains(e.path.as_slice()),
            in_tree: true,
        })
        .collect();
    out.extend(
        parents
            .iter()
            .filter(|p| !present.contains(*p))
            .map(|p| WalkPath {
                path: p.to_vec(),
                is_dir: true,
                in_tree: false,
            }),
    );
    // Byte order puts every directory before its contents.
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests;
