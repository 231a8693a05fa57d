//! Commands on the host: a test step, a smoke check. Each runs as `sh -c` in a
//! process group of its own, in the run's workspace, with its output streamed line
//! by line to the caller and appended to the stage's log; on timeout or
//! cancellation the whole group is killed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with status 0.
    Success,
    /// It exited with another status, or was killed by a signal (`None`).
    Failed(Option<i32>),
    /// It ran past its time and was killed.
    TimedOut,
    /// It was cancelled and killed.
    Cancelled,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Success => f.write_str("succeeded"),
            Exit::Failed(Some(code)) => write!(f, "exited with status {code}"),
            Exit::Failed(None) => f.write_str("was killed by a signal"),
            Exit::TimedOut => f.write_str("timed out and was killed"),
            Exit::Cancelled => f.write_str("was cancelled"),
        }
    }
}

/// One command to run.
#[derive(Debug)]
pub struct ShellCommand<'a> {
    /// The script, given to `sh -c`.
    pub script: &'a str,
    /// The working directory.
    pub dir: &'a Path,
    /// Added to the environment.
    pub env: &'a BTreeMap<String, String>,
    /// Killed after this long.
    pub timeout: Duration,
}

/// Runs `cmd`, writing each output line to `log` and handing it to `on_line`;
/// `cancel` stops it early.
pub fn run(
    cmd: &ShellCommand<'_>,
    log: &mut dyn Write,
    on_line: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> std::io::Result<Exit> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd.script)
        .current_dir(cmd.dir)
        .envs(cmd.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<String>();
    let mut readers = Vec::new();
    let stdout = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for stream in [stdout, stderr].into_iter().flatten() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            read_lines(stream, |line| tx.send(line.to_owned()).is_ok());
        }));
    }
    drop(tx);
    let deadline = Instant::now() + cmd.timeout;
    let mut verdict = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                writeln!(log, "{line}")?;
                on_line(&line);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both pipes closed: the group's output is over.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if verdict.is_none() {
            if cancel.load(Ordering::SeqCst) {
                verdict = Some(Exit::Cancelled);
            } else if Instant::now() > deadline {
                verdict = Some(Exit::TimedOut);
            }
            if verdict.is_some() {
                kill_group(pgid);
            }
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait()?;
    // A background process of the script may outlive it: the group goes too.
    kill_group(pgid);
    log.flush()?;
    Ok(match verdict {
        Some(v) => v,
        None if status.success() => Exit::Success,
        None => Exit::Failed(status.code()),
    })
}

/// Reads `stream` line by line (each without its newline, invalid UTF-8 replaced)
/// and hands the lines to `send` until the stream ends (true) or `send` says
/// stop by returning false (false).
pub(crate) fn read_lines(stream: impl std::io::Read, mut send: impl FnMut(&str) -> bool) -> bool {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                if !send(line.trim_end_matches('\n')) {
                    return false;
                }
            }
        }
    }
}

fn kill_group(pgid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn go(script: &str, timeout: Duration) -> (Exit, Vec<String>, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut env = BTreeMap::new();
        env.insert("GREETING".to_owned(), "hi".to_owned());
        let cmd = ShellCommand {
            script,
            dir: dir.path(),
            env: &env,
            timeout,
        };
        let mut log = Vec::new();
        let mut lines = Vec::new();
        let exit = run(
            &cmd,
            &mut log,
            &mut |l| lines.push(l.to_owned()),
            &AtomicBool::new(false),
        )
        .unwrap();
        (exit, lines, String::from_utf8(log).unwrap())
    }

    #[test]
    fn output_lines_reach_the_caller_and_the_log() {
        let (exit, lines, log) = go(
            "echo $GREETING; echo oops >&2; pwd >/dev/null",
            Duration::from_secs(30),
        );
        assert_eq!(exit, Exit::Success);
        lines.iter().find(|l| *l == "hi").unwrap();
        lines.iter().find(|l| *l == "oops").unwrap();
        assert!(log.contains("hi\n") && log.contains("oops\n"));
    }

    #[test]
    fn a_failing_command_gives_its_status() {
        let (exit, _, _) = go("exit 3", Duration::from_secs(30));
        assert_eq!(exit, Exit::Failed(Some(3)));
        assert_eq!(exit.to_string(), "exited with status 3");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_its_children() {
        let (exit, lines, _) = go(
            "echo started; sleep 600 & sleep 600",
            Duration::from_millis(300),
        );
        assert_eq!(exit, Exit::TimedOut);
        assert_eq!(lines, ["started"]);
    }
}
