//! Repository addresses as Docker users write them: `URL[#REF[:SUBDIR]]`.
//!
//! Parsing lives apart from fetching so that the CLI can validate an address (and decide whether
//! a string is a git address at all) without touching the network, and so that the rules Docker
//! and BuildKit apply are kept in one place.

use std::path::PathBuf;

use super::Error;

/// How a repository is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `git://host[:port]/path`: the git daemon protocol (no authentication, no encryption).
    Git,
    /// `http://…`: smart HTTP.
    Http,
    /// `https://…`: smart HTTP over TLS.
    Https,
    /// `ssh://[user@]host[:port]/path` or the scp-like `[user@]host:path`.
    Ssh,
    /// `file:///path` or a plain local path to a bare or non-bare repository.
    File,
}

impl Scheme {
    /// The scheme as written in a URL, e.g. `"git"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Git => "git",
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ssh => "ssh",
            Scheme::File => "file",
        }
    }
}

/// A parsed repository address: URL plus Docker's `#ref:subdir` fragment.
#[derive(Clone)]
pub struct Address {
    /// The repository URL as given, without the fragment (may hold credentials; never print it,
    /// use `Display` or [`Address::redacted_url`]).
    url: String,
    /// How the repository is reached.
    scheme: Scheme,
    /// User name (ssh, http); `None` when absent. Passwords are never kept apart from `url`.
    user: Option<String>,
    /// Host name or address, without brackets for IPv6; `None` for local repositories.
    host: Option<String>,
    /// Port, when given explicitly.
    port: Option<u16>,
    /// Path on the server (starting with `/`, except for scp-like addresses) or the local path.
    path: String,
    /// Branch, tag, commit id or full ref; `None` means the remote's default branch.
    pub reference: Option<String>,
    /// Directory inside the repository used as the context root.
    pub subdir: Option<String>,
}

impl Address {
    /// Parses `URL[#REF[:SUBDIR]]`.
    ///
    /// Accepted URLs: `git://`, `http(s)://`, `ssh://`, `file://`, scp-like `[user@]host:path`,
    /// Docker's legacy `github.com/…` (meaning `https://github.com/…`) and local paths. The
    /// fragment is split like Docker does: at the first `#`, then at the first `:` (so a
    /// subdirectory may itself contain `:`); empty parts mean "default".
    pub fn parse(addr: &str) -> Result<Address, Error> {
        let (url, fragment) = match addr.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (addr, None),
        };
        let bad = |why: String| Error::Address {
            addr: redact_url(addr),
            why,
        };
        if url.is_empty() {
            return Err(bad("the repository URL is empty".into()));
        }
        let (reference, subdir) = match fragment {
            None => (None, None),
            Some(f) => match f.split_once(':') {
                Some((r, s)) => (Some(r), Some(s)),
                None => (Some(f), None),
            },
        };
        let reference = reference.filter(|r| !r.is_empty()).map(str::to_owned);
        if let Some(r) = &reference {
            // Same guard as moby: a ref starting with '-' would be read as an option by git.
            if r.starts_with('-') || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad(format!(
                    "{r:?} is not a valid branch, tag or commit: it must not start with '-' or contain spaces"
                )));
            }
        }
        let subdir = match subdir.map(|s| s.trim_matches('/')) {
            None | Some("") | Some(".") => None,
            Some(s) => {
                if s.split('/').any(|c| c == "..") {
                    return Err(bad(format!(
                        "subdirectory {s:?} must stay inside the repository (no '..')"
                    )));
                }
                Some(s.to_owned())
            }
        };

        let mut parsed = parse_url(url).map_err(bad)?;
        parsed.reference = reference;
        parsed.subdir = subdir;
        Ok(parsed)
    }

    /// Whether Docker would treat `s` as a git repository rather than a local directory or a
    /// plain URL: `git://`, `git@`, `ssh://` and `github.com/` prefixes, or an `http(s)://` URL
    /// whose path ends in `.git` (optionally followed by a `#fragment`).
    ///
    /// Like Docker, this does not check whether a `github.com/…` path exists locally; callers
    /// that care should check that first.
    pub fn looks_like_git(s: &str) -> bool {
        if s.starts_with("https://") || s.starts_with("http://") {
            let before_fragment = s.split_once('#').map_or(s, |(u, _)| u);
            // Docker's regexp is `\.git(?:#.+)?$`: an empty fragment does not count.
            let fragment_ok = s.split_once('#').is_none_or(|(_, f)| !f.is_empty());
            return before_fragment.ends_with(".git") && fragment_ok;
        }
        ["git://", "github.com/", "git@", "ssh://"]
            .iter()
            .any(|p| s.starts_with(p))
    }

    /// How the repository is reached.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, if the repository is remote (IPv6 addresses without brackets).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The port, if given explicitly.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The user name, if given (never the password).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The repository path on the server, or the local path for [`Scheme::File`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The local repository path, for [`Scheme::File`] addresses.
    pub fn local_path(&self) -> Option<PathBuf> {
        (self.scheme == Scheme::File).then(|| PathBuf::from(&self.path))
    }

    /// The password (or token) written in the URL's `user:password@`, still percent-encoded.
    /// Crate-internal so that it can only reach the transport that sends it.
    pub(crate) fn password(&self) -> Option<&str> {
        let (_, rest) = self.url.split_once("://")?;
        let end = rest.find(['/', '#', '?']).unwrap_or(rest.len());
        let (userinfo, _) = rest[..end].rsplit_once('@')?;
        userinfo.split_once(':').map(|(_, p)| p)
    }

    /// The address of a submodule whose `.gitmodules` URL is `url`, relative (`./`, `../`) to
    /// this repository's URL as git resolves it, or absolute. Credentials in this URL carry
    /// over to a relative one (same server). No fragment: the caller sets the commit.
    pub(crate) fn join(&self, url: &str) -> Result<Address, Error> {
        let bad = |why: String| Error::Address {
            addr: redact_url(url),
            why,
        };
        if !(url.starts_with("./") || url.starts_with("../")) {
            return parse_url(url).map_err(bad);
        }
        let mut base = self.url.trim_end_matches('/').to_owned();
        // Where the path starts: after `scheme://authority`, or after `host:` (scp-like).
        let floor = match base.find("://") {
            Some(i) => base[i + 3..].find('/').map_or(base.len(), |j| i + 3 + j),
            None if self.scheme == Scheme::Ssh => base.find(':').map_or(0, |i| i + 1),
            None => 0,
        };
        let mut rel = url;
        loop {
            if let Some(r) = rel.strip_prefix("./") {
                rel = r;
            } else if let Some(r) = rel.strip_prefix("../") {
                let cut = base[floor..].rfind('/').map(|i| floor + i).unwrap_or(floor);
                if cut == floor && base.len() == floor {
                    return Err(bad(format!(
                        "cannot resolve {url:?} against {}: too many '../'",
                        self.redacted_url()
                    )));
                }
                base.truncate(cut);
                rel = r;
            } else {
                break;
            }
        }
        let sep = if base.is_empty() || (base.len() == floor && base.ends_with(':')) {
            ""
        } else {
            "/"
        };
        let joined = format!("{base}{sep}{rel}");
        parse_url(&joined).map_err(bad)
    }

    /// The URL with any `user:password@` removed, safe to print.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted_url())?;
        if self.reference.is_some() || self.subdir.is_some() {
            write!(f, "#{}", self.reference.as_deref().unwrap_or(""))?;
            if let Some(s) = &self.subdir {
                write!(f, ":{s}")?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Address({self})")
    }
}

/// Removes `userinfo@` from a URL with a scheme (scp-like and local addresses have no secret to
/// hide: an scp-like user name is not a credential).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '#', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://{}", &rest[at + 1..]);
        }
    }
    url.to_owned()
}

/// Parses the URL part (no fragment). Errors are a reason, without the address.
fn parse_url(url: &str) -> Result<Address, String> {
    let mk = |scheme, user, host, port, path: &str| Address {
        url: url.to_owned(),
        scheme,
        user,
        host,
        port,
        path: path.to_owned(),
        reference: None,
        subdir: None,
    };

    if let Some((scheme, rest)) = url.split_once("://") {
        let scheme_lc = scheme.to_ascii_lowercase();
        let scheme = match scheme_lc.as_str() {
            "git" => Scheme::Git,
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
            "file" => Scheme::File,
            other if is_scheme_name(other) => {
                return Err(format!(
                    "unsupported scheme {other:?}: use git://, https://, http://, ssh://, file:// or a local path"
                ));
            }
            // Something like "./a://b" is a local path, not a URL.
            _ => return Ok(mk(Scheme::File, None, None, None, url)),
        };
        if scheme == Scheme::File {
            let (host, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                return Err(format!(
                    "file:// URLs must not name a host ({host:?}): use file:///path/to/repo"
                ));
            }
            if path.is_empty() {
                return Err("file:// URL has no path: use file:///path/to/repo".into());
            }
            return Ok(mk(Scheme::File, None, None, None, path));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hp)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                (Some(user.to_owned()).filter(|u| !u.is_empty()), hp)
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        if scheme == Scheme::Git && user.is_some() {
            return Err("git:// URLs cannot carry a user name or password".into());
        }
        let path = path.split('?').next().unwrap_or("");
        if path.trim_matches('/').is_empty() {
            return Err(format!(
                "no repository path after the host: use {}://{hostport}/path/to/repo",
                scheme.as_str()
            ));
        }
        return Ok(mk(scheme, user, Some(host), port, path));
    }

    // Docker's legacy shorthand: "github.com/user/repo" means https.
    if let Some(rest) = url.strip_prefix("github.com/") {
        let https = format!("https://github.com/{rest}");
        let mut a = parse_url(&https)?;
        a.url = https;
        return Ok(a);
    }

    // git's rule for scp-like syntax: a ':' before any '/' means `[user@]host:path`.
    if let Some(colon) = url.find(':') {
        let slash = url.find('/').unwrap_or(usize::MAX);
        if colon < slash && !url.starts_with('[') {
            let (userhost, path) = (&url[..colon], &url[colon + 1..]);
            let (user, host) = match userhost.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_owned()).filter(|u| !u.is_empty()), h),
                None => (None, userhost),
            };
            if host.is_empty() {
                return Err("no host before ':' in an scp-like address (user@host:path)".into());
            }
            if path.is_empty() {
                return Err("no repository path after ':' (user@host:path)".into());
            }
            return Ok(mk(Scheme::Ssh, user, Some(host.to_owned()), None, path));
        }
    }

    Ok(mk(Scheme::File, None, None, None, url))
}

/// Whether `s` is a syntactically valid URL scheme (RFC 3986: letter, then letters, digits,
/// `+`, `-`, `.`).
fn is_scheme_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Splits `host[:port]` or `[v6]:port`; the host comes back without brackets.
pub(crate) fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unterminated '[' in host {s:?}"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("unexpected {p:?} after ']' in host {s:?}"))?,
                ),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("invalid port {p:?}"))?,
        ),
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, scheme, user, host, port, path, ref, subdir)
    type Row = (
        &'static str,
        Scheme,
        Option<&'static str>,
        Option<&'static str>,
        Option<u16>,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    );

    #[test]
    fn parse_table() {
        use Scheme::*;
        #[rustfmt::skip]
        let rows: &[Row] = &[
            (
                "git://h/r.git",
                Git,
                None,
                Some("h"),
                None,
                "/r.git",
                None,
                None,
            ),
            (
                "git://h:9419/a/r",
                Git,
                None,
                Some("h"),
                Some(9419),
                "/a/r",
                None,
                None,
            ),
            (
                "git://h/r#main",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                Some("main"),
                None,
            ),
            (
                "git://h/r#:sub/dir",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                None,
                Some("sub/dir"),
            ),
            (
                "git://h/r#v1:sub",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                Some("v1"),
                Some("sub"),
            ),
            // Docker splits at the first ':' only: the rest is the subdirectory.
            (
                "git://h/r#v1:a:b",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                Some("v1"),
                Some("a:b"),
            ),
            ("git://h/r#", Git, None, Some("h"), None, "/r", None, None),
            ("git://h/r#:", Git, None, Some("h"), None, "/r", None, None),
            (
                "git://h/r#main:/",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                Some("main"),
                None,
            ),
            (
                "git://h/r#main:./",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                Some("main"),
                None,
            ),
            (
                "git://h/r#main:/sub/",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                Some("main"),
                Some("sub"),
            ),
            (
                "git://h/r#refs/pull/42/head",
                Git,
                None,
                Some("h"),
                None,
                "/r",
                Some("refs/pull/42/head"),
                None,
            ),
            (
                "git://[::1]:9418/r",
                Git,
                None,
                Some("::1"),
                Some(9418),
                "/r",
                None,
                None,
            ),
            (
                "https://u:p@h/r.git#b",
                Https,
                Some("u"),
                Some("h"),
                None,
                "/r.git",
                Some("b"),
                None,
            ),
            (
                "http://h:8080/r",
                Http,
                None,
                Some("h"),
                Some(8080),
                "/r",
                None,
                None,
            ),
            (
                "ssh://git@h:2222/o/r.git",
                Ssh,
                Some("git"),
                Some("h"),
                Some(2222),
                "/o/r.git",
                None,
                None,
            ),
            (
                "git@github.com:o/r.git#dev:x",
                Ssh,
                Some("git"),
                Some("github.com"),
                None,
                "o/r.git",
                Some("dev"),
                Some("x"),
            ),
            ("h:o/r", Ssh, None, Some("h"), None, "o/r", None, None),
            (
                "github.com/o/r",
                Https,
                None,
                Some("github.com"),
                None,
                "/o/r",
                None,
                None,
            ),
            (
                "file:///srv/r.git#t",
                File,
                None,
                None,
                None,
                "/srv/r.git",
                Some("t"),
                None,
            ),
            ("/srv/r", File, None, None, None, "/srv/r", None, None),
            ("./r:x", File, None, None, None, "./r:x", None, None),
            (
                "../r#main:d",
                File,
                None,
                None,
                None,
                "../r",
                Some("main"),
                Some("d"),
            ),
        ];
        for &(input, scheme, user, host, port, path, reference, subdir) in rows {
            let a = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(a.scheme(), scheme, "{input}");
            assert_eq!(a.user(), user, "{input}");
            assert_eq!(a.host(), host, "{input}");
            assert_eq!(a.port(), port, "{input}");
            assert_eq!(a.path(), path, "{input}");
            assert_eq!(a.reference.as_deref(), reference, "{input}");
            assert_eq!(a.subdir.as_deref(), subdir, "{input}");
        }
    }

    #[test]
    fn parse_errors() {
        for input in [
            "",
            "#main",
            "git://",
            "git://h",
            "git://h/",
            "git://h:x/r",
            "git://h:0/r",
            "git://u@h/r",
            "foo://h/r",
            "file://host/r",
            "git://h/r#-x",
            "git://h/r#a b",
            "git://h/r#main:../x",
            "git://h/r#main:a/../../x",
            "@:x",
        ] {
            assert!(Address::parse(input).is_err(), "{input:?} accepted");
        }
    }

    #[test]
    fn errors_and_display_hide_credentials() {
        let a = Address::parse("https://user:s3cret@h/r.git#main:sub").unwrap();
        assert_eq!(a.to_string(), "https://h/r.git#main:sub");
        assert!(!format!("{a:?}").contains("s3cret"));
        let e = Address::parse("https://user:s3cret@h:99999/r.git").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert_eq!(redact_url("git://h/r"), "git://h/r");
        assert_eq!(redact_url("https://a@b@h/r@x"), "https://h/r@x");
    }

    #[test]
    fn looks_like_git_table() {
        for (s, want) in [
            ("git://h/r", true),
            ("git@github.com:o/r.git", true),
            ("ssh://h/r", true),
            ("github.com/o/r", true),
            ("https://h/o/r.git", true),
            ("https://h/o/r.git#main:dir", true),
            ("http://h/o/r.git", true),
            ("https://h/o/r.git#", false),
            ("https://h/o/r", false),
            ("https://h/o/r.tar.gz", false),
            ("./dir", false),
            ("/srv/r.git", false),
        ] {
            assert_eq!(Address::looks_like_git(s), want, "{s}");
        }
    }
}
