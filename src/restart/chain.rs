//! Incremental chains (`dmtcp_proto::image::chain`): `dmtcp_restart` is given the newest image
//! of a chain (the one the restart script names) and finds the older ones beside it, each by
//! the file name its successor names, checking every link: the base must exist, carry the
//! checksum and id its successor names, stand one position lower and belong to the same
//! process. A missing or mismatching link is refused with a message naming both files; nothing
//! starts. The walk is pure over a loader (`resolve`), so the tests need no files.
use std::fmt;
use std::path::{Path, PathBuf};

/// What the chain walk needs of one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub image_id: u64,
    pub position: u32,
    /// The checksum of the image's own trailer.
    pub checksum: u64,
    /// For a delta: the base's file name (beside it), checksum and id.
    pub base: Option<(String, u64, u64)>,
    pub comp_id: u64,
    pub vpid: i32,
}

/// Why a chain is refused; the Display text is the whole message.
#[derive(Debug, PartialEq, Eq)]
pub enum ChainError {
    Missing { image: PathBuf, base: PathBuf },
    Unreadable { image: PathBuf, base: PathBuf, why: String },
    Checksum { image: PathBuf, base: PathBuf, want: u64, got: u64 },
    Mismatch { image: PathBuf, base: PathBuf, what: &'static str },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Missing { image, base } => write!(
                f,
                "{}: its base image {} is missing; the chain of incremental images is broken",
                image.display(),
                base.display()
            ),
            ChainError::Unreadable { image, base, why } => {
                write!(f, "{}: its base image {}: {why}", image.display(), base.display())
            }
            ChainError::Checksum { image, base, want, got } => write!(
                f,
                "{}: its base image {} has checksum {got:016x}, not {want:016x} as the delta says; \
                 the chain of incremental images is broken",
                image.display(),
                base.display()
            ),
            ChainError::Mismatch { image, base, what } => write!(
                f,
                "{}: its base image {} is {what}; the chain of incremental images is broken",
                image.display(),
                base.display()
            ),
        }
    }
}

impl ChainError {
    /// The base image the broken link names.
    pub fn base(&self) -> &Path {
        match self {
            ChainError::Missing { base, .. }
            | ChainError::Unreadable { base, .. }
            | ChainError::Checksum { base, .. }
            | ChainError::Mismatch { base, .. } => base,
        }
    }
}

impl std::error::Error for ChainError {}

/// The result of loading one file: `None` when it does not exist.
pub type Loaded<T> = Result<Option<(LinkFacts, T)>, String>;

/// Walks from the newest image (`path`, `facts`) down to its full image, loading each base
/// with `load`; returns the older images, oldest first (empty for a full image).
pub fn resolve<T>(
    path: &Path,
    facts: &LinkFacts,
    mut load: impl FnMut(&Path) -> Loaded<T>,
) -> Result<Vec<T>, ChainError> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = Vec::new();
    let (mut cur_path, mut cur) = (path.to_path_buf(), facts.clone());
    while let Some((name, want_sum, want_id)) = cur.base.clone() {
        let base = dir.join(&name);
        let err = |what| ChainError::Mismatch { image: cur_path.clone(), base: base.clone(), what };
        let (f, t) = match load(&base) {
            Ok(Some(v)) => v,
            Ok(None) => return Err(ChainError::Missing { image: cur_path, base }),
            Err(why) => return Err(ChainError::Unreadable { image: cur_path, base, why }),
        };
        if f.checksum != want_sum {
            return Err(ChainError::Checksum { image: cur_path, base, want: want_sum, got: f.checksum });
        }
        if f.image_id != want_id {
            return Err(err("another image than the one the delta was written on (its id differs)"));
        }
        if f.position + 1 != cur.position {
            return Err(err("not the image just before it in the chain (its position differs)"));
        }
        if f.comp_id != cur.comp_id || f.vpid != cur.vpid {
            return Err(err("an image of another process"));
        }
        out.push(t);
        cur_path = base;
        cur = f;
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn link(id: u64, pos: u32, sum: u64, base: Option<(&str, u64, u64)>) -> LinkFacts {
        LinkFacts {
            image_id: id,
            position: pos,
            checksum: sum,
            base: base.map(|(n, s, i)| (n.to_string(), s, i)),
            comp_id: 9,
            vpid: 40000,
        }
    }

    /// A folder /c with a full image and two deltas on it.
    fn folder() -> HashMap<PathBuf, LinkFacts> {
        let mut m = HashMap::new();
        m.insert(PathBuf::from("/c/a.dmtcp.0"), link(10, 0, 0xa0, None));
        m.insert(PathBuf::from("/c/a.dmtcp.1"), link(11, 1, 0xa1, Some(("a.dmtcp.0", 0xa0, 10))));
        m.insert(PathBuf::from("/c/a.dmtcp"), link(12, 2, 0xa2, Some(("a.dmtcp.1", 0xa1, 11))));
        m
    }

    fn walk(m: &HashMap<PathBuf, LinkFacts>, newest: &str) -> Result<Vec<PathBuf>, ChainError> {
        let p = PathBuf::from(newest);
        resolve(&p, &m[&p], |q| Ok(m.get(q).map(|f| (f.clone(), q.to_path_buf()))))
    }

    #[test]
    fn a_chain_is_found_beside_the_newest_oldest_first() {
        let m = folder();
        assert_eq!(walk(&m, "/c/a.dmtcp").unwrap(), [PathBuf::from("/c/a.dmtcp.0"), PathBuf::from("/c/a.dmtcp.1")]);
        assert_eq!(walk(&m, "/c/a.dmtcp.1").unwrap(), [PathBuf::from("/c/a.dmtcp.0")]);
        assert!(walk(&m, "/c/a.dmtcp.0").unwrap().is_empty(), "a full image stands alone");
    }

    #[test]
    fn a_missing_base_is_refused_naming_both_files() {
        let mut m = folder();
        m.remove(&PathBuf::from("/c/a.dmtcp.0"));
        let e = walk(&m, "/c/a.dmtcp").unwrap_err();
        assert_eq!(e, ChainError::Missing { image: "/c/a.dmtcp.1".into(), base: "/c/a.dmtcp.0".into() });
        let text = e.to_string();
        assert!(text.contains("/c/a.dmtcp.1: its base image /c/a.dmtcp.0 is missing"), "{text}");
    }

    #[test]
    fn a_mismatching_base_is_refused_by_checksum_id_position_and_process() {
        let key = PathBuf::from("/c/a.dmtcp.1");
        type Edit = fn(&mut LinkFacts);
        let cases: [(Edit, &str); 4] = [
            (|f| f.checksum = 0xbad, "has checksum 0000000000000bad, not 00000000000000a1"),
            (|f| f.image_id = 99, "its id differs"),
            (|f| f.position = 0, "its position differs"),
            (|f| f.vpid = 1, "another process"),
        ];
        for (edit, says) in cases {
            let mut m = folder();
            edit(m.get_mut(&key).unwrap());
            if m[&key].position == 0 {
                m.get_mut(&key).unwrap().base = None;
            }
            let text = walk(&m, "/c/a.dmtcp").unwrap_err().to_string();
            assert!(text.starts_with("/c/a.dmtcp: its base image /c/a.dmtcp.1"), "{text}");
            assert!(text.contains(says), "{says}: {text}");
        }
    }

    #[test]
    fn an_unreadable_base_says_why() {
        let m = folder();
        let p = PathBuf::from("/c/a.dmtcp");
        let e = resolve::<()>(&p, &m[&p], |_| Err("checksum mismatch: the image is corrupt".into())).unwrap_err();
        assert!(e.to_string().contains("/c/a.dmtcp.1: checksum mismatch"), "{e}");
    }
}
