//! Rough cost of one comparison per scheme (parse both sides and compare),
//! a micro measurement rather than a benchmark: `cargo run --release -p
//! hoist-version --example compare_speed`.

use std::hint::black_box;
use std::time::Instant;

use hoist_version::Scheme;

fn main() {
    let cases: &[(Scheme, &str, &str)] = &[
        (Scheme::Dpkg, "1:2.36-9+deb12u4", "1:2.36-9+deb12u10"),
        (Scheme::Apk, "3.1.4_p2-r1", "3.1.4_rc1-r0"),
        (Scheme::Rpm, "1:3.0.7-24.el9", "1:3.0.7-25.el9_3"),
        (Scheme::Pep440, "2.31.0.post1", "2.31.0rc1"),
        (Scheme::Semver, "4.17.21", "4.17.21-beta.1"),
        (Scheme::Go, "v0.0.0-20191109021931-daa7c04131f5", "v0.17.0"),
        (Scheme::Maven, "2.15.0-rc1", "2.17.1"),
        (Scheme::RubyGems, "7.0.8.1", "7.0.8.rc1"),
    ];
    const N: u32 = 1_000_000;
    for &(scheme, a, b) in cases {
        let start = Instant::now();
        for _ in 0..N {
            let r = scheme.compare(black_box(a), black_box(b));
            black_box(r).ok();
        }
        let per = start.elapsed().as_nanos() as f64 / f64::from(N);
        println!("{scheme:>9}: {per:7.1} ns per compare ({a} vs {b})");
    }
    let range = ">=4.17.0 <4.17.21 || ^3.10.0";
    let start = Instant::now();
    for _ in 0..N {
        black_box(hoist_version::npm::satisfies(
            black_box("4.17.20"),
            black_box(range),
        ))
        .ok();
    }
    let per = start.elapsed().as_nanos() as f64 / f64::from(N);
    println!("npm range: {per:7.1} ns per satisfies (parse range + test)");
}
