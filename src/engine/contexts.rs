//! Choosing the engine as the Docker CLI does: `--context`, `-H`, `DOCKER_HOST`,
//! `DOCKER_CONTEXT`, `currentContext` in `$DOCKER_CONFIG/config.json`, and the context store
//! (`$DOCKER_CONFIG/contexts/meta/<sha256(name)>/meta.json`, TLS files under
//! `contexts/tls/<sha256(name)>/docker/`).
//!
//! Why its own module: the precedence is easy to get subtly wrong, so it lives in one function
//! that takes the environment as an argument and is tested without touching the process's.

use std::path::{Path, PathBuf};

use super::host::{Host, DEFAULT_SOCKET};
use super::tls::TlsFiles;
use super::Error;

/// The context that means "`DOCKER_HOST`, or the default socket".
pub const DEFAULT_CONTEXT: &str = "default";

/// Where the engine is and how to secure the connection, as resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The engine's address.
    pub host: Host,
    /// TLS, for `tcp://` hosts that ask for it.
    pub tls: Option<TlsFiles>,
    /// The context that decided it (`default` when none did).
    pub context: String,
}

/// Resolves the engine from an explicit `-H`, an explicit `--context`, and `env` (a lookup of
/// environment variables), with the Docker CLI's precedence: `--context`, then `-H`, then
/// `DOCKER_HOST`, then `DOCKER_CONTEXT`, then `currentContext` in config.json, then `default`.
pub fn resolve(
    host: Option<&str>,
    context: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, Error> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    if host.is_some() && context.is_some() {
        return Err(Error::Host {
            host: host.unwrap_or_default().to_owned(),
            why: "both --host and --context are given; use one".into(),
        });
    }
    let config_dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")));
    let name = match (context, host) {
        (Some(c), _) => c.to_owned(),
        (None, Some(_)) => DEFAULT_CONTEXT.to_owned(),
        (None, None) if env("DOCKER_HOST").is_some() => DEFAULT_CONTEXT.to_owned(),
        (None, None) => env("DOCKER_CONTEXT")
            .or_else(|| config_dir.as_deref().and_then(current_context))
            .unwrap_or_else(|| DEFAULT_CONTEXT.to_owned()),
    };
    if name == DEFAULT_CONTEXT {
        let host = match host.map(str::to_owned).or_else(|| env("DOCKER_HOST")) {
            Some(h) => Host::parse(&h)?,
            None => Host::Unix(PathBuf::from(DEFAULT_SOCKET)),
        };
        // As the CLI: DOCKER_TLS_VERIFY checks the engine, DOCKER_TLS only encrypts.
        let verify = env("DOCKER_TLS_VERIFY").is_some();
        let tls =
            (matches!(host, Host::Tcp(_)) && (verify || env("DOCKER_TLS").is_some())).then(|| {
                let dir = env("DOCKER_CERT_PATH")
                    .map(PathBuf::from)
                    .or_else(|| config_dir.clone())
                    .unwrap_or_default();
                TlsFiles::in_dir(&dir, verify)
            });
        return Ok(Resolved {
            host,
            tls,
            context: name,
        });
    }
    let Some(dir) = config_dir else {
        return Err(context_error(
            &name,
            "neither DOCKER_CONFIG nor HOME is set",
        ));
    };
    load(&dir, &name)
}

fn context_error(name: &str, why: &str) -> Error {
    Error::Host {
        host: format!("context {name}"),
        why: why.to_owned(),
    }
}

/// `currentContext` from `config.json`, if set.
fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read(config_dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v.get("currentContext")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Reads a context from the store under `config_dir`.
fn load(config_dir: &Path, name: &str) -> Result<Resolved, Error> {
    let id = hex(&sha256(name.as_bytes()));
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let text = std::fs::read(&meta_path).map_err(|e| {
        context_error(
            name,
            &format!(
                "no such Docker context (cannot read {}: {e}): create it with `docker context create`, or pick another context",
                meta_path.display()
            ),
        )
    })?;
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "Endpoints", default)]
        endpoints: std::collections::HashMap<String, Endpoint>,
    }
    #[derive(serde::Deserialize)]
    struct Endpoint {
        #[serde(rename = "Host", default)]
        host: String,
        #[serde(rename = "SkipTLSVerify", default)]
        skip_tls_verify: bool,
    }
    let meta: Meta = serde_json::from_slice(&text)
        .map_err(|e| context_error(name, &format!("{} is not valid: {e}", meta_path.display())))?;
    let ep = meta
        .endpoints
        .get("docker")
        .filter(|e| !e.host.is_empty())
        .ok_or_else(|| context_error(name, "the context has no docker endpoint host"))?;
    let host = Host::parse(&ep.host)?;
    let tls_dir = config_dir
        .join("contexts")
        .join("tls")
        .join(&id)
        .join("docker");
    let files = TlsFiles::in_dir(&tls_dir, !ep.skip_tls_verify);
    let has_files = files.ca.is_some() || files.cert.is_some();
    let tls = (matches!(host, Host::Tcp(_)) && (has_files || ep.skip_tls_verify)).then_some(files);
    Ok(Resolved {
        host,
        tls,
        context: name.to_owned(),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), for context directory names only: ~40 lines instead of a dependency.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sha256_known_answers() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Two blocks.
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn precedence_without_a_store() {
        let none = env_of(&[("HOME", "/nonexistent")]);
        let r = resolve(None, None, &none).unwrap();
        assert_eq!(r.host, Host::Unix(DEFAULT_SOCKET.into()));
        assert_eq!(r.context, "default");
        // -H beats DOCKER_HOST, which beats DOCKER_CONTEXT.
        let env = env_of(&[
            ("DOCKER_HOST", "tcp://1.2.3.4:2375"),
            ("DOCKER_CONTEXT", "nope"),
        ]);
        assert_eq!(
            resolve(Some("unix:///x.sock"), None, &env).unwrap().host,
            Host::Unix("/x.sock".into())
        );
        assert_eq!(
            resolve(None, None, &env).unwrap().host,
            Host::Tcp("1.2.3.4:2375".into())
        );
        assert!(resolve(Some("unix:///x"), Some("c"), &env).is_err());
        // DOCKER_TLS_VERIFY applies to tcp only, with files from DOCKER_CERT_PATH.
        let tls = env_of(&[
            ("DOCKER_HOST", "tcp://h:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ]);
        let r = resolve(None, None, &tls).unwrap();
        assert!(r.tls.as_ref().unwrap().verify);
        assert!(resolve(Some("unix:///s"), None, &tls)
            .unwrap()
            .tls
            .is_none());
        // A named context that does not exist is an error naming the file to create.
        let e = resolve(None, Some("ghost"), &none).unwrap_err().to_string();
        assert!(
            e.contains("ghost") && e.contains("docker context create"),
            "{e}"
        );
    }
}
