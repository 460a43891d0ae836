//! The node's NAT rules, as data: what one agent wants of the kernel's
//! packet filter for its bridge, rendered as `iptables-restore` input.
//! Pure: [`NodeRules::render`] has no I/O; `netns::node_rules` applies it.
//!
//! Every rule lives in two chains of the agent's own (named after its
//! bridge, so several agents in one namespace never share one), flushed and
//! refilled in one `iptables-restore --noflush` transaction: applying the
//! same rules twice changes nothing, and applying new ones never leaves a
//! moment with half of them. The built-in chains only jump to them.
//!
//! - `ORCA-EGR-<bridge>` (nat POSTROUTING, for packets from the task
//!   subnet): traffic to the cluster's task subnets keeps its source (a task
//!   sees its peer's own address, whatever node runs it); traffic leaving
//!   through any other device is masqueraded to the node's address; and a
//!   task reaching a task of its own bridge through a published host port
//!   is masqueraded too, or the answer would bypass the DNAT.
//! - `ORCA-DNAT-<bridge>` (nat PREROUTING and OUTPUT, for packets to one of
//!   the node's own addresses): each published host port is forwarded to its
//!   task's address and container port.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::Ipv4Subnet;

/// The transport a published port uses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    Tcp,
    Udp,
}

impl PortProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
        }
    }
}

/// One published port: `host_port` on the node's addresses forwarded to
/// `to:to_port`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PortForward {
    pub protocol: PortProtocol,
    pub host_port: u16,
    pub to: Ipv4Addr,
    pub to_port: u16,
}

/// What an agent wants of the packet filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRules {
    /// The node's bridge (names the chains).
    pub bridge: String,
    /// The node's task subnet.
    pub subnet: Ipv4Subnet,
    /// Masquerade traffic that leaves the node.
    pub egress: bool,
    /// Destinations that keep a task's source address: the cluster's task
    /// subnets (this node's included).
    pub keep_source: Vec<Ipv4Subnet>,
    /// Published host ports, sorted.
    pub forwards: Vec<PortForward>,
}

/// The nat-table chains an agent owns for `bridge`.
pub fn chain_names(bridge: &str) -> (String, String) {
    (format!("ORCA-EGR-{bridge}"), format!("ORCA-DNAT-{bridge}"))
}

/// A rule in a built-in chain jumping to one of ours, as `iptables` takes
/// it after `-t nat -A|-C|-D`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub chain: &'static str,
    pub args: Vec<String>,
}

impl NodeRules {
    /// Whether nothing needs a rule (no egress and no published port):
    /// then the chains are removed rather than kept empty.
    pub fn is_empty(&self) -> bool {
        !self.egress && self.forwards.is_empty()
    }

    /// The `iptables-restore --noflush` input that makes our two chains hold
    /// exactly these rules.
    pub fn render(&self) -> String {
        let (egress, dnat) = chain_names(&self.bridge);
        let subnet = self.subnet.to_string();
        let mut out = String::from("*nat\n");
        for chain in [&egress, &dnat] {
            // Declaring a chain creates it if missing; the flush empties it
            // if it existed, inside the same transaction.
            let _ = writeln!(out, ":{chain} - [0:0]");
            let _ = writeln!(out, "-F {chain}");
        }
        if !self.forwards.is_empty() {
            let _ = writeln!(
                out,
                "-A {egress} -s {subnet} -d {subnet} -m conntrack --ctstate DNAT -j MASQUERADE"
            );
        }
        let mut keep: Vec<Ipv4Subnet> = self.keep_source.clone();
        keep.sort();
        keep.dedup();
        for dest in keep {
            let _ = writeln!(out, "-A {egress} -d {dest} -j RETURN");
        }
        if self.egress {
            let _ = writeln!(out, "-A {egress} ! -o {} -j MASQUERADE", self.bridge);
        }
        let mut forwards = self.forwards.clone();
        forwards.sort();
        for f in forwards {
            let _ = writeln!(
                out,
                "-A {dnat} -p {p} -m {p} --dport {} -j DNAT --to-destination {}:{}",
                f.host_port,
                f.to,
                f.to_port,
                p = f.protocol.as_str()
            );
        }
        out.push_str("COMMIT\n");
        out
    }

    /// The jumps into our chains from the built-in ones.
    pub fn jumps(bridge: &str, subnet: Ipv4Subnet) -> Vec<Jump> {
        let (egress, dnat) = chain_names(bridge);
        let local = ["-m", "addrtype", "--dst-type", "LOCAL"].map(str::to_string);
        vec![
            Jump {
                chain: "POSTROUTING",
                args: vec!["-s".into(), subnet.to_string(), "-j".into(), egress],
            },
            Jump {
                chain: "PREROUTING",
                args: local
                    .iter()
                    .cloned()
                    .chain(["-j".into(), dnat.clone()])
                    .collect(),
            },
            // The node itself, at its own addresses (127.0.0.1 would need
            // route_localnet, which stays off as in Docker without its
            // userland proxy).
            Jump {
                chain: "OUTPUT",
                args: ["!", "-d", "127.0.0.0/8"]
                    .map(str::to_string)
                    .into_iter()
                    .chain(local.iter().cloned())
                    .chain(["-j".into(), dnat])
                    .collect(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Ipv4Subnet {
        s.parse().expect("subnet")
    }

    fn rules() -> NodeRules {
        NodeRules {
            bridge: "orca0".into(),
            subnet: subnet("198.19.1.0/24"),
            egress: true,
            keep_source: vec![
                subnet("198.19.2.0/24"),
                subnet("198.19.1.0/24"),
                subnet("198.19.2.0/24"),
            ],
            forwards: vec![
                PortForward {
                    protocol: PortProtocol::Udp,
                    host_port: 5353,
                    to: "198.19.1.7".parse().expect("ip"),
                    to_port: 53,
                },
                PortForward {
                    protocol: PortProtocol::Tcp,
                    host_port: 8080,
                    to: "198.19.1.5".parse().expect("ip"),
                    to_port: 80,
                },
            ],
        }
    }

    #[test]
    fn chains_are_declared_flushed_and_filled_in_one_transaction() {
        assert_eq!(
            rules().render(),
            "*nat\n\
             :ORCA-EGR-orca0 - [0:0]\n\
             -F ORCA-EGR-orca0\n\
             :ORCA-DNAT-orca0 - [0:0]\n\
             -F ORCA-DNAT-orca0\n\
             -A ORCA-EGR-orca0 -s 198.19.1.0/24 -d 198.19.1.0/24 -m conntrack --ctstate DNAT -j MASQUERADE\n\
             -A ORCA-EGR-orca0 -d 198.19.1.0/24 -j RETURN\n\
             -A ORCA-EGR-orca0 -d 198.19.2.0/24 -j RETURN\n\
             -A ORCA-EGR-orca0 ! -o orca0 -j MASQUERADE\n\
             -A ORCA-DNAT-orca0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.19.1.5:80\n\
             -A ORCA-DNAT-orca0 -p udp -m udp --dport 5353 -j DNAT --to-destination 198.19.1.7:53\n\
             COMMIT\n"
        );
    }

    #[test]
    fn without_egress_or_ports_no_masquerade_and_nothing_to_keep() {
        let mut r = rules();
        r.egress = false;
        r.forwards.clear();
        assert!(r.is_empty());
        let text = r.render();
        assert!(!text.contains("MASQUERADE"), "{text}");
        assert!(!text.contains("DNAT --to"), "{text}");
    }

    #[test]
    fn rendering_is_independent_of_input_order() {
        let mut shuffled = rules();
        shuffled.forwards.reverse();
        shuffled.keep_source.reverse();
        assert_eq!(shuffled.render(), rules().render());
    }

    #[test]
    fn jumps_select_the_subnet_and_local_destinations() {
        let jumps = NodeRules::jumps("orca0", subnet("198.19.1.0/24"));
        let shown: Vec<String> = jumps
            .iter()
            .map(|j| format!("{} {}", j.chain, j.args.join(" ")))
            .collect();
        assert_eq!(
            shown,
            [
                "POSTROUTING -s 198.19.1.0/24 -j ORCA-EGR-orca0",
                "PREROUTING -m addrtype --dst-type LOCAL -j ORCA-DNAT-orca0",
                "OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j ORCA-DNAT-orca0",
            ]
        );
    }
}
