//! `pow`, defined here so the bootstraps do not load glibc's libm.
//!
//! Why: the only symbol the bootstraps import from `libm.so.6` is `pow`, and its only caller
//! is the AWS SDK's adaptive retry rate limiter (`aws-smithy-runtime`'s
//! `client_rate_limiter`, a cube root through `f64::powf`), a retry mode the functions do not
//! configure. Yet for that one symbol the dynamic loader maps and relocates all of libm at
//! every cold start, and many of its pages stay resident (`/proc/{pid}/smaps`; measured in
//! docs/PERFORMANCE.md, "Peak RSS"). A `pow` defined in the executable
//! satisfies that reference at link time, so the linker, which rustc runs with `--as-needed`,
//! no longer records libm as needed: `readelf -d` of each bootstrap shows only
//! `libgcc_s.so.1` and `libc.so.6`, and `tests/e2e/bootstrap_binaries.rs` checks it.
//! `run_bootstrap` refers to it so that it is linked whatever the order of the libraries.
//!
//! The implementation is the `libm` crate's: the Rust project's port of musl's libm, which the
//! Rust standard library's own `compiler-builtins` uses on targets without a C libm. It is
//! accurate to under 1 ulp, as glibc's is.

/// `pow(3)`: `x` raised to the power `y`, with C's special cases (`pow(x, 0) == 1` for any
/// `x`, NaN in, NaN out, …), exactly as the `libm` crate computes them.
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow_agrees_with_the_standard_library() {
        let cases = [
            (2.0, 10.0, 1024.0),
            (27.0, 1.0 / 3.0, 3.0),
            (2.0, -1.0, 0.5),
            (0.0, 0.0, 1.0),
            (f64::NAN, 0.0, 1.0),
            (-8.0, 3.0, -512.0),
        ];
        for (x, y, expected) in cases {
            let got = pow(x, y);
            assert!(
                (got - expected).abs() <= expected.abs() * 1e-15,
                "pow({x}, {y}) = {got}"
            );
        }
        assert!(pow(-8.0, 0.5).is_nan());
        assert_eq!(pow(0.0, -1.0), f64::INFINITY);
        // The rate limiter's cube root, over the range its inputs take.
        for i in 1..1000 {
            let x = f64::from(i) * 0.37;
            let ours = pow(x, 1.0 / 3.0);
            assert!(
                (ours - x.cbrt()).abs() <= x.cbrt() * 4.0 * f64::EPSILON,
                "{x}"
            );
        }
    }
}
