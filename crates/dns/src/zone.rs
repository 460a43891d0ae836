//! The pure core: what a [`DiscoveryZone`] says about one question, by the
//! rules ECS service-discovery users know from Cloud Map. No I/O and no
//! hickory types, so every rule is a plain unit test.
//!
//! - `A <service>.<ns>`: one record per distinct endpoint address;
//! - `SRV <service>.<ns>`: one record per endpoint with a port, target
//!   `<task_id>.<service>.<ns>.`, with that target's A in the additional
//!   section;
//! - `A <task_id>.<service>.<ns>`: that task's address;
//! - a name that exists but has nothing of the asked type (a service with no
//!   endpoints, the namespace itself but for SOA, AAAA for a service):
//!   NOERROR, empty;
//! - `SOA <ns>`: the zone's [`soa`];
//! - any other name under the namespace: NXDOMAIN;
//! - a name outside the namespace is not ours to answer.
//!
//! NXDOMAIN and NODATA carry [`soa`] in their authority section (RFC 2308
//! section 3): without it a resolver may not cache the negative answer at
//! all, and with it caches it for the SOA's MINIMUM, which is the zone's TTL
//! so that "no such name" lasts no longer than an address would.

use std::net::Ipv4Addr;

use orca_core::discovery::{DiscoveryZone, ServiceEndpoint};

/// The question types the zone knows; everything else gets NoData when the
/// name exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    A,
    Srv,
    Soa,
    Other,
}

/// What the zone says about one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name exists and has records of the asked type.
    Records(Records),
    /// The name is under the namespace and does not exist.
    NxDomain,
    /// The name exists and has nothing of the asked type.
    NoData,
    /// The name is outside the namespace: relay it upstream.
    NotOurs,
}

/// An authoritative answer's sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// Records owned by the asked name.
    pub answers: Vec<ZoneRecord>,
    /// The A records of SRV targets, so a client needs no second query.
    pub additionals: Vec<ZoneRecord>,
}

/// SOA timers for secondaries, which this zone never has (it lives in each
/// agent's memory and is pushed by the leader, never transferred), so they
/// only need to be plausible: Route 53's defaults for a hosted zone.
const SOA_REFRESH_SECS: u32 = 7200;
const SOA_RETRY_SECS: u32 = 900;
const SOA_EXPIRE_SECS: u32 = 1_209_600;

/// The SOA serial. A [`DiscoveryZone`] carries no version, and a serial
/// taken from the clock or a hash would differ between agents serving the
/// same zone; nothing here reads serials (no transfers), so it is fixed.
const SOA_SERIAL: u32 = 1;

/// One resource record, named by its lowercase fully-qualified name
/// (trailing dot included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    pub name: String,
    pub ttl: u32,
    pub data: RecordData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    A(Ipv4Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        /// Fully qualified, trailing dot included.
        target: String,
    },
    Soa {
        /// The primary server's name, fully qualified.
        mname: String,
        /// The responsible mailbox as a name, fully qualified.
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        /// How long a resolver may cache a negative answer (RFC 2308).
        minimum: u32,
    },
}

/// The zone's SOA record, owned by the namespace apex: the authority of
/// every negative answer and the answer to `SOA <ns>`. Its TTL and MINIMUM
/// are the zone's TTL, the bound RFC 2308 puts on negative caching.
pub fn soa(zone: &DiscoveryZone) -> ZoneRecord {
    let namespace = normalize(&zone.namespace);
    ZoneRecord {
        name: format!("{namespace}."),
        ttl: zone.ttl_secs,
        data: RecordData::Soa {
            mname: format!("ns.{namespace}."),
            rname: format!("hostmaster.{namespace}."),
            serial: SOA_SERIAL,
            refresh: SOA_REFRESH_SECS,
            retry: SOA_RETRY_SECS,
            expire: SOA_EXPIRE_SECS,
            minimum: zone.ttl_secs,
        },
    }
}

/// Answers `qtype` for `name` from `zone`.
pub fn answer(zone: &DiscoveryZone, name: &str, qtype: QueryKind) -> Answer {
    let namespace = normalize(&zone.namespace);
    let name = normalize(name);
    // An empty namespace would claim every name and starve the upstreams.
    if namespace.is_empty() {
        return Answer::NotOurs;
    }
    if name == namespace {
        return match qtype {
            QueryKind::Soa => Answer::Records(Records {
                answers: vec![soa(zone)],
                additionals: Vec::new(),
            }),
            _ => Answer::NoData,
        };
    }
    let Some(relative) = name
        .strip_suffix(namespace.as_str())
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|rest| !rest.is_empty())
    else {
        return Answer::NotOurs;
    };

    let found = zone.services.iter().find_map(|(service, endpoints)| {
        let service_lower = service.to_ascii_lowercase();
        if relative == service_lower {
            return Some(Found::Service(service, endpoints));
        }
        let task = relative
            .strip_suffix(service_lower.as_str())
            .and_then(|rest| rest.strip_suffix('.'))?;
        let endpoints: Vec<&ServiceEndpoint> = endpoints
            .iter()
            .filter(|e| e.task_id.eq_ignore_ascii_case(task))
            .collect();
        (!endpoints.is_empty()).then_some(Found::Task(endpoints))
    });
    let ttl = zone.ttl_secs;
    match (found, qtype) {
        (None, _) => Answer::NxDomain,
        (Some(Found::Service(service, endpoints)), QueryKind::A) => {
            let service = service.to_ascii_lowercase();
            let mut addresses: Vec<Ipv4Addr> = Vec::new();
            for endpoint in endpoints {
                if !addresses.contains(&endpoint.address) {
                    addresses.push(endpoint.address);
                }
            }
            let owner = format!("{service}.{namespace}.");
            records(
                addresses.into_iter().map(|a| a_record(&owner, ttl, a)),
                Vec::new(),
            )
        }
        (Some(Found::Service(service, endpoints)), QueryKind::Srv) => {
            let service = service.to_ascii_lowercase();
            let owner = format!("{service}.{namespace}.");
            let mut answers = Vec::new();
            let mut additionals: Vec<ZoneRecord> = Vec::new();
            for endpoint in endpoints {
                let Some(port) = endpoint.port else { continue };
                let target = format!(
                    "{}.{service}.{namespace}.",
                    endpoint.task_id.to_ascii_lowercase()
                );
                let glue = a_record(&target, ttl, endpoint.address);
                if !additionals.contains(&glue) {
                    additionals.push(glue);
                }
                answers.push(ZoneRecord {
                    name: owner.clone(),
                    ttl,
                    data: RecordData::Srv {
                        priority: 0,
                        weight: 1,
                        port,
                        target,
                    },
                });
            }
            records(answers, additionals)
        }
        (Some(Found::Task(endpoints)), QueryKind::A) => {
            let owner = format!("{name}.");
            let mut answers: Vec<ZoneRecord> = Vec::new();
            for endpoint in endpoints {
                let record = a_record(&owner, ttl, endpoint.address);
                if !answers.contains(&record) {
                    answers.push(record);
                }
            }
            records(answers, Vec::new())
        }
        (Some(_), _) => Answer::NoData,
    }
}

/// A name the zone holds.
enum Found<'z> {
    /// `<service>.<ns>`: the service's name as the zone spells it, and its
    /// endpoints.
    Service(&'z str, &'z [ServiceEndpoint]),
    /// `<task>.<service>.<ns>`: that task's endpoints (one per port).
    Task(Vec<&'z ServiceEndpoint>),
}

/// An empty answer section means the name exists with nothing to give.
fn records(answers: impl IntoIterator<Item = ZoneRecord>, additionals: Vec<ZoneRecord>) -> Answer {
    let answers: Vec<ZoneRecord> = answers.into_iter().collect();
    if answers.is_empty() {
        Answer::NoData
    } else {
        Answer::Records(Records {
            answers,
            additionals,
        })
    }
}

fn a_record(name: &str, ttl: u32, address: Ipv4Addr) -> ZoneRecord {
    ZoneRecord {
        name: name.to_owned(),
        ttl,
        data: RecordData::A(address),
    }
}

/// DNS names compare case-insensitively and a trailing dot is optional.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
#[path = "zone_tests.rs"]
mod tests;
