//! ECS's own wire protocol, as botocore implements it (protocol `json`,
//! jsonVersion 1.1, targetPrefix `AmazonEC2ContainerServiceV20141113`):
//! every operation is `POST /` with `X-Amz-Target: <prefix>.<Operation>`
//! and an `application/x-amz-json-1.1` body holding the operation's input;
//! the answer is its output, or `{"__type": "<Exception>", "message": ...}`
//! with 400 (500 for ServerException). Every response carries
//! `x-amzn-RequestId`. boto3, the aws CLI (`--endpoint-url`) and their
//! waiters work against it unchanged.
//!
//! A thin shell: `dispatch` calls the same handlers the gRPC API serves
//! (so a follower forwards writes as it does for gRPC), `epoch` renders
//! timestamps as botocore expects them, `sigv4` reads the Authorization
//! header every SDK sends.

mod dispatch;
mod epoch;
mod sigv4;

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use orca_core::ApiError;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::api::ecs_service::EcsService;
pub use dispatch::OPERATIONS;

/// ECS's target prefix: `X-Amz-Target` is this, a dot, the operation.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// The content type of requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The largest request body taken (a task definition is at most 64 KiB in
/// ECS; RunTask overrides far less).
const MAX_BODY: usize = 4 << 20;

/// Serves the endpoint on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, ecs: Arc<EcsService>, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "ECS endpoint: accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let ecs = ecs.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let ecs = ecs.clone();
                async move { Ok::<_, Infallible>(handle(&ecs, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
        });
    }
}

/// An error as the protocol carries it.
struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal {
            status: StatusCode::from_u16(e.exception.http_status())
                .unwrap_or(StatusCode::BAD_REQUEST),
            code: e.exception.name().to_string(),
            message: e.message,
        }
    }
}

async fn handle(ecs: &EcsService, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // ECS's operations by name; Secrets Manager's and Parameter Store's
    // keep their service prefix (`secretsmanager.GetSecretValue`).
    let operation = match target.split_once('.') {
        Some((TARGET_PREFIX, op)) => op.to_string(),
        Some((prefix, _)) if dispatch::SECRETS_PREFIXES.contains(&prefix) => target.to_string(),
        _ => String::new(),
    };
    let span = tracing::info_span!("ecs_json", %operation, %request_id);
    let result = answer(ecs, &operation, request).instrument(span).await;
    let (status, body) = match result {
        // Secrets outputs carry epoch seconds already, and a value must
        // never be rewritten.
        Ok(output) if operation.contains('.') => (StatusCode::OK, output),
        Ok(output) => (StatusCode::OK, epoch::to_epoch_seconds(&output)),
        Err(r) => {
            if r.status.is_server_error() {
                tracing::warn!(%operation, code = %r.code, message = %r.message, "ECS endpoint: server error");
            }
            (
                r.status,
                json!({"__type": r.code, "message": r.message}).to_string(),
            )
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    if let Ok(id) = hyper::header::HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

async fn answer(
    ecs: &EcsService,
    operation: &str,
    request: Request<Incoming>,
) -> Result<String, Refusal> {
    if request.method() != Method::POST {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            format!(
                "ECS's JSON protocol takes POST requests, not {}",
                request.method()
            ),
        ));
    }
    if operation.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "the X-Amz-Target header must name {TARGET_PREFIX}.<Operation>, \
                 secretsmanager.<Operation> or AmazonSSM.<Operation>"
            ),
        ));
    }
    if let Some(header) = request.headers().get(hyper::header::AUTHORIZATION) {
        let credential = header
            .to_str()
            .map_err(|_| "the Authorization header is not ASCII".to_string())
            .and_then(|h| sigv4::parse(h).map_err(|e| e.0))
            .map_err(|m| Refusal::new(StatusCode::FORBIDDEN, "IncompleteSignatureException", m))?;
        tracing::debug!(access_key_id = %credential.access_key_id, "signed request");
    }
    let body = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SerializationException",
                format!("the request body could not be read (at most {MAX_BODY} bytes): {e}"),
            )
        })?
        .to_bytes();
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("the request body is not valid JSON: {e}"),
            )
        })?
    };
    match dispatch::call(ecs, operation, &input).await {
        Ok(output) => Ok(output),
        Err(dispatch::CallError::Api(e)) => Err(e.into()),
        Err(dispatch::CallError::UnknownOperation(op)) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("orca does not serve the ECS operation '{op}'"),
        )),
    }
}
