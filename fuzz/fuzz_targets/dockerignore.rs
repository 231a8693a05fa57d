//! `hoist_dockerfile::ignore::DockerIgnore`: parse arbitrary UTF-8 as a
//! `.dockerignore` file, then ask `is_excluded` / `may_include_under` about paths
//! derived from the input. The input is `patterns \0 path`; without a NUL every
//! line of the input is also tried as a path.
//!
//! Invariant checked: when `may_include_under(dir)` is false, every path below
//! `dir` is excluded (a context walker relies on that to skip the tree).
#![no_main]

use hoist_dockerfile::ignore::DockerIgnore;
use libfuzzer_sys::fuzz_target;

fn check(ignore: &DockerIgnore, path: &str) {
    let excluded = ignore.is_excluded(path);
    let may_include = ignore.may_include_under(path);
    if !may_include {
        assert!(
            excluded,
            "may_include_under({path:?}) is false but the directory itself is not excluded"
        );
        for child in ["x", "a/b", ".", "x.txt", "!", "**"] {
            let below = format!("{}/{child}", path.trim_end_matches('/'));
            assert!(
                ignore.is_excluded(&below),
                "may_include_under({path:?}) is false but {below:?} is not excluded; patterns {:?}",
                ignore.patterns()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (patterns, path) = match text.split_once('\0') {
        Some((p, path)) => (p, Some(path)),
        None => (text, None),
    };
    let Ok(ignore) = DockerIgnore::parse(patterns) else {
        return;
    };
    // Parsing the cleaned patterns again must succeed and give the same list.
    let again = hoist_dockerfile::ignore::Matcher::new(ignore.patterns());
    assert!(
        again.is_ok(),
        "cleaned patterns {:?} rejected: {:?}",
        ignore.patterns(),
        again.err()
    );
    match path {
        Some(path) => check(&ignore, path),
        None => {
            for line in patterns.lines().take(16) {
                let line = line.trim().trim_start_matches('!');
                check(&ignore, line);
            }
        }
    }
});
