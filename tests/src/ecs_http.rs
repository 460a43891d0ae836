//! A client of ECS's JSON 1.1 protocol as an SDK speaks it (one kept-alive
//! HTTP/1.1 connection, `POST /`, `X-Amz-Target`, a SigV4-shaped
//! `Authorization` header), for tests and benchmarks that want the wire
//! without Python.

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// ECS's target prefix (`X-Amz-Target: <prefix>.<Operation>`).
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// A header of the shape every SDK sends (the endpoint parses, does not yet
/// verify, the signature).
const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDORCATEST/20261128/local/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One answer: the HTTP status, the request id header and the JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Value,
}

impl Reply {
    /// The `__type` of an error answer.
    pub fn error_type(&self) -> Option<&str> {
        self.body.get("__type").and_then(Value::as_str)
    }

    /// The body of a 200 answer; an error naming the exception otherwise.
    pub fn ok(self) -> anyhow::Result<Value> {
        anyhow::ensure!(
            self.status == 200,
            "HTTP {}: {} ({})",
            self.status,
            self.error_type().unwrap_or("no __type"),
            self.body
        );
        Ok(self.body)
    }
}

/// One connection to an endpoint.
pub struct EcsHttpClient {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl EcsHttpClient {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to the ECS endpoint {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        // The connection task ends when the sender is dropped.
        tokio::spawn(connection);
        Ok(EcsHttpClient {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends `operation` with `input`; any HTTP answer is a `Reply`.
    pub async fn call(&mut self, operation: &str, input: &Value) -> anyhow::Result<Reply> {
        self.sender.ready().await.context("the connection closed")?;
        let request = hyper::Request::post("/")
            .header(hyper::header::HOST, &self.host)
            .header("x-amz-target", format!("{TARGET_PREFIX}.{operation}"))
            .header(hyper::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-date", "20261128T000000Z")
            .header(hyper::header::AUTHORIZATION, AUTHORIZATION)
            .body(Full::new(Bytes::from(input.to_string())))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("{operation}: no answer"))?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{operation}: the body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok(Reply {
            status,
            request_id,
            body,
        })
    }
}
