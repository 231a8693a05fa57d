//! `hoist_oci::reference::Reference`: `FromStr` on arbitrary UTF-8. When it
//! parses, `to_string()` and `familiar()` must both parse back to an equal
//! reference, and `parse_normalized` must agree with `FromStr`.
#![no_main]

use hoist_oci::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = input.parse::<Reference>();
    let normalized = Reference::parse_normalized(input);
    assert_eq!(
        parsed.is_ok(),
        normalized.is_ok(),
        "FromStr {parsed:?} vs parse_normalized {normalized:?} for {input:?}"
    );
    let Ok(r) = parsed else {
        return;
    };
    // Accessors must not panic and must be consistent with the full name.
    let _ = (
        r.domain(),
        r.repository(),
        r.tag(),
        r.digest(),
        r.familiar_name(),
    );
    assert_eq!(
        r.name(),
        format!("{}/{}", r.domain(), r.repository()),
        "name vs domain/repository for {input:?}"
    );
    assert!(r.tag().is_some() || r.digest().is_some());

    let full = r.to_string();
    let back: Reference = full
        .parse()
        .unwrap_or_else(|e| panic!("to_string {full:?} of {input:?} does not parse: {e}"));
    assert_eq!(back, r, "to_string round trip of {input:?} via {full:?}");

    let familiar = r.familiar();
    let back: Reference = familiar
        .parse()
        .unwrap_or_else(|e| panic!("familiar {familiar:?} of {input:?} does not parse: {e}"));
    assert_eq!(back, r, "familiar round trip of {input:?} via {familiar:?}");

    // Normalization is idempotent.
    assert_eq!(back.to_string(), full);
    assert_eq!(back.familiar(), familiar);

    let without_tag = r.without_tag();
    let _ = without_tag.to_string();
    if let Some(tag) = r.tag() {
        assert_eq!(r.with_tag(tag).as_ref(), Ok(&r));
    }
});
