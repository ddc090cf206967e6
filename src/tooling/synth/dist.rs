//! Sampling helpers for the synthetic generator: Bernoulli, Poisson, geometric, negative
//! binomial and weighted choice, on any `rand` generator.
//!
//! Only what the event model of `docs/reference/synthetic-data.md` needs; no general-purpose distributions
//! (the crate does not depend on `rand_distr`). Every helper is total: bad parameters are
//! clamped, never a panic.

use rand::Rng;

/// Largest rate sampled in one piece by Knuth's method; larger rates are split, which is
/// exact because a sum of independent Poisson variables is Poisson.
const POISSON_PIECE: f64 = 30.0;

/// Sampling helpers, implemented for every random generator.
pub(super) trait Draw: Rng {
    /// True with probability `p` (clamped to 0..=1).
    fn chance(&mut self, p: f64) -> bool {
        self.random::<f64>() < p
    }

    /// A uniform integer in `lo..=hi` (returns `lo` when `hi < lo`).
    fn between(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        self.random_range(lo..=hi)
    }

    /// A uniform real in `lo..hi`.
    fn real(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.random::<f64>()
    }

    /// A uniform index below `n` (0 when `n` is 0).
    fn index(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.random_range(0..n) }
    }

    /// A Poisson count with mean `lambda`.
    fn poisson(&mut self, lambda: f64) -> u32 {
        let mut left = lambda.max(0.0);
        let mut total = 0;
        while left > 0.0 {
            let piece = left.min(POISSON_PIECE);
            total += knuth_poisson(self, piece);
            left -= piece;
        }
        total
    }

    /// A geometric count on 1, 2, … with mean `mean` (at least 1), capped at `cap`.
    fn geometric(&mut self, mean: f64, cap: u32) -> u32 {
        let p = 1.0 / mean.max(1.0);
        let mut k = 1;
        while k < cap && !self.chance(p) {
            k += 1;
        }
        k
    }

    /// A negative binomial count on 0, 1, … with mean `mean` and shape 2: the sum of two
    /// geometric failure counts, over-dispersed compared with a Poisson of the same mean.
    fn negbin(&mut self, mean: f64) -> u32 {
        let each = (mean / 2.0).max(0.0);
        let p = 1.0 / (1.0 + each);
        let mut total = 0;
        for _ in 0..2 {
            while total < 1000 && !self.chance(p) {
                total += 1;
            }
        }
        total
    }

    /// One item of `items`, chosen with the given integer weights (the first if all are 0).
    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut ticket = self.between(0, total.saturating_sub(1));
        for (item, w) in items {
            if ticket < *w {
                return item;
            }
            ticket -= w;
        }
        &items[0].0
    }

    /// One element of a non-empty slice, uniformly.
    fn one<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

impl<R: Rng + ?Sized> Draw for R {}

fn knuth_poisson<R: Rng + ?Sized>(rng: &mut R, lambda: f64) -> u32 {
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut product = rng.random::<f64>();
    while product > limit {
        k += 1;
        product *= rng.random::<f64>();
    }
    k
}

/// Rounds a non-negative real to the nearest `u32`, saturating at the ends.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the value is clamped to the u32 range before the cast"
)]
pub(super) fn round_u32(x: f64) -> u32 {
    x.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn mean(n: u32, mut f: impl FnMut() -> u32) -> f64 {
        (0..n).map(|_| f64::from(f())).sum::<f64>() / f64::from(n)
    }

    #[test]
    fn means_are_close_to_their_parameters() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!((mean(20_000, || rng.poisson(3.0)) - 3.0).abs() < 0.1);
        assert!((mean(2_000, || rng.poisson(300.0)) - 300.0).abs() < 2.0);
        assert!((mean(20_000, || rng.geometric(4.0, 200)) - 4.0).abs() < 0.15);
        assert!((mean(20_000, || rng.negbin(4.0)) - 4.0).abs() < 0.15);
        assert_eq!(rng.poisson(0.0), 0);
        assert_eq!(*rng.weighted(&[("a", 0), ("b", 5)]), "b");
    }
}
