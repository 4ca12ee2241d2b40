//! ELF facts the launcher needs, read with goblin: the class (32 or 64 bit) of a program, whether
//! it is static, and the seed document's dlsym offset (`dlsym - dlinfo`) in the C library that
//! programs of each architecture load on this host (section B of multi-arch.txt).
//!
//! The offsets are exported as DMTCP_DLSYM_OFFSET (64-bit) and DMTCP_DLSYM_OFFSET_M32 (32-bit)
//! and stored in the shared-data area; the preload library adds its architecture's offset to the
//! address of `dlinfo` to call the real `dlsym` even when a program wraps `dlsym` itself.
use crate::common::payloads::Arch;
use goblin::elf::{header, program_header, Elf};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What went wrong reading a program or a C library; each names the file.
#[derive(Debug)]
pub enum DlsymError {
    Read(PathBuf, io::Error),
    NotElf(PathBuf),
    BadElf(PathBuf, String),
    UnsupportedArch { path: PathBuf, class: u8, machine: &'static str },
    EmptyShebang(PathBuf),
    MissingSymbol(PathBuf, &'static str),
    NoLoader(Arch),
    Loader(PathBuf, io::Error),
    NoLibc { loader: PathBuf, sample: PathBuf, arch: Arch },
}

impl fmt::Display for DlsymError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DlsymError::Read(p, e) => write!(f, "{}: {e}", p.display()),
            DlsymError::NotElf(p) => write!(f, "{} is not an ELF program", p.display()),
            DlsymError::BadElf(p, e) => write!(f, "{}: bad ELF file: {e}", p.display()),
            DlsymError::UnsupportedArch { path, class, machine } => {
                write!(f, "{}: unsupported architecture (ELF class {class}, machine {machine})", path.display())
            }
            DlsymError::EmptyShebang(p) => write!(f, "{}: script with an empty #! line", p.display()),
            DlsymError::MissingSymbol(p, s) => write!(f, "{}: no {s}", p.display()),
            DlsymError::NoLoader(a) => write!(f, "no {} dynamic loader on this host", a.name()),
            DlsymError::Loader(l, e) => write!(f, "{}: {e}", l.display()),
            DlsymError::NoLibc { loader, sample, arch } => write!(
                f,
                "{} --list {} did not name a libc.so.6 (is the {} C library installed?)",
                loader.display(),
                sample.display(),
                arch.name()
            ),
        }
    }
}

impl std::error::Error for DlsymError {}

/// What the launcher learned about a program file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    pub arch: Arch,
    pub is_static: bool,
    /// For a `#!` script, the interpreter whose class decided `arch`.
    pub interpreter: Option<PathBuf>,
}

/// Class of an ELF file from its header, or an error naming what it is instead.
pub fn elf_arch(path: &Path) -> Result<(Arch, bool), DlsymError> {
    let bytes = fs::read(path).map_err(|e| DlsymError::Read(path.into(), e))?;
    if bytes.len() < header::SIZEOF_IDENT || &bytes[..4] != header::ELFMAG {
        return Err(DlsymError::NotElf(path.into()));
    }
    let elf = Elf::parse(&bytes).map_err(|e| DlsymError::BadElf(path.into(), e.to_string()))?;
    let arch = match (elf.header.e_ident[header::EI_CLASS], elf.header.e_machine) {
        (header::ELFCLASS64, header::EM_X86_64) => Arch::X86_64,
        (header::ELFCLASS32, header::EM_386) => Arch::I686,
        (class, machine) => {
            return Err(DlsymError::UnsupportedArch {
                path: path.into(),
                class,
                machine: header::machine_to_str(machine),
            })
        }
    };
    let is_static = !elf.program_headers.iter().any(|p| p.p_type == program_header::PT_INTERP);
    Ok((arch, is_static))
}

/// Classifies a program: an ELF file directly, a `#!` script by its interpreter.
pub fn program_info(path: &Path) -> Result<ProgramInfo, DlsymError> {
    let mut head = [0u8; 256];
    let n = fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| DlsymError::Read(path.into(), e))?;
    if n >= 2 && &head[..2] == b"#!" {
        let line = head[2..n].split(|&c| c == b'\n').next().unwrap_or(&[]);
        let line = String::from_utf8_lossy(line);
        let interp = line.split_whitespace().next().ok_or_else(|| DlsymError::EmptyShebang(path.into()))?;
        let interp = PathBuf::from(interp);
        let (arch, is_static) = elf_arch(&interp)?;
        return Ok(ProgramInfo { arch, is_static, interpreter: Some(interp) });
    }
    let (arch, is_static) = elf_arch(path)?;
    Ok(ProgramInfo { arch, is_static, interpreter: None })
}

/// Address of the default (non-hidden) version of each named dynamic symbol.
fn default_symbol(elf: &Elf<'_>, name: &str) -> Option<u64> {
    let mut found = None;
    for (i, sym) in elf.dynsyms.iter().enumerate() {
        if sym.st_value == 0 || sym.st_shndx == 0 || elf.dynstrtab.get_at(sym.st_name) != Some(name) {
            continue;
        }
        let hidden = elf.versym.as_ref().and_then(|v| v.get_at(i)).map(|v| v.is_hidden()).unwrap_or(false);
        if !hidden {
            return Some(sym.st_value);
        }
        found.get_or_insert(sym.st_value);
    }
    found
}

/// `dlsym - dlinfo` in the C library at `libc`.
pub fn offset_in(libc: &Path) -> Result<i64, DlsymError> {
    let bytes = fs::read(libc).map_err(|e| DlsymError::Read(libc.into(), e))?;
    let elf = Elf::parse(&bytes).map_err(|e| DlsymError::BadElf(libc.into(), e.to_string()))?;
    let dlsym = default_symbol(&elf, "dlsym").ok_or_else(|| DlsymError::MissingSymbol(libc.into(), "dlsym"))?;
    let dlinfo = default_symbol(&elf, "dlinfo").ok_or_else(|| DlsymError::MissingSymbol(libc.into(), "dlinfo"))?;
    Ok(dlsym as i64 - dlinfo as i64)
}

/// The C library that a program of `arch` loads on this host. The dynamic loader is asked
/// (`ld.so --list` on a library of that architecture), because where Debian keeps the 32-bit
/// libc (/usr/lib32) is not where other systems do.
pub fn find_libc(arch: Arch, sample: &Path) -> Result<PathBuf, DlsymError> {
    let loaders: &[&str] = match arch {
        Arch::X86_64 => &["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"],
        Arch::I686 => &["/lib/ld-linux.so.2", "/lib32/ld-linux.so.2", "/usr/lib32/ld-linux.so.2"],
    };
    let loader = loaders.iter().find(|l| Path::new(l).exists()).ok_or(DlsymError::NoLoader(arch))?;
    let out = Command::new(loader)
        .arg("--list")
        .arg(sample)
        .env_remove("LD_PRELOAD")
        .output()
        .map_err(|e| DlsymError::Loader(loader.into(), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("libc.so.6 => ") {
            if let Some(path) = rest.split_whitespace().next() {
                return Ok(PathBuf::from(path));
            }
        }
    }
    Err(DlsymError::NoLibc { loader: loader.into(), sample: sample.into(), arch })
}

/// The offset for `arch`, or an explanation of why it is unknown.
pub fn offset_for(arch: Arch, sample: &Path) -> Result<i64, DlsymError> {
    offset_in(&find_libc(arch, sample)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_binary_is_64_bit_dynamic() {
        let (arch, is_static) = elf_arch(Path::new("/proc/self/exe")).unwrap();
        assert_eq!(arch, Arch::X86_64);
        assert!(!is_static);
    }

    #[test]
    fn script_is_classed_by_its_interpreter() {
        let dir = std::env::temp_dir().join(format!("dmtcp-dlsym-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let s = dir.join("s.sh");
        fs::write(&s, "#!/bin/sh -e\necho hi\n").unwrap();
        let info = program_info(&s).unwrap();
        assert_eq!(info.interpreter.as_deref(), Some(Path::new("/bin/sh")));
        assert_eq!(info.arch, Arch::X86_64);
        fs::write(&s, "plain text").unwrap();
        assert!(matches!(program_info(&s).unwrap_err(), DlsymError::NotElf(p) if p == s));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn native_offset_matches_the_running_libc() {
        extern "C" {
            fn dlinfo(h: *mut libc::c_void, req: libc::c_int, arg: *mut libc::c_void) -> libc::c_int;
        }
        let exe = std::env::current_exe().unwrap();
        let libc = find_libc(Arch::X86_64, &exe).unwrap();
        let off = offset_in(&libc).unwrap();
        let want = libc::dlsym as *const () as usize as i64 - dlinfo as *const () as usize as i64;
        assert_eq!(off, want, "{}", libc.display());
    }
}
