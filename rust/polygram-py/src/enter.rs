//! The one way a kernel runs: [`enter`].
//!
//! Work of fewer than [`INLINE_WORK`] elementary steps (a Gram of a few
//! features, a one-point grid) runs on the calling thread with the GIL
//! released and a serial [`Ctx`]: handing microseconds of work to the pool
//! would cost tens of microseconds of thread wake-ups, and it ends long
//! before Ctrl-C matters.  Anything larger: the calling thread releases the
//! GIL and hands the work to the pool; while
//! it waits it wakes every [`POLL`] to run Python's signal handlers
//! (`PyErr_CheckSignals`, which acts on the main thread).  A pending Ctrl-C
//! sets the stop flag of the work's [`Ctx`], which every kernel polls inside its
//! loops, and surfaces as the `KeyboardInterrupt` the handler raised once the
//! work has stopped.  A panic inside the work becomes a `KernelError` rather
//! than unwinding into Python.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::Duration;

use polygram_core::{Ctx, Result};
use pyo3::prelude::*;

use crate::errors::{to_py, KernelError};
use crate::pool::pool;

/// How often the waiting thread checks for Ctrl-C.
const POLL: Duration = Duration::from_millis(50);

/// Below this many elementary steps (about 10–100 µs) a call runs inline.
pub const INLINE_WORK: u64 = 1 << 16;

/// `Π factors`, saturating: a work estimate from shapes.
pub fn work_of(factors: &[usize]) -> u64 {
    factors
        .iter()
        .fold(1u64, |acc, &f| acc.saturating_mul(f as u64))
}

/// Run `work` (about `steps` elementary steps) with the GIL released; see
/// the module docs.
pub fn enter<T, F>(py: Python<'_>, steps: u64, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Ctx) -> Result<T> + Send,
{
    if steps < INLINE_WORK {
        let result = py.detach(|| {
            let ctx = Ctx::serial();
            catch_unwind(AssertUnwindSafe(|| work(&ctx))).map_err(panic_text)
        });
        return finish(result);
    }
    let pool = pool()?;
    let ctx = &Ctx::parallel(pool.current_num_threads());
    let (done, outcome) = sync_channel(1);
    let (result, interrupt) = py.detach(move || {
        pool.in_place_scope(move |scope| {
            scope.spawn(move |_| {
                let r = catch_unwind(AssertUnwindSafe(|| work(ctx))).map_err(panic_text);
                // The receiver outlives the scope, so the send cannot fail.
                let _ = done.send(r);
            });
            let mut interrupt: Option<PyErr> = None;
            loop {
                match outcome.recv_timeout(POLL) {
                    Ok(r) => break (r, interrupt),
                    Err(RecvTimeoutError::Timeout) => {
                        if interrupt.is_none() {
                            if let Err(e) = Python::attach(|py| py.check_signals()) {
                                ctx.cancel();
                                interrupt = Some(e);
                            }
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        break (Err("the worker vanished".to_string()), interrupt)
                    }
                }
            }
        })
    });
    if let Some(e) = interrupt {
        return Err(e); // whatever the work returned after being told to stop
    }
    finish(result)
}

fn finish<T>(result: std::result::Result<Result<T>, String>) -> PyResult<T> {
    match result {
        Ok(r) => r.map_err(to_py),
        Err(msg) => Err(KernelError::new_err(format!(
            "internal error in a polygram kernel (please report it): {msg}"
        ))),
    }
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
