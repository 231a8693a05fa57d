//! `hoist_oci::Manifest::parse` on arbitrary bytes, without a declared media type
//! and with each known one. Must never panic; a parsed manifest's effective
//! media type is a manifest or index type and agrees with the declared one.
#![no_main]

use hoist_oci::media_type as mt;
use hoist_oci::Manifest;
use libfuzzer_sys::fuzz_target;

const DECLARED: &[&str] = &[
    mt::OCI_MANIFEST,
    mt::OCI_INDEX,
    mt::OCI_CONFIG,
    mt::OCI_LAYER,
    mt::OCI_LAYER_GZIP,
    mt::OCI_LAYER_ZSTD,
    mt::OCI_EMPTY,
    mt::OCI_LAYOUT_HEADER,
    mt::DOCKER_MANIFEST,
    mt::DOCKER_MANIFEST_LIST,
    mt::DOCKER_CONFIG,
    mt::DOCKER_LAYER_GZIP,
    mt::DOCKER_LAYER,
    mt::DOCKER_LAYER_FOREIGN,
    mt::DOCKER_SCHEMA1_SIGNED,
    mt::DOCKER_SCHEMA1,
    "",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let undeclared = Manifest::parse(data, None);
    if let Ok((m, media_type)) = &undeclared {
        assert!(mt::is_manifest(media_type), "effective type {media_type:?}");
        match m {
            Manifest::Image(_) => assert!(mt::is_image_manifest(media_type)),
            Manifest::Index(_) => assert!(mt::is_index(media_type)),
        }
        let _ = m.references();
    }
    for declared in DECLARED {
        let result = Manifest::parse(data, Some(declared));
        if let Ok((m, media_type)) = &result {
            assert!(mt::is_manifest(media_type), "effective type {media_type:?}");
            if !declared.is_empty() {
                assert_eq!(media_type, declared);
            }
            let _ = m.references();
            // The declaration only picks the kind: the same kind parses the same
            // bytes to the same value.
            if let Ok((u, _)) = &undeclared {
                if std::mem::discriminant(u) == std::mem::discriminant(m) {
                    assert_eq!(u, m, "declared {declared:?} changed the parse");
                }
            }
        }
    }
});
