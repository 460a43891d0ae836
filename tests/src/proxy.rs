//! A TCP proxy on loopback that a test can cut and heal: the way to make an
//! in-process agent go silent (a partition) while it keeps running, then
//! come back. Cutting drops every forwarded connection and closes new ones
//! at once; healing forwards again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running proxy to one target.
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Cancelled on every cut: the forwarding tasks of that epoch end.
    epoch: Arc<std::sync::Mutex<CancellationToken>>,
    /// Connections forwarded since the start.
    forwarded: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

impl Proxy {
    /// Listens on 127.0.0.1 and forwards to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let proxy = Proxy {
            addr,
            cut: Arc::new(AtomicBool::new(false)),
            epoch: Arc::new(std::sync::Mutex::new(CancellationToken::new())),
            forwarded: Arc::new(AtomicU64::new(0)),
            shutdown: CancellationToken::new(),
        };
        let (cut, epoch, forwarded, shutdown) = (
            proxy.cut.clone(),
            proxy.epoch.clone(),
            proxy.forwarded.clone(),
            proxy.shutdown.clone(),
        );
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                if cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let token = epoch.lock().unwrap_or_else(|p| p.into_inner()).clone();
                forwarded.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(forward(client, target, token));
            }
        });
        Ok(proxy)
    }

    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Drops every connection and refuses new ones until `heal`.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        epoch.cancel();
        *epoch = CancellationToken::new();
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// How many connections were forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.cut();
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, token: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = token.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}
