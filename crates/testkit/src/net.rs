//! Ports and a minimal HTTP client for readiness probes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A port on 127.0.0.1 that was free a moment ago (bind `:0`, read the port,
/// release it). For servers that must be told their port up front; callers
/// retry with another port if the server then fails to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind an ephemeral port on 127.0.0.1")
}

/// `GET http://127.0.0.1:{port}{path}` over HTTP/1.0, within 2 s: the status
/// and the body (lossy UTF-8). For readiness probes and control endpoints,
/// not for anything under test.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_request(port, "GET", path).await
}

/// `POST http://127.0.0.1:{port}{path}` without a body, as [`http_get`].
pub async fn http_post(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_request(port, "POST", path).await
}

async fn http_request(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let length = if method == "POST" {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        stream
            .write_all(
                format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{length}\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let invalid =
            || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(invalid)?;
        let status = head
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(invalid)?;
        Ok((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within 2 s",
            ))
        })
}
