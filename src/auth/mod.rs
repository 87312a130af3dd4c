//! Registry credentials: where they come from, and how they are encoded for the engine.
//!
//! Why by hand: the engine never reads the user's Docker config; the client must find the
//! credentials (flags, environment, `config.json`, credential helpers, in Docker's order) and send
//! them in headers whose exact form matters. `X-Registry-Auth` must be *padded* base64url: Docker
//! 20.10 silently ignores other forms (the push then goes out anonymous) and Podman rejects them
//! with 400. Pushing with no header at all is a 400 on Docker 20.10-28, so "no credentials" is
//! sent as `{}` (`e30=`).
//!
//! Every secret is held in a [`Secret`], whose `Debug` and `Display` print `<redacted>`; errors
//! name files, helpers and registries, never values.

pub mod config;
pub mod helper;

pub use config::{ConfigFile, Lookup};

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;

/// A string that must never be shown: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for encoding only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// Credentials for one registry, as the engine's `AuthConfig` expects them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: Secret,
    /// An OAuth identity token (used instead of the password when set).
    pub identity_token: Secret,
    /// The registry these credentials are for (`127.0.0.1:5000`, or Docker Hub's
    /// `https://index.docker.io/v1/`).
    pub server_address: String,
}

#[derive(Serialize)]
struct AuthConfig<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    password: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    serveraddress: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    identitytoken: &'a str,
}

/// The `X-Registry-Auth` value for `creds`, or for an anonymous request when `None`.
///
/// Keep the result out of logs: it decodes to the password.
pub fn registry_auth_header(creds: Option<&Credentials>) -> String {
    let Some(c) = creds else {
        return base64::engine::general_purpose::URL_SAFE.encode(b"{}");
    };
    let json = serde_json::to_vec(&AuthConfig {
        username: &c.username,
        password: c.password.expose(),
        serveraddress: &c.server_address,
        identitytoken: c.identity_token.expose(),
    })
    .unwrap_or_else(|_| b"{}".to_vec());
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// The `X-Registry-Config` value for `/build`: padded base64url of the JSON map from registry to
/// `AuthConfig`, as the Docker CLI sends it for classic builds. The engine uses it to pull base
/// images (`FROM`) from private registries. An empty map is sent as `{}` (`e30=`).
///
/// Keys should be [`server_key`]s: moby matches Docker Hub's credentials only under the exact key
/// `https://index.docker.io/v1/`, other registries by host name. Keep the result out of logs.
pub fn registry_config_header(credentials: &BTreeMap<String, Credentials>) -> String {
    let map: BTreeMap<&str, AuthConfig<'_>> = credentials
        .iter()
        .map(|(k, c)| {
            let server = if c.server_address.is_empty() {
                k.as_str()
            } else {
                c.server_address.as_str()
            };
            (
                k.as_str(),
                AuthConfig {
                    username: &c.username,
                    password: c.password.expose(),
                    serveraddress: server,
                    identitytoken: c.identity_token.expose(),
                },
            )
        })
        .collect();
    let json = serde_json::to_vec(&map).unwrap_or_else(|_| b"{}".to_vec());
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// The key Docker stores Docker Hub's credentials under.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The host names that all mean Docker Hub.
const HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The host part of a registry address as Docker compares them: without `http://` or `https://`
/// and without any path (`https://r.example.com/v2/` → `r.example.com`).
pub fn hostname(server: &str) -> &str {
    let s = server
        .strip_prefix("http://")
        .or_else(|| server.strip_prefix("https://"))
        .unwrap_or(server);
    s.split('/').next().unwrap_or(s)
}

/// The key credentials for `server` are looked up and sent under: Docker Hub's URL
/// ([`DOCKER_HUB_SERVER`]) for any of its names, the bare `host[:port]` otherwise.
pub fn server_key(server: &str) -> String {
    let host = hostname(server);
    if HUB_HOSTS.contains(&host) {
        DOCKER_HUB_SERVER.to_owned()
    } else {
        host.to_owned()
    }
}

/// Why credentials could not be looked up. The text names the file, variable or helper and the
/// registry, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Docker config (`config.json` or `DOCKER_AUTH_CONFIG`) could not be read or understood.
    #[error("cannot use the Docker config {source_name}: {why}")]
    Config {
        /// The file's path, or `$DOCKER_AUTH_CONFIG`.
        source_name: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// A credential helper is missing, failed, or answered something that is not credentials.
    #[error("credential helper docker-credential-{helper} failed for {server}: {why}")]
    Helper {
        /// The helper's name (the part after `docker-credential-`).
        helper: String,
        /// The registry asked about.
        server: String,
        /// What went wrong.
        why: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_is_padded_empty_object() {
        assert_eq!(registry_auth_header(None), "e30=");
    }

    #[test]
    fn header_is_padded_base64url_of_authconfig() {
        // A password chosen so that standard base64 would contain '+' or '/'.
        let c = Credentials {
            username: "alice".into(),
            password: Secret::new("p>?~~~>?"),
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        let h = registry_auth_header(Some(&c));
        assert!(!h.contains('+') && !h.contains('/'), "{h}");
        assert_eq!(h.len() % 4, 0, "padded: {h}");
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(&h)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"username":"alice","password":"p>?~~~>?","serveraddress":"127.0.0.1:5000"})
        );
    }

    #[test]
    fn config_header_is_a_padded_base64url_map() {
        let mut m = BTreeMap::new();
        m.insert(
            "127.0.0.1:5000".to_owned(),
            Credentials {
                username: "alice".into(),
                password: Secret::new("pw?>"),
                ..Default::default()
            },
        );
        let h = registry_config_header(&m);
        assert_eq!(h.len() % 4, 0, "padded: {h}");
        let v: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE
                .decode(&h)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"127.0.0.1:5000": {"username":"alice","password":"pw?>","serveraddress":"127.0.0.1:5000"}})
        );
        assert_eq!(registry_config_header(&BTreeMap::new()), "e30=");
    }

    #[test]
    fn server_keys_follow_docker() {
        for hub in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io/v2/",
        ] {
            assert_eq!(server_key(hub), DOCKER_HUB_SERVER, "{hub}");
        }
        assert_eq!(server_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(server_key("https://r.example.com"), "r.example.com");
        assert_eq!(server_key("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials {
            username: "u".into(),
            password: Secret::new("hunter2"),
            identity_token: Secret::new("tok123"),
            server_address: "r".into(),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("tok123"), "{d}");
    }
}
