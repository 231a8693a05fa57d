//! CodePipeline's image definition files.
#![allow(clippy::unwrap_used)]

use hoist_pipeline_spec::imagedefs::{ImageDefinition, ImageDefinitions, ImageDetail};

#[test]
fn imagedefinitions_round_trip() {
    let text = r#"[{"name":"web","imageUri":"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:abc123"},{"name":"sidecar","imageUri":"envoy:1.30"}]"#;
    let defs = ImageDefinitions::parse("imagedefinitions.json", text).unwrap();
    assert_eq!(
        defs.0[1],
        ImageDefinition {
            name: "sidecar".into(),
            image_uri: "envoy:1.30".into()
        }
    );
    assert_eq!(defs.to_json(), text);
    assert_eq!(ImageDefinitions::parse("x", &defs.to_json()).unwrap(), defs);
    assert_eq!(defs.image_for("sidecar"), Some("envoy:1.30"));
    assert_eq!(defs.image_for("db"), None);
}

#[test]
fn a_single_definition_serves_any_container_name() {
    let defs = ImageDefinitions::parse(
        "imagedefinitions.json",
        "[\n  {\"name\": \"web\", \"imageUri\": \"web:1\"}\n]\n",
    )
    .unwrap();
    assert_eq!(defs.image_for("web"), Some("web:1"));
    assert_eq!(defs.image_for("shop-prod"), Some("web:1"));
}

#[test]
fn image_detail_round_trips_and_ignores_the_ecr_source_extras() {
    let text = r#"{"ImageSizeInBytes":"50801513","ImageDigest":"sha256:0000","Version":"1.0","ImagePushedAt":"Mon Jan 21 20:04:00 UTC 2019","RegistryId":"123456789012","RepositoryName":"web","ImageURI":"123456789012.dkr.ecr.us-west-2.amazonaws.com/web@sha256:0000","ImageTags":["latest"]}"#;
    let d = ImageDetail::parse("imageDetail.json", text).unwrap();
    assert_eq!(
        d.image_uri,
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/web@sha256:0000"
    );
    assert_eq!(
        d.to_json(),
        r#"{"ImageURI":"123456789012.dkr.ecr.us-west-2.amazonaws.com/web@sha256:0000"}"#
    );
    assert_eq!(ImageDetail::parse("x", &d.to_json()).unwrap(), d);
}

#[test]
fn malformed_files_name_the_file_and_the_reason() {
    let err = |text: &str| {
        ImageDefinitions::parse("out/imagedefinitions.json", text)
            .unwrap_err()
            .to_string()
    };
    let e = err("{\"name\": \"web\"}");
    assert!(
        e.starts_with("out/imagedefinitions.json: invalid type: map, expected a sequence"),
        "{e}"
    );
    let e = err("[{\"name\": \"web\", \"imageURI\": \"web:1\"}]");
    assert!(e.contains("unknown field `imageURI`"), "{e}");
    assert_eq!(
        err("[]"),
        "out/imagedefinitions.json: no image definition in the array"
    );
    assert_eq!(
        err(r#"[{"name":"web","imageUri":"a:1"},{"name":"web","imageUri":"b:1"}]"#),
        "out/imagedefinitions.json: [1].name: container \"web\" is listed twice"
    );
    assert_eq!(
        err(r#"[{"name":"web","imageUri":""}]"#),
        "out/imagedefinitions.json: [0].imageUri: \"\" is not an image URI"
    );
    let e = err("[{\"name\": \"web\",");
    assert!(e.contains("line 1"), "{e}");

    let e = ImageDetail::parse("imageDetail.json", "{\"ImageUri\": \"web:1\"}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "imageDetail.json: missing field `ImageURI` at line 1 column 21; expected {\"ImageURI\": \"...\"}"
    );
}
