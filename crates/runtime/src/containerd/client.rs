//! The connection to containerd: one tonic channel, service clients made from
//! it, and requests stamped with this agent's containerd namespace (and, while
//! a pull runs, its lease).
//!
//! The `containerd-namespace` header is what scopes every record (images,
//! containers, snapshots, leases) to one agent; several agents share one
//! containerd in tests, each in its own namespace.

use std::path::Path;

use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient, diff_client::DiffClient,
    events_client::EventsClient, images_client::ImagesClient, leases_client::LeasesClient,
    namespaces_client::NamespacesClient, snapshots::snapshots_client::SnapshotsClient,
    tasks_client::TasksClient, version_client::VersionClient,
};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::RuntimeError;

/// The snapshotter orca unpacks into and runs containers from.
pub const SNAPSHOTTER: &str = "overlayfs";

/// A cheap-to-clone handle on containerd, scoped to one namespace.
#[derive(Clone)]
pub struct Ctrd {
    /// The multiplexed gRPC connection all service clients share.
    channel: Channel,
    /// The containerd namespace, validated as a header value at connect.
    namespace: MetadataValue<tonic::metadata::Ascii>,
    /// The namespace as text, for filters and cgroup paths.
    namespace_str: String,
}

impl Ctrd {
    /// Connects to containerd's socket; fails if it does not answer.
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Self, RuntimeError> {
        let ns_ok = !namespace.is_empty()
            && namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !ns_ok {
            return Err(RuntimeError::Containerd(format!(
                "invalid containerd namespace {namespace:?}: use letters, digits, '-', '_' and '.'"
            )));
        }
        let channel = containerd_client::connect(socket).await.map_err(|e| {
            RuntimeError::Containerd(format!("connect to {}: {e}", socket.display()))
        })?;
        let namespace_value = namespace.parse().map_err(|_| {
            RuntimeError::Containerd(format!("invalid containerd namespace {namespace:?}"))
        })?;
        let ctrd = Self {
            channel,
            namespace: namespace_value,
            namespace_str: namespace.to_string(),
        };
        // Fail at connect, not at the first pull, when nothing answers.
        ctrd.version()
            .version(Request::new(()))
            .await
            .map_err(|s| status_error(&format!("version via {}", socket.display()), s))?;
        Ok(ctrd)
    }

    /// The containerd namespace this handle works in.
    pub fn namespace(&self) -> &str {
        &self.namespace_str
    }

    /// Wraps `msg` in a request carrying the namespace header.
    pub fn req<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        req.metadata_mut()
            .insert("containerd-namespace", self.namespace.clone());
        req
    }

    /// Like [`Ctrd::req`], and also holds the resources it creates under a
    /// lease, so containerd's garbage collector cannot take half-pulled
    /// content or unpacked snapshots before an image record refers to them.
    pub fn leased_req<T>(&self, msg: T, lease: &str) -> Request<T> {
        let mut req = self.req(msg);
        if let Ok(value) = lease.parse() {
            req.metadata_mut().insert("containerd-lease", value);
        }
        req
    }

    pub fn version(&self) -> VersionClient<Channel> {
        VersionClient::new(self.channel.clone())
    }
    pub fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }
    pub fn content(&self) -> ContentClient<Channel> {
        // Image blobs and layers can exceed tonic's 4 MiB default.
        ContentClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }
    pub fn diff(&self) -> DiffClient<Channel> {
        DiffClient::new(self.channel.clone())
    }
    pub fn events(&self) -> EventsClient<Channel> {
        EventsClient::new(self.channel.clone())
    }
    pub fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }
    pub fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.channel.clone())
    }
    pub fn namespaces(&self) -> NamespacesClient<Channel> {
        NamespacesClient::new(self.channel.clone())
    }
    pub fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
    }
    pub fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }
}

/// A containerd error as [`RuntimeError::Containerd`] naming the operation,
/// or [`RuntimeError::Unavailable`] when containerd could not be reached.
pub fn status_error(what: &str, status: Status) -> RuntimeError {
    let message = format!("{what}: {}", status_message(&status));
    if is_unavailable(&status) {
        RuntimeError::Unavailable(message)
    } else {
        RuntimeError::Containerd(message)
    }
}

/// Whether the call failed because containerd could not be reached or went
/// away mid-call (down or restarting), rather than because it refused.
pub fn is_unavailable(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::Cancelled => true,
        // tonic reports a connection torn down mid-call as Unknown.
        Code::Unknown => {
            let m = status.message().to_ascii_lowercase();
            [
                "transport",
                "connection",
                "h2 protocol",
                "broken pipe",
                "stream closed",
            ]
            .iter()
            .any(|w| m.contains(w))
        }
        _ => false,
    }
}

/// The readable part of a gRPC status.
pub fn status_message(status: &Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    }
}

pub fn is_not_found(status: &Status) -> bool {
    status.code() == Code::NotFound
}

pub fn is_already_exists(status: &Status) -> bool {
    status.code() == Code::AlreadyExists
}
