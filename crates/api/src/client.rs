//! Connecting to a controller: endpoints as operators write them.

use crate::v1::ecs_client::EcsClient;
use tonic::transport::{Channel, Endpoint};

/// The port a controller listens on when none is given.
pub const DEFAULT_PORT: u16 = 7470;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid endpoint '{endpoint}': {source}")]
    InvalidEndpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error("cannot reach controller at {endpoint}: {source}")]
    Unreachable {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// `host:port`, `host` (default port) or a full `http://` URI.
pub fn endpoint_uri(endpoint: &str) -> String {
    let with_scheme = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    };
    let authority = with_scheme.split("://").nth(1).unwrap_or_default();
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if has_port {
        with_scheme
    } else {
        format!("{}:{DEFAULT_PORT}", with_scheme.trim_end_matches('/'))
    }
}

/// Opens a channel to one controller.
pub async fn connect(endpoint: &str) -> Result<EcsClient<Channel>, ConnectError> {
    Ok(EcsClient::new(channel(endpoint).await?))
}

/// Opens a transport channel to one controller (any of its services).
pub async fn channel(endpoint: &str) -> Result<Channel, ConnectError> {
    let uri = endpoint_uri(endpoint);
    let ep = Endpoint::from_shared(uri)
        .map_err(|source| ConnectError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            source,
        })?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true);
    let channel = ep
        .connect()
        .await
        .map_err(|source| ConnectError::Unreachable {
            endpoint: endpoint.to_string(),
            source,
        })?;
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_a_scheme_and_a_port() {
        assert_eq!(endpoint_uri("127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(endpoint_uri("localhost"), "http://localhost:7470");
        assert_eq!(endpoint_uri("http://10.0.0.1:1"), "http://10.0.0.1:1");
    }
}
