//! containerd's Content store: ask whether a blob is present, read small blobs
//! (manifests, configs), stream large ones in with their expected digest and
//! size, and set the labels containerd's garbage collector follows.

use std::collections::HashMap;

use bytes::Bytes;
use containerd_client::services::v1::{
    Info, InfoRequest, ReadContentRequest, UpdateRequest, WriteAction, WriteContentRequest,
};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::ReceiverStream;

use super::client::{is_already_exists, is_not_found, status_message, Ctrd};

/// Bytes per Write message: well under containerd's 16 MiB gRPC limit, big
/// enough that the lock-step request/response costs little.
const CHUNK: usize = 1 << 20;

/// Manifests, indexes and configs are read whole; anything bigger than this
/// is not one of them.
const MAX_SMALL_BLOB: i64 = 16 << 20;

/// Distinguishes concurrent writers of the same blob: containerd locks a
/// write by its ref, and a second writer with the same ref would be refused.
static WRITE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The blob's record, or `None` if the store lacks it.
pub async fn info(ctrd: &Ctrd, digest: &str) -> Result<Option<Info>, String> {
    match ctrd
        .content()
        .info(ctrd.req(InfoRequest {
            digest: digest.to_string(),
        }))
        .await
    {
        Ok(resp) => Ok(resp.into_inner().info),
        Err(s) if is_not_found(&s) => Ok(None),
        Err(s) => Err(format!("content info {digest}: {}", status_message(&s))),
    }
}

/// Reads a small blob whole.
pub async fn read_all(ctrd: &Ctrd, digest: &str) -> Result<Vec<u8>, String> {
    let size = match info(ctrd, digest).await? {
        Some(i) => i.size,
        None => return Err(format!("content {digest} is not in the content store")),
    };
    if size > MAX_SMALL_BLOB {
        return Err(format!(
            "content {digest} is {size} bytes: too big to be metadata"
        ));
    }
    let mut stream = ctrd
        .content()
        .read(ctrd.req(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        }))
        .await
        .map_err(|s| format!("read content {digest}: {}", status_message(&s)))?
        .into_inner();
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    while let Some(msg) = stream.next().await {
        let msg = msg.map_err(|s| format!("read content {digest}: {}", status_message(&s)))?;
        out.extend_from_slice(&msg.data);
    }
    Ok(out)
}

/// Writes a blob from `data`, which must hash to `digest` and be `size`
/// bytes long (containerd checks both at commit). A blob already present is
/// not an error: the write is skipped. `lease` keeps it from the garbage
/// collector until an image refers to it.
pub async fn write<S>(
    ctrd: &Ctrd,
    lease: &str,
    digest: &str,
    size: i64,
    labels: HashMap<String, String>,
    data: S,
) -> Result<(), String>
where
    S: Stream<Item = Result<Bytes, String>> + Unpin,
{
    let seq = WRITE_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The process id keeps a restarted agent (whose counter starts again)
    // off an ingest its killed predecessor left half written: resuming
    // that one at offset 0 is refused ("must occur at current offset").
    let reference = format!(
        "orca-{}-{}-{}-{seq}",
        ctrd.namespace(),
        digest,
        std::process::id()
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(2);
    let base = WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: reference.clone(),
        total: size,
        expected: digest.to_string(),
        ..Default::default()
    };
    // The first message must be queued before the call is awaited: the
    // server answers the call only once it has read it.
    tx.send(base.clone())
        .await
        .map_err(|_| "content write channel closed".to_string())?;
    let mut responses = match ctrd
        .content()
        .write(ctrd.leased_req(ReceiverStream::new(rx), lease))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) if is_already_exists(&s) => return Ok(()),
        Err(s) => return Err(format!("write content {digest}: {}", status_message(&s))),
    };
    if ack(&mut responses, digest).await?.is_done() {
        return Ok(());
    }

    let mut offset: i64 = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut data = data;
    loop {
        let item = data.next().await;
        let at_end = item.is_none();
        if let Some(chunk) = item {
            buf.extend_from_slice(&chunk.map_err(|e| format!("fetch {digest}: {e}"))?);
        }
        while buf.len() >= CHUNK || (at_end && !buf.is_empty()) {
            let n = buf.len().min(CHUNK);
            let part: Vec<u8> = buf.drain(..n).collect();
            let len = i64::try_from(part.len()).unwrap_or(i64::MAX);
            tx.send(WriteContentRequest {
                action: WriteAction::Write as i32,
                offset,
                data: part,
                ..base.clone()
            })
            .await
            .map_err(|_| format!("write content {digest}: containerd closed the stream"))?;
            offset += len;
            if ack(&mut responses, digest).await?.is_done() {
                return Ok(());
            }
        }
        if at_end {
            break;
        }
    }
    if offset != size {
        return Err(format!(
            "fetch {digest}: got {offset} bytes, the descriptor says {size}"
        ));
    }
    tx.send(WriteContentRequest {
        action: WriteAction::Commit as i32,
        offset,
        labels,
        ..base
    })
    .await
    .map_err(|_| format!("write content {digest}: containerd closed the stream"))?;
    ack(&mut responses, digest).await?;
    Ok(())
}

/// What containerd said to one Write message.
enum Ack {
    /// Carry on.
    Continue,
    /// Someone else committed the same blob meanwhile: nothing left to do.
    Done,
}

impl Ack {
    fn is_done(&self) -> bool {
        matches!(self, Ack::Done)
    }
}

async fn ack(
    responses: &mut tonic::Streaming<containerd_client::services::v1::WriteContentResponse>,
    digest: &str,
) -> Result<Ack, String> {
    match responses.next().await {
        Some(Ok(_)) => Ok(Ack::Continue),
        Some(Err(s)) if is_already_exists(&s) => Ok(Ack::Done),
        Some(Err(s)) => Err(format!("write content {digest}: {}", status_message(&s))),
        None => Err(format!("write content {digest}: stream ended early")),
    }
}

/// Writes a blob held in memory (manifests, configs, archive members).
pub async fn write_bytes(
    ctrd: &Ctrd,
    lease: &str,
    digest: &str,
    data: Bytes,
    labels: HashMap<String, String>,
) -> Result<(), String> {
    let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
    let stream = futures::stream::iter([Ok(data)]);
    write(ctrd, lease, digest, size, labels, stream).await
}

/// Sets `labels` on a blob already in the store (other labels are kept).
pub async fn set_labels(
    ctrd: &Ctrd,
    digest: &str,
    labels: HashMap<String, String>,
) -> Result<(), String> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    ctrd.content()
        .update(ctrd.req(UpdateRequest {
            info: Some(Info {
                digest: digest.to_string(),
                labels,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .map_err(|s| format!("label content {digest}: {}", status_message(&s)))?;
    Ok(())
}
