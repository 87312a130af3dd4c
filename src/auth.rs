//! Registry credentials and their encoding for the engine's `X-Registry-Auth` header.
//!
//! Why by hand: the header is a small JSON object in base64, but its exact form matters. It must
//! be *padded* base64url: Docker 20.10 silently ignores other forms (the push then goes out
//! anonymous) and Podman rejects them with 400. Pushing with no header at all is a 400 on
//! Docker 20.10-28, so "no credentials" is sent as `{}` (`e30=`).

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
