//! Artifacts the registry's own hooks attach to a stored image (scan reports,
//! SBOMs): an OCI image manifest with an `artifactType`, the empty config, one layer
//! per file and a `subject`, stored exactly as a client's push of it would be (same
//! checks, same GC lock, same referrer record), so the referrers API lists it and
//! garbage collection keeps it while its subject lives.

use std::collections::BTreeMap;

use hoist_oci::media_type as mt;
use hoist_oci::{Descriptor, Digest, ImageManifest};

use crate::storage::{ManifestPush, PushOutcome, Registry, RegistryError};

/// One artifact to attach.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The manifest's `artifactType`, e.g. `application/vnd.cyclonedx+json`.
    pub artifact_type: &'a str,
    /// The files: (media type, bytes), each stored as a layer.
    pub files: Vec<(&'a str, &'a [u8])>,
    /// The manifest's annotations (also copied into its referrer descriptor).
    pub annotations: BTreeMap<String, String>,
}

/// Why an attachment could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The subject is not a manifest of the repository (deleted meanwhile).
    #[error("{name}@{subject}: no such manifest to attach to")]
    NoSubject {
        /// The repository.
        name: String,
        /// The manifest that was to be referred to.
        subject: Digest,
    },
    /// A blob just stored vanished before the manifest was (a garbage collection
    /// with no grace period ran in between).
    #[error("{name}: blob {digest} vanished before the artifact manifest was stored")]
    Vanished {
        /// The repository.
        name: String,
        /// The blob.
        digest: Digest,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] RegistryError),
}

/// The referrer descriptor (JSON) of manifest `doc` (`bytes` long, `digest`): its
/// media type, digest and size, its `artifactType` (else its config's media type)
/// and its annotations, as the referrers API lists it.
pub(crate) fn referrer_descriptor(
    media_type: &str,
    digest: &Digest,
    size: usize,
    doc: &serde_json::Value,
) -> Vec<u8> {
    let mut desc = serde_json::json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    let artifact_type = doc
        .get("artifactType")
        .and_then(|a| a.as_str())
        .or_else(|| {
            doc.get("config")
                .and_then(|c| c.get("mediaType"))
                .and_then(|m| m.as_str())
        });
    if let Some(a) = artifact_type {
        desc["artifactType"] = a.into();
    }
    if let Some(a) = doc.get("annotations") {
        desc["annotations"] = a.clone();
    }
    desc.to_string().into_bytes()
}

impl Registry {
    /// Store `attachment` in repository `name` as an artifact whose subject is the
    /// manifest `subject`; returns the artifact manifest's digest.
    pub fn attach(
        &self,
        name: &str,
        subject: &Digest,
        attachment: &Attachment<'_>,
    ) -> Result<Digest, AttachError> {
        let no_subject = || AttachError::NoSubject {
            name: name.to_owned(),
            subject: subject.clone(),
        };
        let subject_type = self
            .manifest_media_type(name, subject)?
            .ok_or_else(no_subject)?;
        let subject_size = self
            .blobs()
            .size(subject)
            .map_err(RegistryError::from)?
            .ok_or_else(no_subject)?;
        let put = |media_type: &str, bytes: &[u8]| -> Result<Descriptor, RegistryError> {
            let (digest, size) = self.blobs().put(bytes)?;
            self.link_blob(name, &digest)?;
            Ok(Descriptor::new(media_type, digest, size))
        };
        let config = put(mt::OCI_EMPTY, b"{}")?;
        let layers = attachment
            .files
            .iter()
            .map(|(media_type, bytes)| put(media_type, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let blobs: Vec<Digest> = std::iter::once(&config)
            .chain(&layers)
            .map(|d| d.digest.clone())
            .collect();
        let mut manifest = ImageManifest::new(config, layers);
        manifest.artifact_type = Some(attachment.artifact_type.to_owned());
        manifest.subject = Some(Descriptor::new(subject_type, subject.clone(), subject_size));
        manifest.annotations = attachment.annotations.clone();
        let doc = serde_json::to_value(&manifest).map_err(|e| RegistryError::Io {
            path: self.root().to_owned(),
            source: std::io::Error::other(e),
        })?;
        let bytes = doc.to_string().into_bytes();
        let digest = Digest::sha256_of(&bytes);
        let descriptor = referrer_descriptor(mt::OCI_MANIFEST, &digest, bytes.len(), &doc);
        let outcome = self.push_manifest(&ManifestPush {
            name,
            bytes: &bytes,
            media_type: mt::OCI_MANIFEST,
            digest: &digest,
            tag: None,
            blobs: &blobs,
            children: &[],
            referrer: Some((subject, &descriptor)),
        })?;
        match outcome {
            PushOutcome::Stored => Ok(digest),
            PushOutcome::Missing(d) if &d == subject => Err(no_subject()),
            PushOutcome::Missing(digest) => Err(AttachError::Vanished {
                name: name.to_owned(),
                digest,
            }),
            // No tag is given, so no tag can be immutable.
            PushOutcome::TagImmutable(_) => Err(no_subject()),
        }
    }
}
