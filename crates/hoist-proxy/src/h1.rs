//! The HTTP/1.1 fast path: the proxy's own HTTP/1.1 exchange, on both sides, for the
//! plain requests that make up nearly all traffic.
//!
//! Written by hand on `httparse` because hyper's general machinery (a dispatcher per
//! client connection, a task and a channel per upstream connection, a header map per
//! message) cost more user-space work per request than all of nginx does
//! (BENCHMARKS.md, "proxy instructions"). Here a request is parsed in place in the
//! connection's read buffer, its head for the target is written into one reused
//! buffer and sent with one write, and the response head is parsed and passed on the
//! same way, on the client connection's own task.
//!
//! What it serves: HTTP/1.1 requests in origin form (`/path?query`) with a `Host`
//! header and either no body or a `Content-Length` body of at most [`MAX_BODY`], read
//! whole before it is forwarded (so a request can be resent). Anything else
//! (HTTP/2 with prior knowledge, HTTP/1.0, `Upgrade` such as WebSocket, `Expect`,
//! chunked or larger request bodies, absolute-form targets, `CONNECT`, heads it cannot
//! parse) hands the connection, with every byte read so far, to hyper's server and
//! [`forward::handle`] for the rest of the connection's life: the fast path never
//! answers what it does not fully understand.
//!
//! Responses: `Content-Length` and chunked bodies are passed on as they arrive
//! (chunked framing and trailers byte for byte; the client is HTTP/1.1) and keep the
//! client connection open; a body delimited by the target closing is passed on with
//! `Connection: close`. `HEAD`, `204` and `304` have no body. Interim `1xx` responses
//! are dropped, as hyper's client does; a `101` nobody asked for is a `502`.
//!
//! It shares routing, target choice, retries, metrics, draining and the proxy's own
//! error answers with [`forward`], and must not grow rules of its own. A pooled
//! upstream connection that turns out closed before any byte of the response came
//! back is retried on a fresh connection when the request is idempotent (or was not
//! even written), as a browser does.

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::header::HeaderValue;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::balance::normalize_host;
use crate::forward::{self, RouteState, COMMON_TOKENS, MAX_CONNECT_ATTEMPTS};
use crate::metrics::Metrics;
use crate::target::{ConnectError, InflightGuard, RawConn, TargetRuntime};

/// Largest request or response head; a bigger request goes to hyper (which answers
/// 431), a bigger response is a 502.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head (hyper's default too).
const MAX_HEADERS: usize = 100;
/// Largest request body the fast path buffers; a bigger one goes to hyper, streamed.
const MAX_BODY: usize = 64 * 1024;
/// A client connection with no request for this long is closed (nginx's
/// `keepalive_timeout` is 75 s).
const CLIENT_IDLE: Duration = Duration::from_secs(75);
/// How much is read at a time from either side.
const READ_CHUNK: usize = 16 * 1024;
/// How often one request may be resent because a pooled connection was found closed.
const MAX_RESENDS: usize = 8;

/// What a client connection needs from its listener.
pub(crate) struct ClientConn {
    pub(crate) routes: Arc<arc_swap::ArcSwap<RouteState>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) listener: std::net::SocketAddr,
    /// The client's address as `X-Forwarded-For` gives it.
    pub(crate) peer: HeaderValue,
    pub(crate) https: bool,
}

/// How [`serve`] left the connection.
pub(crate) enum Served {
    /// Done with it: the client closed it, asked to, went idle, or failed.
    Closed,
    /// A request the fast path does not serve came; these bytes were read and not
    /// answered. The connection goes on with hyper.
    Handoff(BytesMut),
}

/// Serves HTTP/1.1 requests on `client` until it closes or sends something the fast
/// path leaves to hyper.
pub(crate) async fn serve<S>(client: &mut S, conn: &ClientConn) -> Served
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // The head (and body) for the target, then the head for the client.
    let mut upstream_head = Vec::with_capacity(1024);
    let mut client_head = Vec::with_capacity(1024);
    // Bytes the client sends while its request waits for the target's answer.
    let mut early = BytesMut::new();
    loop {
        let request = loop {
            if !buf.is_empty() {
                match parse_request(&buf, conn, &mut upstream_head) {
                    Parse::Complete(r) => break r,
                    Parse::Partial if buf.len() < MAX_HEAD => {}
                    Parse::Partial | Parse::Unsupported => return Served::Handoff(buf),
                }
            }
            buf.reserve(READ_CHUNK);
            if !read_more(client, &mut buf).await {
                return Served::Closed;
            }
        };
        let total = request.head_len + request.body_len;
        while buf.len() < total {
            buf.reserve(total - buf.len());
            if !read_more(client, &mut buf).await {
                return Served::Closed;
            }
        }
        upstream_head.extend_from_slice(&buf[request.head_len..total]);
        let keep_open = exchange(
            client,
            conn,
            &buf[..total],
            &request,
            &upstream_head,
            &mut client_head,
            &mut early,
        )
        .await;
        if !keep_open {
            let _ = client.shutdown().await;
            return Served::Closed;
        }
        buf.advance(total);
        // What the client sent while it waited (a pipelined request) comes next.
        buf.extend_from_slice(&early);
        early.clear();
    }
}

/// Reads what the client sent next; false at end of file, on an error or when the
/// client stayed silent for [`CLIENT_IDLE`].
async fn read_more<S: AsyncRead + Unpin>(client: &mut S, buf: &mut BytesMut) -> bool {
    matches!(
        tokio::time::timeout(CLIENT_IDLE, client.read_buf(buf)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// A request head the fast path serves, as offsets into the read buffer.
struct Request {
    head_len: usize,
    body_len: usize,
    /// The `Host` header's value.
    host: Range<usize>,
    /// The target's path, without the query.
    path: Range<usize>,
    head_only: bool,
    idempotent: bool,
    /// The client sent `Connection: close`.
    close: bool,
}

enum Parse {
    Complete(Request),
    Partial,
    Unsupported,
}

fn is(name: &[u8], lower: &str) -> bool {
    name.eq_ignore_ascii_case(lower.as_bytes())
}

/// What the proxy makes of a header field, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    /// Another hop-by-hop field: `Keep-Alive`, `TE`, `Trailer`, `Proxy-*`.
    HopByHop,
    ForwardedFor,
    /// `X-Forwarded-Host` and `X-Forwarded-Proto`, which the proxy sets.
    ForwardedOther,
    Date,
    Other,
}

/// Classifies a name with one comparison at most (by its length first): this runs
/// for every header of every message.
fn field(name: &[u8]) -> Field {
    let candidates: &[(&str, Field)] = match name.len() {
        2 => &[("te", Field::HopByHop)],
        4 => &[("host", Field::Host), ("date", Field::Date)],
        6 => &[("expect", Field::Expect)],
        7 => &[("upgrade", Field::Upgrade), ("trailer", Field::HopByHop)],
        10 => &[
            ("connection", Field::Connection),
            ("keep-alive", Field::HopByHop),
        ],
        14 => &[("content-length", Field::ContentLength)],
        15 => &[("x-forwarded-for", Field::ForwardedFor)],
        16 => &[
            ("proxy-connection", Field::HopByHop),
            ("x-forwarded-host", Field::ForwardedOther),
        ],
        17 => &[
            ("transfer-encoding", Field::TransferEncoding),
            ("x-forwarded-proto", Field::ForwardedOther),
        ],
        18 => &[("proxy-authenticate", Field::HopByHop)],
        19 => &[("proxy-authorization", Field::HopByHop)],
        _ => &[],
    };
    candidates
        .iter()
        .find(|(lower, _)| is(name, lower))
        .map_or(Field::Other, |&(_, f)| f)
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// True when a `Connection` header of `headers` names `name` (beyond the usual
/// `close`, `keep-alive` and `upgrade`).
fn named_by_connection(headers: &[httparse::Header<'_>], name: &[u8]) -> bool {
    headers
        .iter()
        .filter(|h| is(h.name.as_bytes(), "connection"))
        .flat_map(|h| tokens(h.value))
        .any(|t| t.eq_ignore_ascii_case(name))
}

/// True when any `Connection` token is not one of [`COMMON_TOKENS`].
fn names_other_headers(value: &[u8]) -> bool {
    tokens(value).any(|t| !COMMON_TOKENS.iter().any(|c| is(t, c)))
}

fn offset(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

fn parse_len(value: &[u8]) -> Option<usize> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Parses a request head at the start of `buf` and, when the fast path serves it,
/// writes the head the target will get into `out`.
fn parse_request(buf: &[u8], conn: &ClientConn, out: &mut Vec<u8>) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(_) => return Parse::Unsupported,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Parse::Unsupported;
    };
    if method == "CONNECT" || !target.starts_with('/') {
        return Parse::Unsupported;
    }
    let mut host = None;
    let mut length = None;
    let mut close = false;
    let mut named = false;
    let mut forwarded_for = None;
    for h in req.headers.iter() {
        match field(h.name.as_bytes()) {
            Field::Host if host.is_some() => return Parse::Unsupported,
            Field::Host => host = Some(h.value),
            Field::ContentLength => match parse_len(h.value) {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return Parse::Unsupported,
            },
            Field::TransferEncoding | Field::Upgrade | Field::Expect => return Parse::Unsupported,
            Field::Connection => {
                close |= tokens(h.value).any(|t| is(t, "close"));
                named |= names_other_headers(h.value);
            }
            Field::ForwardedFor if forwarded_for.is_none() => forwarded_for = Some(h.value),
            _ => {}
        }
    }
    let Some(host) = host else {
        return Parse::Unsupported;
    };
    let Ok(host_str) = std::str::from_utf8(host) else {
        return Parse::Unsupported;
    };
    let body_len = length.unwrap_or(0);
    if body_len > MAX_BODY {
        return Parse::Unsupported;
    }

    out.clear();
    for part in [method.as_bytes(), b" ", target.as_bytes(), b" HTTP/1.1\r\n"] {
        out.extend_from_slice(part);
    }
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        // Host and Content-Length go on; everything else the proxy reads is its own.
        let passed = match field(name) {
            Field::Host | Field::ContentLength => true,
            Field::Other => !(named && named_by_connection(req.headers, name)),
            _ => false,
        };
        if passed {
            for part in [name, b": ", h.value, b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
    }
    if !host_str.is_empty() {
        for part in [b"x-forwarded-host: ".as_slice(), host, b"\r\n"] {
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prev) = forwarded_for.map(<[u8]>::trim_ascii) {
        if !prev.is_empty() && prev.iter().all(|b| b.is_ascii() && !b.is_ascii_control()) {
            out.extend_from_slice(prev);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(conn.peer.as_bytes());
    out.extend_from_slice(if conn.https {
        b"\r\nx-forwarded-proto: https\r\n\r\n"
    } else {
        b"\r\nx-forwarded-proto: http\r\n\r\n"
    });

    let path = target.split('?').next().unwrap_or(target);
    Parse::Complete(Request {
        head_len,
        body_len,
        host: offset(buf, host),
        path: offset(buf, path.as_bytes()),
        head_only: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        close,
    })
}

/// Forwards one request (`raw` is its bytes as the client sent them, `upstream` what
/// the target gets) and relays the answer; false when the client connection must
/// close.
async fn exchange<S>(
    client: &mut S,
    conn: &ClientConn,
    raw: &[u8],
    req: &Request,
    upstream: &[u8],
    client_head: &mut Vec<u8>,
    early: &mut BytesMut,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    // Checked to be UTF-8 when parsed; the path is ASCII by httparse's grammar.
    let host_raw = std::str::from_utf8(&raw[req.host.clone()]).unwrap_or_default();
    let path = std::str::from_utf8(&raw[req.path.clone()]).unwrap_or("/");
    let host = normalize_host(host_raw);
    let routes = conn.routes.load_full();
    let Some(index) = forward::find_rule(&routes, conn.listener, &host, path) else {
        let status = StatusCode::NOT_FOUND;
        return answer(client, req, status, "no rule matches this host and path").await;
    };
    let mut route: forward::Route = (routes, conn.listener, index);
    let timeouts = route.0.timeouts;
    let mut tried: Vec<Arc<TargetRuntime>> = Vec::new();
    let mut last_error: Option<ConnectError> = None;
    let mut resends = 0;
    while tried.len() < MAX_CONNECT_ATTEMPTS {
        let picked = forward::pick_current(&conn.routes, &mut route, &host, path, &tried);
        let Some((group, target)) = picked else { break };
        let Some(rule) = forward::rule_at(&route) else {
            break;
        };
        let Some(guard) = target.enter() else {
            tried.push(target);
            continue;
        };
        let (mut up, reused) = match target.checkout_raw() {
            Some(c) => (c, true),
            None => match target.open_raw(timeouts.connect).await {
                Ok(c) => (c, false),
                Err(e) => {
                    tracing::debug!(target = %target.label, error = %e, "connect failed, trying another target");
                    tried.push(target);
                    last_error = Some(e);
                    continue;
                }
            },
        };
        let sent = async {
            tokio::select! {
                head = tokio::time::timeout(timeouts.request, send(&mut up, upstream, req, client_head)) => head,
                () = target.cancel.cancelled() => Ok(Err(UpstreamError::Cut)),
            }
        };
        let Some(head) = unless_client_leaves(client, early, sent).await else {
            tracing::debug!(target = %target.label, "the client left before the answer");
            return false;
        };
        let (status, msg) = match head {
            Ok(Ok(head)) => {
                forward::record(
                    &conn.metrics,
                    rule,
                    head.status,
                    Some(group),
                    Some(&target),
                    started,
                );
                return relay(client, up, head, guard, &target, client_head, early).await;
            }
            Ok(Err(e)) if reused && e.resendable(req.idempotent) && resends < MAX_RESENDS => {
                resends += 1;
                continue;
            }
            Ok(Err(e)) => {
                tracing::debug!(target = %target.label, error = %e, "request failed");
                (StatusCode::BAD_GATEWAY, "the target failed to answer")
            }
            Err(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "the target did not answer in time",
            ),
        };
        drop(guard);
        forward::record(
            &conn.metrics,
            rule,
            status.as_u16(),
            Some(group),
            Some(&target),
            started,
        );
        return answer(client, req, status, msg).await;
    }
    let (status, msg) = forward::no_target(last_error.as_ref());
    if let Some(rule) = forward::rule_at(&route) {
        forward::record(&conn.metrics, rule, status.as_u16(), None, None, started);
    }
    answer(client, req, status, &msg).await
}

/// Waits for `work` while watching the client: `None` when the client closes its
/// connection first (nginx's 499), so that the caller drops the target's connection
/// rather than pooling it half answered, and frees the in-flight slot at once. Bytes
/// the client sends meanwhile (a pipelined request) are kept in `early`, up to
/// [`MAX_HEAD`]; the rest waits in the socket.
async fn unless_client_leaves<S, F>(
    client: &mut S,
    early: &mut BytesMut,
    work: F,
) -> Option<F::Output>
where
    S: AsyncRead + Unpin,
    F: std::future::Future,
{
    tokio::pin!(work);
    loop {
        early.reserve(1024);
        tokio::select! {
            biased;
            done = &mut work => return Some(done),
            read = client.read_buf(early), if early.len() < MAX_HEAD => match read {
                Ok(n) if n > 0 => {}
                _ => return None,
            },
        }
    }
}

/// The time as a `Date` header gives it.
fn now() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

/// Writes one of the proxy's own answers (the same text as hyper's path gives).
async fn answer<S>(client: &mut S, req: &Request, status: StatusCode, msg: &str) -> bool
where
    S: AsyncWrite + Unpin,
{
    let body = forward::error_body(status, msg);
    let mut out =
        format!(
        "HTTP/1.1 {} {}\r\ndate: {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n{}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        now(),
        body.len(),
        if req.close { "connection: close\r\n" } else { "" },
    );
    if !req.head_only {
        out.push_str(&body);
    }
    write(client, out.as_bytes()).await && !req.close
}

#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("writing the request: {source}")]
    Write { written: usize, source: io::Error },
    #[error("reading the response: {0}")]
    Read(io::Error),
    #[error("the target closed the connection before a response")]
    Closed,
    #[error("the connection to the target ended in the middle of a response head")]
    Truncated,
    #[error("invalid response: {0}")]
    Invalid(&'static str),
    #[error("the target was cut off (drain timeout)")]
    Cut,
}

impl UpstreamError {
    /// Whether a request that failed so on a pooled connection may be sent again on
    /// a fresh one: the target has not answered anything, and either the request is
    /// idempotent or none of it could be written.
    fn resendable(&self, idempotent: bool) -> bool {
        match self {
            UpstreamError::Write { written, .. } => *written == 0 || idempotent,
            UpstreamError::Read(_) | UpstreamError::Closed => idempotent,
            _ => false,
        }
    }
}

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// At the end of the connection.
    Close,
}

/// A final response head, parsed; the head for the client is written.
struct ResponseHead {
    status: u16,
    head_len: usize,
    framing: Framing,
    /// The target keeps the connection open after this response.
    keep_alive: bool,
    /// The client connection closes after this response.
    close: bool,
}

/// Sends the request, reads the final response head into `up.buf` and writes the
/// head the client gets into `client_head`.
async fn send(
    up: &mut RawConn,
    request: &[u8],
    req: &Request,
    client_head: &mut Vec<u8>,
) -> Result<ResponseHead, UpstreamError> {
    let mut written = 0;
    while written < request.len() {
        match up.stream.write(&request[written..]).await {
            Ok(0) => {
                let source = io::ErrorKind::WriteZero.into();
                return Err(UpstreamError::Write { written, source });
            }
            Ok(n) => written += n,
            Err(source) => return Err(UpstreamError::Write { written, source }),
        }
    }
    up.buf.clear();
    // Any byte of an answer, interim ones included: a request answered in part is
    // never resent.
    let mut seen = false;
    loop {
        if !up.buf.is_empty() {
            match parse_response(&up.buf, req, client_head)? {
                Some(Head::Interim(len)) => {
                    up.buf.advance(len);
                    continue;
                }
                Some(Head::Final(head)) => return Ok(head),
                None if up.buf.len() >= MAX_HEAD => {
                    return Err(UpstreamError::Invalid("response head too large"))
                }
                None => {}
            }
        }
        up.buf.reserve(READ_CHUNK);
        match up.stream.read_buf(&mut up.buf).await {
            Ok(0) if seen => return Err(UpstreamError::Truncated),
            Ok(0) => return Err(UpstreamError::Closed),
            Ok(_) => seen = true,
            Err(_) if seen => return Err(UpstreamError::Truncated),
            Err(e) => return Err(UpstreamError::Read(e)),
        }
    }
}

enum Head {
    /// A 1xx response of this many bytes, to skip.
    Interim(usize),
    Final(ResponseHead),
}

/// Parses a response head at the start of `buf` (`None` when more bytes are needed)
/// and writes the head the client gets into `out`: hop-by-hop headers and those
/// `Connection` names dropped, `Connection: close` added when the client connection
/// ends after it.
fn parse_response(
    buf: &[u8],
    req: &Request,
    out: &mut Vec<u8>,
) -> Result<Option<Head>, UpstreamError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(UpstreamError::Invalid("malformed response head")),
    };
    let status = resp.code.unwrap_or(0);
    if status < 100 {
        return Err(UpstreamError::Invalid("status code below 100"));
    }
    if status == 101 {
        return Err(UpstreamError::Invalid(
            "101 to a request that asked for no upgrade",
        ));
    }
    if (100..200).contains(&status) {
        return Ok(Some(Head::Interim(head_len)));
    }
    let mut length = None;
    let mut chunked = false;
    let mut named = false;
    let mut dated = false;
    let mut keep_alive = resp.version == Some(1);
    for h in resp.headers.iter() {
        match field(h.name.as_bytes()) {
            Field::ContentLength => match parse_len(h.value) {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return Err(UpstreamError::Invalid("bad Content-Length")),
            },
            // Only `chunked` as the final coding delimits a body.
            Field::TransferEncoding if tokens(h.value).last().is_some_and(|t| is(t, "chunked")) => {
                chunked = true;
            }
            Field::TransferEncoding => {
                return Err(UpstreamError::Invalid("unsupported Transfer-Encoding"))
            }
            Field::Connection => {
                keep_alive &= !tokens(h.value).any(|t| is(t, "close"));
                named |= names_other_headers(h.value);
            }
            Field::Date => dated = true,
            _ => {}
        }
    }
    let framing = if req.head_only || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n as u64)
    } else {
        Framing::Close
    };
    let close = req.close || framing == Framing::Close;

    out.clear();
    // A three-digit code (httparse's grammar), so no formatting machinery.
    let digits = [status / 100, status / 10 % 10, status % 10].map(|d| b'0' + d as u8);
    for part in [
        b"HTTP/1.1 ".as_slice(),
        &digits,
        b" ",
        resp.reason.unwrap_or("").as_bytes(),
    ] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        // Chunked framing is passed on as it is, so its header is too; a length
        // beside it is void (RFC 9112 section 6.3) and not passed on.
        let passed = match field(name) {
            Field::TransferEncoding => true,
            Field::ContentLength => !chunked,
            Field::Connection | Field::Upgrade | Field::HopByHop => false,
            _ => !(named && named_by_connection(resp.headers, name)),
        };
        if passed {
            for part in [name, b": ", h.value, b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
    }
    if !dated {
        // A proxy that forwards a response without a date adds one (RFC 9110
        // section 6.6.1).
        out.extend_from_slice(format!("date: {}\r\n", now()).as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Some(Head::Final(ResponseHead {
        status,
        head_len,
        framing,
        keep_alive,
        close,
    })))
}

/// Relays the response whose head is in `up.buf` to the client, then pools the
/// connection if it can be reused; false when the client connection must close.
async fn relay<S>(
    client: &mut S,
    mut up: RawConn,
    head: ResponseHead,
    guard: InflightGuard,
    target: &Arc<TargetRuntime>,
    out: &mut Vec<u8>,
    early: &mut BytesMut,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    up.buf.advance(head.head_len);
    let mut body = Body::new(head.framing);
    let Ok(first) = body.take(&up.buf) else {
        return false;
    };
    out.extend_from_slice(&up.buf[..first]);
    up.buf.advance(first);
    let relayed = tokio::select! {
        done = async {
            write(client, out).await && body.stream(&mut up, client, early).await
        } => done,
        () = target.cancel.cancelled() => false,
    };
    if relayed && head.keep_alive && head.framing != Framing::Close && up.buf.is_empty() {
        target.checkin_raw(up);
    }
    drop(guard);
    relayed && !head.close
}

/// Writes `bytes` to the client and flushes them: a TLS stream may otherwise keep the
/// end of a response in its buffer when the socket was full (nothing else would send
/// it); for plain TCP the flush costs nothing.
async fn write<S: AsyncWrite + Unpin>(client: &mut S, bytes: &[u8]) -> bool {
    client.write_all(bytes).await.is_ok() && client.flush().await.is_ok()
}

/// Where a response body stands.
struct Body {
    framing: Framing,
    /// Bytes left of a `Length` body.
    left: u64,
    chunks: Chunked,
}

impl Body {
    fn new(framing: Framing) -> Body {
        Body {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunks: Chunked::default(),
        }
    }

    fn done(&self) -> bool {
        match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.chunks == Chunked::Done,
            Framing::Close => false,
        }
    }

    /// How many bytes at the start of `bytes` belong to the body.
    fn take(&mut self, bytes: &[u8]) -> Result<usize, ()> {
        Ok(match self.framing {
            Framing::Empty => 0,
            Framing::Length(_) => {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.left -= n as u64;
                n
            }
            Framing::Chunked => self.chunks.feed(bytes)?,
            Framing::Close => bytes.len(),
        })
    }

    /// Copies the rest of the body from the target to the client; true when it all
    /// arrived and was written. A client that leaves meanwhile is noticed even while
    /// the target sends nothing (a long poll, a quiet event stream).
    async fn stream<S>(&mut self, up: &mut RawConn, client: &mut S, early: &mut BytesMut) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        while !self.done() {
            up.buf.clear();
            up.buf.reserve(READ_CHUNK);
            let read = up.stream.read_buf(&mut up.buf);
            let Some(read) = unless_client_leaves(client, early, read).await else {
                return false;
            };
            match read {
                Ok(0) => return self.framing == Framing::Close,
                Ok(_) => {}
                Err(_) => return false,
            }
            let Ok(n) = self.take(&up.buf) else {
                return false;
            };
            if !write(client, &up.buf[..n]).await {
                return false;
            }
            up.buf.advance(n);
        }
        true
    }
}

/// Follows chunked framing (RFC 9112 section 7.1) byte by byte to find where a body
/// ends; the bytes themselves are passed on unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Chunked {
    /// In a chunk-size line: the size so far and its number of hex digits.
    #[default]
    SizeStart,
    Size(u64, u8),
    /// In chunk extensions, after the size.
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    LineStart,
    Line,
    LineLf,
    EndLf,
    Done,
}

impl Chunked {
    fn after_size(n: u64) -> Chunked {
        if n == 0 {
            Chunked::LineStart
        } else {
            Chunked::Data(n)
        }
    }

    /// Consumes `bytes` up to the end of the body; returns how many belong to it.
    fn feed(&mut self, bytes: &[u8]) -> Result<usize, ()> {
        let mut i = 0;
        while i < bytes.len() {
            if let Chunked::Data(n) = *self {
                let take = usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - i);
                i += take;
                let left = n - take as u64;
                *self = if left == 0 {
                    Chunked::DataCr
                } else {
                    Chunked::Data(left)
                };
                continue;
            }
            let b = bytes[i];
            *self = match *self {
                Chunked::Done => return Ok(i),
                Chunked::SizeStart | Chunked::Size(..) => {
                    let (n, digits) = match *self {
                        Chunked::Size(n, d) => (n, d),
                        _ => (0, 0),
                    };
                    match (b as char).to_digit(16) {
                        Some(d) if digits < 15 => Chunked::Size(n * 16 + u64::from(d), digits + 1),
                        Some(_) => return Err(()),
                        None if digits == 0 => return Err(()),
                        None => match b {
                            b';' | b' ' | b'\t' => Chunked::Ext(n),
                            b'\r' => Chunked::SizeLf(n),
                            _ => return Err(()),
                        },
                    }
                }
                // Lines end in CRLF, strictly: a client may reject a bare LF, so
                // the proxy does not pass one on.
                Chunked::Ext(n) => match b {
                    b'\r' => Chunked::SizeLf(n),
                    b'\n' => return Err(()),
                    _ => Chunked::Ext(n),
                },
                Chunked::SizeLf(n) if b == b'\n' => Chunked::after_size(n),
                Chunked::DataCr if b == b'\r' => Chunked::DataLf,
                Chunked::DataLf if b == b'\n' => Chunked::SizeStart,
                Chunked::LineStart if b == b'\r' => Chunked::EndLf,
                Chunked::LineStart | Chunked::Line if b != b'\n' => {
                    if b == b'\r' {
                        Chunked::LineLf
                    } else {
                        Chunked::Line
                    }
                }
                Chunked::LineLf if b == b'\n' => Chunked::LineStart,
                Chunked::EndLf if b == b'\n' => Chunked::Done,
                Chunked::SizeLf(_)
                | Chunked::DataCr
                | Chunked::DataLf
                | Chunked::LineStart
                | Chunked::Line
                | Chunked::LineLf
                | Chunked::EndLf => return Err(()),
                Chunked::Data(_) => unreachable!("handled above"),
            };
            i += 1;
        }
        Ok(i)
    }
}

/// A connection the fast path handed to hyper: the bytes it had read come first.
pub(crate) struct Prefixed<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: BytesMut, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BODY: &[u8] = b"5;ext=\"a b\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n\
                          0\r\nX-Sum: 31\r\nX-More: y\r\n\r\n";

    #[test]
    fn chunked_framing_ends_where_the_body_does_however_it_is_split() {
        let mut bytes = BODY.to_vec();
        bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for split in 0..=bytes.len() {
            let mut c = Chunked::default();
            let first = c.feed(&bytes[..split]).unwrap();
            let second = c.feed(&bytes[first..]).unwrap();
            assert_eq!(first + second, BODY.len(), "split at {split}");
            assert_eq!(c, Chunked::Done);
        }
    }

    #[test]
    fn bad_chunked_framing_is_an_error() {
        for bad in [
            &b"x\r\n"[..],
            b";ext\r\n",
            b"5\r\nhelloX",
            b"3\rX",
            b"1234567890abcdef0\r\n",
            b"5\nhello\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"0\r\n\n",
            b"0\r\nX-A: 1\n\r\n",
            b"5;ext\nhello",
        ] {
            assert!(Chunked::default().feed(bad).is_err(), "{bad:?}");
        }
        // An empty body with no trailers.
        let mut c = Chunked::default();
        assert_eq!(c.feed(b"0\r\n\r\nrest").unwrap(), 5);
        assert_eq!(c, Chunked::Done);
    }

    fn client() -> ClientConn {
        ClientConn {
            routes: Arc::new(arc_swap::ArcSwap::from_pointee(RouteState {
                listeners: Default::default(),
                timeouts: Default::default(),
            })),
            metrics: Arc::new(Metrics::new()),
            listener: "127.0.0.1:80".parse().unwrap(),
            peer: HeaderValue::from_static("10.0.0.9"),
            https: false,
        }
    }

    fn upstream_head(raw: &str) -> Option<String> {
        let mut out = Vec::new();
        match parse_request(raw.as_bytes(), &client(), &mut out) {
            Parse::Complete(_) => Some(String::from_utf8(out).unwrap()),
            Parse::Partial => Some("partial".into()),
            Parse::Unsupported => None,
        }
    }

    #[test]
    fn the_targets_head_drops_hop_by_hop_headers_and_sets_forwarded_ones() {
        let head = upstream_head(
            "GET /a?b=1 HTTP/1.1\r\nHost: Api.Example.com:8080\r\nConnection: keep-alive, X-Hop\r\n\
             X-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 1.2.3.4\r\n\
             X-Forwarded-Proto: https\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            head,
            "GET /a?b=1 HTTP/1.1\r\nHost: Api.Example.com:8080\r\nAccept: */*\r\n\
             x-forwarded-host: Api.Example.com:8080\r\nx-forwarded-for: 1.2.3.4, 10.0.0.9\r\n\
             x-forwarded-proto: http\r\n\r\n"
        );
        assert_eq!(
            upstream_head("GET / HTTP/1.1\r\nHost: a\r\n").unwrap(),
            "partial"
        );
    }

    #[test]
    fn what_the_fast_path_does_not_serve_goes_to_hyper() {
        for raw in [
            "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert_eq!(upstream_head(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let framing = |raw: &str, head_only: bool| match parse_response(
            raw.as_bytes(),
            &request(head_only, false),
            &mut Vec::new(),
        ) {
            Ok(Some(Head::Final(h))) => Ok((h.framing, h.keep_alive)),
            Ok(Some(Head::Interim(n))) => Err(format!("interim {n}")),
            Ok(None) => Err("partial".into()),
            Err(e) => Err(e.to_string()),
        };
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(framing(ok, false), Ok((Framing::Length(3), true)));
        assert_eq!(framing(ok, true), Ok((Framing::Empty, true)));
        let te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(framing(te, false), Ok((Framing::Chunked, true)));
        // Both: chunked wins, and the client never sees the void length.
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\
                     Date: x\r\n\r\n";
        let mut out = Vec::new();
        let head = parse_response(both, &request(false, false), &mut out);
        assert!(matches!(head, Ok(Some(Head::Final(h))) if h.framing == Framing::Chunked));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nDate: x\r\n\r\n"
        );
        let none = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        assert_eq!(framing(none, false), Ok((Framing::Close, false)));
        let old = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(framing(old, false), Ok((Framing::Length(0), false)));
        for empty in ["204 No Content", "304 Not Modified"] {
            let raw = format!("HTTP/1.1 {empty}\r\nContent-Length: 9\r\n\r\n");
            assert_eq!(framing(&raw, false), Ok((Framing::Empty, true)));
        }
        assert_eq!(
            framing("HTTP/1.1 103 Early Hints\r\n\r\n", false),
            Err("interim 28".into())
        );
        for bad in [
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTTP/1.1 200 OK\r\n\r\n",
        ] {
            assert!(
                framing(bad, false).unwrap_err().starts_with("invalid"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_clients_head_drops_hop_by_hop_headers() {
        let mut out = Vec::new();
        let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
                    Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nX-Ok: 1\r\n\
                    Date: Mon, 07 Dec 2026 06:00:00 GMT\r\n\r\n";
        let head = parse_response(raw, &request(false, true), &mut out);
        assert!(matches!(head, Ok(Some(Head::Final(h))) if h.close && h.status == 200));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Ok: 1\r\n\
             Date: Mon, 07 Dec 2026 06:00:00 GMT\r\nconnection: close\r\n\r\n"
        );
        // A body that ends with the connection ends the client's too.
        let mut out = Vec::new();
        let raw = b"HTTP/1.1 404 Not Found\r\nX-Ok: 1\r\n\r\n";
        let head = parse_response(raw, &request(false, false), &mut out);
        assert!(matches!(head, Ok(Some(Head::Final(h))) if h.close && h.framing == Framing::Close));
        // Without a date, the proxy adds one.
        let out = String::from_utf8(out).unwrap();
        let date = out
            .strip_prefix("HTTP/1.1 404 Not Found\r\nX-Ok: 1\r\ndate: ")
            .and_then(|rest| rest.strip_suffix("\r\nconnection: close\r\n\r\n"))
            .unwrap_or_else(|| panic!("{out:?}"));
        assert!(httpdate::parse_http_date(date).is_ok(), "{date:?}");
    }

    fn request(head_only: bool, close: bool) -> Request {
        Request {
            head_len: 0,
            body_len: 0,
            host: 0..0,
            path: 0..0,
            head_only,
            idempotent: true,
            close,
        }
    }

    #[test]
    fn every_hop_by_hop_name_is_classified_so_in_any_case() {
        for name in crate::forward::HOP_BY_HOP
            .iter()
            .chain([&http::header::UPGRADE])
        {
            for spelling in [name.as_str().to_owned(), name.as_str().to_ascii_uppercase()] {
                let f = field(spelling.as_bytes());
                assert!(
                    matches!(
                        f,
                        Field::HopByHop
                            | Field::Connection
                            | Field::Upgrade
                            | Field::TransferEncoding
                    ),
                    "{spelling}: {f:?}"
                );
            }
        }
        assert_eq!(field(b"X-Forwarded-For"), Field::ForwardedFor);
        assert_eq!(field(b"x-forwarded-fox"), Field::Other);
        assert_eq!(field(b"Content-Type"), Field::Other);
    }
}
