//! Builds the per-architecture payloads of `payloads/` (the preload library `libdmtcp.so` and the
//! static, libc-free restorer `mtcp_restart`, for x86_64 and i686), compresses them with zstd and
//! leaves them in OUT_DIR for `src/payloads.rs` to embed.
//!
//! Each payload is a separate cargo project built by a nested `cargo build --target T` with its
//! own target dir (sharing ours would deadlock on the build lock) and with our build's cargo and
//! rustc variables removed. A missing i686 toolchain is an error that says how to install it:
//! we never produce a silently 64-bit-only `dmtcp`.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Arch {
    triple: &'static str,
    /// Name used in OUT_DIR file names and by `src/payloads.rs`.
    tag: &'static str,
}

const ARCHES: [Arch; 2] = [
    Arch { triple: "x86_64-unknown-linux-gnu", tag: "x86_64" },
    Arch { triple: "i686-unknown-linux-gnu", tag: "i686" },
];

struct Payload {
    dir: &'static str,
    artifact: &'static str,
    rustflags: &'static [&'static str],
    /// Extra flags per architecture tag.
    arch_flags: fn(&str) -> Vec<String>,
}

fn no_flags(_: &str) -> Vec<String> {
    Vec::new()
}

/// The restorer is linked at a fixed address far from programs (see RESTORER_BASE_* in
/// payloads/proto/src/lib.rs; keep the two in step).
fn restorer_flags(tag: &str) -> Vec<String> {
    // x86_64 code is compiled position-independent (RIP-relative) so that it can sit above
    // 4 GiB; both are then linked as plain static executables at that base.
    let (base, model) = if tag == "i686" { ("0x20000000", "static") } else { ("0x100000000000", "pic") };
    vec![
        "-C".into(),
        format!("relocation-model={model}"),
        "-C".into(),
        "link-arg=-no-pie".into(),
        "-C".into(),
        format!("link-arg=-Wl,--image-base={base}"),
    ]
}

const PAYLOADS: [Payload; 2] = [
    Payload { dir: "libdmtcp", artifact: "libdmtcp.so", rustflags: &[], arch_flags: no_flags },
    Payload {
        dir: "mtcp_restart",
        artifact: "mtcp_restart",
        rustflags: &[
            "-C",
            "link-arg=-nostartfiles",
            "-C",
            "link-arg=-nostdlib",
            "-C",
            "link-arg=-static",
            "-C",
            "target-feature=+crt-static",
        ],
        arch_flags: restorer_flags,
    },
];

const INSTALL_HINT: &str = "install the i686 toolchain with `scripts/setup.sh` \
    (it runs `rustup target add i686-unknown-linux-gnu` and `apt-get install gcc-multilib`, \
    with the Debian rustc-web fallback), or set DMTCP_I686_RUSTC and DMTCP_I686_SYSROOT";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for p in ["payloads/proto/src", "payloads/proto/Cargo.toml"] {
        println!("cargo:rerun-if-changed={p}");
    }
    for p in &PAYLOADS {
        for f in ["src", "Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed=payloads/{}/{f}", p.dir);
        }
    }
    for v in ["DMTCP_I686_RUSTC", "DMTCP_I686_SYSROOT"] {
        println!("cargo:rerun-if-env-changed={v}");
    }

    let payload_target = out.join("payload-target");
    let mut build_hash: u64 = 0xcbf2_9ce4_8422_2325;
    for arch in &ARCHES {
        let (rustc, sysroot) = toolchain_for(arch);
        for p in &PAYLOADS {
            let bytes = build_one(&cargo, &manifest, &payload_target, arch, p, &rustc, &sysroot);
            for b in &bytes {
                build_hash = (build_hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            let compressed = zstd::bulk::compress(&bytes, 19).expect("zstd compression");
            let dest = out.join(format!("{}-{}.zst", arch.tag, p.artifact));
            fs::write(&dest, compressed).expect("write compressed payload");
        }
    }
    for b in env::var("CARGO_PKG_VERSION").unwrap().bytes() {
        build_hash = (build_hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    println!("cargo:rustc-env=DMTCP_BUILD_ID={build_hash:016x}");
}

/// The rustc and optional sysroot to build `arch` with. i686 is checked here so that a missing
/// target fails the build with the command that installs it.
fn toolchain_for(arch: &Arch) -> (Option<String>, Option<String>) {
    if arch.tag != "i686" {
        return (None, None);
    }
    let rustc = env::var("DMTCP_I686_RUSTC").ok().filter(|s| !s.is_empty());
    let sysroot = env::var("DMTCP_I686_SYSROOT").ok().filter(|s| !s.is_empty());
    if sysroot.is_none() {
        let rustc_bin = rustc.clone().unwrap_or_else(|| env::var("RUSTC").unwrap_or("rustc".into()));
        let out = Command::new(&rustc_bin).args(["--print", "sysroot"]).output();
        let root = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
            _ => panic!("cannot run `{rustc_bin} --print sysroot`; {INSTALL_HINT}"),
        };
        let lib = Path::new(&root).join("lib/rustlib").join(arch.triple).join("lib");
        if !lib.is_dir() {
            panic!(
                "\n\nthe Rust standard library for {} is missing ({} does not exist).\n\
                 dmtcp must embed 32-bit payloads; {INSTALL_HINT}.\n\n",
                arch.triple,
                lib.display()
            );
        }
    }
    (rustc, sysroot)
}

fn build_one(
    cargo: &str,
    manifest: &Path,
    target_dir: &Path,
    arch: &Arch,
    p: &Payload,
    rustc: &Option<String>,
    sysroot: &Option<String>,
) -> Vec<u8> {
    let dir = manifest.join("payloads").join(p.dir);
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&dir)
        .args(["build", "--release", "--quiet", "--target", arch.triple])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if env::var_os("DMTCP_PAYLOAD_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    // Our own build's settings must not leak into the nested one.
    for (k, _) in env::vars_os() {
        let k = k.to_string_lossy().to_string();
        let keep = k == "CARGO_HOME" || k == "CARGO_NET_OFFLINE";
        if !keep
            && (k.starts_with("CARGO_")
                || k.starts_with("RUSTC")
                || k.starts_with("RUSTDOC")
                || k == "RUSTFLAGS"
                || matches!(k.as_str(), "TARGET" | "HOST" | "OPT_LEVEL" | "PROFILE" | "DEBUG" | "OUT_DIR" | "NUM_JOBS"))
        {
            cmd.env_remove(&k);
        }
    }
    let mut flags: Vec<String> = p.rustflags.iter().map(|s| s.to_string()).collect();
    flags.extend((p.arch_flags)(arch.tag));
    if let Some(s) = sysroot {
        flags.push("--sysroot".into());
        flags.push(s.clone());
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    if let Some(r) = rustc {
        cmd.env("RUSTC", r);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    if !status.success() {
        let hint = if arch.tag == "i686" { format!("; for i686, {INSTALL_HINT}") } else { String::new() };
        panic!("building payload {} for {} failed{hint}", p.dir, arch.triple);
    }
    let artifact = target_dir.join(arch.triple).join("release").join(p.artifact);
    fs::read(&artifact).unwrap_or_else(|e| panic!("read {}: {e}", artifact.display()))
}
