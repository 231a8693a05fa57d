//! Pure routing decisions: rule matching and smooth weighted round-robin. No I/O.

use std::borrow::Cow;

use crate::config::HostMatch;

/// Strips the port and lowercases a `Host` header or `:authority` (copying only when
/// there is something to lowercase).
pub(crate) fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

pub(crate) fn host_matches(rule: Option<&HostMatch>, host: &str) -> bool {
    match rule {
        None => true,
        Some(HostMatch::Exact(h)) => h.eq_ignore_ascii_case(host),
        Some(HostMatch::Suffix(s)) => {
            host.len() > s.len() + 1
                && host.ends_with(s.as_str())
                && host.as_bytes()[host.len() - s.len() - 1] == b'.'
        }
    }
}

pub(crate) fn path_matches(prefix: &str, path: &str) -> bool {
    if prefix.is_empty() || prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

/// Smooth weighted round-robin (nginx's): over any `weights.len()` picks with the same
/// eligible set, entry `i` is chosen exactly `weights[i]` times, evenly interleaved.
#[derive(Debug)]
pub(crate) struct SmoothWrr {
    current: Vec<i64>,
}

impl SmoothWrr {
    pub(crate) fn new(n: usize) -> Self {
        SmoothWrr {
            current: vec![0; n],
        }
    }

    /// Picks among entries where `eligible(i)` and weight > 0; `None` if there are none.
    pub(crate) fn pick(
        &mut self,
        weights: &[u32],
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, &w) in weights.iter().enumerate() {
            if w == 0 || !eligible(i) {
                continue;
            }
            self.current[i] += i64::from(w);
            total += i64::from(w);
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_wrr_is_exact_and_interleaved() {
        let mut w = SmoothWrr::new(2);
        let picks: Vec<usize> = (0..10)
            .map(|_| w.pick(&[8, 2], |_| true).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|&&p| p == 1).count(), 2);
        // never two picks of the light entry in a row
        assert!(picks.windows(2).all(|p| p != [1, 1]));
        let mut w = SmoothWrr::new(3);
        assert_eq!(w.pick(&[0, 5, 1], |i| i != 1), Some(2));
        assert_eq!(w.pick(&[0, 5, 1], |i| i == 0), None);
    }

    #[test]
    fn hosts_and_paths() {
        assert_eq!(normalize_host("Api.Example.com:8080"), "api.example.com");
        assert_eq!(normalize_host("[::1]:80"), "::1");
        let wild = HostMatch::parse("*.example.com");
        assert!(host_matches(Some(&wild), "a.example.com"));
        assert!(host_matches(Some(&wild), "a.b.example.com"));
        assert!(!host_matches(Some(&wild), "example.com"));
        assert!(!host_matches(Some(&wild), "badexample.com"));
        assert!(host_matches(Some(&HostMatch::parse("x.io")), "x.io"));
        assert!(path_matches("/api", "/api"));
        assert!(path_matches("/api", "/api/v1"));
        assert!(!path_matches("/api", "/apix"));
        assert!(path_matches("/", "/anything"));
        assert!(path_matches("/static/", "/static/a.css"));
    }
}
