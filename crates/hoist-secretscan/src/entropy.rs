//! Shannon entropy of a string, in bits per character.

/// Bits per byte of `s`'s byte distribution: about 3 for English words, above 4
/// for random base64 or hex-and-letters tokens of some length.
pub fn shannon(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let len = s.len() as f64;
    if len == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::shannon;

    #[test]
    fn random_tokens_score_higher_than_words() {
        assert_eq!(shannon(""), 0.0);
        assert_eq!(shannon("aaaa"), 0.0);
        assert!((shannon("abcd") - 2.0).abs() < 1e-9);
        assert!(shannon("changeme") < 3.0);
        assert!(shannon("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz8c3Y4e1q") > 4.0);
    }
}
