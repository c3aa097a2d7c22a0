//! The rayon pool every kernel runs in, rebuilt in a forked child (the
//! parent's threads do not exist there), and its size from Python.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use crate::errors::KernelError;

/// `(pid that built it, requested size, pool)`.
static POOL: Mutex<Option<(u32, usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

fn default_threads() -> usize {
    std::env::var("POLYGRAM_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(0)
}

fn build(n: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("polygram-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| KernelError::new_err(format!("cannot start threads: {e}")))
}

pub fn pool() -> PyResult<Arc<rayon::ThreadPool>> {
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    match guard.as_ref() {
        Some((p, _, pool)) if *p == pid => Ok(pool.clone()),
        other => {
            let n = other.map(|(_, n, _)| *n).unwrap_or_else(default_threads);
            if let Some(old) = guard.take() {
                // Threads of a pool inherited through fork do not exist here.
                std::mem::forget(old);
            }
            let pool = build(n)?;
            *guard = Some((pid, n, pool.clone()));
            Ok(pool)
        }
    }
}

/// Size the worker pool (0 = one thread per core).  Also read once from
/// `POLYGRAM_NUM_THREADS`.
#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    let pool = build(n)?;
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    *guard = Some((std::process::id(), n, pool));
    Ok(())
}

#[pyfunction]
fn num_threads() -> PyResult<usize> {
    Ok(pool()?.current_num_threads())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    Ok(())
}
