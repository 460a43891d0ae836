//! Mutual TLS between orca's processes, over real loopback connections:
//! identities cross the handshake, anything not signed by the cluster CA
//! (or expired, or missing where required) is refused, and a rotated
//! certificate serves new connections while open ones carry on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use orca_tls::{
    client_config, peer_identity, server_config, CertStore, ClientAuth, ClusterCa, Identity,
    Validity,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const HOUR: Duration = Duration::from_secs(3600);

fn store(ca: &ClusterCa, identity: Identity, validity: Validity) -> Arc<CertStore> {
    let issued = ca
        .issue(&identity, &["127.0.0.1".into()], validity)
        .unwrap_or_else(|e| panic!("{e}"));
    CertStore::new(
        &issued.cert_pem,
        issued.key_pem.as_deref().unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn now_valid() -> Validity {
    Validity::starting(SystemTime::now(), HOUR)
}

/// A server answering each line with the peer's identity.
async fn serve(config: rustls::ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let who = peer_identity(tls.get_ref().1.peer_certificates())
                    .map_or("anonymous".to_string(), |i| i.uri());
                let (r, mut w) = tokio::io::split(tls);
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(_)) = lines.next_line().await {
                    if w.write_all(format!("{who}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

type Client = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, config: rustls::ClientConfig) -> std::io::Result<Client> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// Asks who the server thinks we are; an error if the connection does not
/// hold (TLS 1.3 reports a refused client certificate on first read).
async fn ask(c: &mut Client) -> std::io::Result<String> {
    c.write_all(b"who\n").await?;
    let mut line = String::new();
    let n = BufReader::new(&mut *c).read_line(&mut line).await?;
    if n == 0 {
        return Err(std::io::Error::other("closed"));
    }
    Ok(line.trim().to_string())
}

#[tokio::test]
async fn identities_cross_the_handshake_and_strangers_are_refused() {
    let ca = ClusterCa::generate("prod", SystemTime::now()).unwrap_or_else(|e| panic!("{e}"));
    let other = ClusterCa::generate("other", SystemTime::now()).unwrap_or_else(|e| panic!("{e}"));
    let server = store(&ca, Identity::Controller { node_id: 1 }, now_valid());
    let required = serve(
        server_config(ca.cert_pem(), server.clone(), ClientAuth::Required)
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let agent = Identity::Agent {
        instance_id: "i-1".into(),
    };
    let agent_store = store(&ca, agent.clone(), now_valid());
    let mut c = connect(
        required,
        client_config(ca.cert_pem(), Some(agent_store)).unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .expect("mutual TLS");
    assert_eq!(ask(&mut c).await.ok(), Some(agent.uri()));
    assert_eq!(
        peer_identity(c.get_ref().1.peer_certificates()),
        Some(Identity::Controller { node_id: 1 })
    );

    // Another CA's client, no client certificate, an expired one: refused.
    let stranger = store(
        &other,
        Identity::Agent {
            instance_id: "i-1".into(),
        },
        now_valid(),
    );
    let past = Validity {
        not_before: SystemTime::now() - 3 * HOUR,
        not_after: SystemTime::now() - HOUR,
    };
    let expired = store(
        &ca,
        Identity::Agent {
            instance_id: "i-1".into(),
        },
        past,
    );
    for (what, client) in [
        ("another CA's", Some(stranger)),
        ("no", None),
        ("an expired", Some(expired)),
    ] {
        let refused = match connect(
            required,
            client_config(ca.cert_pem(), client).unwrap_or_else(|e| panic!("{e}")),
        )
        .await
        {
            Ok(mut c) => ask(&mut c).await.is_err(),
            Err(_) => true,
        };
        assert!(refused, "{what} client certificate is refused");
    }
    // A server whose certificate another CA signed is refused by clients.
    let impostor = serve(
        server_config(
            other.cert_pem(),
            store(&other, Identity::Controller { node_id: 1 }, now_valid()),
            ClientAuth::Optional,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    assert!(connect(
        impostor,
        client_config(ca.cert_pem(), None).unwrap_or_else(|e| panic!("{e}"))
    )
    .await
    .is_err());

    // Where tokens may stand in, a client without a certificate gets in
    // as nobody in particular.
    let optional = serve(
        server_config(ca.cert_pem(), server, ClientAuth::Optional)
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let mut c = connect(
        optional,
        client_config(ca.cert_pem(), None).unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .expect("anonymous");
    assert_eq!(ask(&mut c).await.ok(), Some("anonymous".to_string()));
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_connections_and_open_ones_carry_on() {
    let ca = ClusterCa::generate("prod", SystemTime::now()).unwrap_or_else(|e| panic!("{e}"));
    let me = Identity::Controller { node_id: 1 };
    let server = store(&ca, me.clone(), now_valid());
    let addr = serve(
        server_config(ca.cert_pem(), server.clone(), ClientAuth::Required)
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    let client = store(&ca, Identity::Client { name: "ops".into() }, now_valid());
    let mut config = client_config(ca.cert_pem(), Some(client)).unwrap_or_else(|e| panic!("{e}"));
    // Full handshakes, so the second connection does not resume the
    // first one's session (and its certificate).
    config.resumption = rustls::client::Resumption::disabled();
    let mut open = connect(addr, config.clone()).await.expect("connect");
    assert!(ask(&mut open).await.is_ok());
    let before = open.get_ref().1.peer_certificates().map(|c| c[0].to_vec());

    let next = ca
        .issue(&me, &["127.0.0.1".into()], now_valid())
        .unwrap_or_else(|e| panic!("{e}"));
    server
        .replace(&next.cert_pem, next.key_pem.as_deref().unwrap_or_default())
        .expect("rotation");
    let mut fresh = connect(addr, config).await.expect("connect after rotation");
    assert!(ask(&mut fresh).await.is_ok());
    let after = fresh.get_ref().1.peer_certificates().map(|c| c[0].to_vec());
    assert!(before != after, "new handshakes get the new certificate");
    assert!(
        ask(&mut open).await.is_ok(),
        "the open connection carries on"
    );

    // Rotation never changes who a process is.
    let someone_else = ca
        .issue(&Identity::Controller { node_id: 2 }, &[], now_valid())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(server
        .replace(
            &someone_else.cert_pem,
            someone_else.key_pem.as_deref().unwrap_or_default()
        )
        .is_err());
}
