//! The global barriers of a checkpoint and of a restart, in the order every process passes them
//! (reference §2.3). The coordinator and the preload library share this one type, so the
//! sequence the library runs is the sequence the coordinator expects.
//!
//! On the wire a barrier travels by name in `Msg::name` (today's names, unchanged).

/// One global barrier. The discriminants follow the order of `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum Barrier {
    /// Every process got `DoCheckpoint`; its threads are about to stop.
    Suspend = 0,
    /// Every process stopped its threads (or failed to and says so in its state).
    Checkpoint = 1,
    /// Every process took part in the pipe drainer election; draining may start.
    Drain = 2,
    /// Every process wrote its image (or failed to) and refilled its pipes.
    WriteCkpt = 3,
    /// After a restart: every process of the computation is back and restored its kernel state.
    Restart = 4,
}

impl Barrier {
    /// Every barrier, checkpoint sequence first, then the restart one.
    pub const ALL: [Barrier; 5] =
        [Barrier::Suspend, Barrier::Checkpoint, Barrier::Drain, Barrier::WriteCkpt, Barrier::Restart];
    /// The barriers of one checkpoint, in order.
    pub const CHECKPOINT: [Barrier; 4] = [Barrier::Suspend, Barrier::Checkpoint, Barrier::Drain, Barrier::WriteCkpt];
    /// The barriers of one restart, in order.
    pub const RESTART: [Barrier; 1] = [Barrier::Restart];

    /// The name on the wire.
    pub const fn name(self) -> &'static [u8] {
        match self {
            Barrier::Suspend => b"DMT:SUSPEND",
            Barrier::Checkpoint => b"DMT:CHECKPOINT",
            Barrier::Drain => b"DMT:Drain",
            Barrier::WriteCkpt => b"DMT:WriteCkpt",
            Barrier::Restart => b"DMT:Restart",
        }
    }

    /// The name as text, for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Barrier::Suspend => "DMT:SUSPEND",
            Barrier::Checkpoint => "DMT:CHECKPOINT",
            Barrier::Drain => "DMT:Drain",
            Barrier::WriteCkpt => "DMT:WriteCkpt",
            Barrier::Restart => "DMT:Restart",
        }
    }

    /// The barrier of a wire name; None for a name no version of us sends.
    pub fn from_name(name: &[u8]) -> Option<Barrier> {
        Barrier::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The barrier that follows this one in its sequence (checkpoint or restart); None after the
    /// last one.
    pub const fn next(self) -> Option<Barrier> {
        match self {
            Barrier::Suspend => Some(Barrier::Checkpoint),
            Barrier::Checkpoint => Some(Barrier::Drain),
            Barrier::Drain => Some(Barrier::WriteCkpt),
            Barrier::WriteCkpt | Barrier::Restart => None,
        }
    }

    /// The first barrier of a checkpoint.
    pub const fn first_of_checkpoint() -> Barrier {
        Barrier::CHECKPOINT[0]
    }

    /// The first barrier of a restart.
    pub const fn first_of_restart() -> Barrier {
        Barrier::RESTART[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, Msg, NAME_LEN};

    #[test]
    fn wire_names_are_todays() {
        let names: [&[u8]; 5] = [b"DMT:SUSPEND", b"DMT:CHECKPOINT", b"DMT:Drain", b"DMT:WriteCkpt", b"DMT:Restart"];
        for (b, n) in Barrier::ALL.into_iter().zip(names) {
            assert_eq!(b.name(), n);
            assert_eq!(b.as_str().as_bytes(), n);
        }
    }

    #[test]
    fn from_name_inverts_name_and_refuses_others() {
        for b in Barrier::ALL {
            assert_eq!(Barrier::from_name(b.name()), Some(b));
        }
        for bad in [&b""[..], b"DMT:suspend", b"DMT:SUSPEND\0", b"DMT:Drain ", b"DMT:"] {
            assert_eq!(Barrier::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_walks_each_sequence_in_order_and_ends() {
        let mut seq = [Barrier::Restart; 4];
        let mut n = 0;
        let mut b = Some(Barrier::first_of_checkpoint());
        while let Some(x) = b {
            seq[n] = x;
            n += 1;
            b = x.next();
        }
        assert_eq!((n, seq), (4, Barrier::CHECKPOINT));
        assert_eq!(Barrier::first_of_restart(), Barrier::Restart);
        assert_eq!(Barrier::Restart.next(), None);
    }

    #[test]
    fn order_and_discriminants_follow_all() {
        for (i, b) in Barrier::ALL.into_iter().enumerate() {
            assert_eq!(b as u32, i as u32);
        }
        assert!(Barrier::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(&Barrier::ALL[..4], &Barrier::CHECKPOINT[..]);
        assert_eq!(&Barrier::ALL[4..], &Barrier::RESTART[..]);
    }

    #[test]
    fn every_name_fits_a_message_and_survives_the_wire() {
        for b in Barrier::ALL {
            assert!(b.name().len() < NAME_LEN);
            let m = Msg::decode(&Msg::new(Kind::Barrier).with_name(b.name()).encode()).unwrap();
            assert_eq!(Barrier::from_name(m.name_bytes()), Some(b));
        }
    }
}
