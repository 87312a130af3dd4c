//! `POST /images/{name}/push`: the push stream, where a refused push still answers 200 OK and
//! says so only in a message. Any error message fails the push, and so does a stream that ends
//! without a digest.

use super::{query_escape, Engine, Error, Message};
use crate::auth::{registry_auth_header, Credentials};
use crate::reference::Reference;

/// What a successful push produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushOutcome {
    /// The reference pushed.
    pub reference: String,
    /// The manifest digest the registry stored (`sha256:…`).
    pub digest: String,
}

impl Engine {
    /// Pushes `reference` (which must carry a tag) with `credentials` (anonymous when `None`).
    pub async fn push(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
        mut on_message: impl FnMut(&Message),
    ) -> Result<PushOutcome, Error> {
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        let shown = format!("{}:{tag}", reference.repository());
        let path = self.path(&format!(
            "/images/{}/push?tag={}",
            reference.repository(),
            query_escape(&tag)
        ));
        let auth = registry_auth_header(credentials);
        let deadline = self.deadline();
        let (_, streaming) = self
            .send_until(
                "POST",
                path,
                vec![("x-registry-auth", auth)],
                http_body_util::Empty::<bytes::Bytes>::new(),
                deadline,
            )
            .await
            .map_err(|e| match e {
                Error::Api { message, .. } => Error::Push {
                    reference: shown.clone(),
                    message,
                },
                e => e,
            })?;
        let mut digest = None;
        streaming
            .messages(deadline, |m| {
                on_message(&m);
                if let Some(msg) = m.error_message() {
                    return Err(Error::Push {
                        reference: shown.clone(),
                        message: msg.trim().to_owned(),
                    });
                }
                if let Some(d) = m
                    .aux
                    .as_ref()
                    .and_then(|a| a.get("Digest"))
                    .and_then(|v| v.as_str())
                {
                    digest = Some(d.to_owned());
                } else if let Some(d) = m.status.as_deref().and_then(digest_in_status) {
                    // Podman reports the digest only in a status line.
                    digest.get_or_insert(d);
                }
                Ok(())
            })
            .await?;
        let digest = digest.ok_or_else(|| Error::Push {
            reference: shown.clone(),
            message:
                "the engine's push stream ended without a digest, so the push cannot be confirmed"
                    .into(),
        })?;
        Ok(PushOutcome {
            reference: shown,
            digest,
        })
    }
}

/// Finds `sha256:<64 hex>` in a status line such as `v1: digest: sha256:… size: 527`.
fn digest_in_status(s: &str) -> Option<String> {
    let i = s.find("sha256:")?;
    let hex: String = s[i + 7..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_from_status() {
        let d = "a".repeat(64);
        assert_eq!(
            digest_in_status(&format!("v1: digest: sha256:{d} size: 527")),
            Some(format!("sha256:{d}"))
        );
        assert_eq!(digest_in_status("Pushing sha256:abc"), None);
    }
}
