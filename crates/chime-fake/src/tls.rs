//! An HTTPS front for the fake (or any local HTTP server), with a throw-away root CA.
//!
//! Production clients talk to Chime and SQS over TLS, and the first handshake is a large part
//! of a cold start: a plain-HTTP fake hides it. [`TestCa::generate`] makes a fresh root CA and
//! a server certificate for `127.0.0.1` and `localhost` (ECDSA P-256, in memory, never reused);
//! [`TlsFront::start`] accepts TLS on a local port and relays each connection, byte for byte,
//! to the upstream HTTP server on its own TCP connection. Faults of the upstream (latency,
//! errors, dropped connections) reach the client unchanged: a connection the fake drops closes
//! the TLS connection too.
//!
//! Clients trust the CA through `SSL_CERT_FILE` (rustls-based clients here,
//! `chime_sync_aws::http`), `NODE_EXTRA_CA_CERTS` (Node.js) or `AWS_CA_BUNDLE` (the AWS CLI);
//! [`TestCa::write_pem`] writes the file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chime_identity_fake::{FakeChime, FakeConfig, TestCa, TlsFront};
//!
//! let fake = FakeChime::start(FakeConfig::new()).await?;
//! let ca = TestCa::generate()?;
//! ca.write_pem(std::path::Path::new("target/test-ca.pem"))?;
//! let https = TlsFront::start(fake.addr(), &ca).await?;
//! // SSL_CERT_FILE=target/test-ca.pem, endpoint https.endpoint_url()
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// The test CA or the HTTPS front could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsFrontError {
    #[error("cannot make the test certificates: {0}")]
    Certificates(String),
    #[error("cannot write the test root to {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for TLS on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A throw-away root CA and the server certificate it issued for `127.0.0.1` and `localhost`.
pub struct TestCa {
    ca_pem: String,
    server: Arc<ServerConfig>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA and server certificate; the keys live only in this value.
    pub fn generate() -> Result<Self, TlsFrontError> {
        let tls = |e: rcgen::Error| TlsFrontError::Certificates(e.to_string());
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(
            DnType::CommonName,
            "chime-identity-fake throw-away test root",
        );
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(tls)?).map_err(tls)?;

        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(tls)?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        leaf.distinguished_name
            .push(DnType::CommonName, "chime-identity-fake");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().map_err(tls)?;
        let leaf_cert = leaf.signed_by(&leaf_key, &ca).map_err(tls)?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFrontError::Certificates(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![leaf_cert.der().clone(), ca.der().clone()], key)
            .map_err(|e| TlsFrontError::Certificates(e.to_string()))?;
        Ok(Self {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        })
    }

    /// The root certificate, PEM: what a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`ca_pem`](Self::ca_pem) to `path`, for `SSL_CERT_FILE` or `NODE_EXTRA_CA_CERTS`.
    pub fn write_pem(&self, path: &Path) -> Result<(), TlsFrontError> {
        std::fs::write(path, &self.ca_pem).map_err(|source| TlsFrontError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// A running HTTPS front. Dropping it stops accepting and closes the relayed connections.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// Accepts TLS on an ephemeral port of 127.0.0.1 and relays to `upstream` (plain HTTP).
    pub async fn start(upstream: SocketAddr, ca: &TestCa) -> Result<Self, TlsFrontError> {
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| TlsFrontError::Bind { addr: bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| TlsFrontError::Bind { addr: bind, source })?;
        let acceptor = TlsAcceptor::from(ca.server.clone());
        let task = tokio::spawn(accept_loop(listener, acceptor, upstream));
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:{port}`: what to give a client as its endpoint.
    pub fn endpoint_url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, upstream: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(relay(stream, acceptor.clone(), upstream));
                }
                Err(err) => {
                    tracing::warn!(%err, "TLS front cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One client connection: the handshake, then bytes both ways until either side closes.
async fn relay(stream: TcpStream, acceptor: TlsAcceptor, upstream: SocketAddr) {
    // Without TCP_NODELAY, small keep-alive requests stall on Nagle's algorithm and delayed
    // ACKs (~40 ms each on Linux).
    let _ = stream.set_nodelay(true);
    let mut tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(err) => {
            tracing::debug!(%err, "TLS handshake with a client failed");
            return;
        }
    };
    let mut plain = match TcpStream::connect(upstream).await {
        Ok(plain) => plain,
        Err(err) => {
            tracing::warn!(%err, %upstream, "TLS front cannot reach its upstream");
            return;
        }
    };
    let _ = plain.set_nodelay(true);
    if let Err(err) = tokio::io::copy_bidirectional(&mut tls, &mut plain).await {
        tracing::debug!(%err, "TLS front connection ended");
    }
}
