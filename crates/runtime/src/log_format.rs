//! The on-disk format of a container's log file: one record per line, as
//! the CRI (kubelet, containerd's CRI plugin) writes them:
//!
//! ```text
//! 2026-11-29T04:37:21.123456789Z stdout F a whole line
//! 2026-11-29T04:37:21.200000000Z stderr P the start of a line, then
//! 2026-11-29T04:37:21.300000000Z stderr F its end
//! ```
//!
//! `F` ends an output line; `P` (partial) is a chunk the container wrote
//! without a newline yet, continued by the next records of the same stream.
//! Every record ends in `\n`, so a file is always rotated between records
//! (`log_rotation`), each line of output carries the time it was read (what
//! `orca logs --since/--timestamps` need) and the stream it came from.
//!
//! Writers: `orca-log-driver` and the FIFO fallback (`containerd::logio`).
//! Readers: the agent's node API (`log_reader`) and the tests, always
//! through [`parse_lines`], never as raw text.

use chrono::{DateTime, SecondsFormat, Utc};

/// Which of the container's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One record of a log file (a line of the file, without its `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the chunk was read, in nanoseconds since the Unix epoch.
    pub time_ns: i64,
    pub stream: Stream,
    /// True for a `P` record: the output line goes on in the next record.
    pub partial: bool,
    pub content: &'a [u8],
}

/// One line of a container's output, its partial records joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The time of the line's first record, in ns since the Unix epoch
    /// (0 for a line of a file written before records had timestamps).
    pub time_ns: i64,
    pub stream: Stream,
    /// The line without its newline.
    pub content: Vec<u8>,
}

/// The RFC 3339 form with nanoseconds, in UTC, that records carry.
pub fn format_time(time_ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(time_ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The Unix time in ns of an RFC 3339 timestamp.
pub fn parse_time(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Appends to `out` the records of one chunk read from `stream` at
/// `time_ns`: an `F` record per newline in it, and a `P` record for what
/// follows the last newline (if anything does).
pub fn encode_chunk(out: &mut Vec<u8>, time_ns: i64, stream: Stream, chunk: &[u8]) {
    let time = format_time(time_ns);
    let mut rest = chunk;
    while !rest.is_empty() {
        let (content, tag, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(p) => (&rest[..p], b'F', &rest[p + 1..]),
            None => (rest, b'P', &rest[rest.len()..]),
        };
        out.extend_from_slice(time.as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.name().as_bytes());
        out.push(b' ');
        out.push(tag);
        out.push(b' ');
        out.extend_from_slice(content);
        out.push(b'\n');
        rest = next;
    }
}

/// Parses one record (a line of the file without its `\n`); None when it
/// is not one.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = parse_time(std::str::from_utf8(fields.next()?).ok()?)?;
    let stream = match fields.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match fields.next()? {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    Some(Record {
        time_ns: time,
        stream,
        partial,
        content: fields.next().unwrap_or_default(),
    })
}

/// Joins the partial records of each stream into whole lines, fed records
/// in file order.
#[derive(Debug, Default)]
pub struct LineJoiner {
    /// The line each stream has begun and not ended, by `Stream::index`.
    pending: [Option<Line>; 2],
}

impl LineJoiner {
    /// Takes one line of a file (without its `\n`); returns the output line
    /// it completes. A line that is no record (a file written before this
    /// format) is a whole stdout line of unknown time.
    pub fn push(&mut self, file_line: &[u8]) -> Option<Line> {
        let Some(record) = parse_record(file_line) else {
            return Some(Line {
                time_ns: 0,
                stream: Stream::Stdout,
                content: file_line.to_vec(),
            });
        };
        let slot = &mut self.pending[record.stream.index()];
        let line = slot.get_or_insert_with(|| Line {
            time_ns: record.time_ns,
            stream: record.stream,
            content: Vec::new(),
        });
        line.content.extend_from_slice(record.content);
        if record.partial {
            None
        } else {
            slot.take()
        }
    }

    /// The lines begun and never ended (the output ended without a
    /// newline), oldest first.
    pub fn flush(&mut self) -> Vec<Line> {
        let mut lines: Vec<Line> = self.pending.iter_mut().filter_map(Option::take).collect();
        lines.sort_by_key(|l| l.time_ns);
        lines
    }
}

/// Every output line of a log file's bytes (or of several files'
/// concatenated, oldest first).
pub fn parse_lines(bytes: &[u8]) -> Vec<Line> {
    let mut joiner = LineJoiner::default();
    let mut lines: Vec<Line> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| joiner.push(l))
        .collect();
    lines.extend(joiner.flush());
    lines
}

/// What the container printed, both streams, one output line per line
/// (each ended by `\n`): the text tests compare against.
pub fn output_text(bytes: &[u8]) -> String {
    parse_lines(bytes)
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l.content).into_owned() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_becomes_whole_and_partial_records() {
        let mut out = Vec::new();
        encode_chunk(
            &mut out,
            1_500_000_000_000_000_123,
            Stream::Stdout,
            b"a\nbc\nde",
        );
        let text = String::from_utf8(out.clone()).unwrap_or_default();
        assert_eq!(
            text,
            "2017-07-14T02:40:00.000000123Z stdout F a\n\
             2017-07-14T02:40:00.000000123Z stdout F bc\n\
             2017-07-14T02:40:00.000000123Z stdout P de\n"
        );
        encode_chunk(&mut out, 1_500_000_001_000_000_000, Stream::Stdout, b"f\n");
        let lines = parse_lines(&out);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].content, b"def");
        assert_eq!(
            lines[2].time_ns, 1_500_000_000_000_000_123,
            "the first record's time"
        );
    }

    #[test]
    fn streams_join_separately_and_an_unended_line_is_kept() {
        let mut out = Vec::new();
        encode_chunk(&mut out, 1, Stream::Stdout, b"out-");
        encode_chunk(&mut out, 2, Stream::Stderr, b"err\n");
        encode_chunk(&mut out, 3, Stream::Stdout, b"line\ntail");
        let lines = parse_lines(&out);
        let view: Vec<(Stream, &[u8])> = lines
            .iter()
            .map(|l| (l.stream, l.content.as_slice()))
            .collect();
        assert_eq!(
            view,
            [
                (Stream::Stderr, &b"err"[..]),
                (Stream::Stdout, &b"out-line"[..]),
                (Stream::Stdout, &b"tail"[..])
            ]
        );
        assert_eq!(output_text(&out), "err\nout-line\ntail\n");
    }

    #[test]
    fn empty_lines_spaces_and_old_raw_lines_survive() {
        let mut out = Vec::new();
        encode_chunk(&mut out, 5, Stream::Stderr, b"\n  two  spaces \n");
        out.extend_from_slice(b"raw text of an old file\n");
        let lines = parse_lines(&out);
        let contents: Vec<&[u8]> = lines.iter().map(|l| l.content.as_slice()).collect();
        assert_eq!(
            contents,
            [
                &b""[..],
                &b"  two  spaces "[..],
                &b"raw text of an old file"[..]
            ]
        );
        assert_eq!(lines[2].time_ns, 0);
    }

    #[test]
    fn records_that_are_not_records_are_refused() {
        assert_eq!(parse_record(b"2017-07-14T02:40:00Z stdin F x"), None);
        assert_eq!(parse_record(b"yesterday stdout F x"), None);
        assert_eq!(parse_record(b"2017-07-14T02:40:00Z stdout X x"), None);
        let r = parse_record(b"2017-07-14T02:40:00Z stdout F");
        assert_eq!(r.map(|r| r.content.len()), Some(0));
    }
}
