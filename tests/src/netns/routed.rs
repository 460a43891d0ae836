//! A routed [`TestNet`]: hosts on links of their own, joined only through a
//! router namespace, so no two hosts share a link (what VXLAN is for, and
//! what host-gw cannot cross).
//!
//! ```text
//!  machine ob<tag> 198.18.S.1/24 ── uplink 198.18.S.2 [router] d<i> 198.18.Ui.1/24 ── eth0 198.18.Ui.2 [host i]
//! ```
//! The router forwards between its links and masquerades what leaves
//! towards the machine, so the machine needs no route to the hosts' links
//! (and keeps IPv4 forwarding as it is): a host reaches a listener on
//! `198.18.S.1`, as it would a controller on another network.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::{claim_free_subnet, ip, quietly, run, TestNet};

/// The router namespace and the hosts' link subnets.
#[derive(Debug)]
pub(super) struct Router {
    netns: String,
    locks: Vec<PathBuf>,
}

impl Router {
    /// Deletes the router (its veths go with it) and frees the hosts'
    /// subnets. The hosts' namespaces are TestNet's to delete.
    pub(super) fn remove(&self) {
        quietly("ip", &["netns", "del", &self.netns]);
        for lock in &self.locks {
            let _ = std::fs::remove_file(lock);
        }
    }
}

impl TestNet {
    /// A routed net's router namespace (None for a shared-link net).
    pub fn router_netns_path(&self) -> Option<PathBuf> {
        self.router
            .as_ref()
            .map(|r| std::path::Path::new("/var/run/netns").join(&r.netns))
    }

    /// Host `i`'s gateway on a routed net: the router's end of its link.
    pub fn gateway(&self, i: usize) -> Ipv4Addr {
        let [a, b, c, _] = self.addr(i).octets();
        Ipv4Addr::new(a, b, c, 1)
    }

    /// `n` hosts (1 to 50), each on a /24 link of its own to one router.
    pub fn routed(n: usize) -> anyhow::Result<TestNet> {
        anyhow::ensure!(
            (1..=50).contains(&n),
            "a routed TestNet has 1 to 50 hosts, not {n}"
        );
        let pid = std::process::id();
        let (mut net, seq) = TestNet::unmade(n, false)?;
        let router = format!("ot{pid}-{seq}-r");
        quietly("ip", &["netns", "del", &router]);
        net.router = Some(Router {
            netns: router.clone(),
            locks: Vec::new(),
        });
        // The machine link's lock names every namespace, so a crashed
        // process's leftovers go when it is claimed again.
        let mut record = format!("pid={pid}\nbridge={}\nnetns={router}\n", net.bridge);
        for h in &net.hosts {
            record.push_str(&format!("netns={}\n", h.netns));
        }
        let start = pid.wrapping_add(seq.wrapping_mul(7));
        let (subnet, lock) = claim_free_subnet(start, &record)?;
        net.subnet = subnet;
        net.lock = Some(lock);
        let mut links = Vec::new();
        for i in 0..n {
            let (u, lock) = claim_free_subnet(
                start.wrapping_add(31 + i as u32),
                &format!("pid={pid}\nlink-of={}\n", net.bridge),
            )?;
            if let Some(r) = net.router.as_mut() {
                r.locks.push(lock);
            }
            net.hosts[i].addr = Ipv4Addr::new(198, 18, u, 2);
            links.push(u);
        }
        net.setup_routed(&router, &links)?;
        Ok(net)
    }

    fn setup_routed(&mut self, router: &str, links: &[u8]) -> anyhow::Result<()> {
        let machine = self.bridge.clone();
        ip(&["netns", "add", router])?;
        ip(&[
            "link", "add", &machine, "type", "veth", "peer", "name", "uplink", "netns", router,
        ])?;
        self.bridge_made = true;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.host_addr()),
            "dev",
            &machine,
        ])?;
        ip(&["link", "set", &machine, "up"])?;
        let up = format!("198.18.{}.2/24", self.subnet);
        ip(&["-n", router, "addr", "add", &up, "dev", "uplink"])?;
        ip(&["-n", router, "link", "set", "uplink", "up"])?;
        ip(&["-n", router, "link", "set", "lo", "up"])?;
        let path = format!("--net=/var/run/netns/{router}");
        run(std::process::Command::new("nsenter").args([
            path.as_str(),
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]))?;
        run(std::process::Command::new("nsenter").args([
            path.as_str(),
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "uplink",
            "-j",
            "MASQUERADE",
        ]))?;
        for (i, h) in self.hosts.clone().iter().enumerate() {
            let u = links[i];
            let dev = format!("d{}", i + 1);
            ip(&["netns", "add", &h.netns])?;
            ip(&[
                "-n", router, "link", "add", &dev, "type", "veth", "peer", "name", "eth0", "netns",
                &h.netns,
            ])?;
            ip(&[
                "-n",
                router,
                "addr",
                "add",
                &format!("198.18.{u}.1/24"),
                "dev",
                &dev,
            ])?;
            ip(&["-n", router, "link", "set", &dev, "up"])?;
            ip(&[
                "-n",
                &h.netns,
                "addr",
                "add",
                &format!("{}/24", h.addr),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &h.netns, "link", "set", "lo", "up"])?;
            ip(&["-n", &h.netns, "link", "set", "eth0", "up"])?;
            let gateway = format!("198.18.{u}.1");
            ip(&["-n", &h.netns, "route", "add", "default", "via", &gateway])?;
        }
        Ok(())
    }
}
