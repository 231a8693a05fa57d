//! Numbers compared as digit strings: no parsing, no overflow.

use std::cmp::Ordering;

/// Compares two runs of ASCII digits as the numbers they spell, ignoring
/// leading zeros; an empty run is zero.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_zeros(a);
    let b = strip_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The run without its leading zeros (`"007"` -> `"7"`, `"000"` -> `""`).
pub(crate) fn strip_zeros(a: &[u8]) -> &[u8] {
    let n = a.iter().take_while(|&&c| c == b'0').count();
    &a[n..]
}

/// Whether the run spells zero (empty or all `0`).
pub(crate) fn is_zero(a: &[u8]) -> bool {
    a.iter().all(|&c| c == b'0')
}

/// Length of the leading run of ASCII digits of `s`.
pub(crate) fn digit_run(s: &[u8]) -> usize {
    s.iter().take_while(|c| c.is_ascii_digit()).count()
}
