//! CVSS base scores: v3.0/v3.1 by the specification's formulas, v4.0 by the
//! specification's macrovector method, and the qualitative rating scale.
//!
//! Only base (and for v4 the threat/environmental metrics the vector states)
//! metrics are scored; v3 temporal and environmental metrics are ignored because
//! OSV records carry base vectors.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The qualitative severity of an advisory.
///
/// Ordered from least to most severe, with `Unknown` below `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// No usable score or rating.
    Unknown,
    /// CVSS 0.0.
    None,
    /// CVSS 0.1-3.9.
    Low,
    /// CVSS 4.0-6.9 (GHSA's "MODERATE").
    Medium,
    /// CVSS 7.0-8.9.
    High,
    /// CVSS 9.0-10.0.
    Critical,
}

impl Severity {
    /// The rating of a CVSS score on the v3/v4 qualitative scale.
    pub fn from_score(score: f64) -> Severity {
        if score <= 0.0 {
            Severity::None
        } else if score < 4.0 {
            Severity::Low
        } else if score < 7.0 {
            Severity::Medium
        } else if score < 9.0 {
            Severity::High
        } else {
            Severity::Critical
        }
    }

    /// Parses a qualitative word as databases write it (`MODERATE` is `MEDIUM`;
    /// Ubuntu's `negligible` is `LOW`). `None` for words it does not know.
    pub fn from_word(word: &str) -> Option<Severity> {
        Some(match word.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Severity::Critical,
            "HIGH" | "IMPORTANT" => Severity::High,
            "MEDIUM" | "MODERATE" => Severity::Medium,
            "LOW" | "NEGLIGIBLE" => Severity::Low,
            "NONE" => Severity::None,
            _ => return None,
        })
    }

    /// The upper-case name (`CRITICAL`...`UNKNOWN`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::None => "NONE",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a CVSS vector could not be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CVSS vector {vector:?}: {reason}")]
pub struct CvssError {
    /// The vector as given.
    pub vector: String,
    /// What was wrong with it.
    pub reason: String,
}

fn err(vector: &str, reason: impl Into<String>) -> CvssError {
    CvssError {
        vector: vector.to_string(),
        reason: reason.into(),
    }
}

/// Splits `CVSS:x.y/K:V/...` into its version and metrics; duplicate metrics are errors.
fn parse_vector(vector: &str) -> Result<(&str, HashMap<&str, &str>), CvssError> {
    let mut parts = vector.trim().split('/');
    let head = parts.next().unwrap_or_default();
    let version = head
        .strip_prefix("CVSS:")
        .ok_or_else(|| err(vector, "does not start with CVSS:<version>"))?;
    let mut metrics = HashMap::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once(':')
            .ok_or_else(|| err(vector, format!("metric {part:?} has no value")))?;
        if metrics.insert(k, v).is_some() {
            return Err(err(vector, format!("metric {k} given twice")));
        }
    }
    Ok((version, metrics))
}

/// Scores a CVSS vector of version 3.0, 3.1 or 4.0 (its base score, or for
/// v4 the score of the metrics it states).
pub fn score(vector: &str) -> Result<f64, CvssError> {
    let (version, metrics) = parse_vector(vector)?;
    match version {
        "3.0" | "3.1" => score_v3(vector, version == "3.1", &metrics),
        "4.0" => score_v4(vector, &metrics),
        v => Err(err(vector, format!("unsupported CVSS version {v}"))),
    }
}

fn metric<'a>(
    vector: &str,
    metrics: &HashMap<&str, &'a str>,
    name: &str,
) -> Result<&'a str, CvssError> {
    metrics
        .get(name)
        .copied()
        .ok_or_else(|| err(vector, format!("base metric {name} missing")))
}

fn bad(vector: &str, name: &str, value: &str) -> CvssError {
    err(vector, format!("metric {name} has unknown value {value:?}"))
}

/// CVSS v3.1 Roundup (specification appendix A): the smallest number with one
/// decimal place that is >= the input, computed on integers to avoid
/// floating-point artefacts. v3.0 used a plain ceiling.
fn roundup(x: f64, v31: bool) -> f64 {
    if !v31 {
        return (x * 10.0).ceil() / 10.0;
    }
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) as f64 + 1.0) / 10.0
    }
}

fn score_v3(vector: &str, v31: bool, metrics: &HashMap<&str, &str>) -> Result<f64, CvssError> {
    let get = |name: &str| metric(vector, metrics, name);
    let scope_changed = match get("S")? {
        "U" => false,
        "C" => true,
        v => return Err(bad(vector, "S", v)),
    };
    let av = match get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        v => return Err(bad(vector, "AV", v)),
    };
    let ac = match get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        v => return Err(bad(vector, "AC", v)),
    };
    let pr = match (get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        (v, _) => return Err(bad(vector, "PR", v)),
    };
    let ui = match get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        v => return Err(bad(vector, "UI", v)),
    };
    let cia = |name: &str| -> Result<f64, CvssError> {
        match get(name)? {
            "H" => Ok(0.56),
            "L" => Ok(0.22),
            "N" => Ok(0.0),
            v => Err(bad(vector, name, v)),
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - ((1.0 - c) * (1.0 - i) * (1.0 - a));
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Ok(0.0);
    }
    Ok(if scope_changed {
        roundup((1.08 * (impact + exploitability)).min(10.0), v31)
    } else {
        roundup((impact + exploitability).min(10.0), v31)
    })
}

// ---------------------------------------------------------------------------
// CVSS v4.0
//
// The method and the data below restate the FIRST reference calculator
// (github.com/FIRSTdotorg/cvss-v4-calculator, BSD-2-Clause: cvss_score.js,
// cvss_lookup.js, max_composed.js, max_severity.js). The arithmetic follows the
// reference step by step, in f64, so that scores agree to the last decimal.

/// Allowed values of each v4 metric; the first group is required.
const V4_BASE: &[(&str, &[&str])] = &[
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("AT", &["N", "P"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "P", "A"]),
    ("VC", &["H", "L", "N"]),
    ("VI", &["H", "L", "N"]),
    ("VA", &["H", "L", "N"]),
    ("SC", &["H", "L", "N"]),
    ("SI", &["H", "L", "N"]),
    ("SA", &["H", "L", "N"]),
];

const V4_OPTIONAL: &[(&str, &[&str])] = &[
    ("E", &["X", "A", "P", "U"]),
    ("CR", &["X", "H", "M", "L"]),
    ("IR", &["X", "H", "M", "L"]),
    ("AR", &["X", "H", "M", "L"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MAT", &["X", "N", "P"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "P", "A"]),
    ("MVC", &["X", "H", "L", "N"]),
    ("MVI", &["X", "H", "L", "N"]),
    ("MVA", &["X", "H", "L", "N"]),
    ("MSC", &["X", "H", "L", "N"]),
    ("MSI", &["X", "S", "H", "L", "N"]),
    ("MSA", &["X", "S", "H", "L", "N"]),
    ("S", &["X", "N", "P"]),
    ("AU", &["X", "N", "Y"]),
    ("R", &["X", "A", "U", "I"]),
    ("V", &["X", "D", "C"]),
    ("RE", &["X", "L", "M", "H"]),
    ("U", &["X", "Clear", "Green", "Amber", "Red"]),
];

/// The effective value of a metric (the reference's `m()`): E, CR, IR, AR
/// default to their worst case, and a modified metric overrides its base one.
fn m4<'a>(sel: &HashMap<&str, &'a str>, metric: &str) -> &'a str {
    let selected = sel.get(metric).copied().unwrap_or("X");
    match (metric, selected) {
        ("E", "X") => return "A",
        ("CR" | "IR" | "AR", "X") => return "H",
        _ => {}
    }
    if let Some(modified) = sel.get(format!("M{metric}").as_str()) {
        if *modified != "X" {
            return modified;
        }
    }
    selected
}

fn macro_vector(sel: &HashMap<&str, &str>) -> [u8; 6] {
    let m = |k| m4(sel, k);
    let (av, pr, ui) = (m("AV"), m("PR"), m("UI"));
    let eq1 = if av == "N" && pr == "N" && ui == "N" {
        0
    } else if (av == "N" || pr == "N" || ui == "N") && av != "P" {
        1
    } else {
        2
    };
    let eq2 = if m("AC") == "L" && m("AT") == "N" {
        0
    } else {
        1
    };
    let (vc, vi, va) = (m("VC"), m("VI"), m("VA"));
    let eq3 = if vc == "H" && vi == "H" {
        0
    } else if vc == "H" || vi == "H" || va == "H" {
        1
    } else {
        2
    };
    let eq4 = if m("MSI") == "S" || m("MSA") == "S" {
        0
    } else if m("SC") == "H" || m("SI") == "H" || m("SA") == "H" {
        1
    } else {
        2
    };
    let eq5 = match m("E") {
        "A" => 0,
        "P" => 1,
        _ => 2,
    };
    let eq6 = if (m("CR") == "H" && vc == "H")
        || (m("IR") == "H" && vi == "H")
        || (m("AR") == "H" && va == "H")
    {
        0
    } else {
        1
    };
    [eq1, eq2, eq3, eq4, eq5, eq6]
}

fn lookup(mv: [u8; 6]) -> Option<f64> {
    let key: String = mv.iter().map(|d| char::from(b'0' + d)).collect();
    CVSS4_LOOKUP
        .binary_search_by(|(k, _)| (*k).cmp(key.as_str()))
        .ok()
        .map(|i| CVSS4_LOOKUP[i].1)
}

/// The reference's severity level of a metric value (its `*_levels` tables).
fn level(metric: &str, value: &str) -> f64 {
    match (metric, value) {
        ("AV", "N") => 0.0,
        ("AV", "A") => 0.1,
        ("AV", "L") => 0.2,
        ("AV", "P") => 0.3,
        ("PR", "N") => 0.0,
        ("PR", "L") => 0.1,
        ("PR", "H") => 0.2,
        ("UI", "N") => 0.0,
        ("UI", "P") => 0.1,
        ("UI", "A") => 0.2,
        ("AC", "L") => 0.0,
        ("AC", "H") => 0.1,
        ("AT", "N") => 0.0,
        ("AT", "P") => 0.1,
        ("VC" | "VI" | "VA", "H") => 0.0,
        ("VC" | "VI" | "VA", "L") => 0.1,
        ("VC" | "VI" | "VA", "N") => 0.2,
        ("SC", "H") => 0.1,
        ("SC", "L") => 0.2,
        ("SC", "N") => 0.3,
        ("SI" | "SA", "S") => 0.0,
        ("SI" | "SA", "H") => 0.1,
        ("SI" | "SA", "L") => 0.2,
        ("SI" | "SA", "N") => 0.3,
        ("CR" | "IR" | "AR", "H") => 0.0,
        ("CR" | "IR" | "AR", "M") => 0.1,
        ("CR" | "IR" | "AR", "L") => 0.2,
        _ => f64::NAN,
    }
}

/// Highest-severity vectors of each equivalence class (`max_composed.js`).
fn eq_maxes(eq: usize, level: u8, eq6: u8) -> &'static [&'static str] {
    match (eq, level, eq6) {
        (1, 0, _) => &["AV:N/PR:N/UI:N"],
        (1, 1, _) => &["AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"],
        (1, 2, _) => &["AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"],
        (2, 0, _) => &["AC:L/AT:N"],
        (2, 1, _) => &["AC:H/AT:N", "AC:L/AT:P"],
        (3, 0, 0) => &["VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"],
        (3, 0, 1) => &[
            "VC:H/VI:H/VA:L/CR:M/IR:M/AR:H",
            "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M",
        ],
        (3, 1, 0) => &[
            "VC:L/VI:H/VA:H/CR:H/IR:H/AR:H",
            "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H",
        ],
        (3, 1, 1) => &[
            "VC:L/VI:H/VA:L/CR:H/IR:M/AR:H",
            "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M",
            "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
            "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H",
            "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M",
        ],
        (3, 2, 1) => &["VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"],
        (4, 0, _) => &["SC:H/SI:S/SA:S"],
        (4, 1, _) => &["SC:H/SI:H/SA:H"],
        (4, 2, _) => &["SC:L/SI:L/SA:L"],
        (5, 0, _) => &["E:A"],
        (5, 1, _) => &["E:P"],
        (5, 2, _) => &["E:U"],
        _ => &[],
    }
}

/// Maximal severity depth of each equivalence class (`max_severity.js`).
fn max_severity(eq: usize, level: u8, eq6: u8) -> f64 {
    match (eq, level, eq6) {
        (1, 0, _) => 1.0,
        (1, 1, _) => 4.0,
        (1, 2, _) => 5.0,
        (2, 0, _) => 1.0,
        (2, 1, _) => 2.0,
        (3, 0, 0) => 7.0,
        (3, 0, 1) => 6.0,
        (3, 1, _) => 8.0,
        (3, 2, _) => 10.0,
        (4, 0, _) => 6.0,
        (4, 1, _) => 5.0,
        (4, 2, _) => 4.0,
        _ => f64::NAN,
    }
}

const V4_DISTANCE_METRICS: [&str; 14] = [
    "AV", "PR", "UI", "AC", "AT", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR",
];

fn score_v4(vector: &str, metrics: &HashMap<&str, &str>) -> Result<f64, CvssError> {
    for (name, allowed) in V4_BASE {
        let v = metric(vector, metrics, name)?;
        if !allowed.contains(&v) {
            return Err(bad(vector, name, v));
        }
    }
    for (name, value) in metrics {
        match V4_OPTIONAL.iter().find(|(n, _)| n == name) {
            Some((_, allowed)) if !allowed.contains(value) => {
                return Err(bad(vector, name, value));
            }
            Some(_) => {}
            None if V4_BASE.iter().any(|(n, _)| n == name) => {}
            None => return Err(err(vector, format!("unknown metric {name}"))),
        }
    }
    let sel = metrics;
    let m = |k: &str| m4(sel, k);

    // No impact on either system: 0.
    if ["VC", "VI", "VA", "SC", "SI", "SA"]
        .iter()
        .all(|k| m(k) == "N")
    {
        return Ok(0.0);
    }
    let mv = macro_vector(sel);
    let mut value =
        lookup(mv).ok_or_else(|| err(vector, "macrovector missing from the lookup table"))?;
    let [eq1, eq2, eq3, eq4, eq5, eq6] = mv;

    // Scores of the next lower macrovectors (None where there is none).
    let lower1 = lookup([eq1 + 1, eq2, eq3, eq4, eq5, eq6]);
    let lower2 = lookup([eq1, eq2 + 1, eq3, eq4, eq5, eq6]);
    let lower36 = match (eq3, eq6) {
        (0, 0) => {
            let left = lookup([eq1, eq2, eq3, eq4, eq5, eq6 + 1]);
            let right = lookup([eq1, eq2, eq3 + 1, eq4, eq5, eq6]);
            // The reference takes `left` only when it is strictly greater.
            match (left, right) {
                (Some(l), Some(r)) if l > r => Some(l),
                _ => right,
            }
        }
        (1, 0) => lookup([eq1, eq2, eq3, eq4, eq5, eq6 + 1]),
        (0, 1) | (1, 1) => lookup([eq1, eq2, eq3 + 1, eq4, eq5, eq6]),
        _ => lookup([eq1, eq2, eq3 + 1, eq4, eq5, eq6 + 1]),
    };
    let lower4 = lookup([eq1, eq2, eq3, eq4 + 1, eq5, eq6]);
    let lower5 = lookup([eq1, eq2, eq3, eq4, eq5 + 1, eq6]);

    // The highest-severity vectors of this macrovector, composed; use the first
    // one the scored vector is not more severe than (or the last one tried).
    let mut distances = [0.0f64; 14];
    'found: for a in eq_maxes(1, eq1, 0) {
        for b in eq_maxes(2, eq2, 0) {
            for c in eq_maxes(3, eq3, eq6) {
                for d in eq_maxes(4, eq4, 0) {
                    for e in eq_maxes(5, eq5, 0) {
                        let max: HashMap<&str, &str> = [*a, *b, *c, *d, *e]
                            .iter()
                            .flat_map(|s| s.split('/'))
                            .filter_map(|p| p.split_once(':'))
                            .collect();
                        for (i, k) in V4_DISTANCE_METRICS.iter().enumerate() {
                            let mv = max.get(k).copied().unwrap_or("X");
                            distances[i] = level(k, m(k)) - level(k, mv);
                        }
                        if !distances.iter().any(|d| *d < 0.0) {
                            break 'found;
                        }
                    }
                }
            }
        }
    }
    let [av, pr, ui, ac, at, vc, vi, va, sc, si, sa, cr, ir, ar] = distances;
    let current1 = av + pr + ui;
    let current2 = ac + at;
    let current36 = vc + vi + va + cr + ir + ar;
    let current4 = sc + si + sa;

    let step = 0.1;
    let mut n_lower = 0u32;
    let mut normalized = [0.0f64; 5];
    let parts = [
        (lower1, current1, max_severity(1, eq1, 0)),
        (lower2, current2, max_severity(2, eq2, 0)),
        (lower36, current36, max_severity(3, eq3, eq6)),
        (lower4, current4, max_severity(4, eq4, 0)),
    ];
    for (i, (lower, current, depth)) in parts.into_iter().enumerate() {
        if let Some(lower) = lower {
            n_lower += 1;
            let available = value - lower;
            let percent = current / (depth * step);
            normalized[i] = available * percent;
        }
    }
    if let Some(lower) = lower5 {
        // EQ5's proportion is always 0.
        n_lower += 1;
        normalized[4] = (value - lower) * 0.0;
    }
    let mean = if n_lower == 0 {
        0.0
    } else {
        normalized.iter().sum::<f64>() / f64::from(n_lower)
    };
    value -= mean;
    let value = value.clamp(0.0, 10.0);
    Ok((value * 10.0).round() / 10.0)
}

/// The 270 macrovector scores of the CVSS v4.0 specification, keyed by the
/// six EQ levels, sorted by key.
#[rustfmt::skip]
const CVSS4_LOOKUP: &[(&str, f64)] = &[
    ("000000", 10.0), ("000001", 9.9), ("000010", 9.8), ("000011", 9.5), ("000020", 9.5), ("000021", 9.2),
    ("000100", 10.0), ("000101", 9.6), ("000110", 9.3), ("000111", 8.7), ("000120", 9.1), ("000121", 8.1),
    ("000200", 9.3), ("000201", 9.0), ("000210", 8.9), ("000211", 8.0), ("000220", 8.1), ("000221", 6.8),
    ("001000", 9.8), ("001001", 9.5), ("001010", 9.5), ("001011", 9.2), ("001020", 9.0), ("001021", 8.4),
    ("001100", 9.3), ("001101", 9.2), ("001110", 8.9), ("001111", 8.1), ("001120", 8.1), ("001121", 6.5),
    ("001200", 8.8), ("001201", 8.0), ("001210", 7.8), ("001211", 7.0), ("001220", 6.9), ("001221", 4.8),
    ("002001", 9.2), ("002011", 8.2), ("002021", 7.2), ("002101", 7.9), ("002111", 6.9), ("002121", 5.0),
    ("002201", 6.9), ("002211", 5.5), ("002221", 2.7), ("010000", 9.9), ("010001", 9.7), ("010010", 9.5),
    ("010011", 9.2), ("010020", 9.2), ("010021", 8.5), ("010100", 9.5), ("010101", 9.1), ("010110", 9.0),
    ("010111", 8.3), ("010120", 8.4), ("010121", 7.1), ("010200", 9.2), ("010201", 8.1), ("010210", 8.2),
    ("010211", 7.1), ("010220", 7.2), ("010221", 5.3), ("011000", 9.5), ("011001", 9.3), ("011010", 9.2),
    ("011011", 8.5), ("011020", 8.5), ("011021", 7.3), ("011100", 9.2), ("011101", 8.2), ("011110", 8.0),
    ("011111", 7.2), ("011120", 7.0), ("011121", 5.9), ("011200", 8.4), ("011201", 7.0), ("011210", 7.1),
    ("011211", 5.2), ("011220", 5.0), ("011221", 3.0), ("012001", 8.6), ("012011", 7.5), ("012021", 5.2),
    ("012101", 7.1), ("012111", 5.2), ("012121", 2.9), ("012201", 6.3), ("012211", 2.9), ("012221", 1.7),
    ("100000", 9.8), ("100001", 9.5), ("100010", 9.4), ("100011", 8.7), ("100020", 9.1), ("100021", 8.1),
    ("100100", 9.4), ("100101", 8.9), ("100110", 8.6), ("100111", 7.4), ("100120", 7.7), ("100121", 6.4),
    ("100200", 8.7), ("100201", 7.5), ("100210", 7.4), ("100211", 6.3), ("100220", 6.3), ("100221", 4.9),
    ("101000", 9.4), ("101001", 8.9), ("101010", 8.8), ("101011", 7.7), ("101020", 7.6), ("101021", 6.7),
    ("101100", 8.6), ("101101", 7.6), ("101110", 7.4), ("101111", 5.8), ("101120", 5.9), ("101121", 5.0),
    ("101200", 7.2), ("101201", 5.7), ("101210", 5.7), ("101211", 5.2), ("101220", 5.2), ("101221", 2.5),
    ("102001", 8.3), ("102011", 7.0), ("102021", 5.4), ("102101", 6.5), ("102111", 5.8), ("102121", 2.6),
    ("102201", 5.3), ("102211", 2.1), ("102221", 1.3), ("110000", 9.5), ("110001", 9.0), ("110010", 8.8),
    ("110011", 7.6), ("110020", 7.6), ("110021", 7.0), ("110100", 9.0), ("110101", 7.7), ("110110", 7.5),
    ("110111", 6.2), ("110120", 6.1), ("110121", 5.3), ("110200", 7.7), ("110201", 6.6), ("110210", 6.8),
    ("110211", 5.9), ("110220", 5.2), ("110221", 3.0), ("111000", 8.9), ("111001", 7.8), ("111010", 7.6),
    ("111011", 6.7), ("111020", 6.2), ("111021", 5.8), ("111100", 7.4), ("111101", 5.9), ("111110", 5.7),
    ("111111", 5.7), ("111120", 4.7), ("111121", 2.3), ("111200", 6.1), ("111201", 5.2), ("111210", 5.7),
    ("111211", 2.9), ("111220", 2.4), ("111221", 1.6), ("112001", 7.1), ("112011", 5.9), ("112021", 3.0),
    ("112101", 5.8), ("112111", 2.6), ("112121", 1.5), ("112201", 2.3), ("112211", 1.3), ("112221", 0.6),
    ("200000", 9.3), ("200001", 8.7), ("200010", 8.6), ("200011", 7.2), ("200020", 7.5), ("200021", 5.8),
    ("200100", 8.6), ("200101", 7.4), ("200110", 7.4), ("200111", 6.1), ("200120", 5.6), ("200121", 3.4),
    ("200200", 7.0), ("200201", 5.4), ("200210", 5.2), ("200211", 4.0), ("200220", 4.0), ("200221", 2.2),
    ("201000", 8.5), ("201001", 7.5), ("201010", 7.4), ("201011", 5.5), ("201020", 6.2), ("201021", 5.1),
    ("201100", 7.2), ("201101", 5.7), ("201110", 5.5), ("201111", 4.1), ("201120", 4.6), ("201121", 1.9),
    ("201200", 5.3), ("201201", 3.6), ("201210", 3.4), ("201211", 1.9), ("201220", 1.9), ("201221", 0.8),
    ("202001", 6.4), ("202011", 5.1), ("202021", 2.0), ("202101", 4.7), ("202111", 2.1), ("202121", 1.1),
    ("202201", 2.4), ("202211", 0.9), ("202221", 0.4), ("210000", 8.8), ("210001", 7.5), ("210010", 7.3),
    ("210011", 5.3), ("210020", 6.0), ("210021", 5.0), ("210100", 7.3), ("210101", 5.5), ("210110", 5.9),
    ("210111", 4.0), ("210120", 4.1), ("210121", 2.0), ("210200", 5.4), ("210201", 4.3), ("210210", 4.5),
    ("210211", 2.2), ("210220", 2.0), ("210221", 1.1), ("211000", 7.5), ("211001", 5.5), ("211010", 5.8),
    ("211011", 4.5), ("211020", 4.0), ("211021", 2.1), ("211100", 6.1), ("211101", 5.1), ("211110", 4.8),
    ("211111", 1.8), ("211120", 2.0), ("211121", 0.9), ("211200", 4.6), ("211201", 1.8), ("211210", 1.7),
    ("211211", 0.7), ("211220", 0.8), ("211221", 0.2), ("212001", 5.3), ("212011", 2.4), ("212021", 1.4),
    ("212101", 2.4), ("212111", 1.2), ("212121", 0.5), ("212201", 1.0), ("212211", 0.3), ("212221", 0.1),
];
