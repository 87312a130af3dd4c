//! TLS for `tcp://` engines (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, a context's TLS data).
//!
//! Why its own module: the certificate files are plain settings every build understands, but
//! the TLS stack (rustls, behind the optional `tls` feature) is compiled only when asked for,
//! so the default library stays lean. Without the feature, a TLS setting is a clear error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::host::{Host, Io};
use super::Error;

/// Where the TLS material is, as `DOCKER_CERT_PATH` lays it out: `ca.pem` (the engine's CA),
/// `cert.pem` and `key.pem` (this client's certificate and key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) that signed the engine's certificate; `None` trusts nothing but
    /// is allowed only with `verify: false`.
    pub ca: Option<PathBuf>,
    /// This client's certificate, if the engine asks for one.
    pub cert: Option<PathBuf>,
    /// This client's private key.
    pub key: Option<PathBuf>,
    /// Check the engine's certificate (`DOCKER_TLS_VERIFY`); `false` is `DOCKER_TLS` without
    /// verification, as the Docker CLI allows.
    pub verify: bool,
}

impl TlsFiles {
    /// The files in `dir` that exist (`ca.pem`, `cert.pem`, `key.pem`).
    pub fn in_dir(dir: &Path, verify: bool) -> TlsFiles {
        let f = |n: &str| Some(dir.join(n)).filter(|p| p.exists());
        TlsFiles {
            ca: f("ca.pem"),
            cert: f("cert.pem"),
            key: f("key.pem"),
            verify,
        }
    }
}

/// Without the `tls` feature there is no TLS stack: say how to get one.
#[cfg(not(feature = "tls"))]
pub(crate) async fn connect(
    host: &Host,
    _addr: &str,
    _tls: &TlsFiles,
    _timeout: Duration,
) -> Result<Box<dyn Io>, Error> {
    Err(Error::Connect {
        host: host.to_string(),
        why: "TLS was asked for (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH or the context) but this dbuild was built without TLS support".into(),
        hint: "rebuild with `--features tls`".into(),
    })
}

#[cfg(feature = "tls")]
pub(crate) use self::rustls_impl::connect;

#[cfg(feature = "tls")]
mod rustls_impl {
    use std::sync::Arc;

    use hyper_util::rt::TokioIo;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    use super::*;

    fn bad(host: &Host, why: String, hint: &str) -> Error {
        Error::Connect {
            host: host.to_string(),
            why,
            hint: hint.into(),
        }
    }

    fn config(host: &Host, tls: &TlsFiles) -> Result<rustls::ClientConfig, Error> {
        // ring rather than aws-lc-rs: no cmake or C++ toolchain to build; rustls marks it
        // deprecated only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(host, format!("TLS setup: {e}"), "report this"))?;
        let builder = if tls.verify {
            let ca = tls.ca.as_ref().ok_or_else(|| {
                bad(
                    host,
                    "DOCKER_TLS_VERIFY is set but there is no ca.pem".into(),
                    "put the engine's CA in DOCKER_CERT_PATH/ca.pem",
                )
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| {
                bad(
                    host,
                    format!("cannot read {}: {e}", ca.display()),
                    "check DOCKER_CERT_PATH",
                )
            })? {
                let c = c.map_err(|e| {
                    bad(
                        host,
                        format!("{} is not a PEM certificate: {e}", ca.display()),
                        "check DOCKER_CERT_PATH",
                    )
                })?;
                roots.add(c).map_err(|e| {
                    bad(
                        host,
                        format!("{}: {e}", ca.display()),
                        "check DOCKER_CERT_PATH",
                    )
                })?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        };
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        bad(
                            host,
                            format!("cannot read the client certificate {}: {e}", cert.display()),
                            "check DOCKER_CERT_PATH",
                        )
                    })?;
                // The key's contents never appear in a message, only its path.
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    bad(
                        host,
                        format!("cannot read the client key {}: {e}", key.display()),
                        "check DOCKER_CERT_PATH",
                    )
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    bad(
                        host,
                        format!("the client certificate and key do not fit: {e}"),
                        "check DOCKER_CERT_PATH",
                    )
                })
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }

    /// Opens TCP, then the TLS handshake, both within `timeout`.
    pub(crate) async fn connect(
        host: &Host,
        addr: &str,
        tls: &TlsFiles,
        timeout: Duration,
    ) -> Result<Box<dyn Io>, Error> {
        let config = Arc::new(config(host, tls)?);
        let name = addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server = ServerName::try_from(name.to_owned()).map_err(|e| {
            bad(
                host,
                format!("{name:?} is not a TLS server name: {e}"),
                "check DOCKER_HOST",
            )
        })?;
        let fut = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| bad(host, e.to_string(), &host.hint(&e)))?;
            let _ = tcp.set_nodelay(true);
            tokio_rustls::TlsConnector::from(config)
                .connect(server, tcp)
                .await
                .map_err(|e| {
                    bad(
                        host,
                        format!("TLS handshake failed: {e}"),
                        "check that ca.pem is the CA that signed the engine's certificate and that the engine accepts cert.pem",
                    )
                })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(s)) => Ok(Box::new(TokioIo::new(s))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(bad(
                host,
                format!("no TLS connection after {} s", timeout.as_secs_f32()),
                "check that the engine is running and reachable",
            )),
        }
    }

    /// `DOCKER_TLS` without `DOCKER_TLS_VERIFY`: encrypted, but the engine is not checked.
    #[derive(Debug)]
    struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

    impl rustls::client::danger::ServerCertVerifier for NoVerify {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}
