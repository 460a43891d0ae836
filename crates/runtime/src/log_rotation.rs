//! Size-based rotation of a container's log file, as Docker's json-file
//! driver does it (`max-size`, `max-file`): once the file holds at least
//! `max_bytes` (at the end of the line that fills it), it becomes `<log>.1` (older ones shift to `.2` and on, the
//! oldest beyond `max_files` is deleted) and a new file starts. The
//! rotation happens at a line end, so a file passes the limit by the rest
//! of one line; no line is split (short of one twice the limit) and no
//! output is lost to it.
//!
//! Used by `orca-log-driver` (run by containerd's shim), which passes the
//! limits in its URI (`containerd::logdriver::uri`).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// How much of a container's output is kept on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    /// The size at which the current file is rotated (at least 1).
    pub max_bytes: u64,
    /// How many files are kept, the current one included (at least 1:
    /// then a full file is simply started over).
    pub max_files: u32,
}

/// `<log>.<n>`: the n-th newest rotated file.
pub fn rotated_path(log: &Path, n: u32) -> PathBuf {
    let mut name = log.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// A log file written in appends, rotated by size.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    rotation: Option<LogRotation>,
    file: Option<File>,
    size: u64,
}

impl RotatingLog {
    /// Opens (creating it and its parents) the log to append to.
    pub fn open(path: &Path, rotation: Option<LogRotation>) -> std::io::Result<RotatingLog> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingLog {
            path: path.to_path_buf(),
            rotation,
            file: Some(file),
            size,
        })
    }

    /// Appends one chunk, rotating once the file is full: at the end of
    /// the line that fills it, so a line is never split across files and
    /// every rotated file holds at least `max_bytes`. A line that alone
    /// runs past twice the limit is cut there, so one endless line cannot
    /// fill the disk. A failed write (disk full) drops the bytes: the
    /// container must never block.
    pub fn write_chunk(&mut self, mut chunk: &[u8]) {
        let Some(r) = self.rotation else {
            self.append(chunk);
            return;
        };
        let max = r.max_bytes.max(1);
        while self.size + chunk.len() as u64 >= max {
            // The first line end at which the file holds `max` bytes.
            let from = (max.saturating_sub(self.size + 1)) as usize;
            match chunk[from..].iter().position(|b| *b == b'\n') {
                Some(p) => {
                    let end = from + p;
                    self.append(&chunk[..=end]);
                    chunk = &chunk[end + 1..];
                    self.rotate(r);
                }
                None => {
                    self.append(chunk);
                    if self.size >= max.saturating_mul(2) {
                        self.rotate(r);
                    }
                    return;
                }
            }
        }
        self.append(chunk);
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.file.is_none() {
            // A reopen after a rotation failed (no space, no descriptor):
            // try again rather than drop the rest of the run.
            self.file = open_append(&self.path).ok();
        }
        if let Some(file) = &mut self.file {
            if file.write_all(bytes).is_ok() {
                self.size += bytes.len() as u64;
            }
        }
    }

    /// Flushes the file's data to disk.
    pub fn sync(&self) {
        if let Some(f) = &self.file {
            let _ = f.sync_data();
        }
    }

    fn rotate(&mut self, r: LogRotation) {
        // Oldest first, so no rename overwrites a file still to move.
        let keep = r.max_files.max(1);
        let _ = std::fs::remove_file(rotated_path(&self.path, keep));
        for n in (1..keep).rev() {
            let _ = std::fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1));
        }
        if keep > 1 {
            let _ = std::fs::rename(&self.path, rotated_path(&self.path, 1));
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
        // `.keep` itself is beyond what is kept (the shift above may have
        // made it).
        let _ = std::fs::remove_file(rotated_path(&self.path, keep));
        self.file = open_append(&self.path).ok();
        self.size = 0;
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_rotates_and_the_newest_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("t/app.log");
        let rotation = LogRotation {
            max_bytes: 100,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, Some(rotation)).unwrap_or_else(|e| panic!("{e}"));
        // 100 lines of 10 bytes: a rotation every 10 lines.
        for i in 0..100 {
            log.write_chunk(format!("line {i:04}\n").as_bytes());
        }
        log.write_chunk(b"last\n");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&path), "last\n");
        let newest = read(&rotated_path(&path, 1));
        assert!(
            newest.starts_with("line 0090\n") && newest.ends_with("line 0099\n"),
            "{newest}"
        );
        assert!(read(&rotated_path(&path, 2)).starts_with("line 0080\n"));
        assert!(!rotated_path(&path, 3).exists(), "three files in all");
    }

    #[test]
    fn lines_are_never_split_across_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("app.log");
        let rotation = LogRotation {
            max_bytes: 25,
            max_files: 2,
        };
        let mut log = RotatingLog::open(&path, Some(rotation)).unwrap_or_else(|e| panic!("{e}"));
        // Chunks cut lines anywhere, as pipes do.
        log.write_chunk(b"aaaaaaaaa\nbbbbbbbbb\ncc");
        log.write_chunk(b"ccccccc\nddd");
        log.write_chunk(b"dddddd\n");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(
            read(&rotated_path(&path, 1)),
            "aaaaaaaaa\nbbbbbbbbb\nccccccccc\n"
        );
        assert_eq!(read(&path), "ddddddddd\n");
    }

    #[test]
    fn a_file_is_rotated_only_once_it_holds_the_limit() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("app.log");
        let rotation = LogRotation {
            max_bytes: 16,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, Some(rotation)).unwrap_or_else(|e| panic!("{e}"));
        // 12 bytes, then a chunk whose last line end comes before the
        // limit is reached and whose tail is a cut line: no rotation yet.
        log.write_chunk(b"0123456789a\n");
        log.write_chunk(b"bc\nde");
        assert!(
            !rotated_path(&path, 1).exists(),
            "the line ending at 15 bytes is under 16; the next is not ended"
        );
        log.write_chunk(b"fgh\nij\n");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&rotated_path(&path, 1)), "0123456789a\nbc\ndefgh\n");
        assert_eq!(read(&path), "ij\n");
        // An endless line is cut at twice the limit.
        log.write_chunk(&[b'x'; 40]);
        assert_eq!(read(&rotated_path(&path, 1)).len(), 43);
        assert_eq!(read(&path), "");
    }

    #[test]
    fn one_file_starts_over_and_no_rotation_keeps_everything() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("app.log");
        let one = LogRotation {
            max_bytes: 10,
            max_files: 1,
        };
        let mut log = RotatingLog::open(&path, Some(one)).unwrap_or_else(|e| panic!("{e}"));
        log.write_chunk(b"012345678\n");
        log.write_chunk(b"abc");
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), "abc");
        assert!(!rotated_path(&path, 1).exists());

        let all = dir.path().join("all.log");
        let mut log = RotatingLog::open(&all, None).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..1000 {
            log.write_chunk(b"0123456789");
        }
        assert_eq!(
            std::fs::metadata(&all).map(|m| m.len()).unwrap_or(0),
            10_000
        );
    }

    #[test]
    fn a_reopened_log_counts_what_it_holds() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("app.log");
        let rotation = Some(LogRotation {
            max_bytes: 20,
            max_files: 2,
        });
        let mut log = RotatingLog::open(&path, rotation).unwrap_or_else(|e| panic!("{e}"));
        log.write_chunk(b"0123456789");
        drop(log);
        // A restarted container appends to the same log and rotates at
        // the same size.
        let mut log = RotatingLog::open(&path, rotation).unwrap_or_else(|e| panic!("{e}"));
        log.write_chunk(b"abcdefghi\n");
        assert_eq!(
            std::fs::read_to_string(rotated_path(&path, 1)).unwrap_or_default(),
            "0123456789abcdefghi\n"
        );
        assert_eq!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(9), 0);
    }
}
