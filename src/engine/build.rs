//! `POST /build`: the query the Docker CLI would send, the tar as a streamed body, and the
//! progress stream turned into an outcome.

use super::{query_escape, Engine, Error, Message};
use crate::context::TarBody;

/// What to build, as the Docker CLI's `build` flags say it. Defaults match the CLI's.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Names to tag the image with (`-t`, repeatable).
    pub tags: Vec<String>,
    /// Path of the Dockerfile within the context (`-f`); `Dockerfile` when `None`.
    pub dockerfile: Option<String>,
    /// `--build-arg` pairs.
    pub build_args: Vec<(String, String)>,
    /// `--label` pairs.
    pub labels: Vec<(String, String)>,
    /// `--target` stage.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`: always try to pull a newer base image.
    pub pull: bool,
    /// `-q`: the engine sends only the image ID.
    pub quiet: bool,
    /// Remove intermediate containers after a successful build (the CLI's default, true).
    pub rm: bool,
    /// Remove intermediate containers even after a failure.
    pub force_rm: bool,
    /// `--network` mode for `RUN`.
    pub network: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--add-host` entries (`host:ip`).
    pub extra_hosts: Vec<String>,
    /// `--cache-from` images.
    pub cache_from: Vec<String>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<u64>,
    /// Whether the body is gzip-compressed (set from the context options).
    pub compressed: bool,
    /// `X-Registry-Config` value (see `auth::registry_config_header`): credentials the engine
    /// uses to pull private base images. Not sent when `None`. A [`crate::auth::Secret`], so
    /// `Debug` of the options never shows it.
    pub registry_config: Option<crate::auth::Secret>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            tags: Vec::new(),
            dockerfile: None,
            build_args: Vec::new(),
            labels: Vec::new(),
            target: None,
            no_cache: false,
            pull: false,
            quiet: false,
            rm: true,
            force_rm: false,
            network: None,
            platform: None,
            extra_hosts: Vec::new(),
            cache_from: Vec::new(),
            shm_size: None,
            compressed: false,
            registry_config: None,
        }
    }
}

impl BuildOptions {
    /// The query string (without `?`).
    pub(crate) fn query(&self, podman: bool) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        for t in &self.tags {
            q.push(("t", t.clone()));
        }
        if let Some(f) = &self.dockerfile {
            q.push(("dockerfile", f.clone()));
        }
        let map = |pairs: &[(String, String)]| {
            let m: serde_json::Map<String, serde_json::Value> = pairs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            serde_json::Value::Object(m).to_string()
        };
        if !self.build_args.is_empty() {
            q.push(("buildargs", map(&self.build_args)));
        }
        if !self.labels.is_empty() {
            q.push(("labels", map(&self.labels)));
        }
        if let Some(t) = &self.target {
            q.push(("target", t.clone()));
        }
        if self.no_cache {
            q.push(("nocache", "1".into()));
        }
        if self.pull {
            q.push(("pull", "1".into()));
        }
        if self.quiet {
            q.push(("q", "1".into()));
        }
        q.push(("rm", if self.rm { "1" } else { "0" }.into()));
        if self.force_rm {
            q.push(("forcerm", "1".into()));
        }
        if let Some(n) = &self.network {
            q.push(("networkmode", n.clone()));
        }
        if let Some(p) = &self.platform {
            q.push(("platform", p.clone()));
        }
        if !self.extra_hosts.is_empty() {
            // Docker takes a comma-separated list, Podman's compat API a JSON array.
            let v = if podman {
                serde_json::to_string(&self.extra_hosts).unwrap_or_default()
            } else {
                self.extra_hosts.join(",")
            };
            q.push(("extrahosts", v));
        }
        if !self.cache_from.is_empty() {
            q.push((
                "cachefrom",
                serde_json::to_string(&self.cache_from).unwrap_or_default(),
            ));
        }
        if let Some(s) = self.shm_size {
            q.push(("shmsize", s.to_string()));
        }
        q.iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// What a successful build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOutcome {
    /// The image ID (`sha256:…`).
    pub image_id: String,
}

impl Engine {
    /// Streams `context` to `POST /build` and reports each progress message to `on_message` as
    /// it arrives. An error message in the stream ends the build with [`Error::Build`].
    pub async fn build(
        &self,
        context: TarBody,
        options: &BuildOptions,
        mut on_message: impl FnMut(&Message),
    ) -> Result<BuildOutcome, Error> {
        let path = self.path(&format!("/build?{}", options.query(self.podman)));
        // The engine ignores Content-Type, but without it some HTTP stacks default to a form
        // encoding that corrupts larger bodies: always say it is a tar.
        let content_type = if options.compressed {
            "application/x-gzip"
        } else {
            "application/x-tar"
        };
        let mut headers = vec![("content-type", content_type.into())];
        if let Some(c) = &options.registry_config {
            headers.push(("x-registry-config", c.expose().to_owned()));
        }
        let (_, streaming) = self.send("POST", path, headers, context).await?;
        let mut image_id = None;
        let mut quiet_id = None;
        streaming
            .messages(|m| {
                on_message(&m);
                if let Some(msg) = m.error_message() {
                    return Err(Error::Build {
                        message: msg.trim().to_owned(),
                        code: m.error_detail.as_ref().and_then(|d| d.code),
                    });
                }
                if let Some(id) = m
                    .aux
                    .as_ref()
                    .and_then(|a| a.get("ID"))
                    .and_then(|v| v.as_str())
                {
                    image_id = Some(id.to_owned());
                }
                if let Some(s) = m.stream.as_deref().map(str::trim) {
                    if s.starts_with("sha256:") && !s.contains(' ') {
                        quiet_id = Some(s.to_owned());
                    }
                }
                Ok(())
            })
            .await?;
        image_id
            .or(quiet_id)
            .map(|image_id| BuildOutcome { image_id })
            .ok_or_else(|| {
                Error::Protocol(
                    "the build stream ended without an image ID: the connection may have been cut"
                        .into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_matches_the_cli() {
        let o = BuildOptions {
            tags: vec!["a:1".into(), "127.0.0.1:5000/b".into()],
            dockerfile: Some("sub/Dockerfile".into()),
            build_args: vec![("X".into(), "1 2".into())],
            extra_hosts: vec!["h:1.2.3.4".into(), "g:5.6.7.8".into()],
            no_cache: true,
            ..Default::default()
        };
        let q = o.query(false);
        assert_eq!(
            q,
            "t=a%3A1&t=127.0.0.1%3A5000%2Fb&dockerfile=sub%2FDockerfile&buildargs=%7B%22X%22%3A%221%202%22%7D&nocache=1&rm=1&extrahosts=h%3A1.2.3.4%2Cg%3A5.6.7.8"
        );
        assert!(o
            .query(true)
            .contains("extrahosts=%5B%22h%3A1.2.3.4%22%2C%22g%3A5.6.7.8%22%5D"));
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_of_options_hides_the_registry_config() {
        let o = BuildOptions {
            registry_config: Some(crate::auth::Secret::new("eyJzZWNyZXQiOiJodW50ZXIyIn0=")),
            ..Default::default()
        };
        let d = format!("{o:?}");
        assert!(!d.contains("eyJzZWNyZXQi"), "{d}");
    }
}
