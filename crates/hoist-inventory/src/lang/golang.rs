//! Go modules: the build information Go links into every binary, and `go.mod` /
//! `go.sum`.
//!
//! From a binary: each dependency (with `=>` replacements applied), the main module
//! when it has a real version (a local build says `(devel)`, which matches nothing
//! and is skipped), and the Go toolchain itself as the module `stdlib` with the Go
//! version written as a module version (`go1.21.5` gives `v1.21.5`; development
//! toolchains are skipped), as Trivy reports it. Both the Go 1.18+ layout (inline
//! varint-prefixed strings) and the older pointer-based one are read.
//!
//! Modules replaced by a local directory (`=> ../fork`) are dropped: the code is not
//! the published module's.

use std::collections::BTreeMap;
use std::path::Path;

use super::{dedupe, fail, package, text, LangError};
use crate::package::{Package, PackageKind};

/// The magic that opens the build-info blob.
pub const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const HEADER_SIZE: usize = 32;
/// Longest version or module-info string believed (real ones are a few KiB).
const MAX_STRING: u64 = 16 << 20;

/// Reads `len` bytes at a virtual address of the binary (pre-1.18 build info
/// stores pointers).
pub type ReadAt<'a> = dyn Fn(u64, u64) -> Option<&'a [u8]> + 'a;

/// Parse a `go.sum` (by file name) or else a `go.mod` (binaries go through
/// [`super::binary::parse`]).
pub fn parse(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("go.sum") => parse_go_sum(path, data),
        _ => parse_go_mod(path, data),
    }
}

/// Parse the build info in `section` (the content of `.go.buildinfo`, the magic at a
/// 16-byte-aligned offset), reading pointed-to strings through `read_at`.
pub fn parse_buildinfo<'a>(
    path: &Path,
    section: &'a [u8],
    read_at: &ReadAt<'a>,
) -> Result<Vec<Package>, LangError> {
    let start = (0..section.len())
        .step_by(16)
        .find(|&i| {
            section
                .get(i..)
                .is_some_and(|s| s.starts_with(BUILDINFO_MAGIC))
        })
        .ok_or_else(|| fail(path, None, ".go.buildinfo: no build info magic"))?;
    let blob = section.get(start..).unwrap_or_default();
    let header = blob
        .get(..HEADER_SIZE)
        .ok_or_else(|| fail(path, None, ".go.buildinfo: truncated header"))?;
    let ptr_size = usize::from(header.get(14).copied().unwrap_or(0));
    let flags = header.get(15).copied().unwrap_or(0);
    let (version, modinfo) = if flags & 2 != 0 {
        let rest = blob.get(HEADER_SIZE..).unwrap_or_default();
        let (version, rest) = varint_string(rest)
            .ok_or_else(|| fail(path, None, ".go.buildinfo: bad version string"))?;
        let (modinfo, _) = varint_string(rest)
            .ok_or_else(|| fail(path, None, ".go.buildinfo: bad module info string"))?;
        (version, modinfo)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(fail(
                path,
                None,
                format!(".go.buildinfo: pointer size {ptr_size}"),
            ));
        }
        let big_endian = flags & 1 != 0;
        let read_ptr = |b: &[u8]| -> Option<u64> {
            if ptr_size == 4 {
                let a: [u8; 4] = b.get(..4)?.try_into().ok()?;
                Some(u64::from(if big_endian {
                    u32::from_be_bytes(a)
                } else {
                    u32::from_le_bytes(a)
                }))
            } else {
                let a: [u8; 8] = b.get(..8)?.try_into().ok()?;
                Some(if big_endian {
                    u64::from_be_bytes(a)
                } else {
                    u64::from_le_bytes(a)
                })
            }
        };
        // A Go string header is (data pointer, length) at the pointed address.
        let read_string = |addr: u64| -> Option<&'a [u8]> {
            let hdr = read_at(addr, 2 * ptr_size as u64)?;
            let data = read_ptr(hdr)?;
            let len = read_ptr(hdr.get(ptr_size..)?)?;
            if len > MAX_STRING {
                return None;
            }
            read_at(data, len)
        };
        let version = header
            .get(16..)
            .and_then(read_ptr)
            .and_then(read_string)
            .ok_or_else(|| fail(path, None, ".go.buildinfo: unreadable version pointer"))?;
        let modinfo = header
            .get(16 + ptr_size..)
            .and_then(read_ptr)
            .and_then(read_string)
            .unwrap_or_default();
        (version, modinfo)
    };
    let version = String::from_utf8_lossy(version);
    if version.is_empty() {
        return Err(fail(path, None, ".go.buildinfo: empty Go version"));
    }
    // The module info is framed by two 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 && modinfo.get(modinfo.len() - 17) == Some(&b'\n') {
        modinfo.get(16..modinfo.len() - 16).unwrap_or_default()
    } else {
        &[][..]
    };
    let mut out = Vec::new();
    if let Some(v) = stdlib_version(&version) {
        out.push(package(PackageKind::Go, "stdlib", v, Vec::new(), path));
    }
    out.extend(parse_modinfo(path, &String::from_utf8_lossy(modinfo)));
    Ok(dedupe(out))
}

/// `go1.21.5` (possibly followed by ` X:boringcrypto`) as `v1.21.5`; `None` for
/// development toolchains.
fn stdlib_version(go_version: &str) -> Option<String> {
    let first = go_version.split_whitespace().next()?;
    let v = first.strip_prefix("go")?;
    (v.starts_with(|c: char| c.is_ascii_digit())).then(|| format!("v{v}"))
}

/// An unsigned LEB128 length followed by that many bytes.
fn varint_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = *data.get(i)?;
        i += 1;
        if shift >= 64 {
            return None;
        }
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let len = usize::try_from(len).ok()?;
    let rest = data.get(i..)?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// The module lines of build info (`path`, `mod`, `dep`, `=>`, `build`...).
fn parse_modinfo(path: &Path, modinfo: &str) -> Vec<Package> {
    // (path, version), the last one replaceable by a following `=>` line.
    let mut modules: Vec<Option<(String, String)>> = Vec::new();
    let mut main_index = None;
    for line in modinfo.lines() {
        let mut fields = line.split('\t');
        let key = fields.next().unwrap_or("");
        let module = fields.next().unwrap_or("");
        let version = fields.next().unwrap_or("");
        match key {
            "mod" | "dep" => {
                if key == "mod" {
                    main_index = Some(modules.len());
                }
                modules.push(Some((module.to_string(), version.to_string())));
            }
            "=>" => {
                if let Some(last) = modules.last_mut() {
                    // A local directory replacement has no version.
                    *last =
                        (!version.is_empty()).then(|| (module.to_string(), version.to_string()));
                }
            }
            _ => {}
        }
    }
    modules
        .into_iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let (name, version) = m?;
            if name.is_empty()
                || version.is_empty()
                || (Some(i) == main_index && version == "(devel)")
            {
                return None;
            }
            Some(package(PackageKind::Go, name, version, Vec::new(), path))
        })
        .collect()
}

/// Strip a `//` comment and split into tokens, unquoting `"..."` and `` `...` ``.
fn go_mod_tokens(line: &str) -> Vec<String> {
    let line = match line.find("//") {
        Some(i) => line.get(..i).unwrap_or(""),
        None => line,
    };
    line.split_whitespace()
        .map(|t| t.trim_matches(|c| c == '"' || c == '`').to_string())
        .collect()
}

/// What a `replace` directive puts in place of a module: a module path and
/// version, or `None` for a local directory.
type Replacement = Option<(String, String)>;

/// `go.mod`: the modules of `require` (blocks and single lines; `// indirect` ones
/// too), with `replace` directives applied (a replacement by a local directory
/// drops the module). The main module itself has no version and is not reported.
pub fn parse_go_mod(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let s = text(path, data)?;
    let mut requires: Vec<(String, String)> = Vec::new();
    // (old path, old version if given) -> new (path, version) or None for local.
    let mut replaces: BTreeMap<(String, Option<String>), Replacement> = BTreeMap::new();
    let mut block: Option<String> = None;
    for (i, raw) in s.lines().enumerate() {
        let line_no = i + 1;
        let mut tokens = go_mod_tokens(raw);
        if tokens.is_empty() {
            continue;
        }
        let verb = match &block {
            Some(verb) => {
                if tokens.first().map(String::as_str) == Some(")") {
                    block = None;
                    continue;
                }
                verb.clone()
            }
            None => {
                let verb = tokens.remove(0);
                if tokens.first().map(String::as_str) == Some("(") {
                    if tokens.len() > 1 {
                        return Err(fail(path, Some(line_no), "unexpected text after '('"));
                    }
                    block = Some(verb);
                    continue;
                }
                verb
            }
        };
        match verb.as_str() {
            "require" => match tokens.as_slice() {
                [module, version] if !module.is_empty() && !version.is_empty() => {
                    requires.push((module.clone(), version.clone()))
                }
                _ => {
                    return Err(fail(
                        path,
                        Some(line_no),
                        "require needs a module path and a version",
                    ))
                }
            },
            "replace" => {
                let arrow = tokens
                    .iter()
                    .position(|t| t == "=>")
                    .ok_or_else(|| fail(path, Some(line_no), "replace without '=>'"))?;
                let (old, new) = tokens.split_at(arrow);
                let new = new.get(1..).unwrap_or_default();
                let key = match old {
                    [p] => (p.clone(), None),
                    [p, v] => (p.clone(), Some(v.clone())),
                    _ => {
                        return Err(fail(
                            path,
                            Some(line_no),
                            "replace needs a module path before '=>'",
                        ))
                    }
                };
                let target = match new {
                    [_dir] => None,
                    [p, v] if !p.is_empty() && !v.is_empty() => Some((p.clone(), v.clone())),
                    _ => {
                        return Err(fail(
                            path,
                            Some(line_no),
                            "replace needs a module or a directory after '=>'",
                        ))
                    }
                };
                replaces.insert(key, target);
            }
            _ => {} // module, go, toolchain, exclude, retract, godebug
        }
    }
    if block.is_some() {
        return Err(fail(path, None, "unclosed '(' block"));
    }
    let out = requires
        .into_iter()
        .filter_map(|(module, version)| {
            let replaced = replaces
                .get(&(module.clone(), Some(version.clone())))
                .or_else(|| replaces.get(&(module.clone(), None)));
            let (module, version) = match replaced {
                Some(target) => target.clone()?,
                None => (module, version),
            };
            Some(package(PackageKind::Go, module, version, Vec::new(), path))
        })
        .collect();
    Ok(dedupe(out))
}

/// `go.sum`: each module version with a content hash (`/go.mod`-only lines, which
/// say only that the module's go.mod was read, are ignored).
pub fn parse_go_sum(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let s = text(path, data)?;
    let mut out = Vec::new();
    for (i, line) in s.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [_, version, _] if version.ends_with("/go.mod") => {}
            [module, version, _] => out.push(package(
                PackageKind::Go,
                *module,
                *version,
                Vec::new(),
                path,
            )),
            _ => return Err(fail(path, Some(i + 1), "expected 'module version hash'")),
        }
    }
    Ok(dedupe(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::test_support::nv;

    const START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

    fn modinfo() -> Vec<u8> {
        let body = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.7\th1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=\ndep\tgithub.com/old/mod\tv1.0.0\th1:x=\n=>\tgithub.com/new/mod\tv1.1.0\th1:y=\ndep\tgithub.com/local/mod\tv0.1.0\n=>\t../local\t\t\nbuild\t-compiler=gc\nbuild\tGOOS=linux\n";
        [START, body.as_bytes(), END].concat()
    }

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    #[test]
    fn buildinfo_inline_strings() {
        let mut blob = BUILDINFO_MAGIC.to_vec();
        blob.extend([8, 2]);
        blob.resize(32, 0);
        let v = b"go1.21.5 X:boringcrypto";
        varint(v.len(), &mut blob);
        blob.extend(v);
        let m = modinfo();
        varint(m.len(), &mut blob);
        blob.extend(&m);
        let p = parse_buildinfo(Path::new("bin/app"), &blob, &|_, _| None).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("stdlib", "v1.21.5"),
                ("golang.org/x/text", "v0.3.7"),
                ("github.com/new/mod", "v1.1.0")
            ]
        );
        // Truncations and flips are errors or packages, never panics.
        for cut in 0..blob.len() {
            let _ = parse_buildinfo(Path::new("b"), &blob[..cut], &|_, _| None);
        }
        for i in 14..40 {
            let mut b = blob.clone();
            b[i] = 0xff;
            let _ = parse_buildinfo(Path::new("b"), &b, &|_, _| None);
        }
    }

    #[test]
    fn buildinfo_pointer_layout() {
        // A pre-1.18 32-bit big-endian binary: the header holds pointers to string
        // headers (data pointer, length) elsewhere in memory.
        let base = 0x1000u64;
        let version = b"go1.16.15";
        let m = modinfo();
        let mut mem = vec![0u8; 64];
        let vhdr = mem.len() as u64;
        let vdata = vhdr + 16;
        let mhdr = vdata + version.len() as u64;
        let mdata = mhdr + 8;
        for x in [(base + vdata) as u32, version.len() as u32] {
            mem.extend(x.to_be_bytes());
        }
        mem.resize(vdata as usize, 0);
        mem.extend(version);
        for x in [(base + mdata) as u32, m.len() as u32] {
            mem.extend(x.to_be_bytes());
        }
        mem.extend(&m);
        let mut blob = BUILDINFO_MAGIC.to_vec();
        blob.extend([4, 1]);
        blob.extend(((base + vhdr) as u32).to_be_bytes());
        blob.extend(((base + mhdr) as u32).to_be_bytes());
        blob.resize(32, 0);
        let read_at = |addr: u64, len: u64| -> Option<&[u8]> {
            let start = usize::try_from(addr.checked_sub(base)?).ok()?;
            mem.get(start..start.checked_add(usize::try_from(len).ok()?)?)
        };
        let p = parse_buildinfo(Path::new("bin/old"), &blob, &read_at).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("stdlib", "v1.16.15"),
                ("golang.org/x/text", "v0.3.7"),
                ("github.com/new/mod", "v1.1.0")
            ]
        );
        assert!(parse_buildinfo(Path::new("bin/old"), &blob, &|_, _| None).is_err());
    }

    #[test]
    fn go_mod_requires_and_replaces() {
        let data = br#"module example.com/app

go 1.21

toolchain go1.21.5

require github.com/single/line v1.2.3

require (
	golang.org/x/text v0.14.0
	"github.com/quoted/mod" v0.2.0 // indirect
	github.com/forked/mod v1.0.0 // indirect
	github.com/local/mod v0.1.0
	github.com/versioned/mod v2.0.0
)

exclude github.com/bad/mod v0.0.1

replace github.com/forked/mod => github.com/fork/mod v1.0.1

replace (
	github.com/local/mod => ../local
	github.com/versioned/mod v1.9.9 => github.com/other/mod v9.9.9
)
"#;
        let p = parse_go_mod(Path::new("go.mod"), data).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("github.com/single/line", "v1.2.3"),
                ("golang.org/x/text", "v0.14.0"),
                ("github.com/quoted/mod", "v0.2.0"),
                ("github.com/fork/mod", "v1.0.1"),
                ("github.com/versioned/mod", "v2.0.0"),
            ]
        );
        let err = parse_go_mod(Path::new("go.mod"), b"module m\nrequire (\n\tx\n)\n").unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(3), .. }),
            "{err}"
        );
        assert!(parse_go_mod(Path::new("go.mod"), b"require (\n").is_err());
        // Found by the lang_rust_go fuzzer: a quoted empty module path or version.
        for bad in [
            &b"require \"\" v1.0.0\n"[..],
            b"require example.com/m \"\"\n",
            b"require example.com/m v1.0.0\nreplace example.com/m => \"\" v1.0.0\n",
        ] {
            let err = parse_go_mod(Path::new("go.mod"), bad)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("go.mod:"), "{err}");
        }
    }

    #[test]
    fn go_sum_modules_without_go_mod_lines() {
        let data = b"github.com/davecgh/go-spew v1.1.1 h1:vj9j/u1bqnvCEfJOwUhtlOARqs3+rkHYY13jYWTU97c=\ngithub.com/davecgh/go-spew v1.1.1/go.mod h1:J7Y8YcW2NihsgmVo/mv3lAwl/skON4iLHjSsI+c5H38=\ngithub.com/only/gomod v0.1.0/go.mod h1:abc=\n\ngolang.org/x/text v0.3.7 h1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=\n";
        let p = parse_go_sum(Path::new("go.sum"), data).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("github.com/davecgh/go-spew", "v1.1.1"),
                ("golang.org/x/text", "v0.3.7")
            ]
        );
        let err = parse_go_sum(Path::new("go.sum"), b"a v1 h1:x\nbroken\n").unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(2), .. }),
            "{err}"
        );
    }
}
