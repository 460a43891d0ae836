//! Every rule of [`super::answer`], one test each.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use orca_core::discovery::{DiscoveryZone, ServiceEndpoint};

use super::*;

fn endpoint(task_id: &str, address: [u8; 4], port: Option<u16>) -> ServiceEndpoint {
    ServiceEndpoint {
        task_id: task_id.to_owned(),
        address: Ipv4Addr::from(address),
        port,
    }
}

/// `web` has two awsvpc tasks, `api` two bridge tasks on one node (one
/// address, two host ports), `idle` none.
fn zone() -> DiscoveryZone {
    let mut services = BTreeMap::new();
    services.insert(
        "web".to_owned(),
        vec![
            endpoint("aaa111", [10, 0, 0, 2], Some(80)),
            endpoint("bbb222", [10, 0, 0, 3], None),
        ],
    );
    services.insert(
        "api".to_owned(),
        vec![
            endpoint("ccc333", [192, 168, 1, 5], Some(32768)),
            endpoint("ddd444", [192, 168, 1, 5], Some(32769)),
        ],
    );
    services.insert("idle".to_owned(), Vec::new());
    DiscoveryZone {
        namespace: "orca.local".to_owned(),
        ttl_secs: 15,
        services,
    }
}

fn a(name: &str, address: [u8; 4]) -> ZoneRecord {
    ZoneRecord {
        name: name.to_owned(),
        ttl: 15,
        data: RecordData::A(Ipv4Addr::from(address)),
    }
}

fn srv(name: &str, port: u16, target: &str) -> ZoneRecord {
    ZoneRecord {
        name: name.to_owned(),
        ttl: 15,
        data: RecordData::Srv {
            priority: 0,
            weight: 1,
            port,
            target: target.to_owned(),
        },
    }
}

fn answers(answers: Vec<ZoneRecord>, additionals: Vec<ZoneRecord>) -> Answer {
    Answer::Records(Records {
        answers,
        additionals,
    })
}

#[test]
fn a_for_a_service_is_one_record_per_endpoint() {
    assert_eq!(
        answer(&zone(), "web.orca.local", QueryKind::A),
        answers(
            vec![
                a("web.orca.local.", [10, 0, 0, 2]),
                a("web.orca.local.", [10, 0, 0, 3])
            ],
            vec![]
        )
    );
}

#[test]
fn names_are_case_insensitive_and_the_trailing_dot_is_optional() {
    let expected = answer(&zone(), "web.orca.local", QueryKind::A);
    assert!(matches!(expected, Answer::Records(_)));
    for name in ["WEB.Orca.LOCAL", "web.orca.local.", "Web.ORCA.local."] {
        assert_eq!(answer(&zone(), name, QueryKind::A), expected, "{name}");
    }
    let mut shouting = zone();
    shouting.namespace = "ORCA.Local.".to_owned();
    let web = shouting.services.remove("web").unwrap_or_default();
    shouting.services.insert("Web".to_owned(), web);
    assert_eq!(answer(&shouting, "web.orca.local", QueryKind::A), expected);
}

#[test]
fn srv_carries_each_ported_endpoint_and_its_target_address() {
    assert_eq!(
        answer(&zone(), "web.orca.local", QueryKind::Srv),
        answers(
            vec![srv("web.orca.local.", 80, "aaa111.web.orca.local.")],
            vec![a("aaa111.web.orca.local.", [10, 0, 0, 2])]
        )
    );
}

#[test]
fn bridge_endpoints_sharing_an_address_give_one_a_and_two_srv() {
    let zone = zone();
    assert_eq!(
        answer(&zone, "api.orca.local", QueryKind::A),
        answers(vec![a("api.orca.local.", [192, 168, 1, 5])], vec![])
    );
    assert_eq!(
        answer(&zone, "api.orca.local", QueryKind::Srv),
        answers(
            vec![
                srv("api.orca.local.", 32768, "ccc333.api.orca.local."),
                srv("api.orca.local.", 32769, "ddd444.api.orca.local."),
            ],
            vec![
                a("ccc333.api.orca.local.", [192, 168, 1, 5]),
                a("ddd444.api.orca.local.", [192, 168, 1, 5]),
            ]
        )
    );
}

#[test]
fn a_for_a_task_is_that_tasks_address() {
    assert_eq!(
        answer(&zone(), "BBB222.web.orca.local.", QueryKind::A),
        answers(vec![a("bbb222.web.orca.local.", [10, 0, 0, 3])], vec![])
    );
}

#[test]
fn a_service_with_no_endpoints_is_nodata() {
    assert_eq!(
        answer(&zone(), "idle.orca.local", QueryKind::A),
        Answer::NoData
    );
    assert_eq!(
        answer(&zone(), "idle.orca.local", QueryKind::Srv),
        Answer::NoData
    );
}

#[test]
fn srv_for_a_service_without_ports_is_nodata() {
    let mut zone = zone();
    zone.services.insert(
        "portless".to_owned(),
        vec![endpoint("eee555", [10, 0, 0, 9], None)],
    );
    assert_eq!(
        answer(&zone, "portless.orca.local", QueryKind::Srv),
        Answer::NoData
    );
}

#[test]
fn a_known_name_asked_for_another_type_is_nodata() {
    let zone = zone();
    assert_eq!(
        answer(&zone, "web.orca.local", QueryKind::Other),
        Answer::NoData
    );
    assert_eq!(
        answer(&zone, "aaa111.web.orca.local", QueryKind::Srv),
        Answer::NoData
    );
    assert_eq!(answer(&zone, "orca.local", QueryKind::A), Answer::NoData);
    assert_eq!(
        answer(&zone, "ORCA.local.", QueryKind::Other),
        Answer::NoData
    );
}

#[test]
fn other_names_under_the_namespace_are_nxdomain() {
    let zone = zone();
    for name in [
        "db.orca.local",
        "zzz999.web.orca.local",
        "aaa111.api.orca.local",
        "x.aaa111.web.orca.local",
        "sub.orca.local.",
    ] {
        assert_eq!(
            answer(&zone, name, QueryKind::A),
            Answer::NxDomain,
            "{name}"
        );
    }
}

#[test]
fn names_outside_the_namespace_are_not_ours() {
    let zone = zone();
    for name in [
        "example.com",
        "local",
        "web.local",
        "weborca.local",
        "web.orca.local.evil",
        "",
        ".",
    ] {
        assert_eq!(answer(&zone, name, QueryKind::A), Answer::NotOurs, "{name}");
    }
}

#[test]
fn a_single_label_namespace_works_too() {
    let mut zone = zone();
    zone.namespace = "svc".to_owned();
    assert_eq!(
        answer(&zone, "api.svc", QueryKind::A),
        answers(vec![a("api.svc.", [192, 168, 1, 5])], vec![])
    );
    assert_eq!(
        answer(&zone, "api.orca.local", QueryKind::A),
        Answer::NotOurs
    );
}

#[test]
fn a_namespace_of_several_labels_matches_whole_labels_only() {
    let mut zone = zone();
    zone.namespace = "prod.corp.internal".to_owned();
    assert_eq!(
        answer(&zone, "web.prod.corp.internal", QueryKind::A),
        answer(&self::zone(), "web.orca.local", QueryKind::A)
            .map_names(|n| n.replace("orca.local", "prod.corp.internal"))
    );
    assert_eq!(
        answer(&zone, "corp.internal", QueryKind::A),
        Answer::NotOurs
    );
    assert_eq!(
        answer(&zone, "web.xprod.corp.internal", QueryKind::A),
        Answer::NotOurs
    );
    assert_eq!(
        answer(&zone, "web.corp.internal", QueryKind::A),
        Answer::NotOurs
    );
}

#[test]
fn an_empty_namespace_claims_nothing() {
    let mut zone = zone();
    zone.namespace = String::new();
    assert_eq!(answer(&zone, "web", QueryKind::A), Answer::NotOurs);
    assert_eq!(
        answer(&zone, "web.orca.local", QueryKind::A),
        Answer::NotOurs
    );
}

#[test]
fn the_ttl_is_the_zones() {
    let mut zone = zone();
    zone.ttl_secs = 60;
    let Answer::Records(records) = answer(&zone, "web.orca.local", QueryKind::Srv) else {
        panic!("web has an SRV answer");
    };
    assert!(records
        .answers
        .iter()
        .chain(&records.additionals)
        .all(|r| r.ttl == 60));
}

#[test]
fn the_soa_is_owned_by_the_apex_and_names_the_namespace() {
    assert_eq!(
        soa(&zone()),
        ZoneRecord {
            name: "orca.local.".to_owned(),
            ttl: 15,
            data: RecordData::Soa {
                mname: "ns.orca.local.".to_owned(),
                rname: "hostmaster.orca.local.".to_owned(),
                serial: 1,
                refresh: 7200,
                retry: 900,
                expire: 1_209_600,
                minimum: 15,
            },
        }
    );
}

#[test]
fn the_soa_spells_the_namespace_in_lowercase_with_one_trailing_dot() {
    let mut zone = zone();
    zone.namespace = "Prod.Corp.".to_owned();
    let record = soa(&zone);
    assert_eq!(record.name, "prod.corp.");
    let RecordData::Soa { mname, rname, .. } = record.data else {
        panic!("an SOA record");
    };
    assert_eq!(
        (mname.as_str(), rname.as_str()),
        ("ns.prod.corp.", "hostmaster.prod.corp.")
    );
}

#[test]
fn negative_answers_are_cached_no_longer_than_positive_ones() {
    // RFC 2308: a negative answer lives min(SOA TTL, MINIMUM); both are
    // the TTL the zone gives its addresses.
    let mut zone = zone();
    zone.ttl_secs = 60;
    let record = soa(&zone);
    assert_eq!(record.ttl, 60);
    let RecordData::Soa { minimum, .. } = record.data else {
        panic!("an SOA record");
    };
    assert_eq!(minimum, 60);
}

#[test]
fn soa_for_the_namespace_is_the_zones_soa() {
    let zone = zone();
    for name in ["orca.local", "Orca.Local."] {
        assert_eq!(
            answer(&zone, name, QueryKind::Soa),
            answers(vec![soa(&zone)], vec![]),
            "{name}"
        );
    }
}

#[test]
fn other_questions_about_the_namespace_stay_nodata() {
    // NS among them: the responder is no delegated server to name.
    let zone = zone();
    for qtype in [QueryKind::A, QueryKind::Srv, QueryKind::Other] {
        assert_eq!(
            answer(&zone, "orca.local", qtype),
            Answer::NoData,
            "{qtype:?}"
        );
    }
}

#[test]
fn soa_below_the_apex_is_nodata_or_nxdomain() {
    let zone = zone();
    assert_eq!(
        answer(&zone, "web.orca.local", QueryKind::Soa),
        Answer::NoData
    );
    assert_eq!(
        answer(&zone, "aaa111.web.orca.local", QueryKind::Soa),
        Answer::NoData
    );
    assert_eq!(
        answer(&zone, "db.orca.local", QueryKind::Soa),
        Answer::NxDomain
    );
    assert_eq!(
        answer(&zone, "example.com", QueryKind::Soa),
        Answer::NotOurs
    );
}

impl Answer {
    /// Rewrites every record name and SRV target, to compare answers
    /// across namespaces.
    fn map_names(self, f: impl Fn(&str) -> String) -> Answer {
        let map = |r: ZoneRecord| ZoneRecord {
            name: f(&r.name),
            ttl: r.ttl,
            data: match r.data {
                RecordData::Srv {
                    priority,
                    weight,
                    port,
                    target,
                } => RecordData::Srv {
                    priority,
                    weight,
                    port,
                    target: f(&target),
                },
                data => data,
            },
        };
        match self {
            Answer::Records(r) => Answer::Records(Records {
                answers: r.answers.into_iter().map(map).collect(),
                additionals: r.additionals.into_iter().map(map).collect(),
            }),
            other => other,
        }
    }
}
