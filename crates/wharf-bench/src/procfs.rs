//! Server CPU time and memory from /proc: the server's own process, or for
//! PostgreSQL the postmaster and all its children (one backend per
//! connection, plus the WAL writer and checkpointer that do the fsyncs).

use std::collections::HashMap;
use std::fs;

/// Linux reports /proc times in USER_HZ, which the kernel ABI fixes at 100
/// on every architecture it exposes to user space through /proc.
const TICKS_PER_SECOND: f64 = 100.0;

/// A process (and optionally its children) whose resources a phase reports.
#[derive(Debug, Clone)]
pub struct Watched {
    pub pid: u32,
    pub with_children: bool,
}

/// CPU ticks per live process, and nanoseconds spent runnable but waiting
/// for a CPU per live thread, at one instant.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    ticks: HashMap<u32, u64>,
    waiting_ns: HashMap<u32, u64>,
}

/// The run-queue wait of every thread of `pid` (field 2 of schedstat).
fn add_runqueue_waits(pid: u32, into: &mut HashMap<u32, u64>) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let waited = fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok());
        if let Some(waited) = waited {
            into.insert(tid, waited);
        }
    }
}

/// Resident bytes at one instant. For a process tree, anonymous memory is
/// private to each process and summed, while file-backed pages (the binary,
/// libraries) and shared memory (PostgreSQL's shared buffers) are mapped by
/// every process and counted once, with the largest process's figure.
fn rss_bytes(pids: &[u32]) -> u64 {
    let mut anonymous = 0;
    let mut file_max = 0;
    let mut shared_max = 0;
    for pid in pids {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        anonymous += field("RssAnon:");
        file_max = file_max.max(field("RssFile:"));
        shared_max = shared_max.max(field("RssShmem:"));
    }
    anonymous + file_max + shared_max
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 2..)?.split_whitespace().nth(1)?.parse().ok()
}

impl Watched {
    /// The pid and, if asked, its direct children (PostgreSQL's backends).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        if self.with_children {
            if let Ok(entries) = fs::read_dir("/proc") {
                for entry in entries.flatten() {
                    let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                        continue;
                    };
                    if parent_of(pid) == Some(self.pid) {
                        pids.push(pid);
                    }
                }
            }
        }
        pids
    }

    pub fn cpu(&self) -> CpuSnapshot {
        let pids = self.pids();
        let mut waiting_ns = HashMap::new();
        for pid in &pids {
            add_runqueue_waits(*pid, &mut waiting_ns);
        }
        CpuSnapshot { ticks: pids.into_iter().filter_map(|pid| Some((pid, cpu_ticks(pid)?))).collect(), waiting_ns }
    }

    pub fn rss(&self) -> u64 {
        rss_bytes(&self.pids())
    }

    /// The kernel's own peak resident size of the main process (VmHWM).
    pub fn peak_rss(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?.split_whitespace().next()?;
        Some(kib.parse::<u64>().ok()? * 1024)
    }
}

/// CPU seconds spent between two snapshots by processes alive at the end
/// (a process born meanwhile counts from zero).
pub fn cpu_seconds_between(start: &CpuSnapshot, end: &CpuSnapshot) -> f64 {
    delta(&start.ticks, &end.ticks) as f64 / TICKS_PER_SECOND
}

/// Seconds threads spent runnable but not running between two snapshots:
/// time lost to other processes competing for the same cores.
pub fn runqueue_wait_seconds_between(start: &CpuSnapshot, end: &CpuSnapshot) -> f64 {
    delta(&start.waiting_ns, &end.waiting_ns) as f64 / 1e9
}

fn delta(start: &HashMap<u32, u64>, end: &HashMap<u32, u64>) -> u64 {
    end.iter().map(|(id, value)| value.saturating_sub(start.get(id).copied().unwrap_or(0))).sum()
}

/// The machine's CPU time by kind, in ticks, from the first line of
/// /proc/stat: everything, and what the hypervisor gave to other guests
/// while this one had work (steal).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineTimes {
    total: u64,
    steal: u64,
}

pub fn machine_times() -> Option<MachineTimes> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest time is
    // already inside user and nice).
    let fields: Vec<u64> =
        line.split_whitespace().skip(1).take(8).map(|field| field.parse().ok()).collect::<Option<_>>()?;
    Some(MachineTimes { total: fields.iter().sum(), steal: *fields.get(7)? })
}

/// Percent of the machine's CPU time stolen by the hypervisor between two
/// readings: how much the cores this run had were really someone else's.
pub fn steal_percent_between(start: &MachineTimes, end: &MachineTimes) -> Option<f64> {
    let total = end.total.checked_sub(start.total).filter(|&total| total > 0)?;
    Some(end.steal.saturating_sub(start.steal) as f64 * 100.0 / total as f64)
}

/// This process (the load generator).
pub fn own() -> Watched {
    Watched { pid: std::process::id(), with_children: false }
}

/// The pid of the process listening on TCP `port` (IPv4 or IPv6), found
/// through the socket inode in /proc/net/tcp* and the owners' fd tables.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let port_hex = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1, st is field 3 (0A = LISTEN), inode is field 9.
            if fields.len() > 9 && fields[1].ends_with(&port_hex) && fields[3] == "0A" {
                inodes.push(format!("socket:[{}]", fields[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(link) = fs::read_link(fd.path()) {
                if inodes.iter().any(|inode| link.as_os_str() == inode.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_cpu_and_memory() {
        let me = Watched { pid: std::process::id(), with_children: false };
        let busy: u64 = (0..5_000_000u64).fold(0, |acc, x| acc.wrapping_add(x * x));
        assert!(busy > 0);
        assert!(me.rss() > 1024 * 1024, "a test binary is resident for more than 1 MiB");
        assert!(me.peak_rss().unwrap_or(0) >= me.rss() / 2);
        let snapshot = me.cpu();
        assert!(snapshot.ticks.contains_key(&std::process::id()));
        assert!(snapshot.waiting_ns.contains_key(&std::process::id()), "the main thread has a schedstat");
    }

    #[test]
    fn steal_is_a_share_of_the_machine_time_between_readings() {
        let start = MachineTimes { total: 1_000, steal: 10 };
        let end = MachineTimes { total: 1_200, steal: 40 };
        assert_eq!(steal_percent_between(&start, &end), Some(15.0));
        assert_eq!(steal_percent_between(&end, &end), None, "no time passed");
        let now = machine_times().expect("/proc/stat has a cpu line");
        assert!(now.total > 0 && now.steal <= now.total);
    }

    #[test]
    fn listening_socket_is_traced_back_to_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
    }
}
