//! Measures the SQLite store (the real [`Db`]) against a prototype compact
//! custom index on a zip from `gen_osv`: import time, size on disk, and cold
//! lookup of ~200 packages (a fresh process per run, which is what a scan does).
//!
//! Usage: `store_bench ALL.zip ALL.names` (`gen_osv` writes both).
//! The custom index: `data.bin`, the JSON entries grouped by key in key order,
//! and `keys.bin`, length-prefixed `family\0name` keys with (offset, length)
//! into `data.bin`; a lookup reads `keys.bin` once, binary-searches it and
//! reads each hit with one positioned read.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hoist_vulndb::{ecosystem, osv::Advisory, Db};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn dir_size(p: &Path) -> u64 {
    walkdir::WalkDir::new(p)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn build_index(zip_path: &Path, out: &Path) -> Res<()> {
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(std::fs::File::open(zip_path)?))?;
    let mut groups: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i)?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        let adv: Advisory = serde_json::from_slice(&bytes)?;
        if adv.withdrawn.is_some() {
            continue;
        }
        for aff in &adv.affected {
            let Some(pkg) = &aff.package else { continue };
            let (fam, name) = ecosystem::key(&pkg.ecosystem, &pkg.name);
            // The same payload the SQLite store keeps: id, aliases, summary,
            // severity and the affected item.
            let rec = serde_json::json!({
                "id": adv.id, "aliases": adv.aliases, "summary": adv.summary,
                "severity": adv.severity, "ranges": aff.ranges, "versions": aff.versions,
            });
            let g = groups.entry(format!("{fam}\0{name}")).or_default();
            serde_json::to_writer(&mut *g, &rec)?;
            g.push(b'\n');
        }
    }
    std::fs::create_dir_all(out)?;
    let mut data = std::io::BufWriter::new(std::fs::File::create(out.join("data.bin"))?);
    let mut keys = std::io::BufWriter::new(std::fs::File::create(out.join("keys.bin"))?);
    let mut off = 0u64;
    for (k, v) in &groups {
        data.write_all(v)?;
        keys.write_all(&(k.len() as u16).to_le_bytes())?;
        keys.write_all(k.as_bytes())?;
        keys.write_all(&off.to_le_bytes())?;
        keys.write_all(&(v.len() as u32).to_le_bytes())?;
        off += v.len() as u64;
    }
    data.flush()?;
    keys.flush()?;
    Ok(())
}

fn queries(names: &Path) -> Res<Vec<(String, String, String)>> {
    let text = std::fs::read_to_string(names)?;
    let lines: Vec<&str> = text.lines().collect();
    let step = (lines.len() / 200).max(1);
    Ok(lines
        .iter()
        .step_by(step)
        .take(200)
        .map(|l| {
            let mut p = l.split('\t');
            let mut s = || p.next().unwrap_or_default().to_string();
            (s(), s(), s())
        })
        .collect())
}

fn lookup_index(dir: &Path, qs: &[(String, String, String)]) -> Res<usize> {
    let keys = std::fs::read(dir.join("keys.bin"))?;
    let data = std::fs::File::open(dir.join("data.bin"))?;
    let mut table: Vec<(&[u8], u64, u32)> = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        let n = u16::from_le_bytes([keys[i], keys[i + 1]]) as usize;
        let k = &keys[i + 2..i + 2 + n];
        let o = u64::from_le_bytes(keys[i + 2 + n..i + 10 + n].try_into()?);
        let l = u32::from_le_bytes(keys[i + 10 + n..i + 14 + n].try_into()?);
        table.push((k, o, l));
        i += 14 + n;
    }
    let mut hits = 0;
    for (eco, name, _v) in qs {
        let (fam, name) = ecosystem::key(eco, name);
        let k = format!("{fam}\0{name}");
        if let Ok(j) = table.binary_search_by(|(t, _, _)| (*t).cmp(k.as_bytes())) {
            let (_, o, l) = table[j];
            let mut buf = vec![0; l as usize];
            data.read_exact_at(&mut buf, o)?;
            for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let _v: serde_json::Value = serde_json::from_slice(line)?;
                hits += 1;
            }
        }
    }
    Ok(hits)
}

fn lookup_sqlite(dir: &Path, qs: &[(String, String, String)]) -> Res<usize> {
    let db = Db::open(dir)?;
    let q: Vec<(&str, &str, &str)> = qs
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    Ok(db.matches_many(&q)?.iter().map(|m| m.len()).sum())
}

fn cold(mode: &str, dir: &Path, names: &Path) -> Res<(f64, String)> {
    let mut times = Vec::new();
    let mut out = String::new();
    for _ in 0..7 {
        let t = Instant::now();
        let o = std::process::Command::new(std::env::current_exe()?)
            .args([
                mode,
                &dir.display().to_string(),
                &names.display().to_string(),
            ])
            .output()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok((times[times.len() / 2], out))
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("lookup-sqlite") => {
            let n = lookup_sqlite(Path::new(&args[2]), &queries(Path::new(&args[3]))?)?;
            println!("{n} matches");
            return Ok(());
        }
        Some("lookup-index") => {
            let n = lookup_index(Path::new(&args[2]), &queries(Path::new(&args[3]))?)?;
            println!("{n} entries");
            return Ok(());
        }
        _ => {}
    }
    let zip = PathBuf::from(&args[1]);
    let names = PathBuf::from(&args[2]);
    let work = tempfile::tempdir_in(zip.parent().unwrap_or(Path::new(".")))?;
    let sq = work.path().join("sqlite");
    let t = Instant::now();
    let report = Db::open(&sq)?.import_zip(&zip)?;
    let sq_import = t.elapsed().as_secs_f64();
    let ix = work.path().join("index");
    let t = Instant::now();
    build_index(&zip, &ix)?;
    let ix_import = t.elapsed().as_secs_f64();
    let (sq_cold, sq_out) = cold("lookup-sqlite", &sq, &names)?;
    let (ix_cold, ix_out) = cold("lookup-index", &ix, &names)?;
    println!(
        "advisories {} entries {}",
        report.advisories, report.entries
    );
    println!("store   import_s  size_MB  cold_lookup_200_ms(median of 7)  result");
    println!(
        "sqlite  {sq_import:8.2}  {:7.1}  {sq_cold:8.1}  {sq_out}",
        dir_size(&sq) as f64 / 1e6
    );
    println!(
        "index   {ix_import:8.2}  {:7.1}  {ix_cold:8.1}  {ix_out}",
        dir_size(&ix) as f64 / 1e6
    );
    Ok(())
}
