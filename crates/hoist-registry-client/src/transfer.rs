//! Blob transfers that survive bad networks: monolithic and chunked uploads,
//! resumable downloads, retries with back-off, and byte progress.
//!
//! The arithmetic (chunk plans, `Content-Range` and `Range` values, where to resume)
//! is pure and tested here; the HTTP exchanges are methods on the crate's `Session`.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use hoist_oci::{BlobError, Descriptor, Digest, PartialBlob, Store};
use ureq::SendBody;

use crate::{absolute, ClientError, ClientOptions, Event, Result, Session};

/// How blobs are uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadMode {
    /// Monolithic for blobs smaller than [`ClientOptions::chunk_threshold`];
    /// chunked otherwise, so an interrupted upload continues where it stopped.
    /// (For ECR, which drops every chunk after the first, the caller asks for
    /// [`UploadMode::Monolithic`]: hoist's binary does it for ECR hosts.)
    #[default]
    Auto,
    /// `POST` then one `PUT` carrying the whole blob.
    Monolithic,
    /// `POST`, one `PATCH` per chunk with `Content-Range`, then an empty `PUT`.
    Chunked,
}

/// What [`UploadMode`] resolves to for one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// One `PUT` with the blob.
    Monolithic,
    /// `PATCH`es of this many bytes (at least; the registry's
    /// `OCI-Chunk-Min-Length` may raise it).
    Chunked {
        /// Bytes per `PATCH`.
        chunk_size: u64,
    },
}

impl ClientOptions {
    /// How a blob of `size` bytes is uploaded under these options.
    pub fn upload_kind(&self, size: u64) -> UploadKind {
        let chunked = UploadKind::Chunked {
            chunk_size: self.chunk_size.max(1),
        };
        match self.upload {
            UploadMode::Monolithic => UploadKind::Monolithic,
            UploadMode::Chunked => chunked,
            UploadMode::Auto if size < self.chunk_threshold => UploadKind::Monolithic,
            UploadMode::Auto => chunked,
        }
    }
}

/// The chunks `[start, end]` (inclusive, as `Content-Range` counts) that upload bytes
/// `from..size` in pieces of `chunk` bytes.
pub(crate) fn plan_chunks(from: u64, size: u64, chunk: u64) -> Vec<(u64, u64)> {
    let chunk = chunk.max(1);
    let mut out = Vec::new();
    let mut start = from;
    while start < size {
        let end = (start + chunk).min(size) - 1;
        out.push((start, end));
        start = end + 1;
    }
    out
}

/// The `Content-Range` value of a `PATCH` (the distribution spec's `<start>-<end>`,
/// inclusive, without a unit).
pub(crate) fn content_range(start: u64, end: u64) -> String {
    format!("{start}-{end}")
}

/// Bytes an upload holds according to its `Range: 0-<end>` header. `0-0` is
/// ambiguous (Distribution sends it for 0 bytes and for 1), so it reads as 0: resuming
/// from too early is refused by the registry and restarts the upload, resuming from
/// too late would lose a byte.
pub(crate) fn upload_offset(range: Option<&str>) -> Option<u64> {
    let r = range?.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (start, end) = r.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let end: u64 = end.trim().parse().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

/// Where a download continues: what to do given `have` bytes of a blob of `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Nothing held: a plain `GET`.
    Full,
    /// `Range: bytes=<n>-`.
    From(u64),
    /// Every byte is there: verify and commit.
    Complete,
    /// More than the blob's size: the partial is wrong; start over.
    Discard,
}

pub(crate) fn resume_from(have: u64, size: u64) -> Resume {
    match have {
        0 if size > 0 => Resume::Full,
        n if n < size => Resume::From(n),
        n if n == size => Resume::Complete,
        _ => Resume::Discard,
    }
}

/// How a `GET` answered a request that may have carried `Range: bytes=<offset>-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// The body continues at `offset`.
    Continue,
    /// The body is the whole blob (the server ignored `Range`, or none was sent).
    Whole,
    /// The server answered a range other than the one asked for.
    Wrong,
}

/// Judge a blob response: its status and `Content-Range` against the offset asked for.
pub(crate) fn range_answer(status: u16, content_range: Option<&str>, offset: u64) -> RangeAnswer {
    match status {
        206 => {
            // "bytes <start>-<end>/<size>"
            let start = content_range
                .and_then(|v| v.trim().strip_prefix("bytes"))
                .and_then(|v| v.trim().split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if offset > 0 && start == Some(offset) {
                RangeAnswer::Continue
            } else if start == Some(0) {
                RangeAnswer::Whole
            } else {
                RangeAnswer::Wrong
            }
        }
        _ => RangeAnswer::Whole,
    }
}

/// Whether an error is worth another try: the connection failed or broke, or the
/// registry answered 5xx, 408 or 429.
pub(crate) fn is_transient(e: &ClientError) -> bool {
    match e {
        ClientError::Http { error, .. } => matches!(
            **error,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::Protocol(_)
        ),
        ClientError::Registry { status, .. }
            if *status >= 500 || *status == 408 || *status == 429 =>
        {
            true
        }
        // The registry dropped the upload session (expired, or collected by a GC
        // with no grace): the retry starts a new one.
        ClientError::Registry {
            status: 404,
            code: Some(code),
            ..
        } => code == "BLOB_UPLOAD_UNKNOWN",
        ClientError::Interrupted { .. } => true,
        _ => false,
    }
}

/// The pause before retry number `attempt` (1-based): `base`, doubled each time, at
/// most 30 s.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(Duration::from_secs(30))
}

/// Reports bytes of one blob as they move, at most every 100 ms (and always the last).
pub(crate) struct Meter<'a> {
    digest: &'a Digest,
    size: u64,
    done: u64,
    last: Option<Instant>,
    progress: &'a (dyn Fn(&Event) + Sync),
}

impl<'a> Meter<'a> {
    pub(crate) fn new(
        digest: &'a Digest,
        size: u64,
        progress: &'a (dyn Fn(&Event) + Sync),
    ) -> Meter<'a> {
        Meter {
            digest,
            size,
            done: 0,
            last: None,
            progress,
        }
    }

    /// Set the count (a resumed transfer starts at its offset).
    pub(crate) fn set(&mut self, done: u64) {
        self.done = done;
        self.emit(true);
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        self.emit(self.done >= self.size);
    }

    fn emit(&mut self, force: bool) {
        let now = Instant::now();
        if force
            || self
                .last
                .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100))
        {
            self.last = Some(now);
            (self.progress)(&Event::BlobProgress {
                digest: self.digest.clone(),
                size: self.size,
                transferred: self.done,
            });
        }
    }
}

/// A reader that counts what passes through into a [`Meter`].
struct Counting<'m, 'a, R> {
    inner: R,
    meter: &'m mut Meter<'a>,
}

impl<R: Read> Read for Counting<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add(n as u64);
        Ok(n)
    }
}

/// An upload session the registry knows: where to send the next request.
struct UploadSession {
    location: String,
    /// The registry's `OCI-Chunk-Min-Length`.
    min_chunk: u64,
}

impl Session<'_> {
    fn header<'r>(resp: &'r ureq::http::Response<ureq::Body>, name: &str) -> Option<&'r str> {
        resp.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// Run `op` until it succeeds, retrying transient failures with back-off.
    pub(crate) fn with_retries<T>(
        &self,
        digest: &Digest,
        progress: &(dyn Fn(&Event) + Sync),
        mut op: impl FnMut(u32) -> Result<T>,
    ) -> Result<T> {
        let options = &self.client.options;
        let mut attempt = 0;
        loop {
            match op(attempt) {
                Ok(v) => return Ok(v),
                Err(e) if attempt < options.retries && is_transient(&e) => {
                    attempt += 1;
                    tracing::debug!(%digest, attempt, error = %e, "retrying");
                    progress(&Event::Retry {
                        digest: digest.clone(),
                        attempt,
                        error: e.to_string(),
                    });
                    std::thread::sleep(backoff(options.backoff, attempt));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the registry has the blob (`HEAD`).
    pub(crate) fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let shown = digest.to_string();
        let url = self.url(&format!("blobs/{shown}"));
        let resp = self.send("HEAD", &url, "checking blob", &shown, &|auth| {
            let mut r = self.agent().head(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.refused("checking blob", &shown, resp)),
        }
    }

    /// Upload one blob unless the registry has it; returns whether it was skipped.
    pub(crate) fn push_blob(
        &self,
        store: &Store,
        desc: &Descriptor,
        progress: &(dyn Fn(&Event) + Sync),
    ) -> Result<bool> {
        if self.with_retries(&desc.digest, progress, |_| self.has_blob(&desc.digest))? {
            return Ok(true);
        }
        let kind = self.client.options.upload_kind(desc.size);
        let mut meter = Meter::new(&desc.digest, desc.size, progress);
        let mut session: Option<UploadSession> = None;
        self.with_retries(&desc.digest, progress, |attempt| {
            // A retry may find that the last attempt got through after all.
            if attempt > 0 && self.has_blob(&desc.digest)? {
                return Ok(());
            }
            match kind {
                UploadKind::Monolithic => self.upload_monolithic(store, desc, &mut meter),
                UploadKind::Chunked { chunk_size } => {
                    self.upload_chunked(store, desc, chunk_size, &mut session, &mut meter)
                }
            }
        })?;
        Ok(false)
    }

    /// `POST /blobs/uploads/`: a new upload session.
    fn start_upload(&self, digest: &str) -> Result<UploadSession> {
        let url = self.url("blobs/uploads/");
        let resp = self.send("POST", &url, "starting upload of blob", digest, &|auth| {
            let mut r = self.agent().post(&url).header("Content-Length", "0");
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        })?;
        if resp.status().as_u16() != 202 {
            return Err(self.refused("starting upload of blob", digest, resp));
        }
        let location = Self::header(&resp, "location").ok_or_else(|| ClientError::Registry {
            registry: self.host.clone(),
            what: "starting upload of blob",
            reference: digest.to_owned(),
            status: 202,
            code: None,
            message: "the response has no Location".to_owned(),
        })?;
        let min_chunk = Self::header(&resp, "oci-chunk-min-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(UploadSession {
            location: absolute(&self.base, location),
            min_chunk,
        })
    }

    fn finish_url(location: &str, digest: &str) -> String {
        let mut put = location.to_owned();
        put.push(if put.contains('?') { '&' } else { '?' });
        put.push_str("digest=");
        put.push_str(digest);
        put
    }

    /// `POST`, then one `PUT` streaming the whole blob.
    fn upload_monolithic(
        &self,
        store: &Store,
        desc: &Descriptor,
        meter: &mut Meter<'_>,
    ) -> Result<()> {
        let digest = desc.digest.to_string();
        let session = self.start_upload(&digest)?;
        let put = Self::finish_url(&session.location, &digest);
        let meter = std::cell::RefCell::new(meter);
        let resp = self.send("PUT", &put, "uploading blob", &digest, &|auth| {
            let file = open(store, desc)?;
            let mut m = meter.borrow_mut();
            m.set(0);
            let mut body = Counting {
                inner: file,
                meter: &mut m,
            };
            let mut r = self
                .agent()
                .put(&put)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", desc.size.to_string());
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(SendBody::from_reader(&mut body))
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.refused("uploading blob", &digest, resp));
        }
        Ok(())
    }

    /// Ask an upload session how many bytes it holds (`GET <location>`); `None` when
    /// the registry no longer knows it.
    fn upload_status(&self, session: &mut UploadSession, digest: &str) -> Result<Option<u64>> {
        let url = session.location.clone();
        let resp = self.send("GET", &url, "resuming upload of blob", digest, &|auth| {
            let mut r = self.agent().get(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        match resp.status().as_u16() {
            200..=299 => {
                if let Some(l) = Self::header(&resp, "location") {
                    session.location = absolute(&self.base, l);
                }
                Ok(upload_offset(Self::header(&resp, "range")))
            }
            // The session is gone or broken (Distribution cancels an upload whose
            // size no longer matches its state): a new one starts.
            400..=499 => Ok(None),
            _ => Err(self.refused("resuming upload of blob", digest, resp)),
        }
    }

    /// `PATCH` chunks from where the session stands (asking it, when it is one left by
    /// a failed attempt), then `PUT` to finish. `session` outlives a failed attempt so
    /// the next one continues it; it is cleared when the registry lost it.
    fn upload_chunked(
        &self,
        store: &Store,
        desc: &Descriptor,
        chunk_size: u64,
        session: &mut Option<UploadSession>,
        meter: &mut Meter<'_>,
    ) -> Result<()> {
        let digest = desc.digest.to_string();
        let mut offset = 0;
        if let Some(s) = session.as_mut() {
            match self.upload_status(s, &digest)? {
                Some(n) if n <= desc.size => offset = n,
                _ => *session = None,
            }
        }
        if session.is_none() {
            *session = Some(self.start_upload(&digest)?);
            offset = 0;
        }
        let Some(s) = session.as_mut() else {
            return Ok(());
        };
        let chunk = chunk_size.max(s.min_chunk).max(1);
        meter.set(offset);
        for (start, end) in plan_chunks(offset, desc.size, chunk) {
            let url = s.location.clone();
            let meter = std::cell::RefCell::new(&mut *meter);
            let resp = self.send("PATCH", &url, "uploading blob", &digest, &|auth| {
                let mut file = open(store, desc)?;
                file.seek(SeekFrom::Start(start))?;
                let mut m = meter.borrow_mut();
                m.set(start);
                let mut body = Counting {
                    inner: file.take(end - start + 1),
                    meter: &mut m,
                };
                let mut r = self
                    .agent()
                    .patch(&url)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", content_range(start, end))
                    .header("Content-Length", (end - start + 1).to_string());
                if let Some(a) = auth {
                    r = r.header("Authorization", a);
                }
                r.send(SendBody::from_reader(&mut body))
            })?;
            match resp.status().as_u16() {
                202 => {
                    if let Some(l) = Self::header(&resp, "location") {
                        s.location = absolute(&self.base, l);
                    }
                }
                416 => {
                    // The registry holds a different amount than we thought (an
                    // ambiguous `0-0`, or bytes of a broken chunk): ask again on retry.
                    return Err(ClientError::Interrupted {
                        registry: self.host.clone(),
                        what: format!("uploading blob {digest}"),
                        message: format!("chunk {start}-{end} refused as out of order"),
                    });
                }
                _ => return Err(self.refused("uploading blob", &digest, resp)),
            }
        }
        let put = Self::finish_url(&s.location, &digest);
        let resp = self.send("PUT", &put, "finishing upload of blob", &digest, &|auth| {
            let mut r = self
                .agent()
                .put(&put)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", "0");
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        })?;
        match resp.status().as_u16() {
            201 => Ok(()),
            400 | 404 => {
                // The bytes the registry holds are not the blob (e.g. the upload lost
                // a piece): start a new upload rather than finish a wrong one.
                *session = None;
                Err(self.refused("finishing upload of blob", &digest, resp))
            }
            _ => Err(self.refused("finishing upload of blob", &digest, resp)),
        }
    }

    /// Download one blob into the store through its partial file, resuming what an
    /// earlier attempt (or an earlier pull) left; returns the bytes that were already
    /// there when this pull started.
    pub(crate) fn pull_blob(
        &self,
        store: &Store,
        desc: &Descriptor,
        progress: &(dyn Fn(&Event) + Sync),
    ) -> Result<u64> {
        let mut meter = Meter::new(&desc.digest, desc.size, progress);
        let Some(partial) = store.blobs().partial(&desc.digest)? else {
            // Another process is downloading this blob: fetch a private copy.
            self.with_retries(&desc.digest, progress, |_| {
                self.download_whole(store, desc, &mut meter)
            })?;
            return Ok(0);
        };
        let mut resumed = partial.len().min(desc.size);
        let mut slot = Some(partial);
        self.with_retries(&desc.digest, progress, |_| {
            self.download_into(store, desc, &mut slot, &mut meter, &mut resumed)
        })?;
        Ok(resumed)
    }

    /// One attempt: fetch what `slot`'s partial lacks, then verify and commit it. A
    /// failed commit (wrong bytes) leaves a fresh partial in `slot`. `resumed` (bytes
    /// reused from before the pull) drops to 0 when they are thrown away.
    fn download_into(
        &self,
        store: &Store,
        desc: &Descriptor,
        slot: &mut Option<PartialBlob>,
        meter: &mut Meter<'_>,
        resumed: &mut u64,
    ) -> Result<()> {
        let digest = desc.digest.to_string();
        let mut partial =
            match slot.take() {
                Some(p) => p,
                None => store.blobs().partial(&desc.digest)?.ok_or_else(|| {
                    ClientError::Interrupted {
                        registry: self.host.clone(),
                        what: format!("pulling blob {digest}"),
                        message: "another process took over its download".to_owned(),
                    }
                })?,
            };
        let offset = match resume_from(partial.len(), desc.size) {
            Resume::Full => 0,
            Resume::From(n) => n,
            Resume::Complete => {
                let r = self.commit(partial, slot, store, desc);
                if r.is_err() {
                    *resumed = 0;
                }
                return r;
            }
            Resume::Discard => {
                partial.restart()?;
                *resumed = 0;
                0
            }
        };
        let url = self.url(&format!("blobs/{digest}"));
        let range = format!("bytes={offset}-");
        let result = self.send("GET", &url, "pulling blob", &digest, &|auth| {
            let mut r = self.agent().get(&url);
            if offset > 0 {
                r = r.header("Range", &range);
            }
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        });
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                *slot = Some(partial);
                return Err(e);
            }
        };
        let status = resp.status().as_u16();
        if status == 416 && offset > 0 {
            // The partial claims more than the registry has: start over next time.
            partial.restart()?;
            *resumed = 0;
            *slot = Some(partial);
            return Err(ClientError::Interrupted {
                registry: self.host.clone(),
                what: format!("pulling blob {digest}"),
                message: format!("the registry refused to resume at byte {offset}"),
            });
        }
        if status != 200 && status != 206 {
            *slot = Some(partial);
            return Err(self.refused("pulling blob", &digest, resp));
        }
        let start = match range_answer(status, Self::header(&resp, "content-range"), offset) {
            RangeAnswer::Continue => offset,
            RangeAnswer::Whole => {
                if offset > 0 {
                    tracing::debug!(%digest, offset, "the registry ignored Range; downloading the whole blob");
                    partial.restart()?;
                    *resumed = 0;
                }
                0
            }
            RangeAnswer::Wrong => {
                *slot = Some(partial);
                return Err(ClientError::Mismatch {
                    registry: self.host.clone(),
                    what: format!("range of blob {digest}"),
                    expected: range,
                    actual: Self::header(&resp, "content-range")
                        .unwrap_or("none")
                        .to_owned(),
                });
            }
        };
        meter.set(start);
        let want = desc.size - start;
        let mut reader = Counting {
            inner: resp
                .body_mut()
                .with_config()
                .limit(want.saturating_add(1))
                .reader()
                .take(want.saturating_add(1)),
            meter,
        };
        let copied = io::copy(&mut reader, &mut partial);
        // Whatever arrived stays on disk for the next attempt.
        let flushed = partial.flush();
        let have = partial.len();
        if let Err(e) = copied {
            *slot = Some(partial);
            return Err(ClientError::Http {
                method: "GET",
                url,
                error: Box::new(ureq::Error::Io(e)),
            });
        }
        if let Err(e) = flushed {
            return Err(ClientError::Blob(BlobError::Io {
                path: partial.path().to_owned(),
                source: e,
            }));
        }
        if have < desc.size {
            *slot = Some(partial);
            return Err(ClientError::Interrupted {
                registry: self.host.clone(),
                what: format!("pulling blob {digest}"),
                message: format!("the body ended after {have} of {} bytes", desc.size),
            });
        }
        if have > desc.size {
            partial.restart()?;
            *resumed = 0;
            *slot = Some(partial);
            return Err(ClientError::Mismatch {
                registry: self.host.clone(),
                what: format!("size of blob {digest}"),
                expected: desc.size.to_string(),
                actual: format!("more than {}", desc.size),
            });
        }
        let r = self.commit(partial, slot, store, desc);
        if r.is_err() {
            *resumed = 0;
        }
        r
    }

    fn commit(
        &self,
        partial: PartialBlob,
        slot: &mut Option<PartialBlob>,
        store: &Store,
        desc: &Descriptor,
    ) -> Result<()> {
        match partial.commit() {
            Ok(_) => Ok(()),
            Err(BlobError::DigestMismatch { expected, actual }) => {
                // The partial file is gone; the next attempt starts from nothing.
                *slot = store.blobs().partial(&desc.digest)?;
                Err(ClientError::Mismatch {
                    registry: self.host.clone(),
                    what: format!("digest of blob {expected}"),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A download without a partial file (another process holds it).
    fn download_whole(
        &self,
        store: &Store,
        desc: &Descriptor,
        meter: &mut Meter<'_>,
    ) -> Result<()> {
        let digest = desc.digest.to_string();
        let url = self.url(&format!("blobs/{digest}"));
        let mut resp = self.send("GET", &url, "pulling blob", &digest, &|auth| {
            let mut r = self.agent().get(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        if resp.status().as_u16() != 200 {
            return Err(self.refused("pulling blob", &digest, resp));
        }
        meter.set(0);
        let mut w = store.blobs().writer_with(desc.digest.algorithm())?;
        let mut reader = Counting {
            inner: resp
                .body_mut()
                .with_config()
                .limit(desc.size.saturating_add(1))
                .reader()
                .take(desc.size.saturating_add(1)),
            meter,
        };
        io::copy(&mut reader, &mut w).map_err(|e| ClientError::Http {
            method: "GET",
            url: url.clone(),
            error: Box::new(ureq::Error::Io(e)),
        })?;
        if w.len() != desc.size {
            return Err(ClientError::Interrupted {
                registry: self.host.clone(),
                what: format!("pulling blob {digest}"),
                message: format!("got {} of {} bytes", w.len(), desc.size),
            });
        }
        w.commit(Some(&desc.digest))?;
        Ok(())
    }
}

/// Open a blob to upload, as a transport error so `send` can return it.
fn open(store: &Store, desc: &Descriptor) -> Result<std::fs::File, ureq::Error> {
    store
        .blobs()
        .open_blob(&desc.digest, Some(desc.size))
        .map_err(|e| ureq::Error::Io(io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_rest_of_the_blob_in_order() {
        assert_eq!(plan_chunks(0, 10, 4), vec![(0, 3), (4, 7), (8, 9)]);
        assert_eq!(plan_chunks(0, 8, 4), vec![(0, 3), (4, 7)]);
        // Resumed mid-chunk: the first piece starts at the offset.
        assert_eq!(plan_chunks(5, 10, 4), vec![(5, 8), (9, 9)]);
        assert_eq!(plan_chunks(10, 10, 4), vec![]);
        assert_eq!(plan_chunks(0, 0, 4), vec![]);
        assert_eq!(plan_chunks(0, 3, 0), vec![(0, 0), (1, 1), (2, 2)]);
        let big = plan_chunks(0, (50 << 20) + 1, 8 << 20);
        assert_eq!(big.len(), 7);
        assert_eq!(big.last(), Some(&(48 << 20, 50 << 20)));
        assert_eq!(content_range(0, 1023), "0-1023");
    }

    #[test]
    fn upload_offsets_come_from_the_range_header() {
        assert_eq!(upload_offset(Some("0-1023")), Some(1024));
        assert_eq!(upload_offset(Some("bytes=0-99")), Some(100));
        assert_eq!(upload_offset(Some("0-0")), Some(0));
        assert_eq!(upload_offset(Some("5-9")), None);
        assert_eq!(upload_offset(Some("junk")), None);
        assert_eq!(upload_offset(None), None);
    }

    #[test]
    fn downloads_resume_from_what_the_partial_holds() {
        assert_eq!(resume_from(0, 100), Resume::Full);
        assert_eq!(resume_from(40, 100), Resume::From(40));
        assert_eq!(resume_from(100, 100), Resume::Complete);
        assert_eq!(resume_from(0, 0), Resume::Complete);
        assert_eq!(resume_from(101, 100), Resume::Discard);
        assert_eq!(
            range_answer(206, Some("bytes 40-99/100"), 40),
            RangeAnswer::Continue
        );
        // A server that ignores Range answers 200 with everything.
        assert_eq!(range_answer(200, None, 40), RangeAnswer::Whole);
        assert_eq!(
            range_answer(206, Some("bytes 0-99/100"), 40),
            RangeAnswer::Whole
        );
        assert_eq!(
            range_answer(206, Some("bytes 50-99/100"), 40),
            RangeAnswer::Wrong
        );
        assert_eq!(range_answer(206, None, 40), RangeAnswer::Wrong);
    }

    #[test]
    fn upload_kind_is_monolithic_for_small_blobs_or_when_asked() {
        let o = ClientOptions::default();
        assert_eq!(o.upload_kind(1000), UploadKind::Monolithic);
        assert_eq!(
            o.upload_kind(1 << 30),
            UploadKind::Chunked {
                chunk_size: o.chunk_size
            }
        );
        let forced = ClientOptions {
            upload: UploadMode::Chunked,
            ..ClientOptions::default()
        };
        assert!(matches!(forced.upload_kind(10), UploadKind::Chunked { .. }));
        let mono = ClientOptions {
            upload: UploadMode::Monolithic,
            ..ClientOptions::default()
        };
        assert_eq!(mono.upload_kind(1 << 30), UploadKind::Monolithic);
    }

    #[test]
    fn transient_errors_are_retried_with_growing_pauses() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 1), Duration::from_millis(100));
        assert_eq!(backoff(base, 2), Duration::from_millis(200));
        assert_eq!(backoff(base, 4), Duration::from_millis(800));
        assert_eq!(backoff(base, 60), Duration::from_secs(30));
        let reg = |status| ClientError::Registry {
            registry: "r".into(),
            what: "x",
            reference: "y".into(),
            status,
            code: None,
            message: String::new(),
        };
        assert!(is_transient(&reg(503)));
        assert!(is_transient(&reg(429)));
        assert!(!is_transient(&reg(404)));
        assert!(!is_transient(&reg(401)));
        let code = |status, code: &str| ClientError::Registry {
            registry: "r".into(),
            what: "uploading blob",
            reference: "y".into(),
            status,
            code: Some(code.into()),
            message: String::new(),
        };
        assert!(is_transient(&code(404, "BLOB_UPLOAD_UNKNOWN")));
        assert!(!is_transient(&code(404, "BLOB_UNKNOWN")));
        assert!(!is_transient(&code(400, "BLOB_UPLOAD_UNKNOWN")));
        let io = ClientError::Http {
            method: "GET",
            url: "u".into(),
            error: Box::new(ureq::Error::Io(io::Error::from(
                io::ErrorKind::ConnectionReset,
            ))),
        };
        assert!(is_transient(&io));
        let host = ClientError::Http {
            method: "GET",
            url: "u".into(),
            error: Box::new(ureq::Error::HostNotFound),
        };
        assert!(!is_transient(&host));
    }
}
