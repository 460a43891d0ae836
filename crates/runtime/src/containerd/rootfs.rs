//! Reading a file of a container's root filesystem before it runs, without
//! mounting it: the overlayfs snapshot's mounts name plain directories
//! (upper first, then lowers top-down), so the first layer holding the path
//! wins, and a whiteout (a 0/0 character device) hides it.
//!
//! Used for `/etc/passwd` and `/etc/group` when a task's `user` is a name.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use containerd_client::types::Mount;

use super::user::AccountFiles;

/// The directories a rootfs is layered from, topmost first.
pub fn layer_dirs(mounts: &[Mount]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for m in mounts {
        match m.r#type.as_str() {
            "overlay" => {
                let opt = |key: &str| {
                    m.options
                        .iter()
                        .find_map(|o| o.strip_prefix(key).map(str::to_string))
                };
                if let Some(upper) = opt("upperdir=") {
                    dirs.push(PathBuf::from(upper));
                }
                if let Some(lower) = opt("lowerdir=") {
                    dirs.extend(lower.split(':').map(PathBuf::from));
                }
            }
            "bind" | "rbind" => dirs.push(PathBuf::from(&m.source)),
            _ => {}
        }
    }
    dirs
}

/// Reads `rel` (e.g. `etc/passwd`) from the layered rootfs; `None` if it is
/// absent, whited out, or not a regular file (a symlink could point outside
/// the container, so it is not followed).
pub fn read_file(dirs: &[PathBuf], rel: &str) -> Option<String> {
    for dir in dirs {
        let path = dir.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_char_device() || !ft.is_file() {
            return None;
        }
        return std::fs::read_to_string(&path).ok();
    }
    None
}

/// The image's `/etc/passwd` and `/etc/group`, as far as they exist.
pub fn account_files(mounts: &[Mount]) -> AccountFiles {
    let dirs = layer_dirs(mounts);
    AccountFiles {
        passwd: read_file(&dirs, "etc/passwd"),
        group: read_file(&dirs, "etc/group"),
    }
}

/// The log file's parent must exist before the shim opens it.
pub fn ensure_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => std::fs::create_dir_all(p),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_win_and_whiteouts_hide() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        for d in [&upper, &lower] {
            std::fs::create_dir_all(d.join("etc")).expect("mkdir");
        }
        std::fs::write(lower.join("etc/passwd"), "lower").expect("write");
        std::fs::write(lower.join("etc/group"), "g").expect("write");
        std::fs::write(upper.join("etc/passwd"), "upper").expect("write");
        let mounts = vec![Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec![
                "workdir=/w".into(),
                format!("upperdir={}", upper.display()),
                format!("lowerdir={}", lower.display()),
            ],
        }];
        let files = account_files(&mounts);
        assert_eq!(files.passwd.as_deref(), Some("upper"));
        assert_eq!(files.group.as_deref(), Some("g"));
        assert_eq!(layer_dirs(&mounts), vec![upper, lower]);
    }
}
