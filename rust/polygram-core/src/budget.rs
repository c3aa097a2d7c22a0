//! The memory budget: how many bytes one call may allocate before it starts.
//!
//! Two limits, one home (the Python layer reads both through the binding):
//!
//! * [`headroom`] — the hard limit every kernel checks before it allocates:
//!   the least of available physical memory (`MemAvailable`), what the
//!   address-space limit (`RLIMIT_AS`, `ulimit -v`) leaves above the current
//!   size of the process, and what the memory cgroup (v2 `memory.max`, v1
//!   `memory.limit_in_bytes`, this cgroup and its ancestors) leaves above its
//!   usage.  Going past any of them aborts the interpreter or wakes the OOM
//!   killer, so no setting overrides it.
//! * [`policy`] — what one result may use by default: an explicit override,
//!   else `$POLYGRAM_MAX_GRID_BYTES`, else half of physical memory; never more
//!   than the headroom.
//!
//! Linux reads `/proc` and `/sys/fs/cgroup`; where they do not exist a limit
//! is simply absent (only checked arithmetic then guards sizes).

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The environment variable that replaces the default [`policy`].
pub const ENV: &str = "POLYGRAM_MAX_GRID_BYTES";

/// Share of the address-space and cgroup headroom a call may take: the rest
/// covers allocator arenas, thread stacks and the caller's own copies.
const HEADROOM_SHARE: (u64, u64) = (3, 4);

/// A limit and where it comes from (for error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    pub source: &'static str,
}

impl Limit {
    fn min(self, other: Option<Limit>) -> Limit {
        match other {
            Some(o) if o.bytes < self.bytes => o,
            _ => self,
        }
    }

    /// `Err(TooLarge)` when `bytes` (`None`: overflowed) exceeds the limit.
    pub fn check(&self, field: &str, what: &str, bytes: Option<usize>) -> Result<()> {
        match bytes {
            Some(b) if b as u64 <= self.bytes => Ok(()),
            Some(b) => Err(Error::too_large(
                field,
                format!(
                    "{what} needs {b} bytes ({:.2} GiB); the {} allows {} bytes ({:.2} GiB)",
                    b as f64 / GIB,
                    self.source,
                    self.bytes,
                    self.bytes as f64 / GIB
                ),
            )),
            None => Err(Error::too_large(
                field,
                format!("{what} needs more bytes than an address space holds"),
            )),
        }
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// The hard limit (see the module docs).
pub fn headroom() -> Limit {
    let unbounded = Limit {
        bytes: u64::MAX,
        source: "address space",
    };
    let share = |b: u64| b / HEADROOM_SHARE.1 * HEADROOM_SHARE.0;
    let available = read("/proc/meminfo")
        .and_then(|s| meminfo(&s, "MemAvailable:"))
        .map(|bytes| Limit {
            bytes,
            source: "available physical memory (MemAvailable)",
        });
    let rlimit = read("/proc/self/limits")
        .and_then(|s| address_space_limit(&s))
        .map(|limit| {
            let used = read("/proc/self/status")
                .and_then(|s| meminfo(&s, "VmSize:"))
                .unwrap_or(0);
            Limit {
                bytes: share(limit.saturating_sub(used)),
                source: "address-space limit (RLIMIT_AS) above the process size",
            }
        });
    let cgroup = cgroup_headroom().map(|bytes| Limit {
        bytes: share(bytes),
        source: "memory cgroup limit above its usage",
    });
    unbounded.min(available).min(rlimit).min(cgroup)
}

/// The default budget of one result (see the module docs).
pub fn policy(override_bytes: Option<u64>) -> Result<Limit> {
    let chosen = match override_bytes {
        Some(bytes) => Some(Limit {
            bytes,
            source: "budget given",
        }),
        None => match std::env::var(ENV) {
            Ok(v) if !v.trim().is_empty() => Some(Limit {
                bytes: parse_bytes(&v).ok_or_else(|| {
                    Error::invalid(
                        ENV,
                        format!("got {v:?}; expected a byte count (an integer >= 0)"),
                    )
                })?,
                source: "budget of $POLYGRAM_MAX_GRID_BYTES",
            }),
            _ => None,
        },
    };
    let default = || {
        read("/proc/meminfo")
            .and_then(|s| meminfo(&s, "MemTotal:"))
            .map(|total| Limit {
                bytes: total / 2,
                source: "default budget (half of physical memory)",
            })
    };
    let limit = chosen.or_else(default).unwrap_or(Limit {
        bytes: u64::MAX,
        source: "address space",
    });
    Ok(limit.min(Some(headroom())))
}

/// Requests up to this size are not weighed against the limits: reading
/// them costs more than a small call itself, and no limit a process can run
/// Python under is that tight.
pub const SMALL: usize = 16 << 20;

/// Check `bytes` against the [`headroom`]: what every kernel does before it allocates.
pub fn check(field: &str, what: &str, bytes: Option<usize>) -> Result<()> {
    match bytes {
        Some(b) if b <= SMALL => Ok(()),
        _ => headroom().check(field, what, bytes),
    }
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// `1e9`, `2000000000`, `2_000_000_000`: a non-negative byte count.
fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim().replace('_', "");
    if let Ok(v) = t.parse::<u64>() {
        return Some(v);
    }
    let f = t.parse::<f64>().ok()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64).then_some(f as u64)
}

/// A `Key:   123 kB` line of `/proc/meminfo` or `/proc/self/status`, in bytes.
fn meminfo(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let mut it = line[key.len()..].split_whitespace();
    let v: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") => v.checked_mul(1024),
        None => Some(v),
        Some(_) => None,
    }
}

/// The soft `Max address space` of `/proc/self/limits` (`None` when unlimited).
fn address_space_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The least `limit − usage` over this process's memory cgroup and its ancestors.
fn cgroup_headroom() -> Option<u64> {
    let text = read("/proc/self/cgroup")?;
    let mut best: Option<u64> = None;
    for (dir, limit_file, usage_file) in cgroup_dirs(&text) {
        let limit = read(dir.join(limit_file)).and_then(|s| cgroup_value(&s));
        if let Some(limit) = limit {
            let usage = read(dir.join(usage_file))
                .and_then(|s| cgroup_value(&s))
                .unwrap_or(0);
            let room = limit.saturating_sub(usage);
            best = Some(best.map_or(room, |b| b.min(room)));
        }
    }
    best
}

/// Directories to read, with their limit and usage files: the v2 unified
/// hierarchy (`0::/path`) and the v1 memory controller (`N:memory:/path`),
/// each from the process's cgroup up to the mount point.
fn cgroup_dirs(proc_cgroup: &str) -> Vec<(PathBuf, &'static str, &'static str)> {
    let mut out = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, limit, usage) = if id == "0" && controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        let mut rel = PathBuf::from(path.trim_start_matches('/'));
        loop {
            out.push((Path::new(root).join(&rel), limit, usage));
            if !rel.pop() {
                break;
            }
        }
    }
    out
}

/// A cgroup limit or usage: a number, or `max` (no limit). v1 writes "no
/// limit" as a page-rounded `i64::MAX`, which is larger than any real machine.
fn cgroup_value(s: &str) -> Option<u64> {
    let v: u64 = s.trim().parse().ok()?;
    (v < 1 << 62).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_and_status_lines() {
        let m = "MemTotal:       24683792 kB\nMemFree: 1 kB\nMemAvailable:   23726932 kB\n";
        assert_eq!(meminfo(m, "MemTotal:"), Some(24683792 * 1024));
        assert_eq!(meminfo(m, "MemAvailable:"), Some(23726932 * 1024));
        assert_eq!(
            meminfo("VmSize:\t    3892 kB\n", "VmSize:"),
            Some(3892 * 1024)
        );
        assert_eq!(meminfo(m, "Missing:"), None);
    }

    #[test]
    fn parses_the_address_space_limit() {
        let unlimited = "Max cpu time  unlimited  unlimited  seconds\n\
                         Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_limit(unlimited), None);
        let two_gib = "Max address space         2147483648           unlimited            bytes\n";
        assert_eq!(address_space_limit(two_gib), Some(2147483648));
    }

    #[test]
    fn finds_v1_and_v2_cgroup_directories_up_to_the_root() {
        let text = "4:memory:/process_api/abc\n3:cpuset:/\n0::/user.slice/u.scope\n";
        let dirs: Vec<PathBuf> = cgroup_dirs(text)
            .into_iter()
            .map(|(d, l, _)| d.join(l))
            .collect();
        let want: Vec<PathBuf> = [
            "/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/user.slice/u.scope/memory.max",
            "/sys/fs/cgroup/user.slice/memory.max",
            "/sys/fs/cgroup/memory.max",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(dirs, want);
        assert_eq!(cgroup_value("max\n"), None);
        assert_eq!(cgroup_value("9223372036854771712\n"), None);
        assert_eq!(cgroup_value("2147483648\n"), Some(2147483648));
    }

    #[test]
    fn byte_counts_are_integers() {
        assert_eq!(parse_bytes("1e9"), Some(1_000_000_000));
        assert_eq!(parse_bytes(" 2_000 "), Some(2000));
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("1.5"), None);
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn a_limit_refuses_what_exceeds_it_and_overflow() {
        let l = Limit {
            bytes: 100,
            source: "test budget",
        };
        assert!(l.check("x", "a thing", Some(100)).is_ok());
        let e = l.check("x", "a thing", Some(101)).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("test budget"), "{e}");
        assert!(matches!(
            l.check("x", "a thing", None),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn the_policy_never_exceeds_the_headroom() {
        let p = policy(Some(u64::MAX)).unwrap();
        assert!(p.bytes <= headroom().bytes);
        assert_eq!(policy(Some(10)).unwrap().bytes, 10.min(headroom().bytes));
    }
}
