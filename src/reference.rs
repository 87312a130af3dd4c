//! Image references (`[host[:port]/]path[:tag][@digest]`), parsed by the distribution grammar.
//!
//! Why here: the push path, the registry a credential belongs to, and the error for a bad `-t`
//! all come from the same parse, which must fail before any network traffic.

/// Docker Hub's registry host as written in references.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port); `docker.io` when the reference names none.
    pub registry: String,
    /// Repository path within the registry (`library/alpine` for Hub's official images).
    pub path: String,
    /// Tag; `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), if given.
    pub digest: Option<String>,
}

/// Why a reference is invalid.
#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {reference:?}: {why}")]
pub struct Error {
    /// The reference as given.
    pub reference: String,
    /// What is wrong, naming the part.
    pub why: String,
}

impl Reference {
    /// Parses `s` as the Docker CLI would (`-t` values, `push` arguments).
    pub fn parse(s: &str) -> Result<Reference, Error> {
        let err = |why: &str| Error {
            reference: s.to_owned(),
            why: why.to_owned(),
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let (alg, hex) = d
                    .split_once(':')
                    .ok_or_else(|| err("the digest must look like sha256:<64 hex digits>"))?;
                let ok = alg == "sha256"
                    && hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
                if !ok {
                    return Err(err(
                        "the digest must look like sha256:<64 lowercase hex digits>",
                    ));
                }
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        // The distribution grammar limits the name (not the tag or digest) to 255 characters.
        if name.len() > 255 {
            return Err(err("the name (without tag) is longer than 255 characters"));
        }
        if let Some(t) = tag {
            let valid = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid {
                return Err(err("the tag may hold only letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')"));
            }
        }
        let (registry, path) = match name.split_once('/') {
            // Docker's legacy name for Hub is the same registry (distribution normalises it).
            Some(("index.docker.io", rest)) => (DOCKER_HUB.to_owned(), rest.to_owned()),
            Some((first, rest)) if looks_like_host(first) => (first.to_owned(), rest.to_owned()),
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if registry != DOCKER_HUB && !valid_host(&registry) {
            return Err(err("the registry host is not a valid host[:port]"));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(err("the repository name must be lowercase letters, digits and separators ('.', '_', '__', '-', '/'), with no empty parts"));
        }
        let path = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            path,
            tag,
            digest,
        })
    }

    /// `registry/path` as the engine's `/images/{name}/push` wants it (Hub names shortened).
    pub fn repository(&self) -> String {
        if self.registry == DOCKER_HUB {
            // Only official images drop `library/` (`library/x/y` must keep it, or it would
            // name another repository); found by the image_reference fuzz target.
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                // A first component that looks like a host would be read back as a registry.
                _ if looks_like_host(self.path.split('/').next().unwrap_or("")) => {
                    format!("{DOCKER_HUB}/{}", self.path)
                }
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.registry, self.path)
        }
    }

    /// The key credentials for this registry are stored under (Hub's legacy URL for Docker Hub);
    /// see [`crate::auth::server_key`].
    pub fn auth_server(&self) -> String {
        crate::auth::server_key(&self.registry)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's rule for a first component that names a registry rather than a path.
fn looks_like_host(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !b
        .iter()
        .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(x))
    {
        return false;
    }
    // Separators: '.', '_', '__', or runs of '-'; never two different ones in a row.
    let mut i = 0;
    while i < b.len() {
        if b"._-".contains(&b[i]) {
            let start = i;
            while i < b.len() && b"._-".contains(&b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                return false;
            }
        } else {
            i += 1;
        }
    }
    true
}

fn valid_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    );

    #[test]
    fn valid_references() {
        let cases: &[Case] = &[
            (
                "alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "alpine:3.19",
                "docker.io",
                "library/alpine",
                Some("3.19"),
                None,
            ),
            ("user/app", "docker.io", "user/app", Some("latest"), None),
            (
                "127.0.0.1:5000/demo:v1",
                "127.0.0.1:5000",
                "demo",
                Some("v1"),
                None,
            ),
            ("localhost/a/b", "localhost", "a/b", Some("latest"), None),
            (
                "index.docker.io/user/app:1",
                "docker.io",
                "user/app",
                Some("1"),
                None,
            ),
            (
                "docker.io/alpine",
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "localhost:5000/a_b__c-d.e:T_1.x-y",
                "localhost:5000",
                "a_b__c-d.e",
                Some("T_1.x-y"),
                None,
            ),
            (
                "reg.example.com/x/y/z:1",
                "reg.example.com",
                "x/y/z",
                Some("1"),
                None,
            ),
        ];
        for (s, reg, path, tag, dig) in cases {
            let r = Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.path.as_str(),
                    r.tag.as_deref(),
                    r.digest.as_deref()
                ),
                (*reg, *path, *tag, *dig),
                "{s}"
            );
        }
        let d = format!("demo@sha256:{}", "a".repeat(64));
        let r = Reference::parse(&d).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.to_string(), d);
        assert_eq!(
            Reference::parse("127.0.0.1:5000/demo:v1")
                .unwrap()
                .repository(),
            "127.0.0.1:5000/demo"
        );
        let hostlike = Reference::parse("index.docker.io/zz.dorz/zz").unwrap();
        assert_eq!(hostlike.repository(), "docker.io/zz.dorz/zz");
        assert_eq!(Reference::parse(&hostlike.to_string()).unwrap(), hostlike);
        let nested = Reference::parse("library/zzrbirna/arl").unwrap();
        assert_eq!(nested.repository(), "library/zzrbirna/arl");
        assert_eq!(Reference::parse(&nested.to_string()).unwrap(), nested);
        assert_eq!(
            Reference::parse("alpine").unwrap().auth_server(),
            "https://index.docker.io/v1/"
        );
    }

    #[test]
    fn invalid_references_name_the_part() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("UPPER/case", "repository name"),
            ("demo:", "tag"),
            ("demo:-x", "tag"),
            ("demo:a b", "tag"),
            ("a//b", "repository name"),
            ("a/b/", "repository name"),
            ("demo@sha256:abc", "digest"),
            ("bad_host:99999999/x", "registry host"),
            ("x..y", "repository name"),
            ("-x", "repository name"),
        ];
        for (s, part) in cases {
            let e = Reference::parse(s).expect_err(s).to_string();
            assert!(e.contains(part), "{s:?}: {e}");
        }
    }
}
