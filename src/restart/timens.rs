//! The clocks of a restarted computation: CLOCK_MONOTONIC and CLOCK_BOOTTIME go on from where
//! the program left them at checkpoint (never back, never forward by the time it was not
//! running), through a time namespace whose offsets are chosen here. CLOCK_REALTIME is the real
//! time (a time namespace has no offset for it, and a program wants the real date).
//!
//! How: each image's header holds the two clocks as its process read them at checkpoint
//! (format 2.1). The computation's value is the largest over its images (all of them read the
//! same clock, a few microseconds apart), so that no process sees its clock go back. The
//! namespace's offset is `checkpoint - host_now`, where the host's clock is ours minus our own
//! namespace's offsets (`/proc/self/timens_offsets`): a kernel offset is always against the
//! host's clock, never nested, so a restart run from inside a time namespace (say, from a
//! restarted computation) still lands where the images say. That is also why `dmtcp_launch`
//! needs no time namespace of its own: a checkpoint records what the program read, whatever
//! namespace it ran in, and each restart computes its offsets from that alone; they compose
//! over any number of restarts, and a launched program keeps the host's clocks (which other
//! programs on the machine share) until its first restart.
//!
//! The group's P writes the offsets (`ns::unshare_time`) after making its user namespace and
//! before it forks C, the first process to enter the namespace (the kernel freezes the offsets
//! then). The clocks run from the moment the offsets are computed, so the program sees a leap
//! of the restart's own duration (forks, mapping the image), never the downtime.
//!
//! This file is pure but for `now` and `own_offsets` (unit tests below).
use dmtcp_proto::image::Clocks;

const NS: i64 = 1_000_000_000;

/// A time namespace's offsets, nanoseconds (may be negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    pub monotonic_ns: i64,
    pub boottime_ns: i64,
}

/// The computation's clocks at checkpoint: the largest over its images. None when an image
/// does not record them (written before format 2.1): its clocks are then left alone.
pub fn at_checkpoint(images: impl IntoIterator<Item = Option<Clocks>>) -> Option<Clocks> {
    let mut best: Option<Clocks> = None;
    for c in images {
        let c = c?;
        best = Some(match best {
            None => c,
            Some(b) => Clocks {
                monotonic_ns: b.monotonic_ns.max(c.monotonic_ns),
                boottime_ns: b.boottime_ns.max(c.boottime_ns),
            },
        });
    }
    best
}

/// The offsets that make a new namespace's clocks read `ckpt` now, given our clocks `now` and
/// our own namespace's offsets `own`.
pub fn offsets(ckpt: Clocks, now: Clocks, own: Offsets) -> Offsets {
    let off = |ckpt: u64, now: u64, own: i64| ckpt as i64 - (now as i64 - own);
    Offsets {
        monotonic_ns: off(ckpt.monotonic_ns, now.monotonic_ns, own.monotonic_ns),
        boottime_ns: off(ckpt.boottime_ns, now.boottime_ns, own.boottime_ns),
    }
}

/// The text for /proc/self/timens_offsets: one "<clock> <secs> <nanosecs>" line per clock, the
/// nanoseconds in [0, 1e9) as the kernel wants them (so -1.5 s is "-2 500000000").
pub fn offsets_text(o: Offsets) -> String {
    let line = |name: &str, ns: i64| format!("{name} {} {}\n", ns.div_euclid(NS), ns.rem_euclid(NS));
    line("monotonic", o.monotonic_ns) + &line("boottime", o.boottime_ns)
}

/// Parses /proc/self/timens_offsets ("monotonic 0 0\nboottime 0 0\n"); what it lacks is 0.
pub fn parse_offsets(text: &str) -> Offsets {
    let mut o = Offsets::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, s, n] = f[..] else { continue };
        let (Ok(s), Ok(n)) = (s.parse::<i64>(), n.parse::<i64>()) else { continue };
        let v = s.saturating_mul(NS).saturating_add(n);
        match name {
            "monotonic" | "1" => o.monotonic_ns = v,
            "boottime" | "7" => o.boottime_ns = v,
            _ => {}
        }
    }
    o
}

/// Our own namespace's offsets (zero outside a time namespace, or without time namespaces).
pub fn own_offsets() -> Offsets {
    std::fs::read_to_string("/proc/self/timens_offsets").map(|t| parse_offsets(&t)).unwrap_or_default()
}

/// Our clocks now.
pub fn now() -> Clocks {
    let read = |clock| {
        nix::time::clock_gettime(clock).map(|t| t.tv_sec() as u64 * NS as u64 + t.tv_nsec() as u64).unwrap_or(0)
    };
    Clocks {
        monotonic_ns: read(nix::time::ClockId::CLOCK_MONOTONIC),
        boottime_ns: read(nix::time::ClockId::CLOCK_BOOTTIME),
    }
}

/// What P writes into /proc/self/timens_offsets for the images' clocks, or None (with the
/// reason) when the images do not record them.
pub fn plan(images: impl IntoIterator<Item = Option<Clocks>>) -> Result<String, &'static str> {
    let ckpt = at_checkpoint(images).ok_or("an image does not record its clocks (written before format 2.1)")?;
    Ok(offsets_text(offsets(ckpt, now(), own_offsets())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(m: u64, b: u64) -> Clocks {
        Clocks { monotonic_ns: m, boottime_ns: b }
    }

    #[test]
    fn the_computation_takes_the_latest_clock_of_its_images() {
        assert_eq!(at_checkpoint([Some(c(10, 50)), Some(c(30, 40)), Some(c(20, 60))]), Some(c(30, 60)));
        assert_eq!(at_checkpoint([Some(c(10, 50))]), Some(c(10, 50)));
        assert_eq!(at_checkpoint([Some(c(10, 50)), None]), None, "a 2.0 image among them");
        assert_eq!(at_checkpoint([]), None);
    }

    #[test]
    fn offsets_bring_the_clocks_back_to_the_checkpoint() {
        // Checkpoint at 100 s, restarted on a host at 5000 s: offset -4900 s.
        let o = offsets(c(100 * NS as u64, 200 * NS as u64), c(5000 * NS as u64, 5000 * NS as u64), Offsets::default());
        assert_eq!(o, Offsets { monotonic_ns: -4900 * NS, boottime_ns: -4800 * NS });
        // After a reboot the host clock is behind the checkpoint: a positive offset.
        let o = offsets(c(9000, 9000), c(1000, 2000), Offsets::default());
        assert_eq!(o, Offsets { monotonic_ns: 8000, boottime_ns: 7000 });
    }

    /// dmtcp_restart inside a time namespace reads shifted clocks; the offsets are against the
    /// host clock, so ours are added back: the new namespace reads the checkpoint's time.
    #[test]
    fn offsets_compose_with_our_own_namespace() {
        let host = 5000 * NS;
        let own = Offsets { monotonic_ns: -3000 * NS, boottime_ns: 7 };
        let ours = c((host + own.monotonic_ns) as u64, (host + own.boottime_ns) as u64);
        let ckpt = c(100 * NS as u64, 300 * NS as u64);
        let o = offsets(ckpt, ours, own);
        assert_eq!(host + o.monotonic_ns, 100 * NS);
        assert_eq!(host + o.boottime_ns, 300 * NS);
    }

    #[test]
    fn offsets_text_has_nanoseconds_in_range_for_negative_offsets() {
        let t = offsets_text(Offsets { monotonic_ns: -1_500_000_000, boottime_ns: 2_000_000_001 });
        assert_eq!(t, "monotonic -2 500000000\nboottime 2 1\n");
        assert_eq!(parse_offsets(&t), Offsets { monotonic_ns: -1_500_000_000, boottime_ns: 2_000_000_001 });
        assert_eq!(offsets_text(Offsets::default()), "monotonic 0 0\nboottime 0 0\n");
    }

    #[test]
    fn parse_offsets_reads_the_kernel_file_and_ignores_the_rest() {
        let o = parse_offsets("monotonic -5 100\nboottime 3 0\n");
        assert_eq!(o, Offsets { monotonic_ns: -5 * NS + 100, boottime_ns: 3 * NS });
        assert_eq!(parse_offsets("garbage\nmonotonic x y\n\n"), Offsets::default());
        assert_eq!(parse_offsets("1 2 0\n7 -1 0\n"), Offsets { monotonic_ns: 2 * NS, boottime_ns: -NS });
    }

    #[test]
    fn plan_refuses_images_without_clocks() {
        assert!(plan([None]).is_err());
        let t = plan([Some(c(NS as u64, NS as u64))]).unwrap();
        assert!(t.starts_with("monotonic ") && t.contains("\nboottime "), "{t}");
    }
}
