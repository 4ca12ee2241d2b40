//! Path virtualisation at restart (DMTCP's pathvirt plugin, `--pathvirt`): a computation moved
//! to another folder or machine comes back with its paths moved too. `DMTCP_PATH_PREFIX` lists
//! the old prefixes and `DMTCP_NEW_PATH_PREFIX` the new ones, colon-separated, paired in order
//! (both read from `dmtcp_restart`'s environment). A path whose leading components are an old
//! prefix is taken from the new one; the first matching prefix wins.
//!
//! Where it applies (all on the restart side, before the program runs): the paths of the files
//! the processes held open (`restart::files` opens them, and puts saved contents back, at the
//! new paths), and the working folder (sent to the library as the restart-info line
//! `DMTCP_RESTART_CWD`, which `resources/process.rs` returns to instead of the old one).
//! Private file mappings need nothing: their pages are in the image, and one whose file is gone
//! comes back as anonymous memory with the same bytes. Not translated: shared file mappings
//! (the restorer reopens them at their old path), and paths the program opens at run time
//! (DMTCP wraps open(); we do not).
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PathMap {
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl PathMap {
    /// From the two variables' values (`None`: unset). Errors name the variables.
    pub fn new(old: Option<&str>, new: Option<&str>) -> Result<PathMap, String> {
        let list = |v: Option<&str>| -> Vec<PathBuf> {
            v.unwrap_or("").split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect()
        };
        let (old, new) = (list(old), list(new));
        if new.is_empty() {
            return Ok(PathMap::default());
        }
        if old.len() != new.len() {
            return Err(format!(
                "{} has {} prefixes and {} has {}: they pair up in order, one new prefix per old one",
                dmtcp_proto::env::PATH_PREFIX,
                old.len(),
                dmtcp_proto::env::NEW_PATH_PREFIX,
                new.len()
            ));
        }
        if let Some(p) = old.iter().chain(&new).find(|p| !p.is_absolute()) {
            return Err(format!(
                "{}/{}: {} is not an absolute path",
                dmtcp_proto::env::PATH_PREFIX,
                dmtcp_proto::env::NEW_PATH_PREFIX,
                p.display()
            ));
        }
        Ok(PathMap { pairs: old.into_iter().zip(new).collect() })
    }

    pub fn from_env() -> Result<PathMap, String> {
        let get = |n: &str| std::env::var(n).ok();
        PathMap::new(get(dmtcp_proto::env::PATH_PREFIX).as_deref(), get(dmtcp_proto::env::NEW_PATH_PREFIX).as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `path` under its new prefix, or None when no old prefix covers it (whole components:
    /// /data/run does not cover /data/run2).
    pub fn translate(&self, path: &Path) -> Option<PathBuf> {
        self.pairs.iter().find_map(|(old, new)| {
            let rest = path.strip_prefix(old).ok()?;
            if rest.components().any(|c| c == Component::ParentDir) {
                return None;
            }
            Some(if rest.as_os_str().is_empty() { new.clone() } else { new.join(rest) })
        })
    }

    /// `translate`, or the path itself.
    pub fn apply(&self, path: &Path) -> PathBuf {
        self.translate(path).unwrap_or_else(|| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pair_up_in_order_and_cover_whole_components() {
        let m = PathMap::new(Some("/data/run:/home/a"), Some("/scratch/run:/home/b")).unwrap();
        assert_eq!(m.apply(Path::new("/data/run/out.txt")), PathBuf::from("/scratch/run/out.txt"));
        assert_eq!(m.apply(Path::new("/data/run")), PathBuf::from("/scratch/run"));
        assert_eq!(m.apply(Path::new("/home/a/x/y")), PathBuf::from("/home/b/x/y"));
        assert_eq!(m.translate(Path::new("/data/run2/x")), None, "a prefix is whole components");
        assert_eq!(m.translate(Path::new("/etc/passwd")), None);
        let first = PathMap::new(Some("/a:/a/b"), Some("/x:/y")).unwrap();
        assert_eq!(first.apply(Path::new("/a/b/c")), PathBuf::from("/x/b/c"), "the first prefix wins");
    }

    #[test]
    fn no_new_prefix_maps_nothing_and_bad_lists_are_refused_with_the_variables() {
        assert!(PathMap::new(Some("/a"), None).unwrap().is_empty());
        assert!(PathMap::new(None, Some("")).unwrap().is_empty());
        let e = PathMap::new(Some("/a:/b"), Some("/x")).unwrap_err();
        assert!(e.contains("DMTCP_PATH_PREFIX has 2") && e.contains("DMTCP_NEW_PATH_PREFIX has 1"), "{e}");
        let e = PathMap::new(None, Some("/x")).unwrap_err();
        assert!(e.contains("has 0"), "{e}");
        let e = PathMap::new(Some("rel"), Some("/x")).unwrap_err();
        assert!(e.contains("rel is not an absolute path"), "{e}");
    }
}
