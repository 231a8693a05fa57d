//! HTTP/1.1 conformance of the proxy's data path, byte for byte: a raw TCP backend
//! reads each request itself and writes scripted response bytes (so framing is exactly
//! what a test says), and a raw TCP client writes exact request bytes and decodes the
//! answer with the small reader below.
//!
//! Covered: chunked responses (extensions, trailers, split size lines), HEAD, 204 and
//! 304 (no body whatever the headers say), close-delimited bodies, 1xx before the
//! final response, stale pooled upstream connections, pipelining, request bodies
//! (Content-Length and chunked, up to 1 MB), `Connection: close`, hop-by-hop headers
//! and `X-Forwarded-*`, 502/504 and truncated upstream bodies, large bodies, and
//! heads split across many small writes in both directions.
//!
//! The proxy may re-frame a body (e.g. a close-delimited one as chunked), so tests
//! compare decoded bodies, not framing. Nothing passes or fails on timing: every read
//! has a generous deadline and only its expiry fails.
#![allow(clippy::unwrap_used)]

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoist_proxy::{Config, Endpoint, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;
use support::{bound, config, group, listen_any, rule};

/// How long a client read or write may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);
/// Between the parts of a scripted response (so they arrive as separate reads).
const PAUSE: Duration = Duration::from_millis(20);
/// The `Host` the client sends.
const HOST: &str = "app.example.com";

// ---------------------------------------------------------------------------------
// A minimal HTTP/1.1 message reader.

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed mid-message",
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A message head: the start line and the header fields (names lowercased).
#[derive(Clone, Debug, Default)]
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> io::Result<Head> {
        let text = std::str::from_utf8(raw).map_err(|_| invalid("head is not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid("header line without a colon"))?;
            if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
                return Err(invalid("bad header name"));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Head { start, headers })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The comma-separated tokens of every `name` field, lowercased.
    fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// How a message's body was delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body by definition (HEAD, 1xx, 204, 304; a request without length).
    Empty,
    Length(usize),
    Chunked,
    /// Until the connection closes.
    Close,
}

/// The framing the headers announce (a request's `Close` means no body).
fn announced(head: &Head) -> io::Result<Framing> {
    if head.has("transfer-encoding") {
        let codings = head.tokens("transfer-encoding");
        return Ok(if codings.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            Framing::Close
        });
    }
    match head.get("content-length") {
        Some(v) => v
            .parse()
            .map(Framing::Length)
            .map_err(|_| invalid("bad Content-Length")),
        None => Ok(Framing::Close),
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    head: Head,
    /// 1xx heads seen before this one.
    informational: Vec<u16>,
    framing: Framing,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The head and the start of the body, for assertion messages.
    fn show(&self) -> String {
        let n = self.body.len().min(200);
        format!(
            "{:?} framing={:?} body({} bytes)={:?}",
            self.head,
            self.framing,
            self.body.len(),
            String::from_utf8_lossy(&self.body[..n])
        )
    }
}

#[derive(Clone, Debug)]
struct Request {
    method: String,
    target: String,
    head: Head,
    body: Vec<u8>,
}

/// One side of a TCP connection with a read buffer (bytes past one message stay for
/// the next: pipelining).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// How long one read may wait; `None` for backends, which wait for the proxy.
    deadline: Option<Duration>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .expect("connecting to the proxy timed out")
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
            deadline: Some(DEADLINE),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(DEADLINE, self.stream.write_all(bytes))
            .await
            .expect("writing timed out")
            .unwrap();
    }

    /// Writes `bytes` a few at a time, pausing between writes.
    async fn send_trickle(&mut self, bytes: &[u8], step: usize) {
        for piece in bytes.chunks(step) {
            self.send(piece).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = vec![0u8; 64 * 1024];
        let read = self.stream.read(&mut tmp);
        let n = match self.deadline {
            Some(d) => match tokio::time::timeout(d, read).await {
                Ok(r) => r?,
                Err(_) => panic!("no bytes within {d:?} (buffered: {:?})", self.buf),
            },
            None => read.await?,
        };
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(eof());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return String::from_utf8(line).map_err(|_| invalid("line is not UTF-8"));
            }
            if self.fill().await? == 0 {
                return Err(eof());
            }
        }
    }

    /// The next head; `None` when the peer closed before sending a byte of it.
    async fn head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..i + 4).collect();
                return Head::parse(&raw[..i]).map(Some);
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof())
                };
            }
        }
    }

    /// A chunked body, decoded, and its trailer fields.
    async fn chunked(&mut self) -> io::Result<(Vec<u8>, Vec<(String, String)>)> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                break;
            }
            body.extend(self.take(size).await?);
            if self.take(2).await? != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
        let mut trailers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                return Ok((body, trailers));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid("trailer line without a colon"))?;
            trailers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }

    async fn body(&mut self, framing: Framing) -> io::Result<(Vec<u8>, Vec<(String, String)>)> {
        match framing {
            Framing::Empty => Ok((Vec::new(), Vec::new())),
            Framing::Length(n) => Ok((self.take(n).await?, Vec::new())),
            Framing::Chunked => self.chunked().await,
            Framing::Close => {
                while self.fill().await? > 0 {}
                Ok((std::mem::take(&mut self.buf), Vec::new()))
            }
        }
    }

    /// The final response to a `method` request; 1xx heads before it are noted and
    /// skipped.
    async fn response(&mut self, method: &str) -> io::Result<Response> {
        let mut informational = Vec::new();
        loop {
            let head = self.head().await?.ok_or_else(eof)?;
            let mut start = head.start.splitn(3, ' ');
            let version = start.next().unwrap_or_default();
            if !version.starts_with("HTTP/1.") {
                return Err(invalid("not an HTTP/1.x status line"));
            }
            let status: u16 = start
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid("bad status code"))?;
            if (100..200).contains(&status) && status != 101 {
                informational.push(status);
                continue;
            }
            let framing = if method == "HEAD" || status < 200 || status == 204 || status == 304 {
                Framing::Empty
            } else {
                announced(&head)?
            };
            let (body, trailers) = self.body(framing).await?;
            return Ok(Response {
                status,
                head,
                informational,
                framing,
                body,
                trailers,
            });
        }
    }

    /// The next request; `None` when the peer closed between requests.
    async fn request(&mut self) -> io::Result<Option<Request>> {
        let Some(head) = self.head().await? else {
            return Ok(None);
        };
        let mut start = head.start.split(' ');
        let method = start.next().unwrap_or_default().to_owned();
        let target = start.next().unwrap_or_default().to_owned();
        let framing = match announced(&head)? {
            Framing::Close => Framing::Empty,
            f => f,
        };
        let (body, _) = self.body(framing).await?;
        Ok(Some(Request {
            method,
            target,
            head,
            body,
        }))
    }

    /// Asserts the peer closes the connection (end of stream or reset) without
    /// sending anything more.
    async fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "bytes after the response: {:?}",
            self.buf
        );
        match self.fill().await {
            Ok(0) | Err(_) => {}
            Ok(_) => panic!("bytes after the response: {:?}", self.buf),
        }
    }
}

// ---------------------------------------------------------------------------------
// Requests and checks.

/// A request from the client, with `Content-Length` when there is a body.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn get(path: &str) -> Vec<u8> {
    request("GET", path, &[], b"")
}

/// FNV-1a, to compare large bodies in a short line.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the echo backend answers: method, target, body length and hash.
fn summary(method: &str, target: &str, body: &[u8]) -> String {
    format!(
        "{method} {target} len={} sum={:016x}",
        body.len(),
        fnv(body)
    )
}

/// `n` bytes with no short period.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i % 251) ^ ((i / 251) % 256)).unwrap())
        .collect()
}

/// `body` in chunked encoding, `size` bytes a chunk, every third chunk with an
/// extension; ends with a trailer field.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, chunk) in body.chunks(size).enumerate() {
        let ext = if i % 3 == 1 { ";name=value" } else { "" };
        out.extend(format!("{:x}{ext}\r\n", chunk.len()).into_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    out
}

/// GETs `path` on `conn`, expects `status` and returns the response.
async fn get_expecting(conn: &mut Conn, path: &str, status: u16) -> Response {
    conn.send(&get(path)).await;
    let resp = conn.response("GET").await.unwrap();
    assert_eq!(resp.status, status, "GET {path}: {}", resp.show());
    resp
}

/// GETs `path` on `conn`, expects 200 and returns the body.
async fn get_ok(conn: &mut Conn, path: &str) -> String {
    get_expecting(conn, path, 200).await.text()
}

// ---------------------------------------------------------------------------------
// A scripted backend.

/// What the backend does after writing a response.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Reads the next request.
    KeepAlive,
    /// Closes the connection.
    Close,
    /// Waits, then closes the connection without a word.
    CloseAfter(Duration),
    /// Keeps the connection open and never reads or writes again.
    Hang,
}

/// A scripted response: parts written one by one with [`PAUSE`] between them.
struct Reply {
    parts: Vec<Vec<u8>>,
    then: Then,
}

impl Reply {
    fn keep(parts: Vec<&[u8]>) -> Reply {
        Reply {
            parts: parts.into_iter().map(<[u8]>::to_vec).collect(),
            then: Then::KeepAlive,
        }
    }
}

/// A 200 with `Content-Length`.
fn ok(body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Answers with [`summary`] of the request.
fn echo(req: &Request) -> Reply {
    Reply {
        parts: vec![ok(summary(&req.method, &req.target, &req.body).as_bytes())],
        then: Then::KeepAlive,
    }
}

struct Backend {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Backend {
    /// Connections accepted.
    fn conns(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    /// Requests read, in order.
    fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// A raw TCP backend answering each request it reads with `reply(&request)`.
async fn backend(reply: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reply = Arc::new(reply);
    let (c, s) = (conns.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            stream.set_nodelay(true).unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let conn = Conn {
                stream,
                buf: Vec::new(),
                deadline: None,
            };
            tokio::spawn(serve(conn, reply.clone(), s.clone()));
        }
    });
    Backend { addr, conns, seen }
}

async fn serve<F: Fn(&Request) -> Reply>(
    mut conn: Conn,
    reply: Arc<F>,
    seen: Arc<Mutex<Vec<Request>>>,
) {
    while let Ok(Some(req)) = conn.request().await {
        let r = reply(&req);
        seen.lock().unwrap().push(req);
        for (i, part) in r.parts.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(PAUSE).await;
            }
            if conn.stream.write_all(part).await.is_err() {
                return;
            }
        }
        match r.then {
            Then::KeepAlive => {}
            Then::Close => return,
            Then::CloseAfter(d) => {
                tokio::time::sleep(d).await;
                return;
            }
            Then::Hang => std::future::pending::<()>().await,
        }
    }
}

// ---------------------------------------------------------------------------------
// The proxy (configuration helpers in tests/support).

/// A proxy forwarding everything to `b`, its configuration changed by `tweak`.
fn start(b: &Backend, tweak: impl FnOnce(&mut Config)) -> (Proxy, SocketAddr) {
    let proxy = Proxy::new().unwrap();
    let mut cfg = config(
        listen_any(),
        vec![rule("web", &[("g", 1)])],
        vec![group("g", None, vec![Endpoint::Tcp(b.addr)])],
    );
    tweak(&mut cfg);
    proxy.apply(cfg).unwrap();
    let addr = bound(&proxy);
    (proxy, addr)
}

// ---------------------------------------------------------------------------------
// Tests.

/// A chunked response with extensions, an upper-case size and trailers.
const CHUNKED_WITH_TRAILERS: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
      5;ext=1\r\nhello\r\n7\r\n, world\r\n1;a=b;c=\"d e\"\r\n!\r\n\
      A\r\n0123456789\r\n0\r\nX-Checksum: abc\r\n\r\n";

#[tokio::test]
async fn chunked_response_with_extensions_and_trailers_keeps_the_connection_usable() {
    let b = backend(|req| {
        if req.target == "/chunked" {
            Reply::keep(vec![CHUNKED_WITH_TRAILERS])
        } else {
            echo(req)
        }
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for _ in 0..2 {
        let r = get_expecting(&mut c, "/chunked", 200).await;
        assert_eq!(r.text(), "hello, world!0123456789");
        // Forwarding trailers is optional (the client did not send `TE: trailers`).
        eprintln!("chunked: {:?}, trailers {:?}", r.framing, r.trailers);
    }
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
    assert_eq!(b.seen().len(), 3);
}

#[tokio::test]
async fn upstream_connection_is_pooled_after_a_chunked_response_with_trailers() {
    let b = backend(|req| {
        if req.target == "/chunked" {
            Reply::keep(vec![CHUNKED_WITH_TRAILERS])
        } else {
            echo(req)
        }
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    assert_eq!(get_ok(&mut c, "/chunked").await, "hello, world!0123456789");
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
    assert_eq!(b.conns(), 1, "the upstream connection was not reused");
    // The same through hyper's path: a chunked request body hands the client
    // connection over, and hyper's pool is its own (so one more connection).
    let mut c = Conn::connect(addr).await;
    c.send(
        format!(
            "GET /chunked HTTP/1.1\r\nHost: {HOST}\r\nTE: trailers\r\n\
             Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let r = c.response("GET").await.unwrap();
    assert_eq!(r.text(), "hello, world!0123456789", "{}", r.show());
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
    assert_eq!(b.conns(), 2, "hyper's upstream connection was not reused");
}

#[tokio::test]
async fn head_responses_have_no_body_whatever_their_headers_say() {
    let b = backend(|req| match (req.method.as_str(), req.target.as_str()) {
        ("HEAD", "/chunked") => Reply::keep(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ]),
        ("HEAD", _) => Reply::keep(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n",
        ]),
        _ => echo(req),
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for path in ["/", "/chunked", "/"] {
        c.send(&request("HEAD", path, &[], b"")).await;
        let r = c.response("HEAD").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.show());
        if let Some(len) = r.head.get("content-length") {
            assert_eq!(len, "1000", "HEAD {path}: {}", r.show());
        }
        assert_eq!(get_ok(&mut c, "/next").await, summary("GET", "/next", b""));
    }
    let methods: Vec<String> = b.seen().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "GET", "HEAD", "GET", "HEAD", "GET"]);
    assert_eq!(b.conns(), 1, "the upstream connection was not reused");
}

#[tokio::test]
async fn no_content_and_not_modified_have_no_body() {
    let b = backend(|req| match req.target.as_str() {
        "/204" => Reply::keep(vec![b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"]),
        // A 304's Content-Length describes the representation; no body follows.
        "/304" => Reply::keep(vec![
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n",
        ]),
        _ => echo(req),
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for (path, status) in [("/204", 204), ("/304", 304), ("/204", 204)] {
        let r = get_expecting(&mut c, path, status).await;
        if status == 304 {
            assert_eq!(r.head.get("etag"), Some("\"v1\""), "{}", r.show());
        } else {
            assert_eq!(r.head.get("x-a"), Some("1"), "{}", r.show());
        }
        assert_eq!(get_ok(&mut c, "/next").await, summary("GET", "/next", b""));
    }
    assert_eq!(b.conns(), 1, "the upstream connection was not reused");
}

#[tokio::test]
async fn close_delimited_response_reaches_the_client_whole() {
    let body = pattern(100_000);
    let (first, second) = body.split_at(40_000);
    let (first, second) = (first.to_vec(), second.to_vec());
    let b = backend(move |req| {
        if req.target == "/close" {
            Reply {
                parts: vec![
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec(),
                    first.clone(),
                    second.clone(),
                ],
                then: Then::Close,
            }
        } else {
            echo(req)
        }
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    let r = get_expecting(&mut c, "/close", 200).await;
    assert!(r.body == body, "body differs: {}", r.show());
    eprintln!(
        "close-delimited upstream body reached the client as {:?}, connection: {:?}",
        r.framing,
        r.head.get("connection")
    );
    // Whatever the framing, the message ended; a connection the proxy keeps open
    // takes the next request.
    if r.framing == Framing::Close || r.head.tokens("connection").contains(&"close".into()) {
        c.expect_closed().await;
        c = Conn::connect(addr).await;
    }
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
    assert_eq!(b.conns(), 2);
}

#[tokio::test]
async fn informational_responses_before_the_final_one_are_handled() {
    let b = backend(|req| match req.target.as_str() {
        "/hints" => Reply::keep(vec![
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        ]),
        "/continue" => Reply::keep(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        ]),
        _ => echo(req),
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for (path, body) in [
        ("/hints", "hello"),
        ("/continue", "abc"),
        ("/hints", "hello"),
    ] {
        let r = get_expecting(&mut c, path, 200).await;
        assert_eq!(r.text(), body, "{}", r.show());
        assert!(
            r.informational.iter().all(|s| [100, 103].contains(s)),
            "{:?}",
            r.informational
        );
        eprintln!("{path}: the client saw 1xx {:?}", r.informational);
    }
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
}

#[tokio::test]
async fn a_pooled_connection_the_target_closed_is_not_used() {
    // Keep-alive by every header, then the target closes the idle connection.
    let b = backend(|req| Reply {
        parts: vec![ok(summary(&req.method, &req.target, &req.body).as_bytes())],
        then: Then::CloseAfter(Duration::from_millis(50)),
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for (i, path) in ["/first", "/second", "/third"].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let r = get_expecting(&mut c, path, 200).await;
        assert_eq!(r.text(), summary("GET", path, b""));
    }
    assert_eq!(b.conns(), 3);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let b = backend(echo).await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    let mut bytes = get("/one");
    bytes.extend(request("POST", "/two", &[], b"pipelined body"));
    bytes.extend(get("/three"));
    c.send(&bytes).await;
    for (method, path, body) in [
        ("GET", "/one", &b""[..]),
        ("POST", "/two", b"pipelined body"),
        ("GET", "/three", b""),
    ] {
        let r = c.response(method).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.show());
        assert_eq!(r.text(), summary(method, path, body));
    }
    assert_eq!(get_ok(&mut c, "/four").await, summary("GET", "/four", b""));
}

#[tokio::test]
async fn request_bodies_reach_the_target_byte_exact() {
    let b = backend(echo).await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for size in [4096, 1 << 20] {
        let body = pattern(size);
        c.send(&request("POST", "/upload", &[], &body)).await;
        let r = c.response("POST").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.show());
        assert_eq!(r.text(), summary("POST", "/upload", &body), "size {size}");
    }
    for (size, chunk) in [(13, 5), (100_000, 7000)] {
        let body = pattern(size);
        let mut bytes =
            format!("POST /chunked HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n")
                .into_bytes();
        bytes.extend(chunked(&body, chunk));
        c.send(&bytes).await;
        let r = c.response("POST").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.show());
        assert_eq!(r.text(), summary("POST", "/chunked", &body), "size {size}");
    }
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
    assert_eq!(b.seen().len(), 5);
}

#[tokio::test]
async fn client_connection_close_is_honoured() {
    let b = backend(echo).await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    c.send(&request("GET", "/bye", &[("Connection", "close")], b""))
        .await;
    let r = c.response("GET").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.show());
    assert_eq!(r.text(), summary("GET", "/bye", b""));
    c.expect_closed().await;
    // `Connection` is hop-by-hop: the client's close is not the target's.
    let seen = b.seen();
    assert!(
        !seen[0].head.tokens("connection").contains(&"close".into()),
        "{:?}",
        seen[0].head
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_and_forwarded_headers_set() {
    let b = backend(|_| Reply {
        parts: vec![
            b"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\n\
              Keep-Alive: timeout=1\r\nX-Visible: v\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        ],
        then: Then::Close,
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    let host = "App.Example.com:8080";
    c.send(
        format!(
            "GET /h HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
             Keep-Alive: timeout=5\r\nX-Forwarded-For: 1.2.3.4\r\nX-End: e\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let r = c.response("GET").await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{}", r.show());
    assert!(!r.head.has("x-secret"), "{:?}", r.head);
    assert!(!r.head.has("keep-alive"), "{:?}", r.head);
    assert!(
        !r.head.tokens("connection").contains(&"x-secret".into()),
        "{:?}",
        r.head
    );
    assert_eq!(r.head.get("x-visible"), Some("v"), "{:?}", r.head);

    let seen = b.seen();
    let h = &seen[0].head;
    assert!(!h.has("x-hop"), "{h:?}");
    assert!(!h.has("keep-alive"), "{h:?}");
    assert!(!h.tokens("connection").contains(&"x-hop".into()), "{h:?}");
    assert_eq!(
        h.get("x-forwarded-for"),
        Some("1.2.3.4, 127.0.0.1"),
        "{h:?}"
    );
    assert_eq!(h.get("x-forwarded-proto"), Some("http"), "{h:?}");
    assert_eq!(h.get("x-forwarded-host"), Some(host), "{h:?}");
    assert_eq!(h.get("host"), Some(host), "{h:?}");
    assert_eq!(h.get("x-end"), Some("e"), "{h:?}");
    assert_eq!(seen[0].target, "/h");

    // The target's close was its own connection's: if the client's stays open,
    // it takes another request (on a new upstream connection).
    if r.head.tokens("connection").contains(&"close".into()) {
        c.expect_closed().await;
    } else {
        assert_eq!(get_ok(&mut c, "/again").await, "ok");
        assert_eq!(b.conns(), 2);
    }
}

#[tokio::test]
async fn malformed_upstream_response_is_502() {
    let b = backend(|_| Reply {
        parts: vec![b"\x00\x01\x02 this is not HTTP\r\n\xff\xfe\r\n\r\n".to_vec()],
        then: Then::Close,
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    get_expecting(&mut c, "/bad", 502).await;
    // Bytes reached the target: the request is not sent again.
    assert_eq!(b.seen().len(), 1);
}

#[tokio::test]
async fn silent_upstream_is_504() {
    let b = backend(|_| Reply {
        parts: Vec::new(),
        then: Then::Hang,
    })
    .await;
    let (_proxy, addr) = start(&b, |cfg| cfg.timeouts.request = Duration::from_millis(500));
    let mut c = Conn::connect(addr).await;
    get_expecting(&mut c, "/silent", 504).await;
}

#[tokio::test]
async fn a_truncated_upstream_body_is_not_passed_off_as_complete() {
    let b = backend(|req| Reply {
        parts: vec![if req.target == "/length" {
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n".to_vec()
        }],
        then: Then::Close,
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    for path in ["/length", "/chunked"] {
        let mut c = Conn::connect(addr).await;
        c.send(&get(path)).await;
        // Either a 502 (nothing was sent yet) or a message cut short; never a
        // complete 200.
        match c.response("GET").await {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{path}: {e}"),
            Ok(r) => assert_eq!(r.status, 502, "{path}: {}", r.show()),
        }
    }
}

#[tokio::test]
async fn large_response_bodies_are_byte_exact() {
    let big = pattern(700_000);
    let (fixed, encoded) = (ok(&big), {
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        r.extend(chunked(&big, 16 * 1024 + 3));
        r
    });
    let b = backend(move |req| match req.target.as_str() {
        "/big" => Reply {
            parts: vec![fixed.clone()],
            then: Then::KeepAlive,
        },
        "/big-chunked" => Reply {
            parts: vec![encoded.clone()],
            then: Then::KeepAlive,
        },
        _ => echo(req),
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for path in ["/big", "/big-chunked", "/big"] {
        let r = get_expecting(&mut c, path, 200).await;
        assert_eq!(r.body.len(), big.len(), "{path}");
        assert!(r.body == big, "{path}: body differs");
    }
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
}

#[tokio::test]
async fn a_request_head_in_many_small_writes_is_proxied() {
    let b = backend(echo).await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    c.send_trickle(
        &request("GET", "/split/get?q=1", &[("X-Long", &"v".repeat(60))], b""),
        3,
    )
    .await;
    let r = c.response("GET").await.unwrap();
    assert_eq!(
        r.text(),
        summary("GET", "/split/get?q=1", b""),
        "{}",
        r.show()
    );
    let body = b"a body split like its head";
    c.send_trickle(&request("POST", "/split/post", &[], body), 4)
        .await;
    let r = c.response("POST").await.unwrap();
    assert_eq!(
        r.text(),
        summary("POST", "/split/post", body),
        "{}",
        r.show()
    );
    assert_eq!(
        b.seen()[0].head.get("x-long"),
        Some("v".repeat(60).as_str())
    );
}

#[tokio::test]
async fn an_upstream_response_in_many_small_writes_is_proxied() {
    let b = backend(|req| match req.target.as_str() {
        "/length" => Reply::keep(vec![
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"ngth: 11\r\nX-Y: z\r",
            b"\n\r",
            b"\nhello",
            b" world",
        ]),
        "/chunked" => Reply::keep(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chu",
            b"nked\r\n\r\n1",
            b"0;e=1\r\n0123456789abc",
            b"def\r",
            b"\n5\r\nvwxyz\r\n0\r",
            b"\n\r",
            b"\n",
        ]),
        _ => echo(req),
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    for (path, body) in [
        ("/length", "hello world"),
        ("/chunked", "0123456789abcdefvwxyz"),
        ("/length", "hello world"),
    ] {
        let r = get_expecting(&mut c, path, 200).await;
        assert_eq!(r.text(), body, "{}", r.show());
        if path == "/length" {
            assert_eq!(r.head.get("x-y"), Some("z"), "{:?}", r.head);
        }
    }
    assert_eq!(
        get_ok(&mut c, "/after").await,
        summary("GET", "/after", b"")
    );
    assert_eq!(b.conns(), 1, "the upstream connection was not reused");
}

/// A backend for one connection, driven by the test: `/wait...` requests are
/// answered only when `release` is notified; `arrived` is notified per request.
async fn held_backend(
    arrived: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
) -> (Backend, tokio::sync::oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            deadline: None,
        };
        while let Ok(Some(req)) = conn.request().await {
            arrived.notify_one();
            if req.target.starts_with("/wait") {
                let mut byte = [0u8; 1];
                tokio::select! {
                    () = release.notified() => {}
                    // Nothing more is sent on this connection before the answer:
                    // a read that ends means the proxy closed it.
                    _ = conn.stream.read(&mut byte) => break,
                }
            }
            if conn
                .stream
                .write_all(&ok(req.target.as_bytes()))
                .await
                .is_err()
            {
                return;
            }
        }
        // The proxy closed the connection.
        let _ = closed_tx.send(());
    });
    let backend = Backend {
        addr,
        conns: Arc::new(AtomicUsize::new(1)),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    (backend, closed_rx)
}

#[tokio::test]
async fn a_client_that_leaves_while_its_request_waits_frees_the_targets_connection() {
    let (arrived, release) = (Arc::default(), Arc::new(tokio::sync::Notify::new()));
    let (b, closed) = held_backend(Arc::clone(&arrived), release).await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    c.send(&get("/wait")).await;
    tokio::time::timeout(DEADLINE, arrived.notified())
        .await
        .expect("the request never reached the backend");
    drop(c);
    // The proxy drops the target's connection (nginx's 499) instead of holding it
    // until the answer or the 60 s request timeout.
    tokio::time::timeout(DEADLINE, closed)
        .await
        .expect("the proxy kept the target's connection of a client that left")
        .unwrap();
}

#[tokio::test]
async fn a_request_pipelined_while_the_first_waits_is_answered_after_it() {
    let (arrived, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let (b, _closed) = held_backend(Arc::clone(&arrived), Arc::clone(&release)).await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    c.send(&get("/wait-first")).await;
    tokio::time::timeout(DEADLINE, arrived.notified())
        .await
        .expect("the request never reached the backend");
    // Sent while the first one waits for its answer.
    c.send(&get("/second")).await;
    // Give the proxy a chance to read it early (not a pass/fail condition).
    tokio::time::sleep(PAUSE).await;
    release.notify_one();
    for expected in ["/wait-first", "/second"] {
        let r = c.response("GET").await.unwrap();
        assert_eq!(
            (r.status, r.text()),
            (200, expected.to_owned()),
            "{}",
            r.show()
        );
    }
}

/// Over HTTPS the end of a response reaches a slow client: tokio-rustls' `poll_write`
/// returns once rustls has buffered the plaintext when the socket would block, so
/// without a flush the last bytes of a response would wait for a next write that
/// never comes.
#[tokio::test]
async fn https_responses_reach_a_slow_client_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let b = backend(move |req| {
        let n: usize = req.target.trim_start_matches('/').parse().unwrap();
        Reply {
            parts: vec![ok(&pattern(n))],
            then: Then::KeepAlive,
        }
    })
    .await;
    let (_proxy, addr) = start(&b, |cfg| {
        cfg.listeners[0].tls = Some(hoist_proxy::ListenerTls { cert, key });
    });

    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let mut tls_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls_cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_cfg));

    let mut stalled = Vec::new();
    // Sizes around what the proxy's socket holds while the client reads nothing (on
    // loopback here about 2.8 MB: `ss` shows the send queue); every 32 KiB, less than
    // the 64 KiB rustls keeps back at most.
    for n in (32..=144).map(|k| k * 32 * 1024) {
        // A client with a small receive window that reads only after a pause, so the
        // proxy's writes meet a full socket.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let mut tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(&get(&format!("/{n}"))).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let want = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").len() + n;
        let mut got = 0;
        let mut tmp = vec![0u8; 64 * 1024];
        while got < want {
            match tokio::time::timeout(DEADLINE, tls.read(&mut tmp)).await {
                Ok(Ok(k)) if k > 0 => got += k,
                _ => break,
            }
        }
        if got < want {
            stalled.push(format!("{n}-byte body: got {got} of {want} bytes"));
        }
    }
    assert!(stalled.is_empty(), "responses stalled: {stalled:#?}");
}

/// A backend for one connection: answers with a chunked head and one chunk, then
/// sends nothing more (a long poll / quiet event stream); reports when the proxy
/// closes its connection.
async fn quiet_stream_backend() -> (Backend, tokio::sync::oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            deadline: None,
        };
        let _ = conn.request().await;
        conn.stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let _ = conn.stream.read(&mut byte).await;
        let _ = closed_tx.send(());
    });
    let backend = Backend {
        addr,
        conns: Arc::new(AtomicUsize::new(1)),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    (backend, closed_rx)
}

/// A client that leaves while a quiet response body streams (a long poll, an event
/// stream between events) is noticed on both paths: the target's connection and the
/// in-flight slot are let go without waiting for the target's next write.
#[tokio::test]
async fn a_client_that_leaves_mid_body_frees_the_targets_connection() {
    for (what, req) in [
        (
            "hyper path (control)",
            b"GET /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        ),
        ("fast path", get("/s")),
    ] {
        let (b, closed) = quiet_stream_backend().await;
        let (_proxy, addr) = start(&b, |_| {});
        let mut c = Conn::connect(addr).await;
        c.send(&req).await;
        let head = c.head().await.unwrap().unwrap();
        assert!(head.start.contains("200"), "{what}: {head:?}");
        let _ = c.line().await; // the first chunk arrived
        drop(c);
        tokio::time::timeout(DEADLINE, closed)
            .await
            .unwrap_or_else(|_| panic!("{what}: the proxy kept the target's connection"))
            .unwrap();
    }
}

/// A GET whose pooled connection got a 1xx and then closed is not sent again: bytes
/// of an answer came back.
#[tokio::test]
async fn no_resend_after_an_interim_response() {
    let b = backend(|req| {
        if req.target == "/hint" {
            Reply {
                parts: vec![b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".to_vec()],
                then: Then::Close,
            }
        } else {
            echo(req)
        }
    })
    .await;
    let (_proxy, addr) = start(&b, |_| {});
    let mut c = Conn::connect(addr).await;
    get_ok(&mut c, "/warm").await; // pools one upstream connection
    get_expecting(&mut c, "/hint", 502).await;
    let hints = b.seen().iter().filter(|r| r.target == "/hint").count();
    assert_eq!(hints, 1, "the request was sent {hints} times");
}
