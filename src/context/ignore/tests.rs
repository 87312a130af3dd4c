//! Table tests: (patterns, path, excluded?) in the style of ripgrep's `ignore` crate. The
//! expectations come from moby/patternmatcher's own tests and from running the docker CLI.

use super::*;

/// `.dockerignore` text, path, whether `matches` says excluded.
const TABLE: &[(&str, &str, bool)] = &[
    // Plain names and directories.
    ("a.txt", "a.txt", true),
    ("a.txt", "b.txt", false),
    ("a.txt", "dir/a.txt", false),
    ("dir", "dir", true),
    ("dir", "dir/a", true),
    ("dir", "dir/sub/a", true),
    ("dir", "dirt", false),
    ("dir/sub", "dir/sub/x", true),
    ("sub", "dir/sub/x", false),
    // `*` and `?` stay within one path component.
    ("*.txt", "a.txt", true),
    ("*.txt", "dir/a.txt", false),
    ("*", "anything", true),
    ("*", "dir/a", true), // through the parent
    ("*/*.txt", "dir/a.txt", true),
    ("*/*.txt", "dir/sub/a.txt", false), // no parent ends in .txt
    ("*/*.txt", "dir/x.txt/a", true),    // but a parent can match
    ("*/*.txt", "a.txt", false),
    ("?.txt", "a.txt", true),
    ("?.txt", "ab.txt", false),
    ("a?c", "a/c", false),
    ("?", "é", true), // one rune, not one byte
    // `**`.
    ("**", "x", true),
    ("**", "x/y", true),
    ("**/*.txt", "a.txt", true),
    ("**/*.txt", "d/e/a.txt", true),
    ("**/*.txt", "a.md", false),
    ("**/sub", "sub", true),
    ("**/sub", "dir/sub", true),
    ("**/sub", "dir/sub/x", true),
    ("**/sub", "dir/xsub", false),
    ("dir/**", "dir/a", true),
    ("dir/**", "dir", false),
    ("dir/**/c.txt", "dir/c.txt", true),
    ("dir/**/c.txt", "dir/x/y/c.txt", true),
    ("dir/**/c.txt", "dirc.txt", false),
    ("**.md", "x/y.md", true),
    ("**.md", "md", false),
    ("a**b", "ab", true),
    ("a**b", "ax/b", true),
    ("a**b", "axb", false),
    ("dir**", "dir with space", true),
    ("dir**", "dirt/x", true),
    ("a/**/**/b", "a/b", true),
    ("a/**/**/b", "a/x/y/b", true),
    // Classes.
    ("[a-c].txt", "b.txt", true),
    ("[a-c].txt", "d.txt", false),
    ("[^a].txt", "a.txt", false),
    ("[^a].txt", "b.txt", true),
    ("a[^x]b", "a/b", true), // a negated class is a regexp class: it crosses '/'
    ("[!a].txt", "!.txt", true),
    ("[!a].txt", "b.txt", false),
    ("[\\]]", "]", true),
    ("[[:digit:]].txt", "1.txt", true),
    ("[[:digit:]].txt", "a.txt", false),
    ("[*]", "]", true),
    ("[*]", "*", false),
    ("[?]", "?", false),
    ("[?]", "[]", true),
    ("[**]", "*", true),
    ("[**]", "(", true),
    // Exceptions, in order.
    ("*.md\n!README.md", "README.md", false),
    ("*.md\n!README.md", "x.md", true),
    ("!README.md\n*.md", "README.md", true),
    ("dir\n!dir/keep", "dir/keep", false),
    ("dir\n!dir/keep", "dir/other", true),
    ("dir\n!dir/keep\ndir", "dir/keep", true),
    ("*\n!dir", "dir/x", false),
    ("dir/a.txt\n!dir", "dir/a.txt", false),
    // Cleaning: leading '/', trailing '/', './', '../', spaces, CRLF, comments.
    ("/a.txt", "a.txt", true),
    ("dir/", "dir/x", true),
    ("./a.txt", "a.txt", true),
    ("dir/./sub", "dir/sub", true),
    ("dir//sub", "dir/sub", true),
    ("dir/../b", "b", true),
    ("../a.txt", "a.txt", false),
    ("/../a.txt", "a.txt", true),
    ("  a.txt\t", "a.txt", true),
    ("!  a.txt\n*", "a.txt", true),
    ("*\n!  a.txt", "a.txt", false),
    ("a.txt\r\n", "a.txt", true),
    ("# a.txt", "a.txt", false),
    ("# a.txt", "# a.txt", false),
    ("  # a.txt", "# a.txt", true),
    ("\u{FEFF}a.txt", "a.txt", true),
    ("x\n\u{FEFF}a.txt", "a.txt", false),
    ("\u{A0}a.txt\u{3000}", "a.txt", true),
    // Escapes are Go regexp escapes once the pattern is a regexp.
    ("\\*.txt", "*.txt", true),
    ("\\*.txt", "a.txt", false),
    ("\\#x", "#x", true),
    ("\\!x", "!x", true),
    ("dir\\sub", "dir ub", true),
    ("dir\\sub", "dirsub", false),
    ("\\d.txt", "7.txt", true),
    ("\\d.txt", "d.txt", false),
    ("a\\.b", "a.b", true),
    ("a\\.b", "axb", false),
    ("\\Qa*", "a[^/]*$", true),
    // Regexp specials that are literal, and `^` that is not.
    ("a.b", "axb", false),
    ("a+(b)|{c}$", "a+(b)|{c}$", true),
    ("^a.txt", "^a.txt", true),
    ("^a.txt", "a.txt", false),
    ("^a.tx?", "a.txt", true),
    ("^a.tx?", "^a.txt", false),
    ("a^b?", "a^bc", false),
    // Paths given unclean still match.
    ("a/b", "./a//b/", true),
    ("x", ".", false),
    // A regexp that does not compile matches nothing here (apply reports it).
    ("[z-a]", "a", false),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for (text, path, want) in TABLE {
        let di =
            DockerIgnore::parse(text.as_bytes()).unwrap_or_else(|e| panic!("parse {text:?}: {e}"));
        if di.matches(path.as_bytes()) != *want {
            failures.push(format!("{text:?} on {path:?}: want excluded={want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parse_errors() {
    for text in [
        "[", "a\\", "!", "!\n", " ! ", "!/", "[]", "a[b-]", "*[", "x\n[^]",
    ] {
        assert!(
            DockerIgnore::parse(text.as_bytes()).is_err(),
            "{text:?} accepted"
        );
    }
    let long = vec![b'a'; MAX_LINE];
    assert!(DockerIgnore::parse(&long).is_err());
    assert!(DockerIgnore::parse(&long[1..]).is_ok());
    assert!(DockerIgnore::parse(b"!!x\n\\").is_err());
}

#[test]
fn read_all_normalizes() {
    let got =
        read_all(b"\xEF\xBB\xBF# c\n a \r\n!/b/\n! ./c/../d\n\n/\n/..\n../x\n!!e\r\nlast").unwrap();
    let want: Vec<&[u8]> = vec![b"a", b"!b", b"!d", b"/", b"/", b"../x", b"!!e", b"last"];
    assert_eq!(got, want);
}

fn file(p: &str) -> Entry {
    Entry {
        path: p.into(),
        kind: Kind::File {
            data: bytes::Bytes::copy_from_slice(p.as_bytes()).into(),
            executable: false,
        },
    }
}

fn tree(ignore: &str, paths: &[&str]) -> Tree {
    let mut entries: Vec<Entry> = paths
        .iter()
        .map(|p| match p.strip_suffix('/') {
            Some(d) => Entry {
                path: d.into(),
                kind: Kind::Dir,
            },
            None => file(p),
        })
        .collect();
    entries.push(Entry {
        path: b".dockerignore".to_vec(),
        kind: Kind::File {
            data: bytes::Bytes::copy_from_slice(ignore.as_bytes()).into(),
            executable: false,
        },
    });
    Tree::from_entries(0, entries).unwrap()
}

fn paths(t: &Tree) -> Vec<String> {
    t.entries()
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect()
}

#[test]
fn apply_keeps_build_files_and_drops_excluded_dirs() {
    let t = tree(
        "*\n!dir/keep",
        &["Dockerfile", "dir/", "dir/keep", "dir/x", "y"],
    );
    let out = apply(t, "Dockerfile").unwrap();
    assert_eq!(paths(&out), [".dockerignore", "Dockerfile", "dir/keep"]);
}

#[test]
fn apply_walk_quirks() {
    // The last `dir` is skipped at `dir` itself, so `dir/a` gets in (verified with docker 28).
    let t = tree(
        "dir\n!dir/a\ndir",
        &["Dockerfile", "dir/", "dir/a", "dir/b"],
    );
    assert_eq!(
        paths(&apply(t, "Dockerfile").unwrap()),
        [".dockerignore", "Dockerfile", "dir/a"]
    );
    // `!*/a` does not reopen the excluded `dir`.
    let t = tree("dir\n!*/a", &["Dockerfile", "dir/", "dir/a"]);
    assert_eq!(
        paths(&apply(t, "Dockerfile").unwrap()),
        [".dockerignore", "Dockerfile"]
    );
}

#[test]
fn apply_implicit_parents() {
    // Trees without directory entries behave as if the directories existed.
    let t = tree("a\n!a/b/c", &["Dockerfile", "a/b/c", "a/b/d", "e/f"]);
    assert_eq!(
        paths(&apply(t, "Dockerfile").unwrap()),
        [".dockerignore", "Dockerfile", "a/b/c", "e/f"]
    );
}

#[test]
fn apply_errors() {
    let t = tree("[z-a]", &["Dockerfile"]);
    assert!(matches!(apply(t, "Dockerfile"), Err(Error::Ignore(_))));
    // Never evaluated, as in Docker: `*` already excludes everything before it.
    let t = tree("*\n[z-a]", &["Dockerfile", "x"]);
    assert!(apply(t, "Dockerfile").is_ok());
    let t = tree("**/c", &["a/b/c/Dockerfile"]);
    assert!(matches!(
        apply(t, "a/b/c/Dockerfile"),
        Err(Error::Ignore(_))
    ));
    let t = tree("", &["Dockerfile"]);
    assert!(matches!(
        apply(t, "../Dockerfile"),
        Err(Error::InvalidPath(_))
    ));
    let t = tree("x", &["Dockerfile"]);
    assert!(apply(t, "./Dockerfile").is_ok());
}

#[test]
fn apply_dockerignore_symlink_and_dir() {
    let link = |target: &str| Entry {
        path: b".dockerignore".to_vec(),
        kind: Kind::Symlink {
            target: target.into(),
        },
    };
    let t =
        Tree::from_entries(0, vec![file("Dockerfile"), file("x"), link("conf/ignore")]).unwrap();
    assert_eq!(apply(t, "Dockerfile").unwrap().len(), 3); // dangling: no patterns
    let mut conf = file("conf/ignore");
    conf.kind = Kind::File {
        data: bytes::Bytes::from_static(b"x\nconf").into(),
        executable: false,
    };
    let t = Tree::from_entries(
        0,
        vec![file("Dockerfile"), file("x"), conf, link("./conf/ignore")],
    )
    .unwrap();
    assert_eq!(
        paths(&apply(t, "Dockerfile").unwrap()),
        [".dockerignore", "Dockerfile"]
    );
    let t = Tree::from_entries(
        0,
        vec![
            file("Dockerfile"),
            Entry {
                path: b".dockerignore".to_vec(),
                kind: Kind::Dir,
            },
        ],
    )
    .unwrap();
    assert!(apply(t, "Dockerfile").is_err());
}

#[test]
fn no_panic_on_odd_input() {
    let odd: &[&[u8]] = &[
        b"\xFF",
        b"[\xFF]",
        b"\\\xFF",
        b"**\xFF",
        b"\xEF\xBB\xBF**",
        b"\\Q",
        b"\\E",
        b"\\x",
        b"[[:",
        b"[[:a",
        b"[[:^alpha:]]",
        b"\\0",
        b"\\777",
        b"\\pL",
        b"(",
        b"\0",
        b"***",
        b"**/**/",
        b"!**",
        b"[^]]",
        b"[\\d-z]",
        b"a\\b",
        b"/",
        b"!/x/..",
        b"\xC0\x80",
    ];
    for text in odd {
        if let Ok(di) = DockerIgnore::parse(text) {
            for p in [
                &b"a"[..],
                b"\xFF",
                b"a/b",
                b"",
                b"/",
                b"..",
                b"\xEF\xBF\xBD",
            ] {
                let _ = di.matches(p);
            }
        }
    }
    // An invalid byte matches an invalid byte through the regexp's replacement character.
    let di = DockerIgnore::parse(b"\xFF?").unwrap();
    assert!(di.matches(b"\xFEx"));
}

/// A cheap stand-in for the fuzzer: random patterns and paths built from the characters that
/// mean something somewhere in the pipeline must never panic.
#[test]
fn random_inputs_do_not_panic() {
    const ALPHABET: &[&[u8]] = &[
        b"a",
        b"b",
        b"/",
        b"*",
        b"**",
        b"?",
        b"[",
        b"]",
        b"^",
        b"!",
        b"-",
        b"\\",
        b".",
        b"..",
        b" ",
        b"\r",
        b"\n",
        b"#",
        b"$",
        b"(",
        b")",
        b"{",
        b"|",
        b":",
        b"[:alpha:]",
        b"\\Q",
        b"\\E",
        b"\\d",
        b"\\x4",
        b"\\1",
        b"\xFF",
        b"\xEF\xBB\xBF",
        "é".as_bytes(),
        b"\0",
    ];
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..3000 {
        let mut text = Vec::new();
        for _ in 0..next(12) {
            text.extend_from_slice(ALPHABET[next(ALPHABET.len())]);
        }
        let mut path = Vec::new();
        for _ in 0..next(8) {
            path.extend_from_slice(ALPHABET[next(ALPHABET.len())]);
        }
        if let Ok(di) = DockerIgnore::parse(&text) {
            let _ = di.matches(&path);
        }
        let t = tree(
            &String::from_utf8_lossy(&text),
            &["Dockerfile", "a/", "a/b", "a/.x", "b/c/d", "é"],
        );
        let _ = apply(t, "a/b");
    }
}
