//! Task volumes, tmpfs and the /etc files of containers.
//!
//! [`plan`] is the pure part: from a task definition (with RunTask's
//! overrides) and the agent's settings to what must exist on the node and
//! what each container mounts, refusing what cannot be made with a
//! [`plan::VolumeError`] (ECS's `CannotCreateVolumeError`). [`store`] is the
//! thin shell that makes the directories and files and removes a task's.
//!
//! On disk, under the agent's data directory:
//! - `volumes/tasks/<task>/<volume>/`: volumes without `host`, and
//!   `dockerVolumeConfiguration` scope `task`; removed with the task;
//! - `volumes/shared/<name>/_data` and `meta.json`: scope `shared`, kept
//!   after their tasks (as Docker keeps `/var/lib/docker/volumes/<name>`);
//! - `task-files/<task>/<container>/{hosts,resolv.conf,hostname}`: the
//!   container's /etc files (`crate::runner::dns_files`), removed with the
//!   task;
//! - `task-files/<task>/<container>.secrets/`: a tmpfs holding the
//!   container's secrets as files when it asks for them
//!   (`orca.secrets.files`, [`secret_files`]), unmounted and removed with
//!   the task.
//!
//! Nothing else is mounted on the node itself: containers bind the
//! directories, so nothing is left in the node's mount table after a task,
//! and the directories outlive an agent restart by construction. The one
//! exception, the secrets tmpfs, is unmounted before the task's files go
//! (by the task's cleanup, or by garbage collection after a crash).

pub mod plan;
pub mod secret_files;
pub mod store;

pub use plan::{TaskSetup, VolumeError, VolumeSettings};
