//! Writes N synthetic, realistic OSV advisories (Debian:12, PyPI, npm,
//! crates.io, Go, Maven) into a zip in osv.dev's `all.zip` layout, or into a
//! directory, for benchmarks (`bench/scan.sh`, `store_bench`).
//!
//! Usage: `cargo run --release -p hoist-vulndb --example gen_osv -- N OUT[.zip] [SEED]`
//! Package names are drawn from a pool of ~N/5 names per ecosystem with a skew
//! (popular packages get many advisories), like the real databases; the list
//! of names is printed to `OUT.names` as `ecosystem<TAB>name<TAB>version` lines
//! (a version inside the first range) so that benchmarks can query them.

use std::io::Write;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const ECOS: &[&str] = &["Debian:12", "PyPI", "npm", "crates.io", "Go", "Maven"];
const STEMS: &[&str] = &[
    "openssl", "curl", "xml", "json", "http", "yaml", "image", "crypto", "zlib", "parser",
    "request", "auth", "jwt", "sql", "template", "markdown", "archive", "tar", "proxy", "cache",
    "log", "config", "socket", "tls", "ssh", "font", "pdf", "regex", "glob", "url",
];
const SUFFIXES: &[&str] = &[
    "", "-utils", "-core", "-parser", "lib", "-client", "-server", "2", "-js", "-rs",
];

fn name(eco: &str, i: u64, rng: &mut Rng) -> String {
    let stem = rng.pick(STEMS);
    let suf = rng.pick(SUFFIXES);
    match eco {
        "Go" => format!("github.com/{stem}{i}/go-{stem}{suf}"),
        "Maven" => format!("org.{stem}{i}:{stem}{suf}"),
        "npm" if i.is_multiple_of(4) => format!("@{stem}{i}/{stem}{suf}"),
        "Debian:12" => format!("lib{stem}{i}{suf}"),
        _ => format!("{stem}{suf}-{i}"),
    }
}

fn version(eco: &str, major: u64, minor: u64, patch: u64) -> String {
    match eco {
        "Debian:12" => format!("{major}.{minor}.{patch}-1~deb12u{}", patch % 3 + 1),
        _ => format!("{major}.{minor}.{patch}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_osv N OUT[.zip] [SEED]");
        std::process::exit(2);
    }
    let n: u64 = args[1].parse()?;
    let out = std::path::PathBuf::from(&args[2]);
    let mut rng = Rng(args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0x9e3779b97f4a7c15));
    let pool = (n / 5).max(10);
    let mut zip = if out.extension().is_some_and(|e| e == "zip") {
        Some(zip::ZipWriter::new(std::fs::File::create(&out)?))
    } else {
        std::fs::create_dir_all(&out)?;
        None
    };
    let mut names = std::io::BufWriter::new(std::fs::File::create(out.with_extension("names"))?);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for k in 0..n {
        let eco = ECOS[(k % ECOS.len() as u64) as usize];
        // Skewed: squaring a uniform draw favours low indices.
        let u = rng.below(pool);
        let idx = u * u / pool;
        let mut name_rng = Rng(idx.wrapping_mul(0x2545F4914F6CDD1D) ^ (k % 6 + 1));
        let pkg = name(eco, idx, &mut name_rng);
        let id = match eco {
            "Debian:12" => format!("DSA-{}-1", 4000 + k),
            "crates.io" => format!("RUSTSEC-{}-{:04}", 2017 + k % 8, k),
            "Go" => format!("GO-{}-{:04}", 2020 + k % 5, k),
            _ => format!(
                "GHSA-{:04x}-{:04x}-{:04x}",
                k & 0xffff,
                (k >> 16) & 0xffff,
                rng.below(0xffff)
            ),
        };
        let major = rng.below(5);
        let minor = rng.below(20);
        let fixed_patch = rng.below(30) + 1;
        let kind = if matches!(eco, "npm" | "crates.io" | "Go") {
            "SEMVER"
        } else {
            "ECOSYSTEM"
        };
        let intro = if rng.below(3) == 0 {
            "0".to_string()
        } else {
            version(eco, major, minor, 0)
        };
        let mut ranges = vec![serde_json::json!({
            "type": kind,
            "events": [{"introduced": intro}, {"fixed": version(eco, major, minor, fixed_patch)}]
        })];
        if rng.below(4) == 0 {
            ranges.push(serde_json::json!({
                "type": kind,
                "events": [{"introduced": version(eco, major + 1, 0, 0)}, {"fixed": version(eco, major + 1, 0, 2)}]
            }));
        }
        let av = rng.pick(&["N", "N", "N", "L", "A"]);
        let cia = ["H", "L", "N"];
        let cvss = format!(
            "CVSS:3.1/AV:{av}/AC:{}/PR:{}/UI:{}/S:{}/C:{}/I:{}/A:{}",
            rng.pick(&["L", "H"]),
            rng.pick(&["N", "L", "H"]),
            rng.pick(&["N", "R"]),
            rng.pick(&["U", "U", "C"]),
            rng.pick(&cia),
            rng.pick(&cia),
            rng.pick(&cia)
        );
        let adv = serde_json::json!({
            "schema_version": "1.6.0",
            "id": id,
            "modified": "2024-06-01T12:00:00Z",
            "published": "2023-03-15T08:00:00Z",
            "aliases": [format!("CVE-{}-{}", 2018 + k % 7, 10000 + k)],
            "summary": format!("{} in {pkg}", rng.pick(&["Denial of service", "Path traversal", "Cross-site scripting", "Heap buffer overflow", "Improper certificate validation", "Prototype pollution"])),
            "details": format!("A flaw was found in {pkg} before {}. An attacker able to send crafted input can trigger the issue, which may lead to a crash or to information disclosure. Users are advised to upgrade.", version(eco, major, minor, fixed_patch)),
            "severity": [{"type": "CVSS_V3", "score": cvss}],
            "affected": [{
                "package": {"ecosystem": eco, "name": pkg},
                "ranges": ranges,
                "database_specific": {"source": "synthetic"}
            }],
            "references": [
                {"type": "ADVISORY", "url": format!("https://nvd.nist.gov/vuln/detail/CVE-{}-{}", 2018 + k % 7, 10000 + k)},
                {"type": "FIX", "url": format!("https://example.org/{pkg}/commit/{:x}", rng.next())}
            ],
            "database_specific": {"severity": rng.pick(&["LOW", "MODERATE", "HIGH", "CRITICAL"])}
        });
        let bytes = serde_json::to_vec_pretty(&adv)?;
        match zip.as_mut() {
            Some(z) => {
                z.start_file(format!("{id}.json"), opts)?;
                z.write_all(&bytes)?;
            }
            None => std::fs::write(out.join(format!("{id}.json")), &bytes)?,
        }
        writeln!(names, "{eco}\t{pkg}\t{}", version(eco, major, minor, 1))?;
    }
    if let Some(z) = zip {
        z.finish()?;
    }
    names.flush()?;
    Ok(())
}
