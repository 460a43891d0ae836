//! IPv4 CIDR blocks: the cluster's task CIDR and the per-node task subnets
//! carved out of it.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network such as `198.19.3.0/24` (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    fn mask(prefix_len: u8) -> u32 {
        if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix_len))
        }
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains(&self, other: &Ipv4Cidr) -> bool {
        other.prefix_len >= self.prefix_len
            && u32::from(other.network) & Ipv4Cidr::mask(self.prefix_len) == u32::from(self.network)
    }

    /// Whether the two blocks share any address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The `index`-th sub-block of length `prefix_len`, if it exists.
    pub fn subnet(&self, prefix_len: u8, index: u32) -> Option<Ipv4Cidr> {
        if prefix_len < self.prefix_len || prefix_len > 32 {
            return None;
        }
        let bits = u32::from(prefix_len - self.prefix_len);
        if bits < 32 && index >= (1u32 << bits) {
            return None;
        }
        let size = if prefix_len == 0 {
            0
        } else {
            1u64 << (32 - u32::from(prefix_len))
        };
        let start = u64::from(u32::from(self.network)) + u64::from(index) * size;
        let start = u32::try_from(start).ok()?;
        Some(Ipv4Cidr {
            network: Ipv4Addr::from(start),
            prefix_len,
        })
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not a CIDR block such as 198.19.0.0/16"))?;
        let network: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("'{s}': '{addr}' is not an IPv4 address"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("'{s}': the prefix length must be 0 to 32"))?;
        if u32::from(network) & !Ipv4Cidr::mask(prefix_len) != 0 {
            return Err(format!("'{s}': the address has bits set past the prefix"));
        }
        Ok(Ipv4Cidr {
            network,
            prefix_len,
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl serde::Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_and_carves() {
        let block = cidr("198.19.0.0/16");
        assert_eq!(block.subnet(24, 0), Some(cidr("198.19.0.0/24")));
        assert_eq!(block.subnet(24, 255), Some(cidr("198.19.255.0/24")));
        assert_eq!(block.subnet(24, 256), None);
        assert!(block.contains(&cidr("198.19.7.0/24")));
        assert!(!block.contains(&cidr("198.18.7.0/24")));
        assert!(cidr("198.19.7.0/24").overlaps(&block));
        for bad in ["198.19.0.1/16", "198.19.0.0", "198.19.0.0/33", "x/8"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
    }
}
