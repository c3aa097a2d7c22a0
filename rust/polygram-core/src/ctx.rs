//! How one kernel call runs: its stop flag and whether it may fan out.
//!
//! The binding creates a [`Ctx`] per call.  It sets the stop flag when Ctrl-C
//! arrives; every kernel polls it inside its loops (through [`Ctx::map`],
//! which checks it before each item, or [`Ctx::check`]) and returns
//! [`Error::Interrupted`].  A call too small to be worth handing to the pool
//! runs [`Ctx::serial`] on the caller's thread: [`Ctx::map`] then never
//! touches rayon, so no hidden global pool is started and nothing can wait
//! on threads a `fork` left behind.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::{Error, Result};

#[derive(Debug)]
pub struct Ctx {
    stop: AtomicBool,
    threads: usize,
}

impl Ctx {
    /// Run on the calling thread only.
    pub fn serial() -> Self {
        Ctx {
            stop: AtomicBool::new(false),
            threads: 1,
        }
    }

    /// Run inside a rayon pool of `threads` workers (the caller installs it).
    pub fn parallel(threads: usize) -> Self {
        Ctx {
            stop: AtomicBool::new(false),
            threads: threads.max(1),
        }
    }

    /// Workers this call may use (for per-worker scratch budgets).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Ask the running kernel to stop at its next poll.
    pub fn cancel(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// `Err(Interrupted)` once a stop was requested.
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// `f(scratch, item)` for every item, in order of the results; in
    /// parallel (one `init()` scratch per work split) unless the call is
    /// serial.  Polls the stop flag before each item and stops at the first
    /// error.
    pub fn map<T, R, S, I, F>(&self, items: Vec<T>, init: I, f: F) -> Result<Vec<R>>
    where
        T: Send,
        R: Send,
        I: Fn() -> S + Sync + Send,
        F: Fn(&mut S, T) -> Result<R> + Sync + Send,
    {
        if self.threads == 1 || items.len() < 2 {
            let mut s = init();
            return items
                .into_iter()
                .map(|t| {
                    self.check()?;
                    f(&mut s, t)
                })
                .collect();
        }
        // An indexed collect straight into place; after a failure the
        // remaining items see `failed` and return at once.
        let failed = AtomicBool::new(false);
        let out: Vec<Result<R>> = items
            .into_par_iter()
            .map_init(init, |s, t| {
                if failed.load(Ordering::Relaxed) {
                    return Err(Error::Interrupted); // superseded by the first error below
                }
                let r = self.check().and_then(|()| f(s, t));
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                r
            })
            .collect();
        let mut first_error = None;
        let mut done = Vec::with_capacity(out.len());
        for r in out {
            match r {
                Ok(v) => done.push(v),
                // an item that failed for itself wins over ones it stopped
                Err(e) if first_error.is_none() || first_error == Some(Error::Interrupted) => {
                    first_error = Some(e)
                }
                Err(_) => {}
            }
        }
        first_error.map_or(Ok(done), Err)
    }

    /// [`Ctx::map`] without scratch or results.
    pub fn each<T, F>(&self, items: Vec<T>, f: F) -> Result<()>
    where
        T: Send,
        F: Fn(T) -> Result<()> + Sync + Send,
    {
        self.map(items, || (), |_, t| f(t)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fails_after_cancel() {
        let c = Ctx::serial();
        assert_eq!(c.check(), Ok(()));
        c.cancel();
        assert_eq!(c.check(), Err(Error::Interrupted));
        assert_eq!(
            c.map(vec![1, 2], || (), |_, x| Ok(x)),
            Err(Error::Interrupted)
        );
    }

    #[test]
    fn serial_and_parallel_maps_agree_and_keep_order() {
        let items: Vec<u64> = (0..1000).collect();
        let sq = |_: &mut (), x: u64| Ok(x * x);
        let a = Ctx::serial().map(items.clone(), || (), sq).unwrap();
        let b = Ctx::parallel(4).map(items, || (), sq).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[999], 998001);
        let err = Ctx::parallel(4).map(
            (0..100).collect(),
            || (),
            |_, x: i32| {
                if x == 50 {
                    Err(Error::invalid("x", "fifty"))
                } else {
                    Ok(x)
                }
            },
        );
        assert!(matches!(err, Err(Error::Invalid { .. })));
    }
}
