//! Task logs in Docker's `json-file` format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-23T10:00:00.123456789Z"}`,
//! rotated by size into `task.log`, `task.log.1` (older), ... `task.log.<N-1>`.
//!
//! The helper writes them ([`LogWriter`]); anyone may read them ([`read_logs`]).
//! A line longer than 16 KiB is split into several entries, as Docker does; a
//! partial last line is written when the stream ends.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::Stream;

/// The current log file's name in a task's log dir.
pub const LOG_FILE: &str = "task.log";
/// Longest entry; longer lines are split (Docker's 16 KiB).
const MAX_ENTRY: usize = 16 * 1024;

/// One line (or piece of a long line) a task wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The text, with its trailing newline when the line was complete.
    pub log: String,
    /// Which stream it came from.
    pub stream: Stream,
    /// When the helper read it, RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// The log files of a task, oldest first.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("task.log.")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(LOG_FILE);
    if current.exists() {
        out.push(current);
    }
    out
}

/// Every entry still on disk for a task, oldest first. Lines that are not valid
/// entries (a torn last line after a crash) are skipped.
pub fn read_logs(dir: &Path) -> io::Result<Vec<LogEntry>> {
    let mut out = Vec::new();
    for path in log_files(dir) {
        let file = match File::open(&path) {
            Ok(f) => f,
            // Rotated away between listing and opening.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            if let Ok(entry) = serde_json::from_str::<LogEntry>(&line?) {
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// Appends entries to `task.log`, rotating it past `max_bytes`.
pub(crate) struct LogWriter {
    dir: PathBuf,
    max_bytes: u64,
    max_files: u32,
    file: File,
    size: u64,
    /// Unfinished line per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl LogWriter {
    /// Write into `dir` (created), keeping at most `max_files` files of about
    /// `max_bytes` each.
    pub(crate) fn new(dir: &Path, max_bytes: u64, max_files: u32) -> io::Result<LogWriter> {
        fs::create_dir_all(dir)?;
        let (file, size) = open_append(&dir.join(LOG_FILE))?;
        Ok(LogWriter {
            dir: dir.to_owned(),
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Take a chunk the task wrote on `stream`.
    pub(crate) fn write(&mut self, stream: Stream, mut bytes: &[u8]) -> io::Result<()> {
        let i = stream as usize;
        while !bytes.is_empty() {
            let room = MAX_ENTRY - self.partial[i].len();
            let take = match bytes.iter().position(|&b| b == b'\n') {
                Some(nl) if nl < room => nl + 1,
                _ => room.min(bytes.len()),
            };
            self.partial[i].extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial[i].ends_with(b"\n") || self.partial[i].len() >= MAX_ENTRY {
                self.flush_stream(stream)?;
            }
        }
        Ok(())
    }

    /// Write out unfinished lines (the stream ended).
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.flush_stream(Stream::Stdout)?;
        self.flush_stream(Stream::Stderr)?;
        self.file.sync_data()
    }

    fn flush_stream(&mut self, stream: Stream) -> io::Result<()> {
        let i = stream as usize;
        if self.partial[i].is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.partial[i]).into_owned();
        self.partial[i].clear();
        let entry = LogEntry {
            log: text,
            stream,
            time: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// `task.log` becomes `task.log.1`, `.1` becomes `.2`, ...; the oldest beyond
    /// `max_files` is dropped.
    fn rotate(&mut self) -> io::Result<()> {
        let name = |n: u32| self.dir.join(format!("{LOG_FILE}.{n}"));
        let keep = self.max_files - 1;
        if keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(name(keep));
        for n in (1..keep).rev() {
            match fs::rename(name(n), name(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(self.dir.join(LOG_FILE), name(1))?;
        let (file, size) = open_append(&self.dir.join(LOG_FILE))?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_joined_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::new(dir.path(), 300, 3).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nsecond").unwrap();
        w.finish().unwrap();
        let entries = read_logs(dir.path()).unwrap();
        let got: Vec<(&str, Stream)> = entries.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            got,
            [
                ("oops\n", Stream::Stderr),
                ("hello\n", Stream::Stdout),
                ("second", Stream::Stdout)
            ]
        );

        // Each entry is ~90 bytes, so 300-byte files hold 3; 3 files are kept.
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes())
                .unwrap();
        }
        w.finish().unwrap();
        let files = log_files(dir.path());
        assert_eq!(files.len(), 3, "{files:?}");
        let entries = read_logs(dir.path()).unwrap();
        assert_eq!(entries.last().unwrap().log, "line 19\n");
        let numbers: Vec<u32> = entries
            .iter()
            .filter_map(|e| e.log.strip_prefix("line ")?.trim().parse().ok())
            .collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert!(numbers.len() < 20, "old entries were rotated away");
    }

    #[test]
    fn long_lines_become_16k_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::new(dir.path(), 1 << 20, 2).unwrap();
        let long = vec![b'x'; MAX_ENTRY * 2 + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        w.finish().unwrap();
        let lens: Vec<usize> = read_logs(dir.path())
            .unwrap()
            .iter()
            .map(|e| e.log.len())
            .collect();
        assert_eq!(lens, [MAX_ENTRY, MAX_ENTRY, 11]);
    }
}
