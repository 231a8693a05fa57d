//! `hello`: hoist's example service, small enough for a `FROM scratch` image.
//!
//! - `GET /` answers `hello version=<v> host=<h>`; `<v>` is `$HELLO_VERSION` when set,
//!   else the crate version, so one binary can stand in for several releases in
//!   deployment tests.
//! - `GET /health` answers `200 ok`, or `503 unhealthy` when `HELLO_UNHEALTHY=1` (a
//!   release that fails its health check, for rollback tests).
//! - With `HELLO_BROKEN=1`, `GET /` answers `500 broken` while `/health` stays `200`:
//!   a release that passes its health check but fails its users (error-rate tests).
//! - Other paths are `404`, other methods on these paths `405`. `HEAD` works too.
//! - `hello --health-check` asks `127.0.0.1:$PORT/health` and exits 0 on a 200, else 1:
//!   a scratch image has no curl or wget for its HEALTHCHECK.
//!
//! It listens on `0.0.0.0:$PORT` (default 8080), serves each connection on its own
//! thread, answers one request per connection with `Connection: close`, logs one line
//! per request to stdout, and exits 0 on SIGTERM (as PID 1 in a container it would
//! otherwise ignore SIGTERM and wait for the SIGKILL). Standard library only.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long a client may take to send its request, and a health check to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Request head size limit; larger requests get a 431.
const MAX_HEAD: usize = 8 * 1024;

fn main() -> ExitCode {
    let port = match port() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hello: {e}");
            return ExitCode::from(2);
        }
    };
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--health-check") => return health_check(port),
        Some("--version") => {
            println!("hello {}", version());
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!(
                "hello: unknown argument {other:?} (usage: hello [--health-check|--version])"
            );
            return ExitCode::from(2);
        }
    }
    sigterm::exit_on_sigterm();
    let listener = match TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hello: cannot listen on 0.0.0.0:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("hello {} listening on 0.0.0.0:{port}", version());
    let config = Config::from_env();
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let config = config.clone();
                let spawned = std::thread::Builder::new()
                    .name("conn".into())
                    .spawn(move || serve(stream, &config));
                if let Err(e) = spawned {
                    eprintln!("hello: cannot start a thread: {e}");
                }
            }
            Err(e) => eprintln!("hello: accept: {e}"),
        }
    }
    ExitCode::SUCCESS
}

/// `$PORT`, default 8080.
fn port() -> Result<u16, String> {
    match std::env::var("PORT") {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("PORT={s:?} is not a port number")),
        Err(_) => Ok(8080),
    }
}

/// `$HELLO_VERSION`, else the version this binary was built as.
fn version() -> String {
    match std::env::var("HELLO_VERSION") {
        Ok(v) if !v.is_empty() => v,
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// What the responses depend on, read once at start.
#[derive(Clone, Debug)]
struct Config {
    version: String,
    host: String,
    unhealthy: bool,
    broken: bool,
}

impl Config {
    fn from_env() -> Config {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Config {
            version: version(),
            host,
            unhealthy: std::env::var("HELLO_UNHEALTHY").is_ok_and(|v| v == "1"),
            broken: std::env::var("HELLO_BROKEN").is_ok_and(|v| v == "1"),
        }
    }
}

/// A response: status code, reason and body (always text/plain).
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    reason: &'static str,
    body: String,
    allow: bool,
}

impl Response {
    fn new(status: u16, reason: &'static str, body: impl Into<String>) -> Response {
        Response {
            status,
            reason,
            body: body.into(),
            allow: false,
        }
    }

    /// The bytes on the wire; `head_only` for HEAD requests (headers, no body).
    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.body.len()
        );
        if self.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

/// The pure core: a request line's method and target to a response.
fn route(method: &str, target: &str, config: &Config) -> Response {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let known = matches!(path, "/" | "/health");
    if !known {
        return Response::new(404, "Not Found", "not found\n");
    }
    if method != "GET" && method != "HEAD" {
        let mut r = Response::new(405, "Method Not Allowed", "method not allowed\n");
        r.allow = true;
        return r;
    }
    match path {
        "/health" if config.unhealthy => Response::new(503, "Service Unavailable", "unhealthy\n"),
        "/health" => Response::new(200, "OK", "ok\n"),
        _ if config.broken => Response::new(500, "Internal Server Error", "broken\n"),
        _ => Response::new(
            200,
            "OK",
            format!("hello version={} host={}\n", config.version, config.host),
        ),
    }
}

/// Reads the request head (up to the blank line), answers, closes.
fn serve(stream: TcpStream, config: &Config) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let (method, target, response) = match read_head(&stream) {
        Ok(Some((method, target))) => {
            let r = route(&method, &target, config);
            (method, target, r)
        }
        Ok(None) => return, // connected and closed without a request (a port probe)
        Err(HeadError::TooLarge) => (
            "-".into(),
            "-".into(),
            Response::new(
                431,
                "Request Header Fields Too Large",
                "request head too large\n",
            ),
        ),
        Err(HeadError::Malformed) => (
            "-".into(),
            "-".into(),
            Response::new(400, "Bad Request", "bad request\n"),
        ),
        Err(HeadError::Io(_)) => return,
    };
    let mut stream = stream;
    let sent = stream
        .write_all(&response.to_bytes(method == "HEAD"))
        .and_then(|()| stream.flush());
    let _ = stream.shutdown(Shutdown::Write);
    println!(
        "{peer} {method} {target} {}{}",
        response.status,
        if sent.is_err() { " (client gone)" } else { "" }
    );
}

#[derive(Debug)]
enum HeadError {
    TooLarge,
    Malformed,
    Io(#[allow(dead_code)] io::Error),
}

/// The request line's method and target, after reading the whole head; `None` when the
/// client closed before sending anything.
fn read_head(stream: &TcpStream) -> Result<Option<(String, String)>, HeadError> {
    let mut reader = BufReader::new(stream.take(MAX_HEAD as u64 + 1));
    let mut first = String::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => HeadError::Malformed,
            _ => HeadError::Io(e),
        })?;
        total += n;
        if total > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        if n == 0 {
            // EOF before the blank line: fine for nothing at all, else cut short.
            return if total == 0 {
                Ok(None)
            } else {
                Err(HeadError::Malformed)
            };
        }
        if first.is_empty() {
            first = line;
            continue;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    parse_request_line(&first)
        .map(Some)
        .ok_or(HeadError::Malformed)
}

/// `GET /path HTTP/1.1` to (`GET`, `/path`).
fn parse_request_line(line: &str) -> Option<(String, String)> {
    let mut parts = line.trim_end().split(' ');
    let method = parts.next().filter(|m| !m.is_empty())?;
    let target = parts.next().filter(|t| t.starts_with('/'))?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    Some((method.to_string(), target.to_string()))
}

/// `--health-check`: GET http://127.0.0.1:PORT/health, exit 0 on a 200.
fn health_check(port: u16) -> ExitCode {
    match probe(port) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("hello: health check: status {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hello: health check: 127.0.0.1:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(port: u16) -> io::Result<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: hello-health-check\r\nConnection: close\r\n\r\n",
    )?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line)?;
    parse_status(&status_line).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP status line: {:?}", status_line.trim_end()),
        )
    })
}

/// `HTTP/1.1 200 OK` to 200.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Exit 0 on SIGTERM. The only unsafe code: `signal(2)` and `_exit(2)` from the C
/// library std already links (no crates). `_exit` is async-signal-safe; nothing is left
/// to flush since every log line is written with `println!` (line-buffered, flushed).
mod sigterm {
    const SIGTERM: i32 = 15;

    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn _exit(status: i32) -> !;
    }

    extern "C" fn on_sigterm(_: i32) {
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { _exit(0) }
    }

    pub fn exit_on_sigterm() {
        // SAFETY: installs a handler that only calls an async-signal-safe function;
        // SIGTERM is 15 on every Linux architecture.
        unsafe {
            signal(SIGTERM, on_sigterm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(unhealthy: bool) -> Config {
        Config {
            version: "9.9.9".into(),
            host: "h1".into(),
            unhealthy,
            broken: false,
        }
    }

    #[test]
    fn routes() {
        let c = config(false);
        assert_eq!(
            route("GET", "/", &c),
            Response::new(200, "OK", "hello version=9.9.9 host=h1\n")
        );
        assert_eq!(route("GET", "/health?x=1", &c).body, "ok\n");
        assert_eq!(route("GET", "/nope", &c).status, 404);
        assert_eq!(route("POST", "/nope", &c).status, 404);
        assert_eq!(route("POST", "/", &c).status, 405);
        assert_eq!(route("GET", "/health", &config(true)).status, 503);
        let broken = Config {
            broken: true,
            ..config(false)
        };
        assert_eq!(route("GET", "/", &broken).status, 500);
        assert_eq!(route("GET", "/health", &broken).status, 200);
    }

    #[test]
    fn wire_format() {
        let r = Response::new(200, "OK", "ok\n");
        assert_eq!(
            String::from_utf8(r.to_bytes(false)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        );
        assert!(String::from_utf8(r.to_bytes(true))
            .unwrap()
            .ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"));
        assert_eq!(
            parse_request_line("GET /a HTTP/1.1\r\n"),
            Some(("GET".into(), "/a".into()))
        );
        assert_eq!(parse_request_line("GET /a\r\n"), None);
        assert_eq!(parse_request_line("GET http://x/ HTTP/1.1\r\n"), None);
        assert_eq!(
            parse_status("HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status("SSH-2.0\r\n"), None);
    }

    /// The real server on a loopback port, against the real health-check client.
    #[test]
    fn serves_and_health_checks() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let s = s.unwrap();
                std::thread::spawn(move || serve(s, &config(false)));
            }
        });
        assert_eq!(probe(port).unwrap(), 200);
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
        assert!(
            body.ends_with("\r\n\r\nhello version=9.9.9 host=h1\n"),
            "{body}"
        );
    }
}
