//! Checkout conversions asked for by `.gitattributes`, applied in memory.
//!
//! The Docker CLI sends what `git clone` checks out, and git converts some files on checkout:
//! `eol=crlf` (and `text=auto eol=crlf`) turn lone LFs into CRLF, and `ident` expands `$Id$`.
//! A fresh clone on Linux has no `core.autocrlf` and `core.eol` is LF, so nothing else changes
//! line endings. Conversions git would run through external programs (`filter=…`, such as Git
//! LFS) or re-encodings (`working-tree-encoding`) cannot be applied here; they are reported as
//! warnings, as are Git LFS pointer files (whose real content lives on an LFS server).
//!
//! The rules follow git's `convert.c` and `attr.c`: `.gitattributes` files apply to their
//! directory and below, deeper files override shallower ones, later lines override earlier ones,
//! and patterns are matched like `.gitignore` patterns (via gix-glob).

use gix_glob::pattern::Case;
use gix_glob::wildmatch::Mode as MatchMode;
use gix_glob::Pattern;
use gix_transport::bstr::{BStr, ByteSlice};

use crate::context::{Contents, Entry, Kind, Tree};

/// The state of one attribute for one path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Set,
    Unset,
    Value(String),
}

/// One line of a `.gitattributes` file: a pattern and what it assigns, in order.
struct Rule {
    pattern: Pattern,
    assigns: Assigns,
}

/// Attribute assignments in order: `(name, Some(state))`, or `(name, None)` for `!name`.
type Assigns = Vec<(String, Option<State>)>;
/// Macro definitions (`[attr]name …`): the name and what setting it assigns.
type Macros = Vec<(String, Assigns)>;

/// The rules of one `.gitattributes` file.
struct AttrFile {
    /// The directory it sits in, relative to the repository root, with a trailing `/` (empty
    /// for the root).
    dir: Vec<u8>,
    rules: Vec<Rule>,
}

/// Files larger than this are never Git LFS pointers (the spec caps pointers at 1024 bytes).
const LFS_POINTER_MAX: usize = 1024;
/// How many paths a warning lists before summarising.
const WARN_LIST: usize = 5;

/// Applies the checkout conversions of every `.gitattributes` in `tree` (the whole repository
/// tree, before any subdirectory is taken) and adds warnings for what cannot be applied.
pub(crate) fn apply(tree: Tree, warnings: &mut Vec<String>) -> Result<Tree, String> {
    let mut macros: Macros = vec![(
        "binary".into(),
        vec![
            ("diff".into(), Some(State::Unset)),
            ("merge".into(), Some(State::Unset)),
            ("text".into(), Some(State::Unset)),
        ],
    )];
    // Macros may only be defined at the top level (git ignores them elsewhere).
    if let Some(Entry {
        kind: Kind::File { data, .. },
        ..
    }) = tree.get(b".gitattributes")
    {
        let data = data.load().map_err(|e| e.to_string())?;
        for line in data.lines() {
            if let Some(def) = line.trim().strip_prefix(b"[attr]") {
                let mut words = def.fields();
                if let Some(name) = words.next() {
                    macros.push((name.to_str_lossy().into_owned(), assignments(words)));
                }
            }
        }
    }
    let mut files: Vec<AttrFile> = Vec::new();
    for e in tree.entries() {
        match &e.kind {
            Kind::File { data, .. }
                if e.path == b".gitattributes" || e.path.ends_with(b"/.gitattributes") =>
            {
                let dir = e.path[..e.path.len() - b".gitattributes".len()].to_vec();
                let data = data.load().map_err(|e| e.to_string())?;
                files.push(parse(dir, &data, &macros));
            }
            _ => {}
        }
    }
    if files.is_empty() {
        return Ok(lfs_only(tree, warnings));
    }
    // Shallow first, so that deeper files' assignments are applied last and win.
    files.sort_by_key(|f| f.dir.iter().filter(|b| **b == b'/').count());

    let mut filtered = Vec::new();
    let mut encoded = Vec::new();
    let mut pointers = Vec::new();
    let mtime = tree.mtime;
    let mut entries = tree.entries().to_vec();
    drop(tree);
    for entry in &mut entries {
        let Kind::File { data, .. } = &mut entry.kind else {
            continue;
        };
        let attrs = attributes_of(&files, &entry.path);
        let get = |name: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, s)| s.clone())
        };
        let path = String::from_utf8_lossy(&entry.path).into_owned();
        if let Some(State::Value(driver)) = get("filter") {
            filtered.push(format!("{path} (filter={driver})"));
        }
        if let Some(State::Value(enc)) = get("working-tree-encoding") {
            encoded.push(format!("{path} ({enc})"));
        }
        if is_lfs_pointer(data) {
            pointers.push(path);
        }
        let ident_set = get("ident") == Some(State::Set);
        let crlf = crlf_action(get("text").or_else(|| get("crlf")), get("eol"));
        if !ident_set && crlf.is_none() {
            // No conversion: contents stay as they are, loaded only when the tar is sent.
            continue;
        }
        let bytes = data.load().map_err(|e| e.to_string())?;
        let mut out: Option<Vec<u8>> = None;
        if ident_set {
            let id = gix_object::compute_hash(gix_hash::Kind::Sha1, gix_object::Kind::Blob, &bytes)
                .map_err(|e| format!("hashing {:?} failed: {e}", entry.path.as_bstr()))?;
            out = ident(&bytes, &id.to_string());
        }
        if let Some(action) = crlf {
            let input = out.as_deref().unwrap_or(&bytes);
            if let Some(converted) = to_crlf(input, action) {
                out = Some(converted);
            }
        }
        if let Some(o) = out {
            *data = o.into();
        }
    }
    warn(
        warnings,
        &filtered,
        "use a filter dbuild cannot run; they are sent as stored in git",
    );
    warn(
        warnings,
        &encoded,
        "ask for a working-tree-encoding dbuild does not apply; they are sent as stored in git (UTF-8)",
    );
    lfs_warning(warnings, &pointers);
    Tree::from_entries(mtime, entries).map_err(|e| e.to_string())
}

/// Without any `.gitattributes`, only LFS pointers need a look.
fn lfs_only(tree: Tree, warnings: &mut Vec<String>) -> Tree {
    let pointers: Vec<String> = tree
        .entries()
        .iter()
        .filter(|e| matches!(&e.kind, Kind::File { data, .. } if is_lfs_pointer(data)))
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect();
    lfs_warning(warnings, &pointers);
    tree
}

fn lfs_warning(warnings: &mut Vec<String>, pointers: &[String]) {
    warn(
        warnings,
        pointers,
        "are Git LFS pointer files: their content is on an LFS server dbuild does not fetch, so the \
         context holds the pointers",
    );
}

/// Adds one warning naming up to [`WARN_LIST`] of `paths`.
fn warn(warnings: &mut Vec<String>, paths: &[String], what: &str) {
    if paths.is_empty() {
        return;
    }
    let mut list = paths[..paths.len().min(WARN_LIST)].join(", ");
    if paths.len() > WARN_LIST {
        list.push_str(&format!(" and {} more", paths.len() - WARN_LIST));
    }
    let noun = if paths.len() == 1 { "file" } else { "files" };
    let what = if paths.len() == 1 {
        what.replacen("use ", "uses ", 1)
            .replacen("ask ", "asks ", 1)
            .replacen("are Git LFS pointer files", "is a Git LFS pointer file", 1)
            .replacen("their content", "its content", 1)
            .replacen("they are", "it is", 1)
            .replacen("holds the pointers", "holds the pointer", 1)
    } else {
        what.to_owned()
    };
    warnings.push(format!("{} {noun} {what}: {list}", paths.len()));
}

/// Whether `data` is a Git LFS pointer (spec: starts with the version line, at most 1024 bytes).
fn is_lfs_pointer(data: &Contents) -> bool {
    // Small blobs are in memory (see `pack::INLINE_MAX`), so this loads nothing for a fetch.
    data.len() <= LFS_POINTER_MAX as u64
        && data.load().is_ok_and(|data| {
            data.starts_with(b"version https://git-lfs.github.com/spec/v1\n")
                && data.find(b"\noid sha256:").is_some()
        })
}

/// Parses one `.gitattributes` file.
fn parse(dir: Vec<u8>, data: &[u8], macros: &Macros) -> AttrFile {
    let mut rules = Vec::new();
    for line in data.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(b"#") || line.starts_with(b"[attr]") {
            continue;
        }
        let mut words = line.fields();
        let Some(pattern) = words.next() else {
            continue;
        };
        // Negative patterns are forbidden in gitattributes, and `dir/` never matches a file;
        // git ignores both.
        if pattern.starts_with(b"!") || pattern.ends_with(b"/") {
            continue;
        }
        let Some(pattern) = Pattern::from_bytes_without_negation(pattern) else {
            continue;
        };
        let mut assigns = Vec::new();
        for (name, state) in assignments(words) {
            // A set macro assigns its attributes (after itself), as git expands it.
            let expansion = macros
                .iter()
                .find(|(m, _)| *m == name)
                .filter(|_| state == Some(State::Set))
                .map(|(_, a)| a.clone());
            assigns.push((name, state));
            if let Some(a) = expansion {
                assigns.extend(a);
            }
        }
        rules.push(Rule { pattern, assigns });
    }
    AttrFile { dir, rules }
}

/// Parses `name`, `-name`, `!name` and `name=value` words.
fn assignments<'a>(words: impl Iterator<Item = &'a [u8]>) -> Vec<(String, Option<State>)> {
    words
        .map(|w| {
            let w = w.to_str_lossy();
            if let Some(n) = w.strip_prefix('-') {
                (n.to_owned(), Some(State::Unset))
            } else if let Some(n) = w.strip_prefix('!') {
                (n.to_owned(), None)
            } else if let Some((n, v)) = w.split_once('=') {
                (n.to_owned(), Some(State::Value(v.to_owned())))
            } else {
                (w.into_owned(), Some(State::Set))
            }
        })
        .collect()
}

/// Every attribute assigned to `path`, the last assignment winning.
fn attributes_of(files: &[AttrFile], path: &[u8]) -> Vec<(String, Option<State>)> {
    let mut attrs: Vec<(String, Option<State>)> = Vec::new();
    for f in files {
        let Some(rel) = path.strip_prefix(f.dir.as_slice()) else {
            continue;
        };
        let rel: &BStr = rel.as_bstr();
        let basename = rel.rfind_byte(b'/').map(|p| p + 1);
        for rule in &f.rules {
            if rule.pattern.matches_repo_relative_path(
                rel,
                basename,
                Some(false),
                Case::Sensitive,
                MatchMode::NO_MATCH_SLASH_LITERAL,
            ) {
                for (name, state) in &rule.assigns {
                    match attrs.iter_mut().find(|(n, _)| n == name) {
                        Some(slot) => slot.1 = state.clone(),
                        None => attrs.push((name.clone(), state.clone())),
                    }
                }
            }
        }
    }
    attrs
}

/// The two checkout actions that produce CRLF on Linux (git's `CRLF_TEXT_CRLF` and
/// `CRLF_AUTO_CRLF`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crlf {
    /// `text eol=crlf` or `eol=crlf`: every lone LF becomes CRLF.
    Text,
    /// `text=auto eol=crlf`: only files git would call text and that have no CR yet.
    Auto,
}

/// git's `convert_attrs`, reduced to the question "does checkout write CRLF?". `text` (or the
/// legacy `crlf`) decides text-ness, `eol` the line ending; without `eol=crlf` the output is LF
/// (core.eol's default on Linux) and nothing changes.
fn crlf_action(text: Option<State>, eol: Option<State>) -> Option<Crlf> {
    let eol_crlf = matches!(&eol, Some(State::Value(v)) if v == "crlf");
    match text {
        Some(State::Unset) => None,
        Some(State::Value(v)) if v == "auto" => eol_crlf.then_some(Crlf::Auto),
        // `text=input` / `crlf=input` means eol=lf unless eol says otherwise.
        _ => eol_crlf.then_some(Crlf::Text),
    }
}

/// Converts lone LFs to CRLF as git's `crlf_to_worktree` does; `None` when nothing changes.
fn to_crlf(data: &[u8], action: Crlf) -> Option<Vec<u8>> {
    let (mut lone_lf, mut lone_cr, mut crlf, mut nul, mut printable, mut nonprintable) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c == b'\r' {
            if data.get(i + 1) == Some(&b'\n') {
                crlf += 1;
                i += 1;
            } else {
                lone_cr += 1;
            }
        } else if c == b'\n' {
            lone_lf += 1;
        } else if c == 127 {
            nonprintable += 1;
        } else if c < 32 {
            match c {
                // BS, HT, ESC and FF count as printable.
                8 | 9 | 27 | 12 => printable += 1,
                0 => {
                    nul += 1;
                    nonprintable += 1;
                }
                _ => nonprintable += 1,
            }
        } else {
            printable += 1;
        }
        i += 1;
    }
    // A trailing DOS end-of-file character does not make a file binary.
    if data.last() == Some(&0x1a) {
        nonprintable = nonprintable.saturating_sub(1);
    }
    if lone_lf == 0 {
        return None;
    }
    if action == Crlf::Auto {
        let binary = lone_cr > 0 || nul > 0 || (printable >> 7) < nonprintable;
        if lone_cr > 0 || crlf > 0 || binary {
            return None;
        }
    }
    let mut out = Vec::with_capacity(data.len() + lone_lf);
    let mut last = 0u8;
    for &c in data {
        if c == b'\n' && last != b'\r' {
            out.push(b'\r');
        }
        out.push(c);
        last = c;
    }
    Some(out)
}

/// Expands `$Id$` (and replaces an old `$Id: … $` expansion) with the blob id, as git's
/// `ident_to_worktree` does; `None` when nothing changes.
fn ident(data: &[u8], id: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + 48);
    let mut src = data;
    let mut changed = false;
    while let Some(dollar) = src.find_byte(b'$') {
        out.extend_from_slice(&src[..=dollar]);
        src = &src[dollar + 1..];
        if src.len() < 3 || !src.starts_with(b"Id") {
            continue;
        }
        if src[2] == b'$' {
            src = &src[3..];
        } else if src[2] == b':' {
            let Some(end) = src[3..].find_byte(b'$').map(|p| p + 3) else {
                break;
            };
            // A line break before the closing '$' means it is not a keyword.
            if src[3..end].contains(&b'\n') {
                continue;
            }
            // Spaces inside the value: an id from another version control system; keep it.
            if src.len() > 4 && end > 4 {
                if let Some(spc) = src[4..end].find_byte(b' ').map(|p| p + 4) {
                    if spc + 1 < end {
                        continue;
                    }
                }
            }
            src = &src[end + 1..];
        } else {
            continue;
        }
        out.extend_from_slice(format!("Id: {id} $").as_bytes());
        changed = true;
    }
    out.extend_from_slice(src);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_rules() {
        let v = |s: &str| Some(State::Value(s.into()));
        assert_eq!(crlf_action(Some(State::Set), v("crlf")), Some(Crlf::Text));
        assert_eq!(crlf_action(None, v("crlf")), Some(Crlf::Text));
        assert_eq!(crlf_action(v("auto"), v("crlf")), Some(Crlf::Auto));
        assert_eq!(crlf_action(Some(State::Unset), v("crlf")), None);
        assert_eq!(crlf_action(Some(State::Set), None), None);
        assert_eq!(crlf_action(v("auto"), None), None);
        assert_eq!(
            to_crlf(b"a\r\nb\nc", Crlf::Text).unwrap(),
            b"a\r\nb\r\nc".to_vec()
        );
        assert_eq!(to_crlf(b"a\r\nb\n", Crlf::Auto), None);
        assert_eq!(to_crlf(b"a\0\nb\n", Crlf::Auto), None);
        assert_eq!(
            to_crlf(b"a\nb\n", Crlf::Auto).unwrap(),
            b"a\r\nb\r\n".to_vec()
        );
        assert_eq!(to_crlf(b"no newline", Crlf::Text), None);
    }

    #[test]
    fn ident_expansion() {
        let id = "0123456789012345678901234567890123456789";
        let got = ident(b"a $Id$ b $Id: old $ c $Id: x y $ d $Id", id).unwrap();
        assert_eq!(
            got.as_bstr(),
            format!("a $Id: {id} $ b $Id: {id} $ c $Id: x y $ d $Id").as_bytes()
        );
        assert_eq!(ident(b"no keyword $ here", id), None);
        assert_eq!(ident(b"$Id: broken\nline $", id), None);
    }

    #[test]
    fn lfs_pointers() {
        assert!(is_lfs_pointer(
            &b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n"[..].into()
        ));
        assert!(!is_lfs_pointer(
            &b"version https://git-lfs.github.com/spec/v1\n"[..].into()
        ));
    }
}
