//! Task-to-task traffic across nodes: every node routes every other node's
//! task subnet, over VXLAN (the default) or directly (host-gw) where both
//! ends share a link. `plan` decides (pure); `netns::overlay` programs the
//! kernel with rtnetlink.

pub mod plan;

pub use plan::{
    desired, diff, vtep_mac, OverlayConfig, OverlayMode, OverlayOp, OverlayState, Peer, Via,
    VxlanDevice,
};
