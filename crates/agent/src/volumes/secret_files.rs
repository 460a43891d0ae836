//! Secrets as files (`orca.secrets.files`): a small tmpfs per container
//! under the task's files, one file per secret, so the values live in
//! memory only and never in containerd's store or on a disk. Mounted when
//! the task is prepared (again after an agent restart: a mounted one is
//! reused), unmounted before the task's files are removed.

use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::plan::{SecretFiles, VolumeError};

/// Room for the values (64 KiB each at most) and the tmpfs's own blocks.
fn size_bytes(files: &SecretFiles) -> usize {
    let data: usize = files
        .files
        .iter()
        .map(|(_, v)| v.expose().len() + 4096)
        .sum();
    data + 64 * 1024
}

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> VolumeError {
    VolumeError::Io(format!("{what} {}: {e}", path.display()))
}

/// Whether `dir` is a mount point (its device differs from its parent's).
fn is_mount(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

/// Mounts the tmpfs (unless it is) and writes the files, readable by any
/// user of the container (mode 0444, as Docker's secrets), the directory
/// itself only reachable through the task's files.
pub fn write(files: &SecretFiles) -> Result<(), VolumeError> {
    let dir = &files.dir;
    std::fs::create_dir_all(dir).map_err(|e| err("creating", dir, e))?;
    if !is_mount(dir) {
        let options = format!("size={},mode=0755", size_bytes(files));
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(options.as_str()),
        )
        .map_err(|e| err("mounting a tmpfs on", dir, e))?;
    }
    for (name, value) in &files.files {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o444)
                .open(&tmp)?;
            f.write_all(value.expose().as_bytes())?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444))?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| err("writing the secret file", &path, e))?;
    }
    Ok(())
}

/// Unmounts every secrets tmpfs under a task's files directory (before it
/// is removed); not an error if none is mounted.
pub fn unmount_all(task_files: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(task_files) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let is_secrets = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(super::plan::SECRETS_SUFFIX));
        if is_secrets && is_mount(&path) {
            umount2(&path, MntFlags::MNT_DETACH).map_err(io::Error::from)?;
        }
    }
    Ok(())
}
