//! Names and addresses derived from a task id, shared by the real and the
//! fake configurator so that both report the same [`crate::TaskNetwork`].

use std::net::Ipv4Addr;

use crate::NetworkError;

/// Linux's limit on interface names (IFNAMSIZ minus the NUL).
pub const MAX_IFNAME_LEN: usize = 15;

/// Where `ip netns` (and therefore containerd, runc and nsenter users) look
/// for named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Longest task id accepted: the namespace name must stay a sane file name.
const MAX_TASK_ID_LEN: usize = 200;

/// Rejects task ids that would not make a safe file name under
/// [`NETNS_RUN_DIR`] (empty, too long, `/`, `..`, control characters).
pub fn check_task_id(task_id: &str) -> Result<(), NetworkError> {
    let ok = !task_id.is_empty()
        && task_id.len() <= MAX_TASK_ID_LEN
        && task_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !task_id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidTaskId(task_id.to_string()))
    }
}

/// The key of container `index`'s own network in a bridge-mode task
/// (its namespace and address): `{task_id}.{index}`. Task ids minted by the
/// controllers hold no '.', so [`task_of`] maps the key back.
pub fn endpoint_id(task_id: &str, index: usize) -> String {
    format!("{task_id}.{index}")
}

/// The task a network key (a task id or an [`endpoint_id`]) belongs to.
pub fn task_of(key: &str) -> &str {
    key.split_once('.').map_or(key, |(task, _)| task)
}

/// Whether `key` is `task_id` itself or one of its endpoints.
pub fn belongs_to(key: &str, task_id: &str) -> bool {
    key == task_id
        || key
            .strip_prefix(task_id)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
}

/// The namespace's name: `{netns_prefix}-{task_id}`.
pub fn netns_name(netns_prefix: &str, task_id: &str) -> String {
    format!("{netns_prefix}-{task_id}")
}

/// The host-side veth's name: `orca` and 11 hex digits of a hash of the
/// namespace name (15 bytes). The namespace name already carries the agent's
/// prefix, so two agents on one machine get different names for equal task
/// ids; 44 bits make an accidental clash negligible.
pub fn host_veth_name(netns_name: &str) -> String {
    format!("orca{:011x}", fnv1a64(netns_name.as_bytes()) >> 20)
}

/// The task interface's MAC address: the locally administered `0a:58` prefix
/// (as Kubernetes' bridge plugin uses) followed by the IPv4 address, so it is
/// stable across restarts and unique within the subnet.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x0a, 0x58, a, b, c, d]
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// FNV-1a: tiny, stable across Rust versions (unlike `DefaultHasher`), which
/// matters because the name must be recomputed identically after an upgrade.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_are_short_stable_and_distinct() {
        let a = host_veth_name("orca-a1-task1");
        assert_eq!(a.len(), MAX_IFNAME_LEN);
        assert_eq!(a, host_veth_name("orca-a1-task1"));
        assert_ne!(a, host_veth_name("orca-a2-task1"));
        assert_ne!(a, host_veth_name("orca-a1-task2"));
    }

    #[test]
    fn task_ids_must_be_safe_file_names() {
        for ok in ["a", "3f2b-11aa", "svc.web_1"] {
            assert!(check_task_id(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(201);
        for bad in ["", "..", ".hidden", "a/b", "a b", "ü", long.as_str()] {
            assert!(check_task_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoint_keys_map_back_to_their_task() {
        let key = endpoint_id("3f2b11aa", 2);
        assert_eq!(key, "3f2b11aa.2");
        assert_eq!(task_of(&key), "3f2b11aa");
        assert_eq!(task_of("3f2b11aa"), "3f2b11aa");
        assert!(check_task_id(&key).is_ok());
        assert!(belongs_to(&key, "3f2b11aa"));
        assert!(belongs_to("3f2b11aa", "3f2b11aa"));
        assert!(!belongs_to("3f2b11aab.0", "3f2b11aa"));
        assert!(!belongs_to("3f2b11aa.x", "3f2b11aa"));
        assert!(!belongs_to("3f2b11aa.", "3f2b11aa"));
    }

    #[test]
    fn mac_carries_the_address() {
        let mac = mac_for(Ipv4Addr::new(198, 19, 3, 10));
        assert_eq!(format_mac(mac), "0a:58:c6:13:03:0a");
    }
}
