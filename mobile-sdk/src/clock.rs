//! The device's clocks: wall clock (may be wrong), monotonic milliseconds since boot (immune to
//! clock changes) and the boot id the monotonic clock counts from. Phones supply their own
//! (`SystemClock.elapsedRealtime`, `mach_continuous_time`); the CLI reads Linux's.

use fieldproof_domain::capture::DeviceClock;
use time::OffsetDateTime;

/// A source of the three clock readings the capture manifest and `device_clock` carry.
pub trait Clocks: Send + Sync {
    fn wall_now(&self) -> OffsetDateTime;
    fn monotonic_ms(&self) -> u64;
    fn boot_id(&self) -> String;

    /// The clocks as sent with an upload (docs/uploads.md §3 `device_clock`).
    fn device_clock(&self) -> DeviceClock {
        DeviceClock {
            wall_now: self.wall_now(),
            monotonic_ms_now: self.monotonic_ms(),
            boot_id: self.boot_id(),
        }
    }
}

/// Linux: `CLOCK_BOOTTIME` via `/proc/uptime` and `/proc/sys/kernel/random/boot_id`.
/// Elsewhere the boot id is unknown and monotonic time falls back to 0, which makes the
/// server use the wall clock corrected by skew (still correct if the wall clock is).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClocks;

impl Clocks for SystemClocks {
    fn wall_now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn monotonic_ms(&self) -> u64 {
        std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .map(|secs| (secs * 1000.0) as u64)
            .unwrap_or(0)
    }

    fn boot_id(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown-boot".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_time_moves_forward_within_one_boot() {
        let c = SystemClocks;
        let a = c.monotonic_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(c.monotonic_ms() >= a);
        assert_eq!(c.boot_id(), c.boot_id());
    }
}
