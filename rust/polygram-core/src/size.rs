//! Checked sizes: every length and byte count that comes from user data is
//! computed here, so an overflow becomes a refusal instead of a wrapped
//! (too small) allocation.

use std::mem::size_of;

/// `Π factors`, `None` on overflow.
pub fn count(factors: &[usize]) -> Option<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
}

/// Bytes of `Π factors` values of type `T`.
pub fn bytes_of<T>(factors: &[usize]) -> Option<usize> {
    count(factors)?.checked_mul(size_of::<T>())
}

/// `Σ parts`, `None` when a part or the sum overflowed.
pub fn total(parts: &[Option<usize>]) -> Option<usize> {
    parts.iter().try_fold(0usize, |acc, &p| acc.checked_add(p?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_none() {
        assert_eq!(count(&[3, 4, 5]), Some(60));
        assert_eq!(count(&[]), Some(1));
        assert_eq!(count(&[1 << 40, 1 << 40]), None);
        assert_eq!(bytes_of::<u64>(&[1 << 61]), None);
        assert_eq!(bytes_of::<u64>(&[2, 3]), Some(48));
        assert_eq!(total(&[Some(1), Some(2)]), Some(3));
        assert_eq!(total(&[Some(1), None]), None);
        assert_eq!(total(&[Some(usize::MAX), Some(1)]), None);
    }
}
