//! The registry client: pushes images from hoist's store to any OCI registry and
//! pulls them back, with the Docker token flow and Docker's credential sources.
//!
//! It must not serve anything (hoist-registry does) and writes to the local store
//! only through hoist-oci's atomic blob and image APIs.
//!
//! # Shape
//!
//! [`Client`] is blocking: it speaks HTTP/1.1 through `ureq` (rustls with the webpki
//! roots) and moves blobs a few at a time on scoped std threads. A registry session
//! is a handful of sequential requests plus N independent blob transfers, so threads
//! give the same parallelism as an async runtime without pulling tokio into every
//! caller (the CLI, the builder and the deploy pipeline are all synchronous).
//!
//! # Push ([`Client::push`])
//!
//! Every blob the image reaches (configs and layers of each manifest, children of an
//! index that are in the store) is checked with `HEAD /v2/<name>/blobs/<digest>`;
//! present blobs are skipped, missing ones are uploaded in the way
//! [`ClientOptions::upload_kind`] picks from [`ClientOptions::upload`]:
//!
//! - monolithic: `POST /blobs/uploads/` then one `PUT <location>?digest=` streaming
//!   the blob file with its `Content-Length`. What every registry accepts, and the
//!   only way to ECR, which drops every chunk after the first (the caller picks
//!   [`UploadMode::Monolithic`] for ECR); [`UploadMode::Auto`] uses it for blobs
//!   under [`ClientOptions::chunk_threshold`];
//! - chunked: `POST`, then one `PATCH` per chunk with `Content-Range: <start>-<end>`
//!   (chunks of [`ClientOptions::chunk_size`], raised to the registry's
//!   `OCI-Chunk-Min-Length`), then an empty `PUT ?digest=`. When a chunk fails, the
//!   next attempt asks the upload where it stands (`GET <location>`, `Range: 0-<end>`)
//!   and continues from there; a session the registry lost or refuses starts over.
//!
//! A blob transfer that fails with a connection error, a cut body or a 5xx is tried
//! again [`ClientOptions::retries`] times with doubling pauses
//! ([`ClientOptions::backoff`]); a retry first checks whether the blob arrived after
//! all. Then the child manifests of an index are put by digest and the root manifest
//! under the tag, always as the exact stored bytes, so the registry's digest is the
//! store's.
//!
//! # Pull ([`Client::pull`])
//!
//! The manifest is fetched with every OCI and Docker v2 media type accepted; for an
//! index the entry for [`Platform::host`] is fetched too. Missing blobs stream into
//! the store's partial file for their digest ([`hoist_oci::PartialBlob`],
//! `tmp/partial-<alg>-<hex>`), which survives a failure: the next attempt, in this pull
//! or a later one, asks for the rest with `Range: bytes=<n>-` and appends it (a server
//! that answers 200 instead of 206 is downloaded whole again). The digest of the whole
//! content is checked before it is renamed into the store. The image is recorded
//! (under the pulled name) only once everything is in, all within one
//! [`Store::write_session`], so a killed pull records nothing.
//!
//! # Progress
//!
//! `push` and `pull` report [`Event`]s from the transfer threads: a blob skipped or
//! copied, a manifest written, a retry, and [`Event::BlobProgress`] with the bytes of
//! a blob moved so far (at most every 100 ms per blob). The binary draws them.
//!
//! # Auth
//!
//! Requests go out anonymously until the registry answers 401. A `Basic` challenge
//! is answered with the registry's credentials; a `Bearer` challenge (Docker's token
//! flow) with a token fetched from the challenge's realm for the repository's
//! `pull` (or `pull,push`) scope, using the credentials as Basic auth when there are
//! any. Credentials come from [`ClientOptions::credentials`], else from
//! [`ClientOptions::credential_provider`] (a hook the binary uses for ECR tokens from
//! hoist-aws, so this crate does not depend on the AWS SDK), else from Docker's
//! `config.json` ([`auth::lookup`]: `credHelpers`, `auths`, `credsStore`).
//!
//! Registries on loopback (`localhost`, 127.0.0.0/8, `::1`) are spoken to in plain
//! HTTP; everything else over HTTPS unless [`ClientOptions::insecure`] is set.

pub mod auth;
mod transfer;

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hoist_oci::blob::MAX_DOCUMENT_SIZE;
use hoist_oci::media_type as mt;
use hoist_oci::{
    BlobError, Descriptor, Digest, ImageRecord, Manifest, ManifestError, Platform, Reference,
    Store, StoreError,
};
use ureq::http::{Response, StatusCode};
use ureq::Body;

pub use auth::Credentials;
pub use transfer::{UploadKind, UploadMode};

/// Credentials for a registry host from outside Docker's config (hoist-aws's ECR
/// tokens): `Ok(None)` when the provider has nothing for that host.
pub type CredentialProvider = Arc<
    dyn Fn(
            &str,
        )
            -> std::result::Result<Option<Credentials>, Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
>;

/// Docker Hub's registry host, which `docker.io` names stand for.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// Media types a pull accepts for a manifest.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection failed or the response could not be read.
    #[error("{method} {url}: {error}")]
    Http {
        /// The request method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The transport error (shown inline, not chained, so it prints once).
        error: Box<ureq::Error>,
    },
    /// The registry refused a request.
    #[error("{registry}: {what} {reference}: {status}{}{}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default(), if message.is_empty() { String::new() } else { format!(": {message}") })]
    Registry {
        /// The registry host.
        registry: String,
        /// What was being done (`pulling manifest`, `uploading blob`).
        what: &'static str,
        /// The reference or digest involved.
        reference: String,
        /// The HTTP status.
        status: u16,
        /// The first error code of the registry's error body (`MANIFEST_UNKNOWN`).
        code: Option<String>,
        /// The registry's message.
        message: String,
    },
    /// The registry wants credentials that were not given or were refused.
    #[error("{registry}: {what} {reference}: 401 Unauthorized{}: {hint}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// What was being done.
        what: &'static str,
        /// The reference involved.
        reference: String,
        /// The registry's error code, if any.
        code: Option<String>,
        /// Why: no credentials, or credentials refused.
        hint: String,
    },
    /// A token server that did not give a token.
    #[error("token server {realm}: {message}")]
    Token {
        /// The realm URL.
        realm: String,
        /// What went wrong.
        message: String,
    },
    /// A transfer cut short (a body that ended early, a chunk the registry did not
    /// take in order); retried.
    #[error("{registry}: {what}: {message}")]
    Interrupted {
        /// The registry host.
        registry: String,
        /// What was being done.
        what: String,
        /// What happened.
        message: String,
    },
    /// A [`CredentialProvider`] that failed.
    #[error("{registry}: getting credentials: {message}")]
    CredentialProvider {
        /// The registry host.
        registry: String,
        /// The provider's error.
        message: String,
    },
    /// A Docker config file that cannot be used.
    #[error("{path}: {message}")]
    Credentials {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A credential helper that failed.
    #[error("credential helper {helper}: {message}")]
    CredentialHelper {
        /// `docker-credential-<name>`.
        helper: String,
        /// What went wrong.
        message: String,
    },
    /// Content whose digest or size is not what was asked for.
    #[error("{registry}: {what}: expected {expected}, got {actual}")]
    Mismatch {
        /// The registry host.
        registry: String,
        /// What was checked.
        what: String,
        /// What was expected.
        expected: String,
        /// What came.
        actual: String,
    },
    /// A manifest that does not parse.
    #[error("{registry}: manifest {reference}: {source}")]
    Manifest {
        /// The registry host.
        registry: String,
        /// The reference.
        reference: String,
        /// Why.
        source: ManifestError,
    },
    /// An index with no manifest for this host.
    #[error("{reference}: the image index has no manifest for {platform}")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// `os/architecture`.
        platform: String,
    },
    /// A local store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local blob store error.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A push destination with neither tag nor digest, or a name that is not valid.
    #[error("{0}")]
    Usage(String),
}

/// Shorthand.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// How a [`Client`] behaves.
#[derive(Clone)]
pub struct ClientOptions {
    /// Docker's config directory to read credentials from (`config.json`); `None`
    /// reads none.
    pub docker_config: Option<PathBuf>,
    /// Credentials to use for every registry instead of Docker's config.
    pub credentials: Option<Credentials>,
    /// Plain HTTP for every registry (loopback registries always get it).
    pub insecure: bool,
    /// Blobs transferred at once.
    pub parallel: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// How blobs are uploaded ([`ClientOptions::upload_kind`] decides per blob).
    pub upload: UploadMode,
    /// Bytes per `PATCH` of a chunked upload (raised to the registry's
    /// `OCI-Chunk-Min-Length`).
    pub chunk_size: u64,
    /// Under [`UploadMode::Auto`], blobs smaller than this go monolithic.
    pub chunk_threshold: u64,
    /// Further attempts after a blob transfer fails with a connection error or a
    /// 5xx (uploads continue their session, downloads their partial file).
    pub retries: u32,
    /// The pause before the first retry, doubled for each further one (at most 30 s).
    pub backoff: Duration,
    /// Asked for a registry's credentials before Docker's config (after
    /// [`ClientOptions::credentials`]).
    pub credential_provider: Option<CredentialProvider>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("docker_config", &self.docker_config)
            .field("credentials", &self.credentials)
            .field("insecure", &self.insecure)
            .field("parallel", &self.parallel)
            .field("user_agent", &self.user_agent)
            .field("upload", &self.upload)
            .field("chunk_size", &self.chunk_size)
            .field("chunk_threshold", &self.chunk_threshold)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field(
                "credential_provider",
                &self.credential_provider.as_ref().map(|_| "<fn>"),
            )
            .finish()
    }
}

impl Default for ClientOptions {
    /// Credentials from `$DOCKER_CONFIG` (or `~/.docker`), HTTPS except on loopback,
    /// four blobs at a time, [`UploadMode::Auto`] with 8 MiB chunks for blobs of
    /// 16 MiB and more, four retries starting after half a second.
    fn default() -> Self {
        ClientOptions {
            docker_config: auth::docker_config_dir(),
            credentials: None,
            insecure: false,
            parallel: 4,
            user_agent: format!("hoist/{}", env!("CARGO_PKG_VERSION")),
            upload: UploadMode::Auto,
            chunk_size: 8 << 20,
            chunk_threshold: 16 << 20,
            retries: 4,
            backoff: Duration::from_millis(500),
            credential_provider: None,
        }
    }
}

/// What happened to one blob or manifest, reported as it happens (from several
/// threads at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A blob the destination already had.
    BlobSkipped {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A blob uploaded (push) or downloaded (pull).
    BlobCopied {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Bytes of a blob moved so far (at most every 100 ms per blob, and at the end).
    /// A resumed transfer starts at the bytes already there; a restarted one at 0.
    BlobProgress {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Bytes the destination holds now.
        transferred: u64,
    },
    /// A blob transfer failed and is tried again after a pause.
    Retry {
        /// The blob.
        digest: Digest,
        /// Which retry this is (1 for the first).
        attempt: u32,
        /// What failed.
        error: String,
    },
    /// A manifest written to the registry (push) or the store (pull).
    Manifest {
        /// The manifest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
}

/// What [`Client::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Where it went, `registry/repo:tag`.
    pub target: String,
    /// The root manifest's digest (as the registry now names it).
    pub digest: Digest,
    /// The root manifest's media type.
    pub media_type: String,
    /// Blobs uploaded.
    pub blobs_copied: usize,
    /// Blobs the registry already had.
    pub blobs_skipped: usize,
    /// Blob bytes uploaded (manifests not counted).
    pub bytes_copied: u64,
    /// Bytes not uploaded because the registry had them.
    pub bytes_skipped: u64,
    /// Wall time.
    pub duration: Duration,
}

/// What [`Client::pull`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// The store record of the pulled image.
    pub record: ImageRecord,
    /// Blobs downloaded.
    pub blobs_copied: usize,
    /// Blobs already in the store.
    pub blobs_skipped: usize,
    /// Blob bytes downloaded (manifests not counted), including those an earlier
    /// pull left in partial files.
    pub bytes_copied: u64,
    /// Of those, bytes that were already in partial files when this pull started.
    pub bytes_resumed: u64,
    /// Wall time.
    pub duration: Duration,
}

/// A registry client. Cheap to share: it holds a connection pool and its options.
pub struct Client {
    agent: ureq::Agent,
    options: ClientOptions,
}

impl Client {
    /// A client with `options`.
    pub fn new(options: ClientOptions) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(options.user_agent.as_str())
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        Client { agent, options }
    }

    fn session<'a>(&'a self, reference: &'a Reference, push: bool) -> Result<Session<'a>> {
        let domain = reference.domain();
        let host = if domain == hoist_oci::reference::DEFAULT_DOMAIN {
            DOCKER_HUB_REGISTRY.to_owned()
        } else {
            domain.to_owned()
        };
        let plain = self.options.insecure || is_loopback(&host);
        let provided = match (&self.options.credentials, &self.options.credential_provider) {
            (None, Some(provider)) => {
                provider(&host).map_err(|e| ClientError::CredentialProvider {
                    registry: host.clone(),
                    message: e.to_string(),
                })?
            }
            _ => None,
        };
        let credentials = match (&self.options.credentials, provided) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(c)) => Some(c),
            (None, None) => match &self.options.docker_config {
                Some(dir) => auth::lookup(dir, domain)?,
                None => None,
            },
        };
        Ok(Session {
            client: self,
            base: format!("{}://{host}", if plain { "http" } else { "https" }),
            host,
            repo: reference.repository().to_owned(),
            scope: format!(
                "repository:{}:{}",
                reference.repository(),
                if push { "pull,push" } else { "pull" }
            ),
            credentials,
            auth: Mutex::new(None),
        })
    }

    /// Push the image `image` (a name, ID or digest in `store`) to `dest`, under its
    /// tag (or by digest when `dest` only has a digest). `progress` sees every blob
    /// and manifest as it is handled.
    pub fn push(
        &self,
        store: &Store,
        image: &str,
        dest: &Reference,
        progress: &(dyn Fn(&Event) + Sync),
    ) -> Result<PushReport> {
        let started = Instant::now();
        let record = store.resolve(image)?;
        let root = record.descriptor();
        let target = match (dest.tag(), dest.digest()) {
            (Some(tag), _) => tag.to_owned(),
            (None, Some(d)) if d == &root.digest => d.to_string(),
            (None, Some(d)) => {
                return Err(ClientError::Usage(format!(
                    "{dest}: the image's digest is {}, not {d}",
                    root.digest
                )))
            }
            (None, None) => "latest".to_owned(),
        };
        let session = self.session(dest, true)?;

        // Manifests children-first, and the blobs they reach.
        let mut manifests = Vec::new();
        let mut blobs: Vec<Descriptor> = Vec::new();
        let mut seen = BTreeSet::new();
        collect(store, &root, &mut manifests, &mut blobs, &mut seen)?;

        let totals = Mutex::new(Totals::default());
        let s = &session;
        parallel(self.options.parallel, blobs, |desc| {
            let skipped = s.push_blob(store, &desc, progress)?;
            let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
            if skipped {
                t.skipped += 1;
                t.bytes_skipped += desc.size;
                progress(&Event::BlobSkipped {
                    digest: desc.digest.clone(),
                    size: desc.size,
                });
            } else {
                t.copied += 1;
                t.bytes_copied += desc.size;
                progress(&Event::BlobCopied {
                    digest: desc.digest.clone(),
                    size: desc.size,
                });
            }
            Ok(())
        })?;
        let totals = totals.into_inner().unwrap_or_else(|e| e.into_inner());

        for m in &manifests {
            let bytes = store.blobs().read(&m.digest)?;
            let tag = if m.digest == root.digest {
                target.clone()
            } else {
                m.digest.to_string()
            };
            session.put_manifest(&tag, &m.media_type, &m.digest, bytes)?;
            progress(&Event::Manifest {
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
            });
        }
        let name = dest.without_digest().without_tag();
        let target = if target.contains(':') {
            format!("{name}@{target}")
        } else {
            format!("{name}:{target}")
        };
        Ok(PushReport {
            target,
            digest: root.digest.clone(),
            media_type: root.media_type.clone(),
            blobs_copied: totals.copied,
            blobs_skipped: totals.skipped,
            bytes_copied: totals.bytes_copied,
            bytes_skipped: totals.bytes_skipped,
            duration: started.elapsed(),
        })
    }

    /// Pull `src` into `store` and record it under `src`'s name (when it has a tag).
    /// An index yields the index plus this host's manifest.
    pub fn pull(
        &self,
        store: &Store,
        src: &Reference,
        progress: &(dyn Fn(&Event) + Sync),
    ) -> Result<PullReport> {
        let started = Instant::now();
        let session = self.session(src, false)?;
        let wanted = match (src.digest(), src.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        let _write = store.write_session()?;
        let mut totals = Totals::default();
        let (bytes, media_type, digest) = session.get_manifest(&wanted, src.digest())?;
        let (manifest, media_type) =
            Manifest::parse(&bytes, Some(&media_type)).map_err(|source| ClientError::Manifest {
                registry: session.host.clone(),
                reference: src.to_string(),
                source,
            })?;
        let root = Descriptor::new(media_type.clone(), digest.clone(), bytes.len() as u64);
        // (manifest descriptor, bytes, parsed) to write once the blobs are in.
        let mut documents = vec![(root.clone(), bytes)];
        let image = match manifest {
            Manifest::Image(m) => m,
            Manifest::Index(index) => {
                let child = pick_platform(&index.manifests).ok_or_else(|| {
                    let host = Platform::host();
                    ClientError::NoPlatform {
                        reference: src.to_string(),
                        platform: format!("{}/{}", host.os, host.architecture),
                    }
                })?;
                let (cbytes, cmt, _) =
                    session.get_manifest(&child.digest.to_string(), Some(&child.digest))?;
                let (parsed, cmt) = Manifest::parse(&cbytes, Some(&cmt)).map_err(|source| {
                    ClientError::Manifest {
                        registry: session.host.clone(),
                        reference: child.digest.to_string(),
                        source,
                    }
                })?;
                let Manifest::Image(m) = parsed else {
                    return Err(ClientError::Manifest {
                        registry: session.host.clone(),
                        reference: child.digest.to_string(),
                        source: ManifestError::NotAManifest(cmt),
                    });
                };
                let cdesc = Descriptor::new(cmt, child.digest.clone(), cbytes.len() as u64);
                documents.push((cdesc, cbytes));
                m
            }
        };
        let mut wanted_blobs = Vec::new();
        for d in std::iter::once(&image.config).chain(&image.layers) {
            if !d.urls.is_empty()
                || wanted_blobs
                    .iter()
                    .any(|w: &Descriptor| w.digest == d.digest)
            {
                continue; // foreign layers are fetched from their URLs by runtimes
            }
            if store.blobs().size(&d.digest)? == Some(d.size) {
                totals.skipped += 1;
                progress(&Event::BlobSkipped {
                    digest: d.digest.clone(),
                    size: d.size,
                });
            } else {
                wanted_blobs.push(d.clone());
            }
        }
        let copied = Mutex::new((0usize, 0u64, 0u64));
        let s = &session;
        parallel(self.options.parallel, wanted_blobs, |desc| {
            let resumed = s.pull_blob(store, &desc, progress)?;
            let mut c = copied.lock().unwrap_or_else(|e| e.into_inner());
            c.0 += 1;
            c.1 += desc.size;
            c.2 += resumed;
            progress(&Event::BlobCopied {
                digest: desc.digest.clone(),
                size: desc.size,
            });
            Ok(())
        })?;
        let (n, b, resumed) = copied.into_inner().unwrap_or_else(|e| e.into_inner());
        totals.copied += n;
        totals.bytes_copied += b;
        // Children first, so nothing ever points at a missing manifest.
        for (desc, bytes) in documents.iter().rev() {
            let mut w = store.blobs().writer_with(desc.digest.algorithm())?;
            io::Write::write_all(&mut w, bytes).map_err(|e| io_error(store, e))?;
            w.commit(Some(&desc.digest))?;
            progress(&Event::Manifest {
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
            });
        }
        let names: Vec<Reference> = match src.tag() {
            Some(_) => vec![src.without_digest()],
            None => Vec::new(),
        };
        let record = store.add_image(&root, &names)?;
        Ok(PullReport {
            record,
            blobs_copied: totals.copied,
            blobs_skipped: totals.skipped,
            bytes_copied: totals.bytes_copied,
            bytes_resumed: resumed,
            duration: started.elapsed(),
        })
    }
}

fn io_error(store: &Store, source: io::Error) -> BlobError {
    BlobError::Io {
        path: store.blobs().tmp_dir().to_owned(),
        source,
    }
}

#[derive(Default)]
struct Totals {
    copied: usize,
    skipped: usize,
    bytes_copied: u64,
    bytes_skipped: u64,
}

/// Walk `desc` depth-first: manifests children-first into `manifests`, every other
/// blob into `blobs`, each once. Index children absent from the store are skipped.
fn collect(
    store: &Store,
    desc: &Descriptor,
    manifests: &mut Vec<Descriptor>,
    blobs: &mut Vec<Descriptor>,
    seen: &mut BTreeSet<Digest>,
) -> Result<()> {
    if !seen.insert(desc.digest.clone()) {
        return Ok(());
    }
    match store.manifest(desc)? {
        Manifest::Image(m) => {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if !d.urls.is_empty() && !store.blobs().contains(&d.digest) {
                    continue; // a foreign layer: not ours to push
                }
                if seen.insert(d.digest.clone()) {
                    blobs.push(d.clone());
                }
            }
        }
        Manifest::Index(i) => {
            for child in &i.manifests {
                if mt::is_manifest(&child.media_type) && store.blobs().contains(&child.digest) {
                    collect(store, child, manifests, blobs, seen)?;
                }
            }
        }
    }
    manifests.push(desc.clone());
    Ok(())
}

/// The index entry for this host: same OS and architecture, and the same variant
/// when both name one.
fn pick_platform(entries: &[Descriptor]) -> Option<&Descriptor> {
    let host = Platform::host();
    entries.iter().find(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == host.os
                && p.architecture == host.architecture
                && match (&p.variant, &host.variant) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        })
    })
}

/// Run `f` on every item with up to `n` threads; the first error stops the rest
/// from starting new items and is returned.
fn parallel<T: Send>(n: usize, items: Vec<T>, f: impl Fn(T) -> Result<()> + Sync) -> Result<()> {
    let queue = Mutex::new(VecDeque::from(items));
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<ClientError>> = Mutex::new(None);
    let workers = n
        .max(1)
        .min(queue.lock().map(|q| q.len()).unwrap_or(1))
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let item = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(item) = item else { return };
                if let Err(e) = f(item) {
                    failed.store(true, Ordering::SeqCst);
                    let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.is_none() {
                        *slot = Some(e);
                    }
                    return;
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether `host` (with an optional port) is a loopback address or `localhost`.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends one request given the current `Authorization` value.
type MakeRequest<'a> = dyn Fn(Option<&str>) -> Result<Response<Body>, ureq::Error> + 'a;

/// One registry and repository, with the authorization it has earned so far.
struct Session<'a> {
    client: &'a Client,
    /// `http(s)://host`.
    base: String,
    host: String,
    repo: String,
    scope: String,
    credentials: Option<Credentials>,
    /// The `Authorization` header value in use.
    auth: Mutex<Option<String>>,
}

/// The registry's error body: `{"errors":[{"code":..,"message":..}]}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl Session<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repo)
    }

    fn agent(&self) -> &ureq::Agent {
        &self.client.agent
    }

    fn current_auth(&self) -> Option<String> {
        self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Send a request made by `make` (given the current `Authorization` value);
    /// on a 401, answer the challenge and send it once more.
    fn send(
        &self,
        method: &'static str,
        url: &str,
        what: &'static str,
        reference: &str,
        make: &MakeRequest<'_>,
    ) -> Result<Response<Body>> {
        let http = |source| ClientError::Http {
            method,
            url: url.to_owned(),
            error: Box::new(source),
        };
        let before = self.current_auth();
        let resp = make(before.as_deref()).map_err(http)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        let unauthorized = |resp: Response<Body>, hint: String| {
            let (code, _) = error_code(resp);
            ClientError::Unauthorized {
                registry: self.host.clone(),
                what,
                reference: reference.to_owned(),
                code,
                hint,
            }
        };
        let no_creds = || {
            format!(
                "no credentials for {} (hoist reads {}; log in with docker login or add an \"auths\" entry)",
                self.host,
                self.client
                    .options
                    .docker_config
                    .as_ref()
                    .map(|d| d.join("config.json").display().to_string())
                    .unwrap_or_else(|| "no Docker config".to_owned())
            )
        };
        let Some(challenge) = challenge else {
            return Err(unauthorized(
                resp,
                "no WWW-Authenticate challenge".to_owned(),
            ));
        };
        let header = match challenge.scheme.as_str() {
            "basic" => match &self.credentials {
                Some(c) => c.basic_header(),
                None => return Err(unauthorized(resp, no_creds())),
            },
            "bearer" => {
                drop(resp);
                format!("Bearer {}", self.token(&challenge)?)
            }
            other => {
                return Err(unauthorized(
                    resp,
                    format!("unsupported authentication scheme {other:?}"),
                ))
            }
        };
        if before.as_deref() == Some(header.as_str()) {
            // The same authorization was just refused.
            let hint = if self.credentials.is_some() {
                "the credentials were refused".to_owned()
            } else {
                no_creds()
            };
            let resp = make(Some(&header)).map_err(http)?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            return Err(unauthorized(resp, hint));
        }
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(header.clone());
        let resp = make(Some(&header)).map_err(http)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let hint = if self.credentials.is_some() {
                "the credentials were refused".to_owned()
            } else {
                no_creds()
            };
            return Err(unauthorized(resp, hint));
        }
        Ok(resp)
    }

    /// Docker's token flow: GET the realm with service and scope.
    fn token(&self, challenge: &auth::Challenge) -> Result<String> {
        let realm = challenge.params.get("realm").cloned().unwrap_or_default();
        if realm.is_empty() {
            return Err(ClientError::Token {
                realm,
                message: "the Bearer challenge has no realm".to_owned(),
            });
        }
        let mut req = self.agent().get(&realm);
        if let Some(service) = challenge.params.get("service") {
            req = req.query("service", service);
        }
        req = req.query("scope", &self.scope);
        if let Some(scope) = challenge.params.get("scope") {
            if scope != &self.scope {
                req = req.query("scope", scope);
            }
        }
        if let Some(c) = &self.credentials {
            req = req.header("Authorization", c.basic_header());
        }
        let err = |message: String| ClientError::Token {
            realm: realm.clone(),
            message,
        };
        let mut resp = req.call().map_err(|e| err(e.to_string()))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized {
                registry: self.host.clone(),
                what: "getting a token for",
                reference: self.scope.clone(),
                code: None,
                hint: "the token server refused the credentials".to_owned(),
            });
        }
        if !resp.status().is_success() {
            let (code, message) = error_code(resp);
            return Err(err(format!(
                "{}{}",
                code.unwrap_or_else(|| "error".to_owned()),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            )));
        }
        let raw = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| err(format!("reading the token response: {e}")))?;
        let body: TokenResponse = serde_json::from_slice(&raw)
            .map_err(|e| err(format!("unreadable token response: {e}")))?;
        body.token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err("the response has no token".to_owned()))
    }

    fn refused(&self, what: &'static str, reference: &str, resp: Response<Body>) -> ClientError {
        let status = resp.status().as_u16();
        let (code, message) = error_code(resp);
        ClientError::Registry {
            registry: self.host.clone(),
            what,
            reference: reference.to_owned(),
            status,
            code,
            message,
        }
    }

    fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let url = self.url(&format!("manifests/{tag}"));
        let resp = self.send("PUT", &url, "pushing manifest", tag, &|auth| {
            let mut r = self.agent().put(&url).header("Content-Type", media_type);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(&bytes[..])
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.refused("pushing manifest", tag, resp));
        }
        if let Some(got) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if got != digest.to_string() {
                return Err(ClientError::Mismatch {
                    registry: self.host.clone(),
                    what: format!("digest of pushed manifest {tag}"),
                    expected: digest.to_string(),
                    actual: got.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// GET a manifest; returns its bytes, media type and digest (checked against
    /// `expected`).
    fn get_manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let url = self.url(&format!("manifests/{reference}"));
        let shown =
            format!("{}/{}:{reference}", self.host, self.repo).replace(":sha256:", "@sha256:");
        let mut resp = self.send("GET", &url, "pulling manifest", &shown, &|auth| {
            let mut r = self.agent().get(&url).header("Accept", ACCEPT);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        if resp.status().as_u16() != 200 {
            return Err(self.refused("pulling manifest", &shown, resp));
        }
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .unwrap_or_default();
        let header_digest: Option<Digest> = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_DOCUMENT_SIZE)
            .read_to_vec()
            .map_err(|e| ClientError::Http {
                method: "GET",
                url: url.clone(),
                error: Box::new(e),
            })?;
        let digest = match expected.or(header_digest.as_ref()) {
            Some(d) => d.clone(),
            None => Digest::sha256_of(&bytes),
        };
        let actual = Digest::of(digest.algorithm(), &bytes);
        if actual != digest {
            return Err(ClientError::Mismatch {
                registry: self.host.clone(),
                what: format!("manifest {shown}"),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        // Media types like "application/json" or "text/plain" say nothing.
        let media_type = if mt::is_manifest(&media_type) {
            media_type
        } else {
            String::new()
        };
        Ok((bytes, media_type, digest))
    }
}

/// A Location header made absolute against `base` (`scheme://host`).
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

/// The first error code and message of a registry error body.
fn error_code(mut resp: Response<Body>) -> (Option<String>, String) {
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) if !b.errors.is_empty() => {
            let e = &b.errors[0];
            (
                Some(e.code.clone()).filter(|c| !c.is_empty()),
                e.message.clone(),
            )
        }
        _ => (None, text.trim().chars().take(200).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognized() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.3.2.1:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "example.com:5000",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn locations_are_made_absolute() {
        assert_eq!(
            absolute("http://h:5000", "/v2/x/blobs/uploads/u?_state=s"),
            "http://h:5000/v2/x/blobs/uploads/u?_state=s"
        );
        assert_eq!(absolute("http://h:5000", "https://s3/x"), "https://s3/x");
    }

    /// A one-thread fake registry: the manifest answers 401 with a Bearer challenge
    /// unless the request carries the token the fake token server hands out.
    fn fake_bearer_registry() -> (u16, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                let mut authz = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line
                        .strip_prefix("authorization: ")
                        .or(line.strip_prefix("Authorization: "))
                    {
                        authz = v.trim().to_owned();
                    }
                }
                let target = request.split(' ').nth(1).unwrap_or("").to_owned();
                tx.send(format!("{target} [{authz}]")).unwrap();
                let (status, extra, body) = if target.starts_with("/token?") {
                    ("200 OK", String::new(), r#"{"token":"T0KEN"}"#.to_owned())
                } else if authz == "Bearer T0KEN" {
                    (
                        "404 Not Found",
                        String::new(),
                        r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                            .to_owned(),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:team/app:pull\"\r\n"),
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_owned(),
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (port, rx)
    }

    #[test]
    fn bearer_challenges_are_answered_with_a_token_for_the_repository_scope() {
        let (port, seen) = fake_bearer_registry();
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(home.path()).unwrap();
        let client = Client::new(ClientOptions {
            docker_config: None,
            credentials: Some(Credentials {
                username: "alice".to_owned(),
                password: "pw".to_owned(),
            }),
            ..ClientOptions::default()
        });
        let src: Reference = format!("127.0.0.1:{port}/team/app:v1").parse().unwrap();
        let err = client.pull(&store, &src, &|_| {}).unwrap_err();
        // The token got us past the 401 to the registry's real answer.
        match &err {
            ClientError::Registry { status, code, .. } => {
                assert_eq!(*status, 404);
                assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
            }
            other => panic!("unexpected error: {other}"),
        }
        let requests: Vec<String> = seen.try_iter().collect();
        assert_eq!(requests.len(), 3, "{requests:?}");
        assert_eq!(requests[0], "/v2/team/app/manifests/v1 []");
        assert!(
            requests[1].starts_with("/token?service=fake&scope=repository%3Ateam%2Fapp%3Apull ["),
            "{requests:?}"
        );
        assert!(
            requests[1].ends_with(&format!(
                "[{}]",
                Credentials {
                    username: "alice".to_owned(),
                    password: "pw".to_owned(),
                }
                .basic_header()
            )),
            "{requests:?}"
        );
        assert_eq!(requests[2], "/v2/team/app/manifests/v1 [Bearer T0KEN]");
        assert!(store.list().unwrap().is_empty());
    }
}
