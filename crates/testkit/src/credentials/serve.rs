//! Serving an axum router on `127.0.0.1:0`, over plain HTTP or TLS, until the
//! handle is dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running server; dropping it stops accepting connections.
pub struct Served {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener on a free loopback port (bind first when the app must know
/// its own address).
pub async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// Serve `app` on a free loopback port, with TLS when `tls` is given.
pub async fn serve(app: Router, tls: Option<Arc<ServerConfig>>) -> Served {
    serve_listener(bind().await, app, tls)
}

/// Serve `app` on `listener`, with TLS when `tls` is given.
pub fn serve_listener(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<ServerConfig>>,
) -> Served {
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (app, acceptor) = (app.clone(), acceptor.clone());
            tokio::spawn(async move {
                let service = TowerToHyperService::new(app);
                let builder = http1::Builder::new();
                let _ = match acceptor {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                        Err(_) => return,
                    },
                    None => builder.serve_connection(TokioIo::new(tcp), service).await,
                };
            });
        }
    });
    Served { addr, task }
}

/// A loopback address nothing listens on (bound, then released): a server
/// that is down.
pub async fn closed_port() -> SocketAddr {
    bind().await.local_addr().expect("local address")
}
