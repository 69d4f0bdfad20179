//! What the measured processes talk to, all in this process: the Chime fake (plain HTTP and
//! behind a TLS front), a local STS (likewise), and a local OIDC issuer over HTTPS for
//! credential-exchange. One throw-away root signs every certificate (the fronts' and the
//! issuer's); its PEM file is what `SSL_CERT_FILE` names.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chime_identity_fake::{FakeChime, FakeChimeHandle, FakeConfig, TestCa, TlsFront};
use testkit::credentials::keys::jwks;
use testkit::credentials::{LocalIdp, LocalSts, TestKey};

use crate::events::Idp;
use crate::procs::Endpoints;

/// The running fakes; dropping them stops them.
pub struct Fakes {
    pub chime: FakeChimeHandle,
    pub endpoints: Endpoints,
    /// The system CA bundle the naive floor was given (with the test roots), if one was found.
    pub system_bundle: Option<PathBuf>,
    _fronts: [TlsFront; 2],
    _sts: LocalSts,
    _idp: LocalIdp,
}

impl Fakes {
    /// Start them, writing the roots' PEM files into `dir` (logs go there too).
    pub async fn start(dir: &Path) -> Result<Fakes, String> {
        let chime = FakeChime::start(FakeConfig::new())
            .await
            .map_err(|e| format!("Chime fake: {e}"))?;
        let ca = TestCa::generate().map_err(|e| e.to_string())?;
        let chime_front = TlsFront::start(chime.addr(), &ca)
            .await
            .map_err(|e| e.to_string())?;
        let sts = LocalSts::start().await;
        let sts_addr: SocketAddr = sts
            .endpoint_url()
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("local STS address: {e}"))?;
        let sts_front = TlsFront::start(sts_addr, &ca)
            .await
            .map_err(|e| e.to_string())?;
        let key = Arc::new(TestKey::demo_rsa());
        let idp = LocalIdp::start_tls(jwks(&[key.as_ref()]), &ca).await;

        let roots = ca.ca_pem();
        let ca_file = dir.join("test-roots.pem");
        std::fs::write(&ca_file, roots).map_err(|e| format!("{}: {e}", ca_file.display()))?;
        let (system_bundle, system_bundle_with_ca) = bundle_with(roots, dir)?;
        let endpoints = Endpoints {
            chime_http: chime.endpoint_url(),
            chime_https: chime_front.endpoint_url(),
            sts_http: sts.endpoint_url(),
            sts_https: sts_front.endpoint_url(),
            idp: Idp {
                issuer: idp.issuer().to_owned(),
                key,
            },
            ca_file,
            system_bundle_with_ca,
            sqs: closed_port_url()?,
            log_dir: dir.to_owned(),
        };
        Ok(Fakes {
            chime,
            endpoints,
            system_bundle,
            _fronts: [chime_front, sts_front],
            _sts: sts,
            _idp: idp,
        })
    }

    pub async fn shutdown(self) {
        let Fakes { chime, .. } = self;
        chime.shutdown().await;
    }
}

/// `http://127.0.0.1:{port}` of a port nothing listens on.
fn closed_port_url() -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}

/// The system's CA bundle (the first that exists of Debian's and Amazon Linux's paths) with
/// the test roots appended, written to `dir`: the naive floor loads the system store, so over
/// HTTPS it gets this as `SSL_CERT_FILE`, which rustls-native-certs reads instead of the
/// system paths. Returns the bundle used (`None`: none found, the test roots alone).
fn bundle_with(roots: &str, dir: &Path) -> Result<(Option<PathBuf>, PathBuf), String> {
    let system = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file());
    let mut pem = match &system {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => String::new(),
    };
    if !pem.ends_with('\n') && !pem.is_empty() {
        pem.push('\n');
    }
    pem.push_str(roots);
    let out = dir.join("system-bundle-with-test-roots.pem");
    std::fs::write(&out, pem).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok((system, out))
}
