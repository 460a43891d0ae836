//! [`Ctx`]'s failover against fake controllers on 127.0.0.1: which endpoint
//! each call ends on, and how often a write reaches a controller.

use super::*;
use orca_api::v1::controller_admin_server::{ControllerAdmin, ControllerAdminServer};
use orca_api::v1::{JoinClusterRequest, MembersReply, MembersRequest, RemoveMemberRequest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::{Request, Response, Status};

/// How a fake controller answers.
#[derive(Clone, Copy)]
enum Answer {
    /// A members reply naming this responder id.
    Reply(u64),
    /// UNAVAILABLE without an exception: starting, or no leader.
    Unavailable,
    /// A service error carrying an ECS exception.
    Exception,
}

/// A ControllerAdmin that answers every call the same way and counts calls.
struct Fake {
    answer: Answer,
    calls: Arc<AtomicUsize>,
}

impl Fake {
    fn answer(&self) -> Result<Response<MembersReply>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.answer {
            Answer::Reply(responder_id) => Ok(Response::new(MembersReply {
                responder_id,
                ..MembersReply::default()
            })),
            Answer::Unavailable => Err(Status::unavailable("controller is starting")),
            Answer::Exception => {
                let mut status = Status::invalid_argument("node 9 is not a member");
                status.metadata_mut().insert(
                    orca_api::error::EXCEPTION_KEY,
                    tonic::metadata::MetadataValue::from_static("ClientException"),
                );
                Err(status)
            }
        }
    }
}

#[tonic::async_trait]
impl ControllerAdmin for Fake {
    async fn join_cluster(
        &self,
        _: Request<JoinClusterRequest>,
    ) -> Result<Response<MembersReply>, Status> {
        self.answer()
    }
    async fn remove_member(
        &self,
        _: Request<RemoveMemberRequest>,
    ) -> Result<Response<MembersReply>, Status> {
        self.answer()
    }
    async fn members(&self, _: Request<MembersRequest>) -> Result<Response<MembersReply>, Status> {
        self.answer()
    }
}

/// Fake controllers on 127.0.0.1; dropping it stops them.
#[derive(Default)]
struct Fakes(JoinSet<()>);

impl Fakes {
    /// Starts one; returns its endpoint and its call counter.
    async fn start(&mut self, answer: Answer) -> anyhow::Result<(String, Arc<AtomicUsize>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = listener.local_addr()?.to_string();
        let calls = Arc::new(AtomicUsize::new(0));
        let service = ControllerAdminServer::new(Fake {
            answer,
            calls: calls.clone(),
        });
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        self.0.spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Ok((endpoint, calls))
    }

    /// A controller that accepts HTTP/2 and drops the connection as soon
    /// as a request's HEADERS frame arrives: the request was sent, its
    /// fate unknown.
    async fn start_dropping(&mut self) -> anyhow::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = listener.local_addr()?.to_string();
        self.0.spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                // An empty SETTINGS frame, so the client never waits on us.
                let _ = socket.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
                let _ = drop_at_first_request(&mut socket).await;
            }
        });
        Ok(endpoint)
    }
}

/// Reads the client preface and frames until a HEADERS frame (type 1).
async fn drop_at_first_request(socket: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut preface = [0u8; 24];
    socket.read_exact(&mut preface).await?;
    loop {
        let mut header = [0u8; 9];
        socket.read_exact(&mut header).await?;
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        socket.read_exact(&mut payload).await?;
        if header[3] == 1 {
            return Ok(());
        }
    }
}

/// An endpoint nothing listens on.
async fn dead() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.to_string())
}

async fn members(ctx: &Ctx) -> Result<MembersReply, CliError> {
    ctx.admin(
        "Members",
        Call::Read,
        MembersRequest {},
        |mut c, r| async move { c.members(r).await },
    )
    .await
}

async fn join(ctx: &Ctx) -> Result<MembersReply, CliError> {
    let request = JoinClusterRequest {
        node_id: 4,
        address: "127.0.0.1:7474".into(),
        ..Default::default()
    };
    ctx.admin("JoinCluster", Call::Write, request, |mut c, r| async move {
        c.join_cluster(r).await
    })
    .await
}

#[tokio::test]
async fn reads_fail_over_past_dead_and_unavailable_controllers() -> anyhow::Result<()> {
    let mut fakes = Fakes::default();
    let (starting, starting_calls) = fakes.start(Answer::Unavailable).await?;
    let dropping = fakes.start_dropping().await?;
    let (up, up_calls) = fakes.start(Answer::Reply(3)).await?;
    let ctx = Ctx::new(vec![dead().await?, starting, dropping, up], false);
    assert_eq!(members(&ctx).await?.responder_id, 3);
    // The next call starts where the last one succeeded.
    assert_eq!(members(&ctx).await?.responder_id, 3);
    assert_eq!(starting_calls.load(Ordering::SeqCst), 1);
    assert_eq!(up_calls.load(Ordering::SeqCst), 2);
    Ok(())
}

#[tokio::test]
async fn writes_fail_over_only_when_nothing_was_sent() -> anyhow::Result<()> {
    let mut fakes = Fakes::default();
    let (up, up_calls) = fakes.start(Answer::Reply(1)).await?;

    // Connection refused: the request never left, so the next endpoint gets it.
    let ctx = Ctx::new(vec![dead().await?, up.clone()], false);
    assert_eq!(join(&ctx).await?.responder_id, 1);
    assert_eq!(up_calls.load(Ordering::SeqCst), 1);

    // A controller answered UNAVAILABLE: it got the write, which stops there.
    let (starting, _) = fakes.start(Answer::Unavailable).await?;
    let ctx = Ctx::new(vec![starting, up.clone()], false);
    let e = join(&ctx).await.err();
    assert!(
        matches!(&e, Some(CliError::Service { exception, .. }) if exception == "ServerException"),
        "{e:?}"
    );
    assert_eq!(up_calls.load(Ordering::SeqCst), 1);

    // The connection broke after the request went out: its fate is unknown.
    let dropping = fakes.start_dropping().await?;
    let ctx = Ctx::new(vec![dropping.clone(), up.clone()], false);
    let e = join(&ctx).await.err();
    assert!(
        matches!(&e, Some(CliError::Interrupted { operation: "JoinCluster", endpoint }) if *endpoint == dropping),
        "{e:?}"
    );
    assert_eq!(up_calls.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn service_errors_are_final_and_no_endpoint_means_connect_error() -> anyhow::Result<()> {
    let mut fakes = Fakes::default();
    let (refusing, _) = fakes.start(Answer::Exception).await?;
    let (up, up_calls) = fakes.start(Answer::Reply(2)).await?;
    let ctx = Ctx::new(vec![refusing, up], false);
    let e = members(&ctx).await.err();
    assert!(
        matches!(&e, Some(CliError::Service { operation: "Members", exception, message })
            if exception == "ClientException" && message == "node 9 is not a member"),
        "{e:?}"
    );
    assert_eq!(up_calls.load(Ordering::SeqCst), 0);

    let endpoints = vec![dead().await?, dead().await?];
    let ctx = Ctx::new(endpoints.clone(), false);
    let e = members(&ctx).await.err();
    assert!(
        matches!(&e, Some(CliError::Connect { endpoints: tried }) if *tried == endpoints),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn consistent_reads_carry_the_linearizable_header() {
    let marked = with_consistency(tonic::Request::new(()), true);
    assert!(orca_api::read::wants_linearizable(&marked));
    let plain = with_consistency(tonic::Request::new(()), false);
    assert!(!orca_api::read::wants_linearizable(&plain));
}
