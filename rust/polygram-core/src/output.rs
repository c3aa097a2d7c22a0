//! Output buffers: allocated uninitialised (every kernel writes each value
//! exactly once) and, when large, backed by transparent huge pages, so
//! filling a grid of many millions of points is not dominated by page
//! faults (one fault per 2 MiB instead of per 4 KiB).

use std::mem::MaybeUninit;

use ndarray::{Array, Dimension, ShapeBuilder};

use crate::{Error, Result};

/// Buffers at least this large are advised to use huge pages.
const HUGE: usize = 4 << 20;

/// An uninitialised array of `shape`.
pub fn uninit<T, D: Dimension>(shape: D) -> Result<Array<MaybeUninit<T>, D>> {
    let len = shape
        .size_checked()
        .ok_or_else(|| Error::too_large("shape", "an output shape overflows the address space"))?;
    let mut v: Vec<MaybeUninit<T>> = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit<T>` needs no initialisation; the capacity is `len`.
    unsafe { v.set_len(len) };
    advise_huge(&mut v);
    Array::from_shape_vec(shape.into_shape_with_order(), v)
        .map_err(|e| Error::invalid("internal", format!("output shape: {e}")))
}

#[cfg(target_os = "linux")]
fn advise_huge<T>(v: &mut [MaybeUninit<T>]) {
    let bytes = std::mem::size_of_val(v);
    if bytes < HUGE {
        return;
    }
    // The 2 MiB-aligned interior of the buffer (huge pages need alignment).
    const PAGE: usize = 2 << 20;
    let start = v.as_mut_ptr() as usize;
    let (lo, hi) = (start.div_ceil(PAGE) * PAGE, (start + bytes) / PAGE * PAGE);
    if hi > lo {
        // SAFETY: [lo, hi) lies inside the buffer this function borrows
        // mutably; MADV_HUGEPAGE only changes how its pages are backed.  A
        // failure (THP disabled) leaves ordinary pages, so it is ignored.
        unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge<T>(_: &mut [MaybeUninit<T>]) {}
