//! The leader's discovery publisher: answers change with any instance's
//! task reports, not only with a session's own assignments, so one loop
//! watches the applied views, recomputes the zone of every cluster with a
//! discoverable service when services, tasks, definitions or instances
//! moved, and publishes it on a per-cluster watch channel ([`ZoneHub`])
//! that every agent session of the cluster follows. A zone equal to the one
//! published wakes nobody.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orca_core::discovery::DiscoveryZone;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::node::Node;
use crate::state::discovery::{discoverable_clusters, zone};
use crate::state::ClusterView;

/// The controller's discovery settings, validated (`Config::discovery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// Lowercase, without a trailing dot.
    pub namespace: String,
    /// Whole seconds, at least one.
    pub ttl: Duration,
    pub deregistration_margin: Duration,
}

impl DiscoverySettings {
    /// How long a discoverable task stays DEACTIVATING before SIGTERM: no
    /// resolver still holds its address by then.
    pub fn deregistration_delay(&self) -> Duration {
        self.ttl + self.deregistration_margin
    }
}

/// What a session follows: None until the cluster's zone was published.
pub type ZoneReceiver = watch::Receiver<Option<Arc<DiscoveryZone>>>;

/// Per-cluster zone channels, shared by the publisher and the sessions.
#[derive(Debug, Default)]
pub struct ZoneHub {
    channels: Mutex<BTreeMap<String, watch::Sender<Option<Arc<DiscoveryZone>>>>>,
}

impl ZoneHub {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, watch::Sender<Option<Arc<DiscoveryZone>>>>>
    {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cluster's zone channel.
    pub fn subscribe(&self, cluster: &str) -> ZoneReceiver {
        self.lock()
            .entry(cluster.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Publishes `zone` for `cluster`; wakes its sessions only if it differs
    /// from the zone they have.
    pub fn publish(&self, cluster: &str, zone: DiscoveryZone) {
        let mut channels = self.lock();
        let sender = channels
            .entry(cluster.to_string())
            .or_insert_with(|| watch::channel(None).0);
        sender.send_if_modified(|current| {
            if current.as_deref() == Some(&zone) {
                return false;
            }
            *current = Some(Arc::new(zone));
            true
        });
    }

    /// Forgets every zone (a new term's publisher starts from the state).
    fn clear(&self) {
        for sender in self.lock().values() {
            sender.send_if_modified(|current| current.take().is_some());
        }
    }
}

/// The parts of a view a zone depends on, to skip views that moved none.
struct Inputs(ClusterView);

impl Inputs {
    fn same(&self, view: &ClusterView) -> bool {
        self.0.services.ptr_eq(&view.services)
            && self.0.tasks.ptr_eq(&view.tasks)
            && self.0.families.ptr_eq(&view.families)
            && self.0.instances.ptr_eq(&view.instances)
    }
}

/// Publishes every discoverable cluster's zone while this node leads.
pub async fn run(
    node: Arc<Node>,
    hub: Arc<ZoneHub>,
    settings: DiscoverySettings,
    token: CancellationToken,
) {
    hub.clear();
    let mut views = node.watch_views();
    let mut last: Option<Inputs> = None;
    // Clusters published last time: one that loses its last registry gets
    // an empty zone once, so agents forget its names.
    let mut published: BTreeSet<String> = BTreeSet::new();
    loop {
        let view = views.borrow_and_update().clone();
        if !last.as_ref().is_some_and(|l| l.same(&view)) {
            published = publish_all(&view, &hub, &settings, &published);
            last = Some(Inputs(view));
        }
        tokio::select! {
            _ = token.cancelled() => return,
            changed = views.changed() => if changed.is_err() { return },
        }
    }
}

/// Publishes the zones of `view`; returns the clusters that have names.
fn publish_all(
    view: &ClusterView,
    hub: &ZoneHub,
    settings: &DiscoverySettings,
    published: &BTreeSet<String>,
) -> BTreeSet<String> {
    let clusters = discoverable_clusters(view);
    for cluster in clusters.union(published) {
        hub.publish(
            cluster,
            zone(view, cluster, &settings.namespace, settings.ttl),
        );
    }
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone_named(name: &str) -> DiscoveryZone {
        DiscoveryZone {
            namespace: "orca.local".into(),
            ttl_secs: 1,
            services: BTreeMap::from([(name.to_string(), Vec::new())]),
        }
    }

    #[test]
    fn sessions_wake_only_when_their_clusters_zone_changes() {
        let hub = ZoneHub::default();
        let mut a = hub.subscribe("a");
        let mut b = hub.subscribe("b");
        assert!(a.borrow_and_update().is_none());
        hub.publish("a", zone_named("web"));
        assert!(a.has_changed().expect("open"));
        assert!(!b.has_changed().expect("open"));
        a.borrow_and_update();
        hub.publish("a", zone_named("web"));
        assert!(
            !a.has_changed().expect("open"),
            "an equal zone wakes nobody"
        );
        hub.publish("a", zone_named("api"));
        assert!(a.has_changed().expect("open"));
        hub.clear();
        assert!(b.borrow_and_update().is_none());
        assert!(a.borrow_and_update().is_none());
    }
}
