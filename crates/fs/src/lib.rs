//! orca-fs: the one way orca writes the small files it must find again
//! after a crash (the agent's identity, its IPAM allocations, the final
//! reports of tasks that ended).
//!
//! [`write_atomic`] writes a temporary file beside the target, fsyncs it,
//! renames it over the target and fsyncs the directory, so a reader (or a
//! process restarted after `kill -9` or a power cut) sees either the old
//! contents or the new ones, never a torn file, and a write that returned
//! is on disk. A temporary file is removed when the write fails; one left
//! by a crash mid-write is removed by [`remove_temp_files`], which owners
//! call when they open their directory.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The suffix of temporary files: what [`remove_temp_files`] looks for.
pub const TEMP_SUFFIX: &str = ".orca-tmp";

/// A temporary name beside `path`, unique within this process (two writers
/// of one file never share a temporary file) and hidden (leading dot).
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(
        ".{}.{}{TEMP_SUFFIX}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    Ok(path.with_file_name(temp))
}

/// The directory holding `path` ("." for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` atomically and durably (temporary file,
/// fsync, rename, directory fsync). The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_path(path)?;
    let written = (|| {
        let mut f = File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        // Never leave the temporary file behind; the target is untouched.
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(parent_dir(path))
}

/// Removes `path` durably (directory fsync); not an error if it is gone.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent_dir(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the temporary files a crash left in `dir` (not recursively);
/// returns how many. A missing directory holds none. Call it only while no
/// write into `dir` is under way (when the owner opens the directory).
pub fn remove_temp_files(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(TEMP_SUFFIX) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replace_the_file_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").expect("write");
        // A directory in the way of another target: the rename fails.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).expect("mkdir");
        fs::write(blocked.join("x"), b"").expect("fill");
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(fs::read(&path).expect("read"), b"old");
        assert_eq!(names(dir.path()), ["blocked", "state.json"]);
        assert!(write_atomic(&dir.path().join("none/x"), b"x").is_err());
    }

    #[test]
    fn leftovers_of_a_crash_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("keep.json"), b"{}").expect("write");
        fs::write(
            dir.path().join(format!(".keep.json.1.0{TEMP_SUFFIX}")),
            b"{",
        )
        .expect("write");
        assert_eq!(remove_temp_files(dir.path()).expect("clean"), 1);
        assert_eq!(names(dir.path()), ["keep.json"]);
        assert_eq!(
            remove_temp_files(&dir.path().join("absent")).expect("none"),
            0
        );
        remove_durably(&dir.path().join("keep.json")).expect("remove");
        remove_durably(&dir.path().join("keep.json")).expect("already gone");
        assert!(names(dir.path()).is_empty());
    }
}
