//! The /etc/resolv.conf, /etc/hosts and /etc/hostname a container sees,
//! rendered from its definition, the task's network mode and address and
//! the agent's resolvers. Pure: the executor writes them
//! (`crate::volumes::store`) and the runtime bind-mounts them.
//!
//! ECS's rules: `dnsServers`, `dnsSearchDomains` and `extraHosts` apply in
//! bridge and host mode; under awsvpc validation refuses them, and a
//! definition that has them anyway (registered before the rule) gets the
//! agent's resolvers and no extra hosts, as the task's own network decides.

use std::net::Ipv4Addr;

use orca_core::task_definition::{ContainerDefinition, NetworkMode};

/// Where each file is mounted in the container, and its file name in the
/// container's directory under the agent's data dir.
pub const ETC_FILES: [(&str, &str); 3] = [
    ("/etc/resolv.conf", "resolv.conf"),
    ("/etc/hosts", "hosts"),
    ("/etc/hostname", "hostname"),
];

/// The definition's own DNS fields count in this mode.
fn own_dns_allowed(mode: NetworkMode) -> bool {
    mode != NetworkMode::Awsvpc
}

/// resolv.conf: the definition's `dnsServers` and `dnsSearchDomains` where
/// the mode allows them, else `resolvers` (the agent's `dns_servers`).
pub fn resolv_conf(def: &ContainerDefinition, mode: NetworkMode, resolvers: &[Ipv4Addr]) -> String {
    let mut out = String::from("# written by orca-agent\n");
    let own = |v: &Option<Vec<String>>| {
        v.as_ref()
            .filter(|list| own_dns_allowed(mode) && !list.is_empty())
            .cloned()
    };
    match own(&def.dns_servers) {
        Some(servers) => {
            for s in servers {
                out.push_str(&format!("nameserver {s}\n"));
            }
        }
        None => {
            for s in resolvers {
                out.push_str(&format!("nameserver {s}\n"));
            }
        }
    }
    if let Some(domains) = own(&def.dns_search_domains) {
        out.push_str(&format!("search {}\n", domains.join(" ")));
    }
    out
}

/// /etc/hosts as Docker writes it: loopback names, then `extraHosts`
/// (where the mode allows them), then the container's own address with its
/// hostname (none in host mode, where the node's address is the task's).
pub fn hosts(
    def: &ContainerDefinition,
    mode: NetworkMode,
    own_ip: Option<Ipv4Addr>,
    hostname: &str,
    links: &[(Ipv4Addr, String)],
) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    if own_dns_allowed(mode) {
        for h in def.extra_hosts.iter().flatten() {
            out.push_str(&format!("{}\t{}\n", h.ip_address, h.hostname));
        }
    }
    for (ip, names) in links {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    if let Some(ip) = own_ip.filter(|_| mode != NetworkMode::Host) {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// /etc/hostname.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// The nameservers of a resolv.conf's text, loopback ones left out (they
/// answer on the node, not inside a task's namespace), as Docker filters
/// the host's file.
pub fn node_nameservers(resolv_conf: &str) -> Vec<Ipv4Addr> {
    nameservers(resolv_conf)
        .filter_map(|ip| match ip {
            std::net::IpAddr::V4(v4) if !v4.is_loopback() => Some(v4),
            _ => None,
        })
        .collect()
}

/// Every `nameserver` address of a resolv.conf's text, in order.
pub fn nameservers(resolv_conf: &str) -> impl Iterator<Item = std::net::IpAddr> + '_ {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|w| w.parse().ok())
}

#[cfg(test)]
mod tests {
    use orca_core::task_definition::HostEntry;

    use super::*;

    fn def() -> ContainerDefinition {
        serde_json::from_value(serde_json::json!({
            "name": "app",
            "image": "busybox",
            "dnsServers": ["10.0.0.2", "10.0.0.3"],
            "dnsSearchDomains": ["corp.internal", "svc.internal"],
            "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.5"}]
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    const AGENT: [Ipv4Addr; 1] = [Ipv4Addr::new(192, 0, 2, 53)];

    #[test]
    fn bridge_and_host_use_the_definitions_dns() {
        for mode in [NetworkMode::Bridge, NetworkMode::Host] {
            assert_eq!(
                resolv_conf(&def(), mode, &AGENT),
                "# written by orca-agent\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n\
                 search corp.internal svc.internal\n"
            );
        }
    }

    #[test]
    fn awsvpc_and_a_definition_without_dns_use_the_agents_resolvers() {
        let want = "# written by orca-agent\nnameserver 192.0.2.53\n";
        assert_eq!(resolv_conf(&def(), NetworkMode::Awsvpc, &AGENT), want);
        let mut plain = def();
        plain.dns_servers = None;
        plain.dns_search_domains = None;
        assert_eq!(resolv_conf(&plain, NetworkMode::Bridge, &AGENT), want);
        plain.dns_servers = Some(Vec::new());
        assert_eq!(resolv_conf(&plain, NetworkMode::Bridge, &AGENT), want);
    }

    #[test]
    fn hosts_has_loopback_extra_hosts_then_the_own_address() {
        let ip = Some(Ipv4Addr::new(198, 19, 0, 2));
        let bridge = hosts(&def(), NetworkMode::Bridge, ip, "web", &[]);
        assert!(bridge.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost"));
        assert!(
            bridge.ends_with("10.0.0.5\tdb.local\n198.19.0.2\tweb\n"),
            "{bridge}"
        );
        let awsvpc = hosts(&def(), NetworkMode::Awsvpc, ip, "0123456789ab", &[]);
        assert!(!awsvpc.contains("db.local"));
        assert!(awsvpc.ends_with("ip6-allrouters\n198.19.0.2\t0123456789ab\n"));
        let host = hosts(&def(), NetworkMode::Host, ip, "web", &[]);
        assert!(host.ends_with("10.0.0.5\tdb.local\n"), "{host}");
        let mut many = def();
        many.extra_hosts = Some(vec![
            HostEntry {
                hostname: "a".into(),
                ip_address: "10.0.0.6".into(),
            },
            HostEntry {
                hostname: "b".into(),
                ip_address: "fd00::1".into(),
            },
        ]);
        assert!(
            hosts(&many, NetworkMode::None, None, "x", &[]).ends_with("10.0.0.6\ta\nfd00::1\tb\n")
        );
        assert_eq!(hostname_file("web"), "web\n");
    }

    #[test]
    fn hosts_lists_links_before_the_own_address() {
        let ip = Some(Ipv4Addr::new(198, 19, 0, 3));
        let links = [(Ipv4Addr::new(198, 19, 0, 2), "database db".to_string())];
        let bridge = hosts(&def(), NetworkMode::Bridge, ip, "web", &links);
        assert!(
            bridge.ends_with("10.0.0.5\tdb.local\n198.19.0.2\tdatabase db\n198.19.0.3\tweb\n"),
            "{bridge}"
        );
    }

    #[test]
    fn node_nameservers_skip_loopback_and_junk() {
        let text = "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\n\
                    search lan\nnameserver fd00::53\nnameserver   192.0.2.1  \noptions ndots:2\n";
        assert_eq!(
            node_nameservers(text),
            vec![Ipv4Addr::new(10, 255, 255, 53), Ipv4Addr::new(192, 0, 2, 1)]
        );
    }
}
