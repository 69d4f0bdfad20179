//! Medians and spreads.

use std::time::Duration;

/// Order statistics of a sample (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Some(Summary {
            n: v.len(),
            min: v[0],
            p10: rank(0.10),
            median,
            p90: rank(0.90),
            max: v[v.len() - 1],
        })
    }

    pub fn of_durations_ms(values: &[Duration]) -> Option<Summary> {
        Self::of(
            &values
                .iter()
                .map(|d| d.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_twenty() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = Summary::of(&v).unwrap();
        assert_eq!(
            (s.min, s.p10, s.median, s.p90, s.max),
            (1.0, 2.0, 10.5, 18.0, 20.0)
        );
        assert_eq!(Summary::of(&[3.0]).unwrap().median, 3.0);
        assert!(Summary::of(&[]).is_none());
    }
}
