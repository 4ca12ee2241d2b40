//! Progress of the checkpoint in flight: each worker's `CkptProgress` figures (stream bytes
//! written of its estimate, bytes stored after compression), summed for the `--bcheckpoint`
//! clients that asked for them (FLAG_PROGRESS) and for the summary line of the log.
//!
//! Design: part of the pure state machine (time comes in, messages go out as actions); a
//! worker's last figures replace its earlier ones, so the sums never count a byte twice.
use super::{ClientId, Computation};
use dmtcp_proto::{Kind, Msg, Progress};
use std::time::Duration;

impl Computation {
    /// A `--bcheckpoint` client wants the figures as they come.
    pub(super) fn want_progress(&mut self, client: ClientId) {
        if let Some(c) = &mut self.ckpt {
            c.progress_to.push(client);
        }
    }

    pub(super) fn ckpt_progress(&mut self, now: Duration, client: ClientId, extra: &[u8]) {
        let Some(p) = Progress::decode(extra) else {
            return self.drop_client(client, format!("a progress message of {} bytes", extra.len()));
        };
        let Some(c) = &mut self.ckpt else { return };
        if !c.participants.contains(&client) {
            return;
        }
        c.progress.insert(client, p);
        c.last_progress = now;
        let sums = self.progress_sums(now);
        self.send_progress(sums);
    }

    /// The sums over the workers of the checkpoint in flight.
    pub(super) fn progress_sums(&self, now: Duration) -> Progress {
        let Some(c) = &self.ckpt else { return Progress::default() };
        let mut s = Progress::default();
        for p in c.progress.values() {
            s.written += p.written;
            s.total += p.total.max(p.written);
            s.stored += p.stored;
            s.done += p.done;
        }
        s.elapsed_ms = now.saturating_sub(c.started).as_millis() as u64;
        s
    }

    /// Sends `p` to every client that asked for progress.
    pub(super) fn send_progress(&mut self, p: Progress) {
        let Some(c) = &self.ckpt else { return };
        let to = c.progress_to.clone();
        let mut m = Msg::new(Kind::CkptProgress);
        m.generation = c.generation;
        m.num_peers = c.participants.len() as u32;
        for client in to {
            self.send(client, m, &p.encode());
        }
    }
}

/// The figures of the summary line: "12.0 MiB before compression, 3.1 MiB after".
pub fn figures(p: &Progress) -> String {
    format!("{} before compression, {} after", mib(p.written), mib(p.stored))
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
}
