//! Descriptors, image manifests and image indexes (OCI image-spec 1.1), with Docker
//! v2 schema 2 manifests and manifest lists accepted on input.
//!
//! The types serialize with sorted maps so that a manifest hoist writes is byte-for-byte
//! reproducible. Manifests read from elsewhere are never re-serialized: the store
//! keeps their original bytes, since their digest is the digest of those bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::media_type::{self as mt};
use crate::Digest;

/// Points at content by media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// The digest of the referenced content.
    pub digest: Digest,
    /// The size in bytes of the referenced content.
    pub size: u64,
    /// Alternative download locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of the referenced manifest (in indexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the referenced manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Embedded content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// A descriptor with only the required fields.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
            data: None,
        }
    }
}

/// The platform an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture, as in Go's GOARCH (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system, as in Go's GOOS (`linux`).
    pub os: String,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features (Windows).
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant (`v8` for arm64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform hoist itself runs on, in Go's naming.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: "linux".to_owned(),
            os_version: None,
            os_features: Vec::new(),
            variant: (architecture == "arm64").then(|| "v8".to_owned()),
        }
    }
}

/// An image manifest: one config and its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (referrers API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// An OCI image manifest over `config` and `layers`.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(mt::OCI_MANIFEST.to_owned()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// An image index (or Docker manifest list): manifests per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (referrers API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// An empty OCI index.
    pub fn new() -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(mt::OCI_INDEX.to_owned()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

impl Default for ImageIndex {
    fn default() -> Self {
        ImageIndex::new()
    }
}

/// Why bytes are not a manifest hoist can use.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("invalid {kind}: {source}")]
    Json {
        /// What was being parsed.
        kind: &'static str,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },
    /// Docker schema 1, which hoist does not accept.
    #[error("Docker schema 1 manifests are not supported (deprecated since 2017); re-push the image with a current client")]
    Schema1,
    /// A media type that is not a manifest.
    #[error("media type {0:?} is not an image manifest or index")]
    NotAManifest(String),
    /// The media type field and the declared type disagree.
    #[error("manifest declares media type {inside:?} but was given as {outside:?}")]
    MediaTypeMismatch {
        /// The `mediaType` field in the document.
        inside: String,
        /// The media type it came with.
        outside: String,
    },
    /// schemaVersion other than 2.
    #[error("unsupported schemaVersion {0} (expected 2)")]
    SchemaVersion(u64),
}

/// A parsed manifest of either kind.
// Short-lived and never stored in bulk: boxing would only add noise at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// A single-image manifest.
    Image(ImageManifest),
    /// An index or manifest list.
    Index(ImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u64>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

impl Manifest {
    /// Parse manifest bytes. `declared` is the media type it came with (a descriptor or a
    /// Content-Type header), if any. Returns the manifest and its effective media type.
    pub fn parse(
        bytes: &[u8],
        declared: Option<&str>,
    ) -> Result<(Manifest, String), ManifestError> {
        let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
            kind: "manifest",
            source,
        })?;
        if let (Some(inside), Some(outside)) = (&probe.media_type, declared) {
            if inside != outside && !(outside.is_empty()) {
                return Err(ManifestError::MediaTypeMismatch {
                    inside: inside.clone(),
                    outside: outside.to_owned(),
                });
            }
        }
        let media_type = match probe.media_type.as_deref().or(declared) {
            Some(m) if !m.is_empty() => m.to_owned(),
            // No media type anywhere: OCI allows it; decide by shape.
            _ if probe.manifests.is_some() => mt::OCI_INDEX.to_owned(),
            _ if probe.config.is_some() => mt::OCI_MANIFEST.to_owned(),
            _ => return Err(ManifestError::NotAManifest(String::new())),
        };
        if media_type == mt::DOCKER_SCHEMA1 || media_type == mt::DOCKER_SCHEMA1_SIGNED {
            return Err(ManifestError::Schema1);
        }
        match probe.schema_version {
            Some(2) => {}
            Some(1) => return Err(ManifestError::Schema1),
            Some(v) => return Err(ManifestError::SchemaVersion(v)),
            None => return Err(ManifestError::SchemaVersion(0)),
        }
        if mt::is_index(&media_type) {
            let index = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                kind: "image index",
                source,
            })?;
            Ok((Manifest::Index(index), media_type))
        } else if mt::is_image_manifest(&media_type) {
            let m = serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                kind: "image manifest",
                source,
            })?;
            Ok((Manifest::Image(m), media_type))
        } else {
            Err(ManifestError::NotAManifest(media_type))
        }
    }

    /// Every descriptor this manifest references directly (config and layers, or the
    /// child manifests), plus its subject.
    pub fn references(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Image(m) => std::iter::once(&m.config)
                .chain(m.layers.iter())
                .chain(m.subject.iter())
                .collect(),
            Manifest::Index(i) => i.manifests.iter().chain(i.subject.iter()).collect(),
        }
    }
}

/// Serialize a value the way hoist writes every JSON document it hashes: compact,
/// fields in declaration order, maps sorted.
pub fn to_canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain data types cannot fail: no maps with non-string keys.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_V2: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1457,
      "digest": "sha256:9211bbaa0dbd68fed073065eb9f0a6ed00e6b7f7dc2e6f4b1e7bbd8e6f2f4c1b"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 2152262,
         "digest": "sha256:205dae5015e78dd8c4d302e3db4eb31576fac715b46d099fe09680ba28093a7a"
      }
   ]
}"#;

    #[test]
    fn accepts_docker_schema2() {
        let (m, media) = Manifest::parse(DOCKER_V2.as_bytes(), None).unwrap();
        assert_eq!(media, mt::DOCKER_MANIFEST);
        let Manifest::Image(m) = m else {
            panic!("not an image")
        };
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.config.size, 1457);
    }

    #[test]
    fn shape_decides_without_media_type() {
        let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
        let (m, media) = Manifest::parse(idx.as_bytes(), None).unwrap();
        assert!(matches!(m, Manifest::Index(_)));
        assert_eq!(media, mt::OCI_INDEX);
    }

    #[test]
    fn refuses_schema1_and_mismatch() {
        let s1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(Manifest::parse(s1.as_bytes(), Some(mt::DOCKER_SCHEMA1_SIGNED)).is_err());
        assert!(matches!(
            Manifest::parse(DOCKER_V2.as_bytes(), Some(mt::OCI_MANIFEST)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(Manifest::parse(b"{not json", None).is_err());
    }

    #[test]
    fn canonical_json_sorts_annotations() {
        let mut d = Descriptor::new(mt::OCI_LAYER, Digest::sha256_of(b""), 0);
        d.annotations.insert("z".into(), "1".into());
        d.annotations.insert("a".into(), "2".into());
        let s = String::from_utf8(to_canonical_json(&d)).unwrap();
        assert!(s.find("\"a\"").unwrap() < s.find("\"z\"").unwrap());
    }
}
