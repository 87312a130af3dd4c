//! `POST /build`: the query the Docker CLI would send, the tar as a streamed body, and the
//! progress stream turned into an outcome.
//!
//! Why the version table: an engine ignores query parameters it does not know, so a `--platform`
//! sent to an engine that predates it would silently build for the wrong platform. Each
//! parameter newer than [`super::MIN_API_VERSION`] is checked against the negotiated version and
//! refused with a clear error instead.

use super::buildkit::{self, Printer};
use super::{query_escape, ApiVersion, Engine, Error, Message};
use crate::context::TarBody;

/// Which of the engine's builders runs the build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Builder {
    /// The classic builder (`version=1`, the engine's default): `stream` messages.
    #[default]
    Classic,
    /// BuildKit without a session (`version=2`, Docker 18.09+, not Podman): progress arrives as
    /// `moby.buildkit.trace` messages, rendered as `--progress=plain` text. Registry
    /// credentials, secrets and ssh mounts need a session and therefore do not work.
    BuildKit,
}

/// A `--ulimit` for the build's `RUN` containers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ulimit {
    /// Resource name, for example `nofile`.
    #[serde(rename = "Name")]
    pub name: String,
    /// Soft limit.
    #[serde(rename = "Soft")]
    pub soft: i64,
    /// Hard limit.
    #[serde(rename = "Hard")]
    pub hard: i64,
}

/// What to build, as the Docker CLI's `build` flags say it. Defaults match the CLI's.
#[derive(Clone)]
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
    /// `--network` mode for `RUN` (`none`, `host`, a network name).
    pub network: Option<String>,
    /// `--platform` (API 1.32).
    pub platform: Option<String>,
    /// `--add-host` entries (`host:ip`).
    pub extra_hosts: Vec<String>,
    /// `--cache-from` images.
    pub cache_from: Vec<String>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<u64>,
    /// `--memory`: memory limit of each `RUN` container, in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`: memory plus swap in bytes, `-1` for unlimited swap.
    pub memory_swap: Option<i64>,
    /// `--cpu-shares`: relative CPU weight.
    pub cpu_shares: Option<i64>,
    /// `--cpuset-cpus`, for example `0-1`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--cpu-period`: CFS period in microseconds.
    pub cpu_period: Option<i64>,
    /// `--cpu-quota`: CFS quota in microseconds per period.
    pub cpu_quota: Option<i64>,
    /// `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
    /// `--ulimit` entries.
    pub ulimits: Vec<Ulimit>,
    /// `--isolation` (Windows engines only; `None` is the engine's default).
    pub isolation: Option<String>,
    /// The `X-Registry-Config` header, already encoded (padded base64url of the JSON map of
    /// registry to credentials), so the engine can pull private base images. Never logged.
    pub registry_config: Option<String>,
    /// Whether the body is gzip-compressed (set from the context options).
    pub compressed: bool,
    /// The builder (`--builder`).
    pub builder: Builder,
    /// BuildKit's build ID, used to cancel it (`POST /build/cancel`); dbuild makes one up when
    /// BuildKit is used and this is `None`.
    pub build_id: Option<String>,
}

/// Every field but `registry_config`, which holds credentials and shows as `<redacted>`.
impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("tags", &self.tags)
            .field("dockerfile", &self.dockerfile)
            .field("build_args", &self.build_args)
            .field("labels", &self.labels)
            .field("target", &self.target)
            .field("no_cache", &self.no_cache)
            .field("pull", &self.pull)
            .field("quiet", &self.quiet)
            .field("rm", &self.rm)
            .field("force_rm", &self.force_rm)
            .field("network", &self.network)
            .field("platform", &self.platform)
            .field("extra_hosts", &self.extra_hosts)
            .field("cache_from", &self.cache_from)
            .field("shm_size", &self.shm_size)
            .field("memory", &self.memory)
            .field("memory_swap", &self.memory_swap)
            .field("cpu_shares", &self.cpu_shares)
            .field("cpuset_cpus", &self.cpuset_cpus)
            .field("cpuset_mems", &self.cpuset_mems)
            .field("cpu_period", &self.cpu_period)
            .field("cpu_quota", &self.cpu_quota)
            .field("cgroup_parent", &self.cgroup_parent)
            .field("ulimits", &self.ulimits)
            .field("isolation", &self.isolation)
            .field(
                "registry_config",
                &self.registry_config.as_ref().map(|_| "<redacted>"),
            )
            .field("compressed", &self.compressed)
            .field("builder", &self.builder)
            .field("build_id", &self.build_id)
            .finish()
    }
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
            memory: None,
            memory_swap: None,
            cpu_shares: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            cpu_period: None,
            cpu_quota: None,
            cgroup_parent: None,
            ulimits: Vec::new(),
            isolation: None,
            registry_config: None,
            compressed: false,
            builder: Builder::Classic,
            build_id: None,
        }
    }
}

/// Query parameters newer than [`super::MIN_API_VERSION`], with the API version that
/// introduced them (moby's `api/docs/CHANGELOG.md` and the daemon's `newImageBuildOptions`,
/// which reads `platform` only from 1.32 on). Everything else dbuild sends predates 1.30.
pub const PARAMETER_SINCE: &[(&str, ApiVersion)] = &[
    ("platform", ApiVersion(1, 32)),
    // BuildKit in the engine left experimental in Docker 18.09 (API 1.39).
    ("version", ApiVersion(1, 39)),
    ("buildid", ApiVersion(1, 39)),
];

impl BuildOptions {
    /// The query string (without `?`) for an engine speaking `version`; Podman (`podman`) takes
    /// `extrahosts` as one JSON array where Docker takes the parameter repeated.
    ///
    /// Fails when an option is set that `version` does not know, rather than letting the
    /// engine ignore it.
    pub fn query(&self, version: ApiVersion, podman: bool) -> Result<String, Error> {
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
        // As the CLI: the engine removes intermediate containers unless told not to.
        if !self.rm {
            q.push(("rm", "0".into()));
        }
        if self.force_rm {
            q.push(("forcerm", "1".into()));
        }
        if let Some(n) = self.network.as_ref().filter(|n| *n != "default") {
            q.push(("networkmode", n.clone()));
        }
        if let Some(p) = &self.platform {
            q.push(("platform", p.clone()));
        }
        if !self.extra_hosts.is_empty() {
            if podman {
                // Podman's compat API decodes one JSON array and answers 400 to a repeat.
                q.push((
                    "extrahosts",
                    serde_json::to_string(&self.extra_hosts).unwrap_or_default(),
                ));
            } else {
                // Docker reads every `extrahosts` value; it does not split on commas.
                for h in &self.extra_hosts {
                    q.push(("extrahosts", h.clone()));
                }
            }
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
        let numbers = [
            ("memory", self.memory),
            ("memswap", self.memory_swap),
            ("cpushares", self.cpu_shares),
            ("cpuperiod", self.cpu_period),
            ("cpuquota", self.cpu_quota),
        ];
        for (k, v) in numbers {
            if let Some(v) = v.filter(|v| *v != 0) {
                q.push((k, v.to_string()));
            }
        }
        let strings = [
            ("cpusetcpus", &self.cpuset_cpus),
            ("cpusetmems", &self.cpuset_mems),
            ("cgroupparent", &self.cgroup_parent),
            ("isolation", &self.isolation),
        ];
        for (k, v) in strings {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                q.push((k, v.clone()));
            }
        }
        if self.builder == Builder::BuildKit {
            q.push(("version", "2".into()));
            if let Some(id) = &self.build_id {
                q.push(("buildid", id.clone()));
            }
        }
        if !self.ulimits.is_empty() {
            q.push((
                "ulimits",
                serde_json::to_string(&self.ulimits).unwrap_or_default(),
            ));
        }
        for (name, since) in PARAMETER_SINCE {
            if version < *since && q.iter().any(|(k, _)| k == name) {
                return Err(Error::Version(format!(
                    "the build parameter {name:?} needs engine API {since} or newer, but the engine speaks {version}: upgrade the engine or leave the option out"
                )));
            }
        }
        Ok(q.iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect::<Vec<_>>()
            .join("&"))
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
    ///
    /// Dropping the returned future closes the connection; Docker then stops the build (see
    /// `docs/engine.md` for Podman, which does not).
    pub async fn build(
        &self,
        context: TarBody,
        options: &BuildOptions,
        mut on_message: impl FnMut(&Message),
    ) -> Result<BuildOutcome, Error> {
        let mut options = std::borrow::Cow::Borrowed(options);
        let buildkit = options.builder == Builder::BuildKit;
        if buildkit && self.podman {
            return Err(Error::Unsupported(
                "Podman's Docker-compatible API has no BuildKit: use the classic builder".into(),
            ));
        }
        if buildkit && options.build_id.is_none() {
            options.to_mut().build_id = Some(new_build_id());
        }
        let query = options.query(self.version, self.podman)?;
        let path = self.path(&format!("/build?{query}"));
        // Podman refuses any other Content-Type; Docker ignores it, but without it some HTTP
        // stacks default to a form encoding that corrupts larger bodies.
        let content_type = if options.compressed {
            "application/x-gzip"
        } else {
            "application/x-tar"
        };
        let mut headers = vec![("content-type", content_type.to_owned())];
        if let Some(c) = &options.registry_config {
            headers.push(("x-registry-config", c.clone()));
        }
        let deadline = self.deadline();
        // BuildKit may outlive the connection; tell it to stop if this future is dropped.
        let mut cancel = CancelOnDrop {
            engine: self.clone(),
            id: options.build_id.clone().filter(|_| buildkit),
        };
        let (_, streaming) = self
            .send_until("POST", path, headers, context, deadline)
            .await?;
        let mut image_id = None;
        let mut quiet_id = None;
        let podman = self.podman;
        let mut printer = Printer::new();
        streaming
            .messages(deadline, |m| {
                on_message(&m);
                if let Some(text) = trace(&m, &mut printer)? {
                    on_message(&Message {
                        stream: Some(text),
                        ..Default::default()
                    });
                }
                if let Some(msg) = m.error_message() {
                    let mut message = msg.trim().to_owned();
                    if buildkit && message.contains("session") {
                        message.push_str(" (BuildKit without a session cannot use registry credentials, secrets or ssh mounts: use the classic builder for this build)");
                    }
                    let code = m
                        .error_detail
                        .as_ref()
                        .and_then(|d| d.code)
                        .or_else(|| podman.then(|| exit_status(&message)).flatten());
                    return Err(Error::Build { message, code });
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
        cancel.id = None;
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

/// The rendered text of a `moby.buildkit.trace` message, `None` for other messages.
fn trace(m: &Message, printer: &mut Printer) -> Result<Option<String>, Error> {
    use base64::Engine as _;
    if m.id.as_deref() != Some("moby.buildkit.trace") {
        return Ok(None);
    }
    let Some(b64) = m.aux.as_ref().and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| Error::Protocol(format!("a BuildKit trace is not base64: {e}")))?;
    let status = buildkit::decode(&raw).map_err(|e| Error::Protocol(e.to_string()))?;
    let text = printer.render(&status);
    Ok((!text.is_empty()).then_some(text))
}

/// A build ID unique enough for one engine: time, process and a counter.
fn new_build_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "dbuild-{t:x}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Sends `POST /build/cancel?id=…` when dropped while armed (`id` set), on the current
/// runtime, without waiting for it.
struct CancelOnDrop {
    engine: Engine,
    id: Option<String>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let (Some(id), Ok(rt)) = (self.id.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let engine = self.engine.clone();
        rt.spawn(async move {
            let path = engine.path(&format!("/build/cancel?id={}", query_escape(&id)));
            let _ = engine
                .send(
                    "POST",
                    path,
                    Vec::new(),
                    http_body_util::Empty::<bytes::Bytes>::new(),
                )
                .await;
        });
    }
}

/// Podman reports a failed `RUN` only as text (`… exit status 3`); take the code from it.
fn exit_status(message: &str) -> Option<i64> {
    let i = message.rfind("exit status ")?;
    let digits: String = message[i + 12..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V41: ApiVersion = ApiVersion(1, 41);

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
        let q = o.query(V41, false).unwrap();
        assert_eq!(
            q,
            "t=a%3A1&t=127.0.0.1%3A5000%2Fb&dockerfile=sub%2FDockerfile&buildargs=%7B%22X%22%3A%221%202%22%7D&nocache=1&extrahosts=h%3A1.2.3.4&extrahosts=g%3A5.6.7.8"
        );
        assert!(o
            .query(V41, true)
            .unwrap()
            .contains("extrahosts=%5B%22h%3A1.2.3.4%22%2C%22g%3A5.6.7.8%22%5D"));
    }

    #[test]
    fn limits_rm_and_ulimits() {
        let o = BuildOptions {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            cpu_period: Some(100_000),
            cpu_quota: Some(50_000),
            rm: false,
            force_rm: true,
            network: Some("none".into()),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 10,
                hard: 20,
            }],
            ..Default::default()
        };
        assert_eq!(
            o.query(V41, false).unwrap(),
            "rm=0&forcerm=1&networkmode=none&memory=67108864&memswap=-1&cpushares=512&cpuperiod=100000&cpuquota=50000&cpusetcpus=0&ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A10%2C%22Hard%22%3A20%7D%5D"
        );
        // The defaults send nothing at all, as the CLI does.
        assert_eq!(BuildOptions::default().query(V41, false).unwrap(), "");
        let default_net = BuildOptions {
            network: Some("default".into()),
            ..Default::default()
        };
        assert_eq!(default_net.query(V41, false).unwrap(), "");
    }

    #[test]
    fn debug_hides_the_registry_config() {
        let o = BuildOptions {
            registry_config: Some("c2VjcmV0LXBhc3N3b3Jk".into()),
            ..Default::default()
        };
        let d = format!("{o:?}");
        assert!(!d.contains("c2VjcmV0") && d.contains("<redacted>"), "{d}");
    }

    #[test]
    fn a_parameter_newer_than_the_engine_is_refused() {
        let o = BuildOptions {
            platform: Some("linux/amd64".into()),
            ..Default::default()
        };
        let e = o.query(ApiVersion(1, 31), false).unwrap_err().to_string();
        assert!(
            e.contains("\"platform\" needs engine API 1.32") && e.contains("1.31"),
            "{e}"
        );
        assert_eq!(
            o.query(ApiVersion(1, 32), false).unwrap(),
            "platform=linux%2Famd64"
        );
    }

    #[test]
    fn podman_exit_status() {
        assert_eq!(
            exit_status("building at STEP \"RUN exit 3\": while running runtime: exit status 3"),
            Some(3)
        );
        assert_eq!(exit_status("no status"), None);
    }
}
