//! The node's DNS responder (orca-dns): where it listens, where other names
//! go, and the loop feeding it each zone the leader sends. Tasks get its
//! address as their nameserver unless `dns_servers` overrides it, so
//! `<service>.<namespace>` resolves to the tasks that can serve it now.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use orca_core::discovery::DiscoveryZone;
use orca_dns::Responder;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, NetworkKind};

/// What the session fills with the leader's zone.
pub type ZoneReceiver = watch::Receiver<Option<DiscoveryZone>>;

/// Why the responder could not start.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("dns_listen {addr}: cannot bind the DNS responder's {protocol} socket: {source}")]
    Bind {
        addr: SocketAddr,
        protocol: &'static str,
        source: std::io::Error,
    },
}

/// Where the responder listens: `dns_listen`, else the bridge gateway's
/// port 53 with the netns network; None: no responder.
pub fn listen_address(config: &AgentConfig, gateway: Ipv4Addr) -> Option<SocketAddr> {
    config.dns_listen.or(match config.network {
        NetworkKind::Netns => Some(SocketAddr::new(IpAddr::V4(gateway), 53)),
        NetworkKind::Fake => None,
    })
}

/// Every nameserver of a resolv.conf, loopback ones included, on port 53.
pub fn resolv_conf_upstreams(resolv_conf: &str) -> Vec<SocketAddr> {
    crate::runner::dns_files::nameservers(resolv_conf)
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Where names outside the namespace go: `dns_upstreams`, else the node's
/// /etc/resolv.conf nameservers.
pub fn upstreams(config: &AgentConfig) -> Vec<SocketAddr> {
    match &config.dns_upstreams {
        Some(list) => list.clone(),
        None => {
            let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            resolv_conf_upstreams(&text)
        }
    }
}

/// The address containers' resolv.conf names for the responder: only one
/// on port 53 can be named there.
pub fn nameserver_for_tasks(listen: SocketAddr) -> Option<Ipv4Addr> {
    match listen {
        SocketAddr::V4(v4) if v4.port() == 53 && !v4.ip().is_unspecified() => Some(*v4.ip()),
        _ => None,
    }
}

/// A bound responder, not serving yet: binding happens before anything
/// else starts, so a taken address is a startup error.
pub struct BoundResolver {
    udp: tokio::net::UdpSocket,
    tcp: tokio::net::TcpListener,
    pub addr: SocketAddr,
}

/// Binds UDP and TCP at `addr`.
pub async fn bind(addr: SocketAddr) -> Result<BoundResolver, ResolverError> {
    let udp = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(|source| ResolverError::Bind {
            addr,
            protocol: "UDP",
            source,
        })?;
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ResolverError::Bind {
            addr,
            protocol: "TCP",
            source,
        })?;
    Ok(BoundResolver { udp, tcp, addr })
}

/// Serves until `shutdown`, answering from the latest zone in `zones`.
pub async fn run(
    bound: BoundResolver,
    upstreams: Vec<SocketAddr>,
    mut zones: ZoneReceiver,
    shutdown: CancellationToken,
) {
    let initial = zones.borrow_and_update().clone().unwrap_or_default();
    let responder = Arc::new(Responder::new(initial, upstreams.clone()));
    tracing::info!(addr = %bound.addr, upstreams = ?upstreams, "DNS responder serving");
    let feed = {
        let responder = responder.clone();
        let shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = zones.changed() => if changed.is_err() { return },
                }
                let zone = zones.borrow_and_update().clone();
                if let Some(zone) = zone {
                    tracing::debug!(names = zone.services.len(), "discovery zone updated");
                    responder.set_zone(zone);
                }
            }
        }
    };
    let serve = orca_dns::serve(responder, bound.udp, bound.tcp, shutdown.clone());
    let (served, ()) = tokio::join!(serve, feed);
    if let Err(e) = served {
        tracing::error!(error = %e, "the DNS responder stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_come_from_resolv_conf_loopback_included() {
        let text =
            "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch x\nnameserver bogus\n";
        assert_eq!(
            resolv_conf_upstreams(text),
            vec![
                SocketAddr::from(([127, 0, 0, 53], 53)),
                SocketAddr::from(([10, 0, 0, 2], 53)),
            ]
        );
    }

    #[test]
    fn the_responder_listens_on_the_gateway_with_netns_and_nowhere_with_fake() {
        let gateway = Ipv4Addr::new(198, 19, 0, 1);
        let netns = AgentConfig::default();
        assert_eq!(
            listen_address(&netns, gateway),
            Some(SocketAddr::from(([198, 19, 0, 1], 53)))
        );
        let fake = AgentConfig {
            network: NetworkKind::Fake,
            ..AgentConfig::default()
        };
        assert_eq!(listen_address(&fake, gateway), None);
        let explicit = SocketAddr::from(([127, 0, 0, 1], 5353));
        let set = AgentConfig {
            network: NetworkKind::Fake,
            dns_listen: Some(explicit),
            ..AgentConfig::default()
        };
        assert_eq!(listen_address(&set, gateway), Some(explicit));
        assert_eq!(
            nameserver_for_tasks(explicit),
            None,
            "resolv.conf has no port"
        );
        assert_eq!(
            nameserver_for_tasks(SocketAddr::from(([198, 19, 0, 1], 53))),
            Some(gateway)
        );
    }
}
