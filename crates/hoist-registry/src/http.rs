//! The distribution-spec HTTP API over [`Registry`]. Repository names contain
//! slashes, so routing is done here by hand from the path's right end rather than by
//! axum's router. Storage calls run on blocking threads; blob bodies are streamed in
//! and out in chunks and never held whole in memory.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use hoist_oci::media_type as mt;
use hoist_oci::{BlobError, Digest};

use crate::attach::referrer_descriptor;
use crate::auth::{Action, Auth, Caller, Need};
use crate::policy::PushedManifest;
use crate::storage::{valid_name, valid_tag, ManifestPush, PushOutcome, Registry, RegistryError};

/// Largest manifest accepted on PUT: 4 MiB, as the spec suggests.
const MAX_MANIFEST: usize = 4 << 20;

/// The spec's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unsupported,
    Unknown,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::Unknown => "UNKNOWN",
        }
    }
}

/// An error response: status plus the spec's JSON body.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: Code,
    message: String,
    detail: serde_json::Value,
}

impl ApiError {
    fn new(status: StatusCode, code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
        }
    }

    fn detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = detail;
        self
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            RegistryError::Blob(BlobError::DigestMismatch { expected, actual }) => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::DigestInvalid,
                format!("content digest {actual} does not match {expected}"),
            ),
            other => {
                tracing::error!("registry storage error: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Code::Unknown,
                    other.to_string(),
                )
            }
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        tracing::error!("registry I/O error: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unknown,
            e.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = serde_json::json!({"code": self.code.as_str(), "message": self.message});
        if !self.detail.is_null() {
            err["detail"] = self.detail;
        }
        let body = serde_json::json!({ "errors": [err] }).to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Run storage code on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unknown,
            format!("storage task failed: {e}"),
        )),
    }
}

/// The axum application serving the distribution API for `registry` with `auth`, and
/// the token endpoint `/token`: mount it at the root of a server.
pub fn router(registry: Registry, auth: Auth) -> Router {
    Router::new()
        .route("/token", axum::routing::get(token))
        .fallback(dispatch)
        .with_state(App {
            reg: registry,
            sessions: Arc::default(),
            auth,
        })
}

/// `GET /token`: Docker's token endpoint (module `auth`).
async fn token(State(app): State<App>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    app.auth
        .token_endpoint(&parts.headers, parts.uri.query())
        .await
}

/// The router's state: the registry and one lock per upload session, so requests on
/// one session (a PATCH still streaming and the PUT after it) never interleave.
#[derive(Clone)]
struct App {
    reg: Registry,
    sessions: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    auth: Auth,
}

impl App {
    fn session_lock(&self, uuid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(uuid.to_owned()).or_default().clone()
    }

    fn forget_session(&self, uuid: &str) {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(uuid);
    }
}

/// Serve the API over plain HTTP on `listener` until the process ends. Connections
/// are kept alive between requests and have Nagle's algorithm off (`TCP_NODELAY`), so
/// small responses never wait for the client's delayed ACK.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    auth: Auth,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("setting TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(registry, auth)).await
}

/// What a request path names.
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Upload(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    if path == "/v2" || path == "/v2/" {
        return Some(Route::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
        return Some(Route::Upload(name, ""));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some(Route::Upload(name, ""));
    }
    let (head, last) = rest.rsplit_once('/')?;
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Some(Route::Upload(name, last));
    }
    if let Some(name) = head.strip_suffix("/blobs") {
        return Some(Route::Blob(name, last));
    }
    if let Some(name) = head.strip_suffix("/manifests") {
        return Some(Route::Manifest(name, last));
    }
    if let Some(name) = head.strip_suffix("/referrers") {
        return Some(Route::Referrers(name, last));
    }
    None
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Code::Unsupported, "no such endpoint")
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unsupported,
        "method not allowed here",
    )
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::NameInvalid,
            format!("invalid repository name {name:?}"),
        )
        .detail(serde_json::json!({ "name": name })))
    }
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::DigestInvalid,
            format!("invalid digest {s:?}: {e}"),
        )
    })
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// What `route` with `method` needs from the caller.
fn need<'a>(route: Option<&Route<'a>>, method: &Method) -> Need<'a> {
    match route {
        None => Need::Nothing,
        Some(Route::Base) => Need::Base,
        Some(Route::Catalog) => Need::Catalog,
        Some(Route::Upload(n, _)) => Need::Repo(n, Action::Push),
        Some(Route::Tags(n) | Route::Referrers(n, _)) => Need::Repo(n, Action::Pull),
        Some(Route::Manifest(n, _) | Route::Blob(n, _)) => match *method {
            Method::PUT | Method::POST | Method::PATCH => Need::Repo(n, Action::Push),
            Method::DELETE => Need::Repo(n, Action::Delete),
            _ => Need::Repo(n, Action::Pull),
        },
    }
}

/// A cross-repository mount from a repository the caller may not pull becomes a
/// plain upload (the spec's fallback): drop `mount` and `from`.
fn check_mount(query: Option<String>, caller: &Caller) -> Option<String> {
    match query_param(query.as_deref(), "from") {
        Some(from) if !caller.may_mount_from(&from) => Some(
            query
                .as_deref()
                .unwrap_or("")
                .split('&')
                .filter(|kv| !kv.starts_with("mount=") && !kv.starts_with("from="))
                .collect::<Vec<_>>()
                .join("&"),
        ),
        _ => query,
    }
}

fn with_api_version(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn dispatch(State(app): State<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let mut query = parts.uri.query().map(str::to_owned);
    let caller = match app
        .auth
        .authorize(&parts.headers, need(route(&path).as_ref(), &parts.method))
        .await
    {
        Ok(c) => c,
        Err(resp) => return with_api_version(resp),
    };
    if parts.method == Method::POST && matches!(route(&path), Some(Route::Upload(_, ""))) {
        query = check_mount(query, &caller);
    }
    let reg = app.reg.clone();
    let result = match route(&path) {
        None => Err(not_found()),
        Some(Route::Catalog) if parts.method == Method::GET => {
            catalog(reg, query.as_deref(), &caller).await
        }
        Some(Route::Upload(name, uuid)) if !uuid.is_empty() => {
            let lock = app.session_lock(uuid);
            let _guard = lock.lock().await;
            let (name, uuid) = (name.to_owned(), uuid.to_owned());
            let r = handle(
                reg.clone(),
                Route::Upload(&name, &uuid),
                &parts.method,
                query.as_deref(),
                &parts.headers,
                body,
            )
            .await;
            if matches!(parts.method, Method::PUT | Method::DELETE)
                && !matches!(reg.upload_data(&name, &uuid), Ok(Some(_)))
            {
                app.forget_session(&uuid);
            }
            r
        }
        Some(r) => {
            handle(
                reg,
                r,
                &parts.method,
                query.as_deref(),
                &parts.headers,
                body,
            )
            .await
        }
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn handle(
    reg: Registry,
    route: Route<'_>,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let name = match route {
        Route::Base | Route::Catalog => "",
        Route::Tags(n)
        | Route::Manifest(n, _)
        | Route::Blob(n, _)
        | Route::Upload(n, _)
        | Route::Referrers(n, _) => n,
    };
    if !name.is_empty() || !matches!(route, Route::Base | Route::Catalog) {
        check_name(name)?;
    }
    let name = name.to_owned();
    match (route, method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(StatusCode::OK.into_response()),
        (Route::Catalog, Method::GET) => catalog(reg, query, &Caller::everything()).await,
        (Route::Tags(_), Method::GET) => tags_list(reg, name, query).await,
        (Route::Blob(_, d), Method::GET) => {
            get_blob(reg, name, parse_digest(d)?, headers, true).await
        }
        (Route::Blob(_, d), Method::HEAD) => {
            get_blob(reg, name, parse_digest(d)?, headers, false).await
        }
        (Route::Blob(_, d), Method::DELETE) => delete_blob(reg, name, parse_digest(d)?).await,
        (Route::Upload(_, ""), Method::POST) => start_upload(reg, name, query, body).await,
        (Route::Upload(_, u), Method::PATCH) => {
            patch_upload(reg, name, u.to_owned(), headers, body).await
        }
        (Route::Upload(_, u), Method::PUT) => {
            put_upload(reg, name, u.to_owned(), query, body).await
        }
        (Route::Upload(_, u), Method::GET) => upload_status(reg, name, u.to_owned()).await,
        (Route::Upload(_, u), Method::DELETE) => cancel_upload(reg, name, u.to_owned()).await,
        (Route::Manifest(_, r), Method::GET) => get_manifest(reg, name, r.to_owned(), true).await,
        (Route::Manifest(_, r), Method::HEAD) => get_manifest(reg, name, r.to_owned(), false).await,
        (Route::Manifest(_, r), Method::PUT) => {
            put_manifest(reg, name, r.to_owned(), headers, body).await
        }
        (Route::Manifest(_, r), Method::DELETE) => delete_manifest(reg, name, r.to_owned()).await,
        (Route::Referrers(_, d), Method::GET) => {
            referrers(reg, name, parse_digest(d)?, query).await
        }
        _ => Err(method_not_allowed()),
    }
}

/// Paginate a sorted list by `n` and `last`; returns the page and whether more follow.
fn paginate(
    all: Vec<String>,
    query: Option<&str>,
) -> Result<(Vec<String>, Option<usize>), ApiError> {
    let n = match query_param(query, "n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::Unsupported,
                format!("invalid page size n={n:?}"),
            )
        })?),
        None => None,
    };
    let mut items: Vec<String> = match query_param(query, "last") {
        Some(last) => all.into_iter().filter(|t| *t > last).collect(),
        None => all,
    };
    match n {
        Some(n) if items.len() > n => {
            items.truncate(n);
            Ok((items, Some(n)))
        }
        _ => Ok((items, None)),
    }
}

fn page_response(
    base: &str,
    key: &str,
    name: Option<&str>,
    items: Vec<String>,
    next: Option<usize>,
) -> Response {
    let mut body = serde_json::Map::new();
    if let Some(name) = name {
        body.insert("name".into(), name.into());
    }
    body.insert(key.into(), items.clone().into());
    let mut resp = (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::Object(body).to_string(),
    )
        .into_response();
    if let (Some(n), Some(last)) = (next, items.last()) {
        if n > 0 {
            resp.headers_mut().insert(
                header::LINK,
                hv(&format!("<{base}?n={n}&last={last}>; rel=\"next\"")),
            );
        }
    }
    resp
}

async fn catalog(reg: Registry, query: Option<&str>, caller: &Caller) -> ApiResult {
    let mut all = blocking(move || reg.catalog()).await?;
    all.retain(|name| caller.may_pull(name));
    let (items, next) = paginate(all, query)?;
    Ok(page_response(
        "/v2/_catalog",
        "repositories",
        None,
        items,
        next,
    ))
}

async fn tags_list(reg: Registry, name: String, query: Option<&str>) -> ApiResult {
    let n2 = name.clone();
    let Some(all) = blocking(move || reg.tags(&n2)).await? else {
        return Err(name_unknown(&name));
    };
    let (items, next) = paginate(all, query)?;
    let base = format!("/v2/{name}/tags/list");
    Ok(page_response(&base, "tags", Some(&name), items, next))
}

fn name_unknown(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::NameUnknown,
        format!("repository {name} is not known to this registry"),
    )
    .detail(serde_json::json!({ "name": name }))
}

fn blob_unknown(digest: &Digest) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::BlobUnknown,
        format!("blob {digest} is not in this repository"),
    )
    .detail(serde_json::json!({ "digest": digest.to_string() }))
}

/// Parse `bytes=a-b`, `bytes=a-` or `bytes=-n` against `size`: `Ok(None)` for no
/// usable range (serve whole), `Err` for an unsatisfiable one.
fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: serve the whole blob
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (a, "") => (a.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (a, b) => {
            let a: u64 = a.parse().map_err(|_| ())?;
            let b: u64 = b.parse().map_err(|_| ())?;
            (a, b.min(size.saturating_sub(1)))
        }
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn get_blob(
    reg: Registry,
    name: String,
    digest: Digest,
    headers: &HeaderMap,
    with_body: bool,
) -> ApiResult {
    let (r2, n2, d2) = (reg.clone(), name.clone(), digest.clone());
    // One trip to a blocking thread: the link, the size and (for GET) the open file.
    let found = blocking(move || {
        let Some(size) = r2.blob_size(&n2, &d2)? else {
            return Ok(None);
        };
        if !with_body {
            return Ok(Some((size, None)));
        }
        match r2.blobs().open_blob(&d2, None) {
            Ok(file) => Ok(Some((size, Some(file)))),
            Err(BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let Some((size, file)) = found else {
        return Err(blob_unknown(&digest));
    };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => match parse_range(v, size) {
            Ok(r) => r,
            Err(()) => {
                let mut resp = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    Code::BlobUnknown,
                    format!("range {v} not satisfiable for a blob of {size} bytes"),
                )
                .into_response();
                resp.headers_mut()
                    .insert(header::CONTENT_RANGE, hv(&format!("bytes */{size}")));
                return Ok(resp);
            }
        },
        None => None,
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = match file {
        Some(file) => file_body(file, start, len),
        None => Body::empty(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    if range.is_some() {
        h.insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{}/{size}", start + len - 1)),
        );
    }
    Ok(resp)
}

/// Bytes read per chunk of a blob download, and chunks read ahead of the connection.
const DOWNLOAD_CHUNK: usize = 256 << 10;
const DOWNLOAD_QUEUE: usize = 4;

/// A response body streaming `len` bytes of `file` from `start`: one blocking thread
/// reads large chunks ahead of the connection (instead of a thread hop per small read).
fn file_body(mut file: std::fs::File, start: u64, len: u64) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(DOWNLOAD_QUEUE);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let want = left.min(DOWNLOAD_CHUNK as u64);
            let mut buf = Vec::with_capacity(want as usize);
            let chunk = match (&mut file).take(want).read_to_end(&mut buf) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob shorter than its size",
                )),
                Ok(n) => {
                    left -= n as u64;
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            // A closed channel: the client went away.
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

async fn delete_blob(reg: Registry, name: String, digest: Digest) -> ApiResult {
    let d2 = digest.clone();
    if !blocking(move || reg.unlink_blob(&name, &d2)).await? {
        return Err(blob_unknown(&digest));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

fn upload_unknown(uuid: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::BlobUploadUnknown,
        format!("no upload {uuid:?} in progress"),
    )
}

/// 202 with the upload's location and the range received so far.
fn upload_accepted(status: StatusCode, name: &str, uuid: &str, size: u64) -> Response {
    let mut resp = status.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/blobs/uploads/{uuid}")),
    );
    h.insert(header::RANGE, hv(&format!("0-{}", size.saturating_sub(1))));
    h.insert("Docker-Upload-UUID", hv(uuid));
    h.insert("OCI-Chunk-Min-Length", HeaderValue::from_static("1"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/{digest}")));
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

async fn start_upload(reg: Registry, name: String, query: Option<&str>, body: Body) -> ApiResult {
    if let Some(mount) = query_param(query, "mount") {
        let digest = parse_digest(&mount)?;
        if let Some(from) = query_param(query, "from").filter(|f| valid_name(f)) {
            let (r2, n2, d2) = (reg.clone(), name.clone(), digest.clone());
            let mounted = blocking(move || {
                if r2.blob_size(&from, &d2)?.is_some() {
                    r2.link_blob(&n2, &d2)?;
                    Ok(true)
                } else {
                    Ok(false)
                }
            })
            .await?;
            if mounted {
                return Ok(blob_created(&name, &digest));
            }
        }
    }
    let (r2, n2) = (reg.clone(), name.clone());
    let uuid = blocking(move || r2.start_upload(&n2)).await?;
    if let Some(d) = query_param(query, "digest") {
        // Monolithic upload: the body is the whole blob.
        let digest = parse_digest(&d)?;
        append(&reg, &name, &uuid, body).await?;
        return finish(reg, name, uuid, digest).await;
    }
    Ok(upload_accepted(StatusCode::ACCEPTED, &name, &uuid, 0))
}

/// Request-body chunks queued between the connection and the thread writing them.
const APPEND_QUEUE: usize = 16;

/// Append the request body to upload `uuid`'s data file. The connection's task only
/// receives; a blocking thread writes and hashes (`UploadWriter`), so the two overlap.
/// Returns the session's size afterwards.
async fn append(reg: &Registry, name: &str, uuid: &str, body: Body) -> Result<u64, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(APPEND_QUEUE);
    let (r2, n2, u2) = (reg.clone(), name.to_owned(), uuid.to_owned());
    let writer = tokio::task::spawn_blocking(move || {
        let Some(mut w) = r2.upload_writer(&n2, &u2)? else {
            return Ok(None);
        };
        while let Some(chunk) = rx.blocking_recv() {
            w.write(&chunk)?;
        }
        w.finish().map(Some)
    });
    let mut stream = body.into_data_stream();
    let mut body_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            // A closed queue means the writer stopped on an error, reported below.
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                body_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = match writer.await {
        Ok(r) => r.map_err(ApiError::from)?,
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Unknown,
                format!("upload writer failed: {e}"),
            ))
        }
    };
    if let Some(e) = body_error {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::BlobUploadInvalid,
            format!("reading the request body: {e}"),
        ));
    }
    written.ok_or_else(|| upload_unknown(uuid))
}

async fn finish(reg: Registry, name: String, uuid: String, digest: Digest) -> ApiResult {
    let (n2, d2) = (name.clone(), digest.clone());
    blocking(move || reg.finish_upload(&n2, &uuid, &d2)).await?;
    Ok(blob_created(&name, &digest))
}

async fn upload_file(
    reg: &Registry,
    name: &str,
    uuid: &str,
) -> Result<std::path::PathBuf, ApiError> {
    let (r2, n2, u2) = (reg.clone(), name.to_owned(), uuid.to_owned());
    blocking(move || r2.upload_data(&n2, &u2))
        .await?
        .ok_or_else(|| upload_unknown(uuid))
}

async fn current_size(data: &std::path::Path) -> Result<u64, ApiError> {
    Ok(tokio::fs::metadata(data).await?.len())
}

fn range_error(uuid: &str, name: &str, size: u64, message: String) -> Response {
    let mut resp = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        Code::BlobUploadInvalid,
        message,
    )
    .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/blobs/uploads/{uuid}")),
    );
    h.insert(header::RANGE, hv(&format!("0-{}", size.saturating_sub(1))));
    h.insert("Docker-Upload-UUID", hv(uuid));
    resp
}

async fn patch_upload(
    reg: Registry,
    name: String,
    uuid: String,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let data = upload_file(&reg, &name, &uuid).await?;
    let size = current_size(&data).await?;
    if let Some(cr) = headers.get(header::CONTENT_RANGE) {
        let text = cr.to_str().unwrap_or("");
        let spec = text
            .trim()
            .trim_start_matches("bytes ")
            .trim_start_matches("bytes=");
        let start = spec
            .split_once('-')
            .and_then(|(a, _)| a.trim().parse::<u64>().ok());
        match start {
            Some(start) if start == size => {}
            Some(start) => {
                return Ok(range_error(
                    &uuid,
                    &name,
                    size,
                    format!("chunk starts at {start} but {size} bytes were received"),
                ))
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::BlobUploadInvalid,
                    format!("invalid Content-Range {text:?}"),
                ))
            }
        }
    }
    let size = append(&reg, &name, &uuid, body).await?;
    Ok(upload_accepted(StatusCode::ACCEPTED, &name, &uuid, size))
}

async fn put_upload(
    reg: Registry,
    name: String,
    uuid: String,
    query: Option<&str>,
    body: Body,
) -> ApiResult {
    upload_file(&reg, &name, &uuid).await?;
    let digest = match query_param(query, "digest") {
        Some(d) => parse_digest(&d)?,
        None => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::DigestInvalid,
                "the digest query parameter is required to finish an upload",
            ))
        }
    };
    append(&reg, &name, &uuid, body).await?;
    finish(reg, name, uuid, digest).await
}

async fn upload_status(reg: Registry, name: String, uuid: String) -> ApiResult {
    let data = upload_file(&reg, &name, &uuid).await?;
    let size = current_size(&data).await?;
    Ok(upload_accepted(StatusCode::NO_CONTENT, &name, &uuid, size))
}

async fn cancel_upload(reg: Registry, name: String, uuid: String) -> ApiResult {
    upload_file(&reg, &name, &uuid).await?;
    blocking(move || reg.cancel_upload(&uuid)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn manifest_unknown(reference: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::ManifestUnknown,
        format!("manifest {reference} is not in this repository"),
    )
    .detail(serde_json::json!({ "reference": reference }))
}

/// A reference: a digest (contains ':') or a tag.
enum Ref {
    Digest(Digest),
    Tag(String),
}

fn parse_reference(reference: &str) -> Result<Ref, ApiError> {
    if reference.contains(':') {
        return Ok(Ref::Digest(parse_digest(reference)?));
    }
    if !valid_tag(reference) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::ManifestInvalid,
            format!("invalid tag {reference:?}"),
        ));
    }
    Ok(Ref::Tag(reference.to_owned()))
}

async fn get_manifest(
    reg: Registry,
    name: String,
    reference: String,
    with_body: bool,
) -> ApiResult {
    let r = parse_reference(&reference)?;
    let found = blocking(move || {
        let digest = match r {
            Ref::Digest(d) => d,
            Ref::Tag(t) => match reg.resolve_tag(&name, &t)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        Ok(reg.manifest(&name, &digest)?.map(|(b, m)| (digest, b, m)))
    })
    .await?;
    let Some((digest, bytes, media_type)) = found else {
        return Err(manifest_unknown(&reference));
    };
    let len = bytes.len();
    let mut resp = Response::new(if with_body {
        Body::from(bytes)
    } else {
        Body::empty()
    });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&media_type));
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    Ok(resp)
}

fn manifest_invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, Code::ManifestInvalid, message)
}

fn descriptor_digest(v: &serde_json::Value, what: &str) -> Result<Digest, ApiError> {
    let d = v
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| manifest_invalid(format!("{what}: missing digest")))?;
    d.parse()
        .map_err(|e| manifest_invalid(format!("{what}: invalid digest {d:?}: {e}")))
}

async fn put_manifest(
    reg: Registry,
    name: String,
    reference: String,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let r = parse_reference(&reference)?;
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::SizeInvalid,
                format!("manifest body: {e} (limit {MAX_MANIFEST} bytes)"),
            )
        })?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| manifest_invalid(format!("manifest is not JSON: {e}")))?;
    let field_type = doc
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(str::to_owned);
    let header_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|s| mt::is_manifest(s));
    let media_type = match (header_type, field_type) {
        (Some(h), Some(f)) if h != f => {
            return Err(manifest_invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {f}"
            )))
        }
        (Some(h), _) => h,
        (None, Some(f)) if mt::is_manifest(&f) => f,
        (None, _) if doc.get("manifests").is_some() => mt::OCI_INDEX.to_owned(),
        (None, _) if doc.get("config").is_some() => mt::OCI_MANIFEST.to_owned(),
        (None, other) => {
            return Err(manifest_invalid(format!(
                "unsupported manifest media type {}",
                other.unwrap_or_default()
            )))
        }
    };
    if doc.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
        return Err(manifest_invalid("schemaVersion must be 2"));
    }
    // What the manifest needs in this repository.
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    if mt::is_index(&media_type) {
        let list = doc
            .get("manifests")
            .and_then(|m| m.as_array())
            .ok_or_else(|| manifest_invalid("an index needs a manifests array"))?;
        for (i, m) in list.iter().enumerate() {
            children.push(descriptor_digest(m, &format!("manifests[{i}]"))?);
        }
    } else {
        let config = doc
            .get("config")
            .ok_or_else(|| manifest_invalid("an image manifest needs a config"))?;
        blobs.push(descriptor_digest(config, "config")?);
        if let Some(layers) = doc.get("layers").and_then(|l| l.as_array()) {
            for (i, l) in layers.iter().enumerate() {
                let foreign = l
                    .get("urls")
                    .and_then(|u| u.as_array())
                    .is_some_and(|u| !u.is_empty());
                if !foreign {
                    blobs.push(descriptor_digest(l, &format!("layers[{i}]"))?);
                }
            }
        }
    }
    let subject = match doc.get("subject") {
        Some(s) => Some(descriptor_digest(s, "subject")?),
        None => None,
    };
    let computed = match &r {
        Ref::Digest(d) => {
            let c = Digest::of(d.algorithm(), &bytes);
            if &c != d {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::DigestInvalid,
                    format!("manifest hashes to {c}, not {d}"),
                ));
            }
            c
        }
        Ref::Tag(_) => Digest::sha256_of(&bytes),
    };
    let tag = match &r {
        Ref::Tag(t) => Some(t.clone()),
        Ref::Digest(_) => None,
    };
    let referrer = subject
        .as_ref()
        .map(|_| referrer_descriptor(&media_type, &computed, bytes.len(), &doc));
    let (r2, n2, mt2, d2, t2) = (
        reg.clone(),
        name.clone(),
        media_type.clone(),
        computed.clone(),
        tag.clone(),
    );
    let outcome = blocking(move || {
        r2.push_manifest(&ManifestPush {
            name: &n2,
            bytes: &bytes,
            media_type: &mt2,
            digest: &d2,
            tag: t2.as_deref(),
            blobs: &blobs,
            children: &children,
            referrer: subject.as_ref().zip(referrer.as_deref()),
        })
    })
    .await?;
    let digest = match outcome {
        PushOutcome::Stored => computed,
        PushOutcome::Missing(missing) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                Code::ManifestBlobUnknown,
                format!("manifest references {missing}, which is not in repository {name}"),
            )
            .detail(serde_json::json!({ "digest": missing.to_string() })))
        }
        PushOutcome::TagImmutable(existing) => {
            // ECR's answer, word for word, so clients show users what they know.
            let tag = tag.unwrap_or_default();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::TagInvalid,
                format!(
                    "The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable."
                ),
            )
            .detail(serde_json::json!({ "tag": tag, "digest": existing.to_string() })));
        }
    };
    reg.notify_push(PushedManifest {
        repository: name.clone(),
        digest: digest.clone(),
        media_type,
        tag,
    });
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/manifests/{digest}")),
    );
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    if let Some(s) = doc
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(|d| d.as_str())
    {
        h.insert("OCI-Subject", hv(s));
    }
    Ok(resp)
}

async fn delete_manifest(reg: Registry, name: String, reference: String) -> ApiResult {
    let r = parse_reference(&reference)?;
    let existed = blocking(move || match r {
        Ref::Digest(d) => reg.delete_manifest(&name, &d),
        Ref::Tag(t) => reg.delete_tag(&name, &t),
    })
    .await?;
    if !existed {
        return Err(manifest_unknown(&reference));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn referrers(reg: Registry, name: String, subject: Digest, query: Option<&str>) -> ApiResult {
    let filter = query_param(query, "artifactType");
    let mut list = blocking(move || reg.referrers(&name, &subject)).await?;
    if let Some(f) = &filter {
        list.retain(|d| d.get("artifactType").and_then(|a| a.as_str()) == Some(f.as_str()));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": list,
    })
    .to_string();
    let mut resp = ([(header::CONTENT_TYPE, mt::OCI_INDEX)], body).into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            "OCI-Filters-Applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/v2/"), Some(Route::Base)));
        assert!(matches!(
            route("/v2/a/b/tags/list"),
            Some(Route::Tags("a/b"))
        ));
        assert!(matches!(
            route("/v2/a/b/blobs/uploads/"),
            Some(Route::Upload("a/b", ""))
        ));
        assert!(matches!(
            route("/v2/a/blobs/uploads/abc"),
            Some(Route::Upload("a", "abc"))
        ));
        assert!(matches!(
            route("/v2/a/b/c/blobs/sha256:x"),
            Some(Route::Blob("a/b/c", "sha256:x"))
        ));
        assert!(matches!(
            route("/v2/a/manifests/v1"),
            Some(Route::Manifest("a", "v1"))
        ));
        assert!(matches!(
            route("/v2/a/referrers/d"),
            Some(Route::Referrers("a", "d"))
        ));
        assert!(route("/v3/a").is_none());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("items=1-2", 100), Ok(None));
    }

    #[test]
    fn pagination() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (p, next) = paginate(all.clone(), Some("n=2")).unwrap();
        assert_eq!((p, next), (vec!["a".to_string(), "b".to_string()], Some(2)));
        let (p, next) = paginate(all, Some("n=2&last=b")).unwrap();
        assert_eq!((p, next), (vec!["c".to_string()], None));
        assert_eq!(percent_decode("a%2Fb"), "a/b");
    }
}
