//! TLS for PostgreSQL connections: libpq's `sslmode` and `sslrootcert`, on rustls with
//! the `ring` provider (no OpenSSL, no aws-lc).
//!
//! | `sslmode` | TLS | the certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it, else plain | checked against the CA only when one is given |
//! | `require` | always (a server without TLS is refused) | checked against the CA only when one is given |
//! | `verify-ca` | always | signed by the CA |
//! | `verify-full` | always | signed by the CA and naming the host connected to |
//!
//! The CA is `sslrootcert=FILE` (PEM), `sslrootcert=system` (the system's trusted roots,
//! `verify-full` only), or else libpq's default `~/.postgresql/root.crt` when that file
//! exists — exactly when libpq verifies. The mode and the CA are taken out of the
//! connection string before the driver parses it (`url::take_tls_params`): the driver
//! itself knows only `disable|prefer|require`, and would not verify anything.
//!
//! Under `prefer` a failed handshake is an error where libpq would retry in plain text;
//! `sslmode=disable` is the way to a plain connection. Connections over a Unix socket
//! never use TLS (PostgreSQL offers none there), whatever the mode, as in libpq.
//!
//! The connector sends the `tls-server-end-point` channel binding, so SCRAM
//! authentication over TLS is bound to the server's certificate even when the
//! certificate is not checked (`require`): a man in the middle cannot relay it.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// libpq's `sslmode` values (`allow` aside, which the driver cannot do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err("sslmode=allow is not supported: use sslmode=prefer (TLS when the server offers it) or sslmode=disable".to_owned());
            }
            other => {
                return Err(format!(
                    "sslmode=`{}` is not one of disable, prefer, require, verify-ca, verify-full",
                    other.escape_debug()
                ));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the CA that signs the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// None given, and no `~/.postgresql/root.crt`: the certificate is not checked.
    None,
    /// `sslrootcert=FILE`, or (`implicit`) libpq's default `~/.postgresql/root.crt`.
    File { path: PathBuf, implicit: bool },
    /// `sslrootcert=system`: the operating system's trusted roots.
    System,
}

/// How one store connects: the mode and the CA, checked for sense before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    pub(crate) mode: SslMode,
    pub(crate) roots: Roots,
}

impl Tls {
    /// From the connection string's `sslmode` and `sslrootcert` (as libpq reads them:
    /// the default mode is `prefer`, or `verify-full` with `sslrootcert=system`). `home`
    /// is where libpq's default `.postgresql/root.crt` would be.
    pub(crate) fn new(
        sslmode: Option<&str>,
        sslrootcert: Option<&str>,
        home: Option<&Path>,
    ) -> Result<Tls, String> {
        let roots = match sslrootcert.filter(|s| !s.is_empty()) {
            Some("system") => Roots::System,
            Some(file) => Roots::File { path: PathBuf::from(file), implicit: false },
            None => match home.map(|h| h.join(".postgresql/root.crt")) {
                Some(path) if path.exists() => Roots::File { path, implicit: true },
                _ => Roots::None,
            },
        };
        let mode = match sslmode {
            Some(value) => SslMode::parse(value)?,
            None if roots == Roots::System => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if roots == Roots::System && mode != SslMode::VerifyFull {
            return Err(format!(
                "sslmode={} may not be used with sslrootcert=system: any certificate a public CA issued would pass; use sslmode=verify-full",
                mode.as_str()
            ));
        }
        if roots == Roots::None && matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            return Err(format!(
                "sslmode={} needs the certificate of the CA that signed the server's: add sslrootcert=FILE (PEM) to the connection string, or sslrootcert=system for the system's trusted roots (there is no ~/.postgresql/root.crt, libpq's default)",
                mode.as_str()
            ));
        }
        Ok(Tls { mode, roots })
    }

    /// What the driver is told: it only knows whether TLS may, must or must not be
    /// used; the checks are the connector's.
    pub(crate) fn driver_mode(&self) -> DriverMode {
        match self.mode {
            SslMode::Disable => DriverMode::Disable,
            SslMode::Prefer => DriverMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverMode::Require,
        }
    }

    /// The connector for this mode (reading the CA file), or `None` under `disable`.
    pub(crate) fn connector(&self) -> Result<Option<MakeRustls>, String> {
        if self.mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match &self.roots {
            Roots::None => None,
            Roots::File { path, .. } => Some(Arc::new(roots_from_file(path)?)),
            Roots::System => Some(Arc::new(system_roots()?)),
        };
        let verifier = Verifier {
            roots,
            check_name: self.mode == SslMode::VerifyFull,
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // What PostgreSQL 17 requires of direct TLS (`sslnegotiation=direct`); older
        // servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Some(MakeRustls { config: Arc::new(config) }))
    }

    /// What to do about a connection that failed because of TLS; `None` when TLS is not
    /// why. Driver and rustls messages hold no part of the connection string.
    pub(crate) fn advice(&self, e: &tokio_postgres::Error) -> Option<String> {
        let mode = self.mode.as_str();
        if let Some(cert) = certificate_error(e) {
            return Some(match cert {
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                    "sslmode={mode} checks that the server's certificate names the host connected to: connect by a name the certificate lists, or use sslmode=verify-ca to check only the CA that signed it"
                ),
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => "the server's certificate is outside its validity period: renew it on the server (or check this machine's clock)".to_owned(),
                _ => format!(
                    "the server's certificate is not signed by {}: give the certificate of the CA that signed it as sslrootcert=FILE (PEM), or use sslmode=require to encrypt without checking the certificate (only on a network you trust)",
                    self.roots_shown()
                ),
            });
        }
        let cause = e.source().map(ToString::to_string).unwrap_or_default();
        if cause == "server does not support TLS" {
            return Some(format!(
                "the server does not accept TLS connections, which sslmode={mode} requires: turn `ssl` on in the server's configuration, or use sslmode=prefer (TLS when offered) or sslmode=disable, on a network you trust"
            ));
        }
        if e.to_string().starts_with("error performing TLS handshake") {
            return Some(
                "the TLS handshake with the server failed: sslmode=disable connects without TLS, on a network you trust".to_owned(),
            );
        }
        None
    }

    fn roots_shown(&self) -> String {
        match &self.roots {
            Roots::None => "a CA given (none was)".to_owned(),
            Roots::File { path, implicit: false } => format!("the CA in sslrootcert={}", path.display()),
            Roots::File { path, implicit: true } => {
                format!("the CA in {} (libpq's default sslrootcert)", path.display())
            }
            Roots::System => "a CA this system trusts (sslrootcert=system)".to_owned(),
        }
    }
}

/// The rustls certificate error somewhere in the driver error's chain.
fn certificate_error(e: &tokio_postgres::Error) -> Option<&CertificateError> {
    let mut next: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(err) = next {
        // `io::Error::source` skips the error it wraps, so look inside by hand.
        let inner = err
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn StdError + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(cert)) = candidate.downcast_ref::<rustls::Error>() {
                return Some(cert);
            }
        }
        next = err.source();
    }
    None
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read sslrootcert={shown}: {e}"))?;
    // A FIFO or a device would block or never end.
    if !meta.is_file() {
        return Err(format!("sslrootcert={shown} is not a regular file"));
    }
    let pem = std::fs::read(path).map_err(|e| format!("cannot read sslrootcert={shown}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("sslrootcert={shown} is not a PEM certificate file: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert={shown} holds a certificate that cannot be a CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "sslrootcert={shown} holds no certificate (expected PEM, `-----BEGIN CERTIFICATE-----`)"
        ));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(format!(
            "sslrootcert=system: this system has no trusted CA certificates{why}; install them (Debian: ca-certificates) or set SSL_CERT_FILE"
        ));
    }
    Ok(roots)
}

/// Checks the server's certificate as the mode says: against the CA when there is one,
/// and its names when `check_name`. The handshake's signatures are always verified,
/// so the server holds the key of the certificate it shows (which the channel binding
/// relies on).
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, self.algorithms.all)?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The driver's TLS connector factory: one rustls configuration for every connection
/// of a pool.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MakeRustls").finish_non_exhaustive()
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        // The name is checked in `connect`: the driver asks for a connector for a Unix
        // socket too (with an empty name), and never uses it there.
        Ok(RustlsConnect { domain: domain.to_owned(), config: Arc::clone(&self.config) })
    }
}

/// A connector for one host.
#[derive(Debug)]
pub(crate) struct RustlsConnect {
    domain: String,
    config: Arc<ClientConfig>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = ServerName::try_from(self.domain.as_str())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
                .to_owned();
            let connector = tokio_rustls::TlsConnector::from(self.config);
            connector.connect(name, stream).await.map(RustlsStream)
        })
    }
}

/// A TLS session over the driver's socket.
#[derive(Debug)]
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        match session.peer_certificates().and_then(<[_]>::first) {
            Some(cert) => tls_server_end_point(cert)
                .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point),
            None => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// RFC 5929's `tls-server-end-point`: the hash of the server's certificate, with the
/// hash of its signature algorithm (SHA-256 for MD5 and SHA-1). `None` for algorithms
/// without one hash (Ed25519, RSA-PSS): SCRAM then runs without channel binding.
fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04]; // 1.2.840.10045.4
    let oid = signature_algorithm(cert)?;
    let hash = if let Some(rsa) = oid.strip_prefix(RSA) {
        match rsa {
            [0x04 | 0x05 | 0x0b] => 256, // md5, sha1, sha256 WithRSAEncryption
            [0x0c] => 384,
            [0x0d] => 512,
            _ => return None,
        }
    } else if let Some(ecdsa) = oid.strip_prefix(ECDSA) {
        match ecdsa {
            [0x01] | [0x03, 0x02] => 256, // ecdsa-with-SHA1, ecdsa-with-SHA256
            [0x03, 0x03] => 384,
            [0x03, 0x04] => 512,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(match hash {
        256 => Sha256::digest(cert).to_vec(),
        384 => Sha384::digest(cert).to_vec(),
        _ => Sha512::digest(cert).to_vec(),
    })
}

/// The signature algorithm's OID (content bytes) of a DER certificate:
/// `SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, … }, … }`.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = der(cert, 0x30)?;
    let (_tbs, rest) = der(certificate, 0x30)?;
    let (algorithm, _) = der(rest, 0x30)?;
    let (oid, _) = der(algorithm, 0x06)?;
    Some(oid)
}

/// One DER element with tag `tag` at the start of `input`: its content and what follows.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let bytes = usize::from(len & 0x7f);
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let (digits, after) = rest.split_at(bytes);
        rest = after;
        digits.iter().fold(0usize, |n, &d| (n << 8) | usize::from(d))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(mode: Option<&str>, root: Option<&str>) -> Result<Tls, String> {
        Tls::new(mode, root, None)
    }

    #[test]
    fn modes_and_roots_as_libpq_reads_them() {
        let none = Roots::None;
        assert_eq!(tls(None, None), Ok(Tls { mode: SslMode::Prefer, roots: none.clone() }));
        assert_eq!(tls(Some("require"), None), Ok(Tls { mode: SslMode::Require, roots: none }));
        let file = Roots::File { path: "/ca.pem".into(), implicit: false };
        assert_eq!(tls(Some("verify-ca"), Some("/ca.pem")), Ok(Tls { mode: SslMode::VerifyCa, roots: file }));
        assert_eq!(tls(None, Some("system")), Ok(Tls { mode: SslMode::VerifyFull, roots: Roots::System }));
        assert_eq!(tls(Some("disable"), None).map(|t| t.driver_mode()), Ok(DriverMode::Disable));
        assert_eq!(tls(Some("verify-full"), Some("/x")).map(|t| t.driver_mode()), Ok(DriverMode::Require));
    }

    #[test]
    fn nonsense_is_refused_saying_what_to_write() {
        let cases = [
            (Some("verify-full"), None, "add sslrootcert=FILE"),
            (Some("verify-ca"), Some(""), "add sslrootcert=FILE"),
            (Some("require"), Some("system"), "use sslmode=verify-full"),
            (Some("allow"), None, "not supported"),
            (Some("on"), None, "not one of disable, prefer, require, verify-ca, verify-full"),
        ];
        for (mode, root, says) in cases {
            match tls(mode, root) {
                Err(e) => assert!(e.contains(says), "{mode:?} {root:?}: {e}"),
                Ok(t) => panic!("{mode:?} {root:?} accepted: {t:?}"),
            }
        }
    }

    #[test]
    fn libpqs_default_root_file_is_used_when_it_exists() {
        let home = std::env::temp_dir().join(format!("bs-tls-home-{}", std::process::id()));
        assert_eq!(Tls::new(Some("require"), None, Some(&home)).map(|t| t.roots), Ok(Roots::None));
        std::fs::create_dir_all(home.join(".postgresql")).expect("mkdir");
        std::fs::write(home.join(".postgresql/root.crt"), "").expect("write");
        let found = Tls::new(Some("verify-full"), None, Some(&home)).map(|t| t.roots);
        std::fs::remove_dir_all(&home).ok();
        assert_eq!(found, Ok(Roots::File { path: home.join(".postgresql/root.crt"), implicit: true }));
    }

    #[test]
    fn root_files_that_hold_no_ca_are_refused_before_connecting() {
        let dir = std::env::temp_dir().join(format!("bs-tls-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        for (path, says) in [
            (empty.clone(), "holds no certificate"),
            (dir.join("missing.pem"), "cannot read sslrootcert="),
            (dir.clone(), "is not a regular file"),
        ] {
            let t = Tls::new(Some("verify-full"), path.to_str(), None).expect("valid options");
            match t.connector() {
                Err(e) => assert!(e.contains(says), "{}: {e}", path.display()),
                Ok(_) => panic!("{} accepted", path.display()),
            }
        }
        std::fs::remove_dir_all(&dir).ok();
        assert!(matches!(
            tls(Some("disable"), None).map(|t| t.connector().map(|c| c.is_none())),
            Ok(Ok(true))
        ));
    }

    #[test]
    fn der_walks_to_the_signature_algorithm() {
        // SEQUENCE { SEQUENCE {}, SEQUENCE { OID 1.2.840.10045.4.3.2 }, BIT STRING }
        let cert = [
            0x30, 0x0f, 0x30, 0x00, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            0x03, 0x01, 0x00,
        ];
        assert_eq!(signature_algorithm(&cert), Some(&cert[8..16]));
        assert_eq!(tls_server_end_point(&cert).map(|h| h.len()), Some(32));
        assert_eq!(signature_algorithm(&cert[..10]), None, "truncated");
        assert_eq!(der(&[0x30, 0x82, 0x01], 0x30), None, "length runs past the end");
        assert_eq!(der(&[0x30, 0x81, 0x02, 0xaa, 0xbb, 0xcc], 0x30), Some((&[0xaa, 0xbb][..], &[0xcc][..])));
    }
}
