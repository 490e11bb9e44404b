//! The end of one scan's budget: checked before every step that costs more than a fraction of a
//! millisecond and inside the long loops (thresholding, the finder scan, triple forming, decode
//! attempts), so a scan ends within one short step of it. It also remembers whether any work was
//! left undone because of it (the scan "stopped at the budget" rather than running out of
//! candidates).
//!
//! Unit tests replace the clock by a count of work (pixels and grid modules): the same checks then
//! stop the scan at a point that does not depend on the machine's speed or load.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// When one scan must stop starting work.
pub(crate) struct Deadline {
    at: Instant,
    /// A check found the deadline passed, or a step was refused because it would not end before
    /// it: some work was left undone.
    stopped: Cell<bool>,
    /// The slowest rqrr decode of this scan per grid module, in picoseconds, for small and large
    /// grids (0 before one): the machine's load and the frame's content as this scan meets them.
    decode_ps: [Cell<u64>; 2],
    /// Tests: the clock is the work done so far, and the deadline a quantity of it.
    #[cfg(test)]
    work: Option<WorkClock>,
}

#[cfg(test)]
pub(crate) struct WorkClock {
    pub limit: u64,
    pub used: Cell<u64>,
    /// The largest single step recorded by [`Deadline::spend`].
    pub largest_step: Cell<u64>,
    /// Checks made (every [`Deadline::passed`] and [`Deadline::fits`]).
    pub checks: Cell<u64>,
}

impl Deadline {
    pub(crate) fn at(at: Instant) -> Self {
        Self {
            at,
            stopped: Cell::new(false),
            decode_ps: [Cell::new(0), Cell::new(0)],
            #[cfg(test)]
            work: None,
        }
    }

    /// A deadline of `limit` units of work (pixels thresholded, scanned or handed to rqrr; grid
    /// modules sampled or decoded), for deterministic tests.
    #[cfg(test)]
    pub(crate) fn after_work(limit: u64) -> Self {
        Self {
            at: Instant::now() + Duration::from_secs(3600),
            stopped: Cell::new(false),
            decode_ps: [Cell::new(0), Cell::new(0)],
            work: Some(WorkClock {
                limit,
                used: Cell::new(0),
                largest_step: Cell::new(0),
                checks: Cell::new(0),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn work(&self) -> Option<&WorkClock> {
        self.work.as_ref()
    }

    /// Whether the deadline has passed (then the caller leaves its remaining work undone).
    #[inline]
    pub(crate) fn passed(&self) -> bool {
        #[cfg(test)]
        if let Some(w) = &self.work {
            w.checks.set(w.checks.get() + 1);
            let passed = w.used.get() >= w.limit;
            self.stopped.set(self.stopped.get() | passed);
            return passed;
        }
        let passed = Instant::now() >= self.at;
        if passed {
            self.stopped.set(true);
        }
        passed
    }

    /// Whether a step that cannot be interrupted, estimated at `estimate` of wall time or `units`
    /// of work, ends before the deadline; a step that does not is refused (and the scan counts as
    /// stopped at its budget).
    pub(crate) fn fits(&self, estimate: Duration, units: u64) -> bool {
        #[cfg(test)]
        if let Some(w) = &self.work {
            let _ = estimate;
            w.checks.set(w.checks.get() + 1);
            let fits = w.used.get().saturating_add(units) <= w.limit;
            self.stopped.set(self.stopped.get() | !fits);
            return fits;
        }
        let _ = units;
        let fits = Instant::now() + estimate <= self.at;
        if !fits {
            self.stopped.set(true);
        }
        fits
    }

    /// Record `units` of work done (the tests' clock; nothing in a real scan).
    #[inline]
    pub(crate) fn spend(&self, units: u64) {
        #[cfg(test)]
        if let Some(w) = &self.work {
            w.used.set(w.used.get() + units);
            w.largest_step.set(w.largest_step.get().max(units));
        }
        let _ = units;
    }

    /// The slowest per-module time of an rqrr decode in this scan for the size class (`large`),
    /// in picoseconds; 0 before one.
    pub(crate) fn decode_ps(&self, large: bool) -> u64 {
        self.decode_ps[usize::from(large)].get()
    }

    /// Record one rqrr decode's per-module time.
    pub(crate) fn note_decode_ps(&self, large: bool, ps: u64) {
        let slot = &self.decode_ps[usize::from(large)];
        slot.set(slot.get().max(ps));
    }

    /// Whether some work was left undone because of the deadline.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.get()
    }
}
