//! Language packages in real binaries: a Go program built here with the Go
//! toolchain (`golang-go`), an ELF file carrying cargo-auditable data written with
//! the `object` crate, and a system binary that has neither.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use hoist_inventory::lang;
use hoist_inventory::PackageKind;

fn nv(ps: &[hoist_inventory::Package]) -> Vec<(PackageKind, &str, &str)> {
    ps.iter()
        .map(|p| (p.kind, p.name.as_str(), p.version.as_str()))
        .collect()
}

/// Build `example.com/hello`, which depends on a vendored `example.com/dep v1.2.3`
/// (vendoring needs no network), with extra `go build` flags.
fn build_go(flags: &[&str]) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "go.mod",
        "module example.com/hello\n\ngo 1.17\n\nrequire example.com/dep v1.2.3\n",
    );
    write(
        "main.go",
        "package main\n\nimport \"example.com/dep\"\n\nfunc main() { println(dep.Hello()) }\n",
    );
    write(
        "vendor/example.com/dep/dep.go",
        "package dep\n\nfunc Hello() string { return \"hi\" }\n",
    );
    write(
        "vendor/modules.txt",
        "# example.com/dep v1.2.3\n## explicit\nexample.com/dep\n",
    );
    let go = |args: &[&str]| {
        let out = Command::new("go")
            .args(args)
            .current_dir(root)
            .env("HOME", root)
            .env("GOCACHE", root.join("cache"))
            .env("GOPATH", root.join("gopath"))
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=vendor")
            .env("GOTOOLCHAIN", "local")
            .output()
            .expect("run `go` (Debian package golang-go)");
        assert!(
            out.status.success(),
            "go {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let version = go(&["env", "GOVERSION"]).trim().to_string();
    let mut args = vec!["build", "-o", "hello"];
    args.extend(flags);
    args.push(".");
    go(&args);
    (std::fs::read(root.join("hello")).unwrap(), version)
}

#[test]
fn go_binary_gives_stdlib_and_dependencies() {
    for flags in [&[][..], &["-ldflags=-s -w"][..], &["-trimpath"][..]] {
        let (binary, go_version) = build_go(flags);
        let path = Path::new("usr/local/bin/hello");
        assert!(lang::wants(path, binary.len() as u64, 0o100755));
        let packages = lang::parse(path, &binary).unwrap();
        // go1.19.8 -> v1.19.8; the main module is `(devel)` and skipped.
        let stdlib = format!("v{}", go_version.strip_prefix("go").unwrap());
        assert_eq!(
            nv(&packages),
            [
                (PackageKind::Go, "stdlib", stdlib.as_str()),
                (PackageKind::Go, "example.com/dep", "v1.2.3")
            ],
            "flags {flags:?}"
        );
        assert!(packages.iter().all(|p| p.path == path && p.layer.is_none()));
        // A truncated binary is an error or nothing, never a panic.
        for cut in [16, 64, 4096, binary.len() / 2] {
            let _ = lang::parse(path, &binary[..cut]);
        }
    }
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// A relocatable x86-64 ELF file with a `.dep-v0` section, as cargo-auditable
/// embeds it (plus a code section, so it looks like a program).
fn elf_with_audit_data(json: &str) -> Vec<u8> {
    use object::write::Object;
    use object::{Architecture, BinaryFormat, Endianness, SectionKind};
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = obj.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    obj.append_section_data(text, &[0xc3], 16);
    let dep = obj.add_section(Vec::new(), b".dep-v0".to_vec(), SectionKind::ReadOnlyData);
    obj.append_section_data(dep, &zlib(json.as_bytes()), 1);
    obj.write().unwrap()
}

#[test]
fn cargo_auditable_section_gives_runtime_crates() {
    let json = r#"{"packages":[
        {"name":"myapp","version":"0.1.0","source":"local","dependencies":[1,2,3],"root":true},
        {"name":"serde","version":"1.0.204","source":"crates.io"},
        {"name":"serde_derive","version":"1.0.204","source":"crates.io","kind":"build"},
        {"name":"mylib","version":"0.1.0","source":"local"},
        {"name":"forked","version":"0.3.0","source":"git","kind":"runtime"},
        {"name":"internal","version":"2.0.0","source":"registry"}
    ]}"#;
    let elf = elf_with_audit_data(json);
    let packages = lang::parse(Path::new("usr/bin/myapp"), &elf).unwrap();
    assert_eq!(
        nv(&packages),
        [
            (PackageKind::Cargo, "serde", "1.0.204"),
            (PackageKind::Cargo, "forked", "0.3.0"),
            (PackageKind::Cargo, "internal", "2.0.0"),
        ]
    );
    // Bad JSON inside a good section is an error naming the file.
    let err = lang::parse(
        Path::new("usr/bin/bad"),
        &elf_with_audit_data("{\"packages\": 1}"),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("usr/bin/bad: .dep-v0"), "{err}");
}

#[test]
fn plain_elf_and_scripts_have_no_packages() {
    let true_bin = std::fs::read("/bin/true").unwrap();
    assert!(lang::parse(Path::new("bin/true"), &true_bin)
        .unwrap()
        .is_empty());
    assert!(lang::parse(Path::new("bin/sh-script"), b"#!/bin/sh\n")
        .unwrap()
        .is_empty());
    // ELF magic on garbage is an error naming the path.
    let err = lang::parse(Path::new("bin/broken"), b"\x7fELF\x02\x01\x01garbage").unwrap_err();
    assert!(err.to_string().starts_with("bin/broken"), "{err}");
}
