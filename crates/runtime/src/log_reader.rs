//! Reading a container's log back: its rotated files oldest first
//! (`<log>.N` … `<log>.1`, then `<log>`), lines from a time on, the last N,
//! and then, for `--follow`, what is appended as it comes, across
//! rotations.
//!
//! The follower keeps the file it reads open: a rotation renames that file
//! (or, with one file kept, removes it), and reading on through the open
//! descriptor still gets the records written before the rename. It then
//! sees a different inode at the log's path and moves to the new file from
//! its start. A file that shrank under it (truncated in place) is read
//! again from its start.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::log_format::{Line, LineJoiner};
use crate::log_rotation::rotated_path;

/// Most rotated files looked for (far above any `max-file`).
const MAX_ROTATED: u32 = 100;

/// What part of the history to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryFilter {
    /// Only lines read at or after this time (ns since the Unix epoch).
    pub since_ns: Option<i64>,
    /// Only the last this many lines (after `since_ns`).
    pub tail: Option<usize>,
}

/// The files of a log, oldest first: rotated ones then the current one
/// (those that exist).
pub fn files_oldest_first(log: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<PathBuf> = (1..=MAX_ROTATED)
        .map(|n| rotated_path(log, n))
        .take_while(|p| p.exists())
        .collect();
    rotated.reverse();
    rotated.push(log.to_path_buf());
    rotated.into_iter().filter(|p| p.exists()).collect()
}

/// Reads the log's history and hands each wanted line to `emit`, oldest
/// first; returns a [`Follower`] positioned at the end of what was read.
pub fn read_history(
    log: &Path,
    filter: HistoryFilter,
    mut emit: impl FnMut(Line),
) -> std::io::Result<Follower> {
    let mut follower = Follower::new(log.to_path_buf());
    let mut kept: VecDeque<Line> = VecDeque::new();
    let mut take = |line: Line| {
        if filter.since_ns.is_some_and(|since| line.time_ns < since) {
            return;
        }
        match filter.tail {
            Some(n) => {
                kept.push_back(line);
                if kept.len() > n {
                    kept.pop_front();
                }
            }
            None => emit(line),
        }
    };
    let files = files_oldest_first(log);
    for path in &files {
        let is_current = path == log;
        let mut file = match File::open(path) {
            Ok(f) => f,
            // Rotated away between the listing and the open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if is_current {
            follower.adopt(file);
            for line in follower.poll()? {
                take(line);
            }
        } else {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            // Files end at record ends, but a partial line may go on in
            // the next file: one joiner reads them all.
            for l in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Some(line) = follower.joiner.push(l) {
                    take(line);
                }
            }
        }
    }
    for line in kept {
        emit(line);
    }
    Ok(follower)
}

/// Reads what is appended to a log file, following rotations.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    /// The file being read, and its inode.
    file: Option<(File, u64)>,
    /// How far `file` has been read.
    offset: u64,
    /// The bytes after the last whole record read.
    rest: Vec<u8>,
    joiner: LineJoiner,
}

impl Follower {
    /// A follower of `path` from its start (the file may not exist yet).
    pub fn new(path: PathBuf) -> Follower {
        Follower {
            path,
            file: None,
            offset: 0,
            rest: Vec::new(),
            joiner: LineJoiner::default(),
        }
    }

    fn adopt(&mut self, file: File) {
        let inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
        self.file = Some((file, inode));
        self.offset = 0;
        self.rest.clear();
    }

    /// The whole lines appended since the last call.
    pub fn poll(&mut self) -> std::io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.adopt(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(lines),
                Err(e) => return Err(e),
            }
        }
        self.read_on(&mut lines)?;
        // Rotated (another inode at the path, or none): what our file got
        // before the rename was read above; go on with the files rotated
        // after it, newest last, then the current one.
        for _ in 0..=MAX_ROTATED {
            let ours = self.file.as_ref().map(|(_, ino)| *ino);
            let at_path = std::fs::metadata(&self.path).ok().map(|m| m.ino());
            if at_path == ours {
                break;
            }
            let next = self.file_after(ours);
            match File::open(&next) {
                Ok(f) => {
                    self.adopt(f);
                    self.read_on(&mut lines)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if next == self.path {
                        self.file = None;
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(lines)
    }

    /// The file written after the one with inode `ours`: the next newer
    /// rotated file, or the current one (also when ours is gone: deleted
    /// as the oldest, or with one file kept).
    fn file_after(&self, ours: Option<u64>) -> PathBuf {
        let position = (1..=MAX_ROTATED)
            .map(|n| (n, rotated_path(&self.path, n)))
            .map_while(|(n, p)| Some((n, std::fs::metadata(p).ok()?.ino())))
            .find(|(_, ino)| Some(*ino) == ours)
            .map(|(n, _)| n);
        match position {
            Some(n) if n > 1 => rotated_path(&self.path, n - 1),
            _ => self.path.clone(),
        }
    }

    /// The lines begun and not ended (the end of the output): for the last
    /// read of a stopped container.
    pub fn flush(&mut self) -> Vec<Line> {
        self.joiner.flush()
    }

    fn read_on(&mut self, lines: &mut Vec<Line>) -> std::io::Result<()> {
        let Some((file, _)) = &mut self.file else {
            return Ok(());
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Truncated in place: start over.
            self.offset = 0;
            self.rest.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = std::mem::take(&mut self.rest);
        let read = file.take(len - self.offset).read_to_end(&mut bytes)?;
        self.offset += read as u64;
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        for l in bytes[..whole]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            if let Some(line) = self.joiner.push(l) {
                lines.push(line);
            }
        }
        self.rest = bytes[whole..].to_vec();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::log_format::{encode_chunk, Stream};
    use crate::log_rotation::{LogRotation, RotatingLog};

    fn write(log: &mut RotatingLog, time_ns: i64, stream: Stream, chunk: &str) {
        let mut out = Vec::new();
        encode_chunk(&mut out, time_ns, stream, chunk.as_bytes());
        log.write_chunk(&out);
    }

    fn texts(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.content).into_owned())
            .collect()
    }

    fn history(path: &Path, filter: HistoryFilter) -> (Vec<Line>, Follower) {
        let mut lines = Vec::new();
        let follower = read_history(path, filter, |l| lines.push(l))
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        (lines, follower)
    }

    fn rotating(path: &Path, max_bytes: u64) -> RotatingLog {
        let rotation = LogRotation {
            max_bytes,
            max_files: 4,
        };
        RotatingLog::open(path, Some(rotation)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn history_spans_rotated_files_oldest_first_with_since_and_tail() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("app.log");
        // About 45 bytes a record: a rotation every 3 lines or so.
        let mut log = rotating(&path, 120);
        for i in 0..10 {
            write(&mut log, 1000 + i, Stream::Stdout, &format!("line {i}\n"));
        }
        assert!(rotated_path(&path, 2).exists(), "rotated at least twice");
        let (all, _) = history(&path, HistoryFilter::default());
        let expect: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        assert_eq!(texts(&all), expect);
        let since = HistoryFilter {
            since_ns: Some(1007),
            tail: None,
        };
        assert_eq!(texts(&history(&path, since).0), expect[7..]);
        let tail = HistoryFilter {
            since_ns: Some(1002),
            tail: Some(3),
        };
        assert_eq!(texts(&history(&path, tail).0), expect[7..]);
        let few = HistoryFilter {
            since_ns: Some(1008),
            tail: Some(5),
        };
        assert_eq!(texts(&history(&path, few).0), expect[8..]);
    }

    #[test]
    fn the_follower_reads_on_across_rotations_and_joins_partial_records() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("app.log");
        let mut log = rotating(&path, 100);
        write(&mut log, 1, Stream::Stdout, "first\n");
        let (lines, mut follower) = history(&path, HistoryFilter::default());
        assert_eq!(texts(&lines), ["first"]);
        assert!(follower.poll().unwrap_or_default().is_empty());
        // A line in two chunks, then enough to rotate twice under the
        // follower between two polls.
        write(&mut log, 2, Stream::Stderr, "sp");
        assert!(
            follower.poll().unwrap_or_default().is_empty(),
            "not ended yet"
        );
        write(&mut log, 3, Stream::Stderr, "lit\n");
        assert_eq!(texts(&follower.poll().unwrap_or_default()), ["split"]);
        for i in 0..6 {
            write(&mut log, 10 + i, Stream::Stdout, &format!("more {i}\n"));
        }
        assert!(rotated_path(&path, 1).exists());
        // The file it had open was rotated twice before it looked again:
        // it reads on through the newer rotated file to the current one.
        let expect: Vec<String> = (0..6).map(|i| format!("more {i}")).collect();
        assert_eq!(texts(&follower.poll().unwrap_or_default()), expect);
        write(&mut log, 30, Stream::Stdout, "end");
        assert!(follower.poll().unwrap_or_default().is_empty());
        assert_eq!(texts(&follower.flush()), ["end"]);
    }

    #[test]
    fn a_truncated_file_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("app.log");
        let mut log = RotatingLog::open(&path, None).unwrap_or_else(|e| panic!("{e}"));
        write(&mut log, 1, Stream::Stdout, "one\ntwo\n");
        let (_, mut follower) = history(&path, HistoryFilter::default());
        std::fs::File::create(&path)
            .and_then(|mut f| {
                let mut out = Vec::new();
                encode_chunk(&mut out, 2, Stream::Stdout, b"new\n");
                f.write_all(&out)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(texts(&follower.poll().unwrap_or_default()), ["new"]);
    }

    #[test]
    fn a_log_that_does_not_exist_yet_is_followed_once_it_does() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("later.log");
        let (lines, mut follower) = history(&path, HistoryFilter::default());
        assert!(lines.is_empty());
        assert!(follower.poll().unwrap_or_default().is_empty());
        let mut log = RotatingLog::open(&path, None).unwrap_or_else(|e| panic!("{e}"));
        write(&mut log, 1, Stream::Stdout, "hello\n");
        assert_eq!(texts(&follower.poll().unwrap_or_default()), ["hello"]);
    }
}
