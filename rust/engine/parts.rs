//! How a read is cut into ranged GETs when the caller did not fix a part size.
//!
//! The first request goes out before the object's size is known, so its length is fixed
//! ([`FIRST_PART`]); its `Content-Range` then gives the size, and the rest is cut into parts
//! of about an eighth of the object, between [`MIN_PART`] and [`MAX_PART`]. Measured with
//! `python bench/tune_parts.py` (figures in bench/README.md, "Defaults"): the server's cost per
//! request favours big parts for big objects (1 GiB on versitygw: 2 MiB parts 3.6 GB/s,
//! 8 MiB 4.8, 16 MiB 5.0), while a mid-size object only goes faster than one stream with
//! several parts in flight (6 MiB on nginx: two streams 4.3 GB/s, one 2.0).

/// Length of the first ranged GET: an object up to this size costs one request.
pub(crate) const FIRST_PART: u64 = 4 * 1024 * 1024;
/// Smallest part after the first: below this, per-request cost outweighs parallelism.
pub(crate) const MIN_PART: u64 = 2 * 1024 * 1024;
/// Largest part: bounds how long one slow connection can hold up the read.
pub(crate) const MAX_PART: u64 = 16 * 1024 * 1024;
/// Aim for about this many parts per object (within the bounds above).
const TARGET_PARTS: u64 = 8;
/// Most parts one read is cut into: a part size chosen so small that a read would need more
/// grows until it does not (1 byte over 1 GiB would otherwise be a billion requests, each a
/// future held in memory at once). S3's own bound on an upload's parts.
pub(crate) const MAX_PARTS_PER_READ: u64 = 10_000;

/// The part sizes of one read: `fixed` when the caller chose one, else adaptive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    fixed: Option<u64>,
}

impl PartPlan {
    pub fn adaptive() -> Self {
        PartPlan { fixed: None }
    }

    pub fn fixed(part_size: u64) -> Self {
        PartPlan { fixed: Some(part_size.max(1)) }
    }

    /// Length of the first request, before the object's size is known.
    pub fn first(&self) -> u64 {
        self.fixed.unwrap_or(FIRST_PART)
    }

    /// Length of every later part of a read of `len` bytes (from the offset on), so that
    /// the read has at most [`MAX_PARTS_PER_READ`] of them.
    pub fn rest(&self, len: u64) -> u64 {
        let chosen = self.fixed.unwrap_or_else(|| {
            let eighth = len.div_ceil(TARGET_PARTS);
            // Whole MiBs: aligned ranges, and round numbers in request logs.
            eighth.next_multiple_of(1024 * 1024).clamp(MIN_PART, MAX_PART)
        });
        chosen.max(len.div_ceil(MAX_PARTS_PER_READ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn adaptive_parts_scale_with_the_object_within_bounds() {
        let plan = PartPlan::adaptive();
        assert_eq!(plan.first(), 4 * MIB);
        assert_eq!(plan.rest(6 * MIB), MIN_PART);
        assert_eq!(plan.rest(16 * MIB), 2 * MIB);
        assert_eq!(plan.rest(64 * MIB), 8 * MIB);
        assert_eq!(plan.rest(100 * MIB), 13 * MIB);
        assert_eq!(plan.rest(1024 * MIB), MAX_PART);
    }

    #[test]
    fn a_fixed_part_size_is_used_everywhere() {
        let plan = PartPlan::fixed(1000);
        assert_eq!((plan.first(), plan.rest(10), plan.rest(1000 * MAX_PARTS_PER_READ)), (1000, 1000, 1000));
    }

    #[test]
    fn no_read_is_cut_into_more_than_max_parts() {
        for (plan, len) in [(PartPlan::fixed(1), 1024 * MIB), (PartPlan::fixed(1000), u64::MAX), (PartPlan::adaptive(), u64::MAX)] {
            let part = plan.rest(len);
            assert!(len.div_ceil(part) <= MAX_PARTS_PER_READ, "{plan:?} cuts {len} bytes into parts of {part}");
        }
        assert_eq!(PartPlan::fixed(1).rest(1024 * MIB), (1024 * MIB).div_ceil(MAX_PARTS_PER_READ));
    }
}
