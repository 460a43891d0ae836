//! TCP probes inside network namespaces, for the network tests: a listener
//! that answers each connection with the peer's address and the sha256 of
//! what it received, and a sender that connects from another namespace.
//! Sockets are opened inside the namespace (orca-net's `in_namespace`) and
//! used from ordinary threads: a socket stays in the namespace it was made in.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Listens on `addr` inside `netns`; each connection is answered with
/// `"<peer ip> <sha256 hex of everything it sent>"` once it shuts down its
/// side. Runs until the process ends (the namespace going away closes it).
pub fn serve(netns: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = orca_net::netns::in_namespace(netns, move || TcpListener::bind(addr))??;
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let peer = stream
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => hash.update(&buf[..n]),
                }
            }
            let _ = stream.write_all(format!("{peer} {}", hex::encode(hash.finalize())).as_bytes());
        }
    });
    Ok(())
}

/// A payload of `len` bytes and its sha256 hex.
pub fn payload(len: usize) -> (Vec<u8>, String) {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let sha = hex::encode(Sha256::digest(&bytes));
    (bytes, sha)
}

/// Sends `payload` from inside `netns` to `target` (connecting within
/// `connect_timeout`); returns the listener's answer.
pub fn send(
    netns: &Path,
    target: SocketAddr,
    payload: Vec<u8>,
    connect_timeout: Duration,
) -> std::io::Result<String> {
    orca_net::netns::in_namespace(netns, move || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&target, connect_timeout)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_write_timeout(Some(Duration::from_secs(20)))?;
        s.write_all(&payload)?;
        s.shutdown(Shutdown::Write)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    })
    .map_err(|e| std::io::Error::other(e.to_string()))?
}
