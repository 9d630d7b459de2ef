//! The few statistics reports need, defined once so that every backend (and the tests'
//! independent computation) agrees to the millisecond.

/// Count, mean, min, nearest-rank p50 and p90, max of a set of durations (ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub mean: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub max: u64,
}

impl Summary {
    /// `None` for an empty set.
    pub fn of(mut values: Vec<u64>) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let count = values.len() as u64;
        let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
        Some(Summary {
            count,
            mean: mean(sum, count),
            min: values[0],
            p50: nearest_rank(&values, 50),
            p90: nearest_rank(&values, 90),
            max: values[values.len() - 1],
        })
    }
}

impl Summary {
    /// From a histogram of duration buckets (`report::bucket`) and the exact sum: count
    /// and mean exact, min, p50, p90 and max the lower bounds of their buckets.
    /// `floor` gives a bucket's lower bound.
    pub fn of_histogram(
        buckets: &std::collections::BTreeMap<u32, u64>,
        sum_ms: u128,
        floor: fn(u32) -> u64,
    ) -> Option<Summary> {
        let count: u64 = buckets.values().sum();
        if count == 0 {
            return None;
        }
        let at_rank = |p: u64| {
            let rank = (count * p).div_ceil(100).max(1);
            let mut seen = 0;
            for (&b, &n) in buckets {
                seen += n;
                if seen >= rank {
                    return floor(b);
                }
            }
            0
        };
        let first = buckets.iter().find(|(_, n)| **n > 0).map_or(0, |(b, _)| *b);
        let last = buckets.iter().rev().find(|(_, n)| **n > 0).map_or(0, |(b, _)| *b);
        Some(Summary {
            count,
            mean: mean(sum_ms, count),
            min: floor(first),
            p50: at_rank(50),
            p90: at_rank(90),
            max: floor(last),
        })
    }
}

/// The mean rounded half up to a whole millisecond.
pub fn mean(sum: u128, count: u64) -> u64 {
    if count == 0 {
        return 0;
    }
    ((sum * 2 + u128::from(count)) / (u128::from(count) * 2)) as u64
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `p`
/// percent of the values at or below it (`p50` of 1, 2, 3, 4 is 2).
pub fn nearest_rank(sorted: &[u64], p: u32) -> u64 {
    let n = sorted.len();
    let rank = (n * p as usize).div_ceil(100).max(1);
    sorted[rank.min(n) - 1]
}

/// Hours of `ms` times an hourly `rate`.
pub fn cost(ms: u64, rate: f64) -> f64 {
    ms as f64 / 3_600_000.0 * rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), 2);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 90), 4);
        assert_eq!(nearest_rank(&[7], 90), 7);
        let s = Summary::of((1..=10).collect()).expect("values");
        assert_eq!((s.count, s.mean, s.min, s.p50, s.p90, s.max), (10, 6, 1, 5, 9, 10));
        assert_eq!(Summary::of(vec![]), None);
        assert_eq!(mean(5, 2), 3);
    }
}
