//! The CPU device's training step run on one of the pool's worker threads
//! while the other workers wait for its parallel loops' work spinning, not
//! asleep: waking a sleeping worker took 25–40 µs here (a VM's wake-up
//! interrupts), and a training step starts some 70 parallel loops, most of
//! them after a serial stretch. The step went from 9.1–9.7 to 8.5–8.6 ms.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Runs `f` on one of the worker threads, so that each op's parallel loop
/// starts from a worker (the other workers steal its halves) rather than
/// being handed in from outside the pool and waited for, once per op; the
/// other workers run `help_until` meanwhile.
pub(super) fn run_helped<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // One step at a time has helpers (tests run several programs at once):
    // two steps' helpers could each end up waiting inside the other's step.
    static HELPED: AtomicBool = AtomicBool::new(false);
    let helped = HELPED.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok();
    let done = &AtomicBool::new(false);
    let result = rayon::scope(|scope| {
        let runner = rayon::current_thread_index();
        let helpers = if helped { rayon::current_num_threads() - 1 } else { 0 };
        for _ in 0..helpers {
            scope.spawn(move |_| help_until(done, runner));
        }
        let result = f();
        done.store(true, Ordering::Release);
        result
    });
    if helped {
        HELPED.store(false, Ordering::Release);
    }
    result
}

/// Runs the pool's pending work until `done`, spinning while there is none
/// (counted in `spun_seconds`). Returns at once on the `runner`'s own
/// thread: that thread picks up an unstarted helper only while it waits
/// inside `f`, which must go on.
fn help_until(done: &AtomicBool, runner: Option<usize>) {
    if rayon::current_thread_index() == runner {
        return;
    }
    let mut idle_since = None;
    loop {
        let now = spin_clock();
        if done.load(Ordering::Acquire) {
            return count_spin(idle_since, now);
        }
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            count_spin(idle_since.take(), now);
        } else {
            idle_since.get_or_insert(now);
            std::hint::spin_loop();
        }
    }
}

/// Seconds for `SPUN_NANOS` (native only: in the page, the clock is a call into JavaScript).
fn spin_clock() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    return crate::exec::now();
    #[cfg(target_arch = "wasm32")]
    return 0.0;
}

/// Nanoseconds the helpers spent spinning for work, all together.
static SPUN_NANOS: AtomicU64 = AtomicU64::new(0);

/// Adds a spin from `since` (if any) to `until` to `SPUN_NANOS`.
fn count_spin(since: Option<f64>, until: f64) {
    if let Some(since) = since {
        SPUN_NANOS.fetch_add(((until - since) * 1e9) as u64, Ordering::Relaxed);
    }
}

/// CPU seconds the training steps' helpers have spent spinning for work so
/// far: busy for the OS, idle for the step (`exec::with_cores_busy`).
#[cfg(not(target_arch = "wasm32"))]
pub fn spun_seconds() -> f64 {
    SPUN_NANOS.load(Ordering::Relaxed) as f64 * 1e-9
}
