//! orca-dns: the DNS responder each orca agent runs for its tasks, the
//! analogue of the Route 53 resolver an ECS task reaches at its VPC's `.2`
//! address when the service uses Cloud Map service discovery.
//!
//! The leader computes an [`orca_core::discovery::DiscoveryZone`] (every
//! service's name and the tasks that can serve it) and sends it to each
//! agent. The agent holds one [`Responder`] per node, created with the
//! node's own resolvers as upstreams, calls [`Responder::set_zone`] with
//! every zone it receives, and runs [`serve`] on a UDP socket and a TCP
//! listener it binds itself, inside the task network namespace at
//! `<bridge gateway>:53`; tasks get that address as their nameserver.
//!
//! - [`zone`]: the pure rules: which names exist and what they answer
//!   (A, SRV with its targets' A, SOA, NXDOMAIN and NODATA with the SOA),
//!   or "not ours";
//! - [`server`]: the hickory shell: answers from the current zone, relays
//!   other names to the upstreams (over the client's transport, and over
//!   TCP again when a UDP reply is truncated), REFUSED when there are none,
//!   SERVFAIL when none replies;
//! - [`client`]: a minimal stub client for tests and benchmarks.
//!
//! hickory-server's request loop logs every response at `info` (target
//! `hickory_server::server`); a process embedding the responder should
//! filter that target to `warn` so queries are not logged one by one.

pub mod client;
mod error;
mod relay;
pub mod server;
pub mod zone;

pub use error::DnsError;
pub use server::{serve, Responder, DEFAULT_UPSTREAM_TIMEOUT};
