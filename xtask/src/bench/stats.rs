//! Order statistics of small samples.

/// Median (mean of the middle two for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Smallest value.
pub fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Largest value.
pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Distribution-free 95% confidence interval of the median of `v` (the
/// order statistics of the sign test): the k-th smallest and k-th largest
/// sample for the largest k with P(Binomial(n, 1/2) < k) <= 2.5%. Its true
/// coverage is at least 95%. None below 6 samples (no such k).
pub fn median_ci95(v: &[f64]) -> Option<(f64, f64)> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    // P(X <= i) for X ~ Binomial(n, 1/2), summed term by term.
    let mut term = 0.5f64.powi(i32::try_from(n).ok()?);
    let mut below = 0.0;
    let mut k = 0;
    for i in 0..n {
        below += term;
        if below > 0.025 {
            break;
        }
        k = i + 1;
        term *= (n - i) as f64 / (i + 1) as f64;
    }
    (k >= 1).then(|| (s[k - 1], s[n - k]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_intervals_use_the_sign_test_order_statistics() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        // n = 20: P(X <= 5) = 2.07%, P(X <= 6) = 5.77%: the 6th and 15th.
        assert_eq!(median_ci95(&v), Some((6.0, 15.0)));
        let six: Vec<f64> = (1..=6).map(f64::from).collect();
        assert_eq!(median_ci95(&six), Some((1.0, 6.0)));
        assert_eq!(median_ci95(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!((min(&[2.0, 1.0]), max(&[2.0, 1.0])), (1.0, 2.0));
    }
}
