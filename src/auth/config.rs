//! The Docker client configuration (`config.json`, or the same JSON in `DOCKER_AUTH_CONFIG`) and
//! the credential lookup over all sources, in Docker's order of precedence.
//!
//! Why here and read-only: dbuild must find the credentials a Docker user already has, but never
//! writes a file, so unlike the Docker CLI it never creates or rewrites `config.json`. Parsing goes
//! through `serde_json::Value` because serde's typed errors quote the offending value, which
//! here would be a password.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{helper, server_key, Credentials, Error, Secret};

/// The environment variable CI systems (GitLab, testcontainers) put a whole config.json in.
pub const DOCKER_AUTH_CONFIG: &str = "DOCKER_AUTH_CONFIG";

/// One `auths` entry, decoded.
#[derive(Clone, Debug, Default)]
struct AuthEntry {
    username: String,
    password: Secret,
    identity_token: Secret,
}

/// A parsed Docker client configuration: only the parts that hold or point to credentials.
#[derive(Clone, Debug, Default)]
pub struct ConfigFile {
    source_name: String,
    auths: BTreeMap<String, AuthEntry>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

impl ConfigFile {
    /// Parses `json`; `source_name` (a path, or `$DOCKER_AUTH_CONFIG`) names it in errors.
    pub fn parse(source_name: &str, json: &[u8]) -> Result<ConfigFile, Error> {
        let fail = |why: String| Error::Config {
            source_name: source_name.to_owned(),
            why,
        };
        // Syntax errors carry only a position, never the text around it.
        let v: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| fail(format!("it is not valid JSON ({e}): fix or remove it")))?;
        let root = v
            .as_object()
            .ok_or_else(|| fail("it is not a JSON object: fix or remove it".into()))?;
        let mut cfg = ConfigFile {
            source_name: source_name.to_owned(),
            ..Default::default()
        };
        if let Some(auths) = root.get("auths").filter(|a| !a.is_null()) {
            let auths = auths
                .as_object()
                .ok_or_else(|| fail("\"auths\" is not an object".into()))?;
            for (server, entry) in auths {
                let e = entry
                    .as_object()
                    .ok_or_else(|| fail(format!("auths[{server:?}] is not an object")))?;
                let text = |name: &str| -> Result<String, Error> {
                    match e.get(name) {
                        None | Some(serde_json::Value::Null) => Ok(String::new()),
                        Some(serde_json::Value::String(s)) => Ok(s.clone()),
                        Some(_) => Err(fail(format!("auths[{server:?}].{name} is not a string"))),
                    }
                };
                let mut entry = AuthEntry {
                    username: text("username")?,
                    password: Secret::new(text("password")?),
                    identity_token: Secret::new(text("identitytoken")?),
                };
                let auth = text("auth")?;
                if !auth.is_empty() {
                    // Like the Docker CLI: `auth` (base64 of user:password) wins over the fields.
                    let (u, p) = decode_auth(&auth).ok_or_else(|| {
                        fail(format!(
                            "auths[{server:?}].auth is not base64 of user:password: log in again or fix it"
                        ))
                    })?;
                    entry.username = u;
                    entry.password = Secret::new(p);
                }
                cfg.auths.insert(server.clone(), entry);
            }
        }
        if let Some(helpers) = root.get("credHelpers").filter(|a| !a.is_null()) {
            let helpers = helpers
                .as_object()
                .ok_or_else(|| fail("\"credHelpers\" is not an object".into()))?;
            for (server, h) in helpers {
                let h = h
                    .as_str()
                    .ok_or_else(|| fail(format!("credHelpers[{server:?}] is not a string")))?;
                if !h.is_empty() {
                    cfg.cred_helpers.insert(server.clone(), h.to_owned());
                }
            }
        }
        match root.get("credsStore") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if s.is_empty() => {}
            Some(serde_json::Value::String(s)) => cfg.creds_store = Some(s.clone()),
            Some(_) => return Err(fail("\"credsStore\" is not a string".into())),
        }
        Ok(cfg)
    }

    /// Reads and parses the file at `path`; `Ok(None)` when there is no such file.
    pub fn read(path: &Path) -> Result<Option<ConfigFile>, Error> {
        match std::fs::read(path) {
            Ok(bytes) => ConfigFile::parse(&path.display().to_string(), &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Config {
                source_name: path.display().to_string(),
                why: format!("cannot read it: {e}"),
            }),
        }
    }

    /// Where this configuration came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The helper responsible for `key` (a [`server_key`]): its `credHelpers` entry, else
    /// `credsStore`.
    fn helper_for(&self, key: &str) -> Option<&str> {
        self.cred_helpers
            .get(key)
            .or_else(|| {
                self.cred_helpers
                    .iter()
                    .find(|(k, _)| server_key(k) == key)
                    .map(|(_, h)| h)
            })
            .or(self.creds_store.as_ref())
            .map(String::as_str)
    }

    /// The `auths` entry for `key`: exact match first, then by host name, as Docker does.
    fn auth_for(&self, key: &str) -> Option<Credentials> {
        let (_, e) = self
            .auths
            .get_key_value(key)
            .or_else(|| self.auths.iter().find(|(k, _)| server_key(k) == key))?;
        entry_credentials(e, key)
    }

    /// Credentials for the registry `key` (a [`server_key`]) from this configuration alone.
    pub fn get(&self, key: &str) -> Result<Option<Credentials>, Error> {
        match self.helper_for(key) {
            Some(h) => helper::get(h, key),
            None => Ok(self.auth_for(key)),
        }
    }

    /// Every credential this configuration holds, keyed by [`server_key`], as the Docker CLI
    /// gathers them for a classic build: the credential store's (or else the `auths`), then each
    /// `credHelpers` entry overriding. A helper that fails is reported to `warn` and skipped.
    pub fn all(&self, warn: &mut dyn FnMut(Error)) -> BTreeMap<String, Credentials> {
        let mut out = BTreeMap::new();
        let mut add = |server: &str, c: Option<Credentials>| {
            if let Some(mut c) = c {
                c.server_address = server_key(server);
                out.insert(server_key(server), c);
            }
        };
        if let Some(store) = &self.creds_store {
            match helper::list(store) {
                Ok(servers) => {
                    for s in servers {
                        match helper::get(store, &s) {
                            Ok(c) => add(&s, c),
                            Err(e) => warn(e),
                        }
                    }
                }
                Err(e) => warn(e),
            }
        } else {
            for (server, e) in &self.auths {
                add(server, entry_credentials(e, server));
            }
        }
        for (server, h) in &self.cred_helpers {
            match helper::get(h, server) {
                Ok(c) => add(server, c),
                Err(e) => warn(e),
            }
        }
        out
    }
}

fn entry_credentials(e: &AuthEntry, key: &str) -> Option<Credentials> {
    if e.username.is_empty() && e.password.is_empty() && e.identity_token.is_empty() {
        // An empty entry is a placeholder (`docker login` with a credsStore writes those).
        return None;
    }
    Some(Credentials {
        username: e.username.clone(),
        password: e.password.clone(),
        identity_token: e.identity_token.clone(),
        server_address: key.to_owned(),
    })
}

/// Decodes `auth` (standard base64, padded or not) into user and password.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim()))
        .ok()?;
    let s = String::from_utf8(b).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.trim_end_matches('\0').to_owned()))
}

/// The path of the user's `config.json`: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`; `None` when neither variable is set.
pub fn config_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

/// Every credential source, queried in Docker's order of precedence: explicit credentials (flags
/// or the tool's own variables), then `DOCKER_AUTH_CONFIG`, then `config.json`.
#[derive(Clone, Debug, Default)]
pub struct Lookup {
    /// Credentials given explicitly, for the registries being pushed to.
    pub explicit: Option<Credentials>,
    /// The configuration in `DOCKER_AUTH_CONFIG`, if set.
    pub env: Option<ConfigFile>,
    /// The configuration in `config.json`, if it exists.
    pub file: Option<ConfigFile>,
}

impl Lookup {
    /// Reads `DOCKER_AUTH_CONFIG` and `config.json` (see [`config_path`]); writes nothing.
    pub fn from_env(explicit: Option<Credentials>) -> Result<Lookup, Error> {
        let env = match std::env::var(DOCKER_AUTH_CONFIG) {
            Ok(v) if !v.trim().is_empty() => Some(ConfigFile::parse(
                &format!("${DOCKER_AUTH_CONFIG}"),
                v.as_bytes(),
            )?),
            _ => None,
        };
        let file = match config_path() {
            Some(p) => ConfigFile::read(&p)?,
            None => None,
        };
        Ok(Lookup {
            explicit,
            env,
            file,
        })
    }

    /// Credentials for pushing to `registry` (a reference's host, or any of Docker's spellings of
    /// a server); `Ok(None)` means anonymous.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        let key = server_key(registry);
        if let Some(c) = &self.explicit {
            return Ok(Some(Credentials {
                server_address: key,
                ..c.clone()
            }));
        }
        for cfg in [&self.env, &self.file].into_iter().flatten() {
            if let Some(c) = cfg.get(&key)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Everything for `X-Registry-Config`: all of `config.json`, overridden by
    /// `DOCKER_AUTH_CONFIG`, overridden by the explicit credentials for each of `registries`
    /// (the registries being pushed to). Failing helpers are reported to `warn` and skipped.
    pub fn all_credentials(
        &self,
        registries: &[String],
        mut warn: impl FnMut(Error),
    ) -> BTreeMap<String, Credentials> {
        let mut out = BTreeMap::new();
        for cfg in [&self.file, &self.env].into_iter().flatten() {
            out.extend(cfg.all(&mut warn));
        }
        if let Some(c) = &self.explicit {
            for r in registries {
                let key = server_key(r);
                out.insert(
                    key.clone(),
                    Credentials {
                        server_address: key,
                        ..c.clone()
                    },
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_decode_auth_fields_and_tokens() {
        let json = format!(
            r#"{{"auths":{{
                "https://index.docker.io/v1/":{{"auth":"{}"}},
                "http://127.0.0.1:5000/v2/":{{"username":"bob","password":"pw2"}},
                "tok.example.com":{{"username":"u","identitytoken":"idtok"}},
                "empty.example.com":{{}}
            }}}}"#,
            b64("alice:pw:with:colons")
        );
        let cfg = ConfigFile::parse("test", json.as_bytes()).unwrap();
        let hub = cfg.get(super::super::DOCKER_HUB_SERVER).unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.expose()),
            ("alice", "pw:with:colons")
        );
        let local = cfg.get("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (local.username.as_str(), local.password.expose()),
            ("bob", "pw2")
        );
        assert_eq!(
            cfg.get("tok.example.com")
                .unwrap()
                .unwrap()
                .identity_token
                .expose(),
            "idtok"
        );
        assert!(cfg.get("empty.example.com").unwrap().is_none());
        assert!(cfg.get("other.example.com").unwrap().is_none());
        let all = cfg.all(&mut |e| panic!("{e}"));
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            [
                "127.0.0.1:5000",
                "https://index.docker.io/v1/",
                "tok.example.com"
            ]
        );
    }

    #[test]
    fn docker_io_key_serves_hub() {
        let json = format!(r#"{{"auths":{{"docker.io":{{"auth":"{}"}}}}}}"#, b64("a:b"));
        let cfg = ConfigFile::parse("test", json.as_bytes()).unwrap();
        assert!(cfg
            .get(&server_key("registry-1.docker.io"))
            .unwrap()
            .is_some());
    }

    #[test]
    fn broken_configs_name_the_part_never_the_value() {
        let secret = "S3cr3t-Never-Shown";
        let cases = [
            format!(r#"{{"auths":{{"r":{{"auth":"{secret}"}}}}}}"#),
            format!(r#"{{"auths":{{"r":{{"password":["{secret}"]}}}}}}"#),
            format!(r#"{{"auths":{{"r":{{"auth":"{secret}"#),
            format!(r#"{{"auths":"{secret}"}}"#),
            format!(r#"{{"credsStore":["{secret}"]}}"#),
            format!(r#""{secret}""#),
            secret.to_string(),
        ];
        for json in &cases {
            let e = ConfigFile::parse("/x/config.json", json.as_bytes())
                .expect_err(json)
                .to_string();
            assert!(
                e.starts_with("cannot use the Docker config /x/config.json: "),
                "{e}"
            );
            assert!(!e.contains(secret) && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn missing_file_is_no_config_and_nothing_is_created() {
        let dir = std::env::temp_dir().join(format!("dbuild-auth-none-{}", std::process::id()));
        let p = dir.join("config.json");
        assert!(ConfigFile::read(&p).unwrap().is_none());
        assert!(!dir.exists());
    }

    #[test]
    fn explicit_credentials_win_and_get_the_server_key() {
        let json = format!(
            r#"{{"auths":{{"r.example.com":{{"auth":"{}"}}}}}}"#,
            b64("f:g")
        );
        let l = Lookup {
            explicit: Some(Credentials {
                username: "x".into(),
                password: Secret::new("y"),
                ..Default::default()
            }),
            env: None,
            file: Some(ConfigFile::parse("t", json.as_bytes()).unwrap()),
        };
        let c = l.credentials_for("r.example.com").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.server_address.as_str()),
            ("x", "r.example.com")
        );
        let all = l.all_credentials(&["docker.io".into()], |e| panic!("{e}"));
        assert_eq!(all["r.example.com"].username, "f");
        assert_eq!(all[super::super::DOCKER_HUB_SERVER].username, "x");
    }

    #[test]
    fn env_config_wins_over_the_file() {
        let file = format!(
            r#"{{"auths":{{"r.example.com":{{"auth":"{}"}}}}}}"#,
            b64("f:g")
        );
        let env = format!(
            r#"{{"auths":{{"r.example.com":{{"auth":"{}"}}}}}}"#,
            b64("e:h")
        );
        let l = Lookup {
            explicit: None,
            env: Some(ConfigFile::parse("env", env.as_bytes()).unwrap()),
            file: Some(ConfigFile::parse("file", file.as_bytes()).unwrap()),
        };
        assert_eq!(
            l.credentials_for("r.example.com")
                .unwrap()
                .unwrap()
                .username,
            "e"
        );
        assert_eq!(
            l.all_credentials(&[], |e| panic!("{e}"))["r.example.com"].username,
            "e"
        );
    }

    #[test]
    fn debug_of_every_type_holding_credentials_is_redacted() {
        let json = format!(
            r#"{{"auths":{{"a":{{"auth":"{}"}},"b":{{"username":"u","password":"PwField-77"}},"c":{{"identitytoken":"IdTok-88"}}}}}}"#,
            b64("user:AuthPw-66")
        );
        let cfg = ConfigFile::parse("t", json.as_bytes()).unwrap();
        let l = Lookup {
            explicit: Some(Credentials {
                username: "x".into(),
                password: Secret::new("Explicit-99"),
                identity_token: Secret::new("ExplicitTok-55"),
                server_address: "r".into(),
            }),
            env: Some(cfg.clone()),
            file: Some(cfg.clone()),
        };
        let all = l.all_credentials(&["r".into()], |e| panic!("{e}"));
        let shown = format!("{l:?} {cfg:?} {all:?} {:#?}", l.credentials_for("a"));
        for s in [
            "AuthPw-66",
            "PwField-77",
            "IdTok-88",
            "Explicit-99",
            "ExplicitTok-55",
        ] {
            assert!(!shown.contains(s), "{s} in {shown}");
        }
        assert!(!shown.contains(&b64("user:AuthPw-66")), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn a_missing_helper_is_one_clear_line() {
        let cfg = ConfigFile::parse(
            "t",
            br#"{"credHelpers":{"r.example.com":"dbuild-test-no-such-helper"}}"#,
        )
        .unwrap();
        let e = cfg.get("r.example.com").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-dbuild-test-no-such-helper")
                && e.contains("not on PATH")
                && e.contains("r.example.com"),
            "{e}"
        );
        let mut warned = Vec::new();
        assert!(cfg.all(&mut |e| warned.push(e.to_string())).is_empty());
        assert_eq!(warned.len(), 1);
    }
}
