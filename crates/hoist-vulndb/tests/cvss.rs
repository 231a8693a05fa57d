//! CVSS scoring against the specifications' published scores.

#![allow(clippy::unwrap_used)]

use hoist_vulndb::cvss::{score, Severity};

#[test]
fn cvss_v3_known_vectors() {
    let cases = [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:N/A:N", 7.7),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        // Temporal metrics are ignored: the base score stays.
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C",
            9.8,
        ),
    ];
    for (v, want) in cases {
        assert_eq!(score(v).unwrap(), want, "{v}");
    }
}

#[test]
fn cvss_v31_rounds_up_to_one_decimal() {
    // 4.17 and 3.03 before Roundup: up, never to nearest.
    assert_eq!(
        score("CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L").unwrap(),
        4.2
    );
    assert_eq!(
        score("CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:L/A:N").unwrap(),
        3.1
    );
}

#[test]
fn cvss_v4_known_vectors() {
    let cases = [
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            9.3,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
            10.0,
        ),
        (
            "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            8.5,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N",
            5.1,
        ),
        (
            "CVSS:4.0/AV:N/AC:H/AT:P/PR:L/UI:P/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
            2.1,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
            0.0,
        ),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U",
            8.1,
        ),
    ];
    for (v, want) in cases {
        assert_eq!(score(v).unwrap(), want, "{v}");
    }
}

/// 3,009 vectors (random base metrics, some with threat and environmental
/// metrics) and the scores FIRST's reference calculator
/// (github.com/FIRSTdotorg/cvss-v4-calculator, `cvss_score.js`) gives them.
#[test]
fn cvss_v4_agrees_with_reference_calculator() {
    let text = include_str!("fixtures/cvss4_reference.txt");
    let mut n = 0;
    for line in text.lines() {
        let (vector, want) = line.rsplit_once(' ').unwrap();
        let want: f64 = want.parse().unwrap();
        assert_eq!(score(vector).unwrap(), want, "{vector}");
        n += 1;
    }
    assert!(n > 3000);
}

#[test]
fn cvss_rejects_malformed_vectors() {
    assert!(score("AV:N/AC:L").is_err());
    assert!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H").is_err());
    assert!(score("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").is_err());
    assert!(score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N").is_err());
    assert!(score("CVSS:2.0/AV:N").is_err());
}

#[test]
fn severity_ranges_and_words() {
    assert_eq!(Severity::from_score(9.8), Severity::Critical);
    assert_eq!(Severity::from_score(9.0), Severity::Critical);
    assert_eq!(Severity::from_score(8.9), Severity::High);
    assert_eq!(Severity::from_score(7.0), Severity::High);
    assert_eq!(Severity::from_score(6.9), Severity::Medium);
    assert_eq!(Severity::from_score(4.0), Severity::Medium);
    assert_eq!(Severity::from_score(3.9), Severity::Low);
    assert_eq!(Severity::from_score(0.1), Severity::Low);
    assert_eq!(Severity::from_score(0.0), Severity::None);
    assert_eq!(Severity::from_word("MODERATE"), Some(Severity::Medium));
    assert_eq!(Severity::from_word("high"), Some(Severity::High));
    assert_eq!(Severity::from_word("whatever"), None);
    assert!(Severity::Critical > Severity::High && Severity::None > Severity::Unknown);
}
