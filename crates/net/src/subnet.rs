//! [`Ipv4Subnet`]'s arithmetic, parsing and (string) serde form.
//!
//! The struct itself is part of the crate's contract in `lib.rs`; its fields
//! are public, so every helper here tolerates a value that was built by hand
//! and [`Ipv4Subnet::validate`] says whether it can carry tasks.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::{Ipv4Subnet, NetworkError};

/// The longest prefix that still leaves a gateway and one task address
/// besides the network and broadcast addresses.
pub const MAX_TASK_PREFIX_LEN: u8 = 30;

impl Ipv4Subnet {
    /// A subnet whose host bits are zero; any prefix length up to 32.
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Self, NetworkError> {
        if prefix_len > 32 {
            return Err(NetworkError::Config(format!(
                "prefix length {prefix_len} of {network} is over 32"
            )));
        }
        let subnet = Ipv4Subnet {
            network,
            prefix_len,
        };
        if u32::from(network) & !subnet.mask() != 0 {
            return Err(NetworkError::Config(format!(
                "{network}/{prefix_len} has host bits set (the network is {}/{prefix_len})",
                Ipv4Addr::from(u32::from(network) & subnet.mask())
            )));
        }
        Ok(subnet)
    }

    /// Whether tasks can live in it: a valid prefix, host bits zero, and
    /// room for a gateway plus at least one task (prefix ≤ /30).
    pub fn validate(&self) -> Result<(), NetworkError> {
        Ipv4Subnet::new(self.network, self.prefix_len)?;
        if self.prefix_len > MAX_TASK_PREFIX_LEN {
            return Err(NetworkError::Config(format!(
                "{self} is too small for tasks (at most /{MAX_TASK_PREFIX_LEN})"
            )));
        }
        Ok(())
    }

    /// The netmask as a number (`/24` → `0xffff_ff00`).
    pub fn mask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n if n >= 32 => u32::MAX,
            n => u32::MAX << (32 - u32::from(n)),
        }
    }

    /// Whether `ip` lies in the subnet (network and broadcast included).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network) & self.mask()
    }

    /// The broadcast (last) address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from((u32::from(self.network) & self.mask()) | !self.mask())
    }

    /// The first host address: the bridge's, the tasks' default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from((u32::from(self.network) & self.mask()).wrapping_add(1))
    }

    /// Every host address in order (network and broadcast excluded); empty
    /// for /31 and /32, which have no room for a gateway and a task anyway.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) & self.mask();
        let last = u32::from(self.broadcast());
        let range = if self.prefix_len >= 31 {
            1..1
        } else {
            first + 1..last
        };
        range.map(Ipv4Addr::from)
    }

    /// How many addresses [`Ipv4Subnet::hosts`] yields.
    pub fn host_count(&self) -> u64 {
        if self.prefix_len >= 31 {
            0
        } else {
            (1u64 << (32 - u32::from(self.prefix_len))) - 2
        }
    }
}

impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = NetworkError;

    /// Parses `a.b.c.d/n`; host bits must be zero so that a typo such as
    /// `198.19.3.1/24` is caught rather than silently meaning `.0/24`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(|| {
            NetworkError::Config(format!("subnet {s:?} is not in the form a.b.c.d/prefix"))
        })?;
        let network: Ipv4Addr = addr.parse().map_err(|_| {
            NetworkError::Config(format!("subnet {s:?}: {addr:?} is not an IPv4 address"))
        })?;
        let prefix_len: u8 = prefix.parse().map_err(|_| {
            NetworkError::Config(format!(
                "subnet {s:?}: prefix {prefix:?} is not a number from 0 to 32"
            ))
        })?;
        Ipv4Subnet::new(network, prefix_len)
    }
}

impl serde::Serialize for Ipv4Subnet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Ipv4Subnet {
        s.parse().expect("valid subnet")
    }

    #[test]
    fn parses_and_displays() {
        let s = subnet("198.19.3.0/24");
        assert_eq!(s.network, Ipv4Addr::new(198, 19, 3, 0));
        assert_eq!(s.prefix_len, 24);
        assert_eq!(s.to_string(), "198.19.3.0/24");
        assert_eq!(subnet(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn rejects_malformed_input_with_clear_errors() {
        for (input, needle) in [
            ("198.19.3.0", "form a.b.c.d/prefix"),
            ("198.19.3/24", "not an IPv4 address"),
            ("198.19.3.0/x", "not a number"),
            ("198.19.3.0/33", "over 32"),
            (
                "198.19.3.1/24",
                "host bits set (the network is 198.19.3.0/24)",
            ),
        ] {
            let err = input.parse::<Ipv4Subnet>().expect_err(input).to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn arithmetic() {
        let s = subnet("198.19.3.0/24");
        assert_eq!(s.mask(), 0xffff_ff00);
        assert_eq!(s.gateway(), Ipv4Addr::new(198, 19, 3, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(198, 19, 3, 255));
        assert!(s.contains(Ipv4Addr::new(198, 19, 3, 77)));
        assert!(!s.contains(Ipv4Addr::new(198, 19, 4, 1)));
        assert_eq!(s.host_count(), 254);
        let hosts: Vec<_> = s.hosts().collect();
        assert_eq!(hosts.len(), 254);
        assert_eq!(hosts[0], Ipv4Addr::new(198, 19, 3, 1));
        assert_eq!(hosts[253], Ipv4Addr::new(198, 19, 3, 254));
        assert_eq!(subnet("0.0.0.0/0").mask(), 0);
        assert_eq!(subnet("10.0.0.4/32").hosts().count(), 0);
        assert_eq!(subnet("10.0.0.4/30").hosts().count(), 2);
    }

    #[test]
    fn validate_wants_room_for_a_gateway_and_a_task() {
        assert!(subnet("10.0.0.4/30").validate().is_ok());
        assert!(subnet("10.0.0.4/31").validate().is_err());
        let by_hand = Ipv4Subnet {
            network: Ipv4Addr::new(10, 0, 0, 1),
            prefix_len: 24,
        };
        assert!(by_hand.validate().is_err());
    }

    #[test]
    fn serde_uses_the_string_form() {
        let s = subnet("198.19.3.0/24");
        let json = serde_json::to_string(&s).expect("serialises");
        assert_eq!(json, "\"198.19.3.0/24\"");
        let back: Ipv4Subnet = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, s);
        let bad = serde_json::from_str::<Ipv4Subnet>("\"198.19.3.9/24\"")
            .expect_err("host bits")
            .to_string();
        assert!(bad.contains("host bits"), "{bad}");
    }
}
