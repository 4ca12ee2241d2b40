//! Other hosts for the tests: each `NetHost` is a network namespace joined to this one by a
//! veth pair, with an address on each side, made when created and removed when dropped. Only
//! the test set-up needs root (`ip netns`); the programs and the tool run in it as they would on
//! another machine. Traffic stays on the two addresses and on each side's loopback.
use crate::util::*;
use std::process::Command;

pub struct NetHost {
    pub name: String,
    outer_link: String,
    /// Our side's address, which the other host reaches us at.
    pub outer_addr: String,
    /// The other host's address.
    pub addr: String,
}

/// Whether this test run may build hosts (it runs as root, as CI does).
pub fn can_build_hosts() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn ip(args: &[&str]) {
    run_ok(Command::new("ip").args(args));
}

impl NetHost {
    /// Host number `idx` of this test process (names and subnets are unique per process).
    pub fn new(idx: u32) -> NetHost {
        let pid = std::process::id();
        let name = format!("dmtcp{pid}h{idx}");
        let tag = format!("{}{idx}", pid % 100_000);
        let (outer_link, inner_link) = (format!("vo{tag}"), format!("vi{tag}"));
        let net = (pid as u32 + idx * 37) % 250 + 1;
        let outer_addr = format!("10.213.{net}.1");
        let addr = format!("10.213.{net}.2");
        // A leftover of an earlier run with the same pid is removed first.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &outer_link]).output();
        ip(&["netns", "add", &name]);
        let h = NetHost { name, outer_link, outer_addr, addr };
        ip(&["link", "add", &h.outer_link, "type", "veth", "peer", "name", &inner_link]);
        ip(&["link", "set", &inner_link, "netns", &h.name]);
        ip(&["addr", "add", &format!("{}/24", h.outer_addr), "dev", &h.outer_link]);
        ip(&["link", "set", &h.outer_link, "up"]);
        ip(&["-n", &h.name, "addr", "add", &format!("{}/24", h.addr), "dev", &inner_link]);
        ip(&["-n", &h.name, "link", "set", &inner_link, "up"]);
        ip(&["-n", &h.name, "link", "set", "lo", "up"]);
        h
    }

    /// `cmd` to run on this host (`ip netns exec NAME cmd`), with the environment of `cmd`.
    pub fn exec(&self, cmd: &Command) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c
    }
}

impl Drop for NetHost {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = Command::new("ip").args(["link", "del", &self.outer_link]).output();
    }
}
