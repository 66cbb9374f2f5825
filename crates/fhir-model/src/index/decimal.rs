//! Decimal text to its value and the range its precision implies, computed exactly.
//!
//! Values are held as `rust_decimal` (96-bit mantissa, up to 28 digits after the point), which
//! is also what bounds the decimals a resource may carry: PostgreSQL `numeric` holds more, but a
//! value the index cannot represent could not be searched. Nothing here allocates in proportion
//! to an exponent: `1e2147483647` is refused by comparing the exponent, not by writing it out.

use rust_decimal::Decimal;

/// Largest power of ten a value may be scaled by (`Decimal` holds magnitudes below ~7.9e28).
pub(crate) const MAX_EXPONENT: i32 = 28;

/// Most digits after the point a value may have once its exponent is applied (`Decimal`'s
/// scale is at most 28, and the bounds need one digit more than the value).
pub(crate) const MAX_FRACTION_DIGITS: u32 = 27;

/// A decimal value with its implicit precision bounds, all as decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub value: String,
    pub low: String,
    pub high: String,
}

/// `5.4` → value 5.4, range [5.35, 5.45); `100` → [99.5, 100.5); `1.0e2` → [95, 105).
///
/// Per R4 search rules the number of significant digits given sets the precision, so the
/// bounds are the value ± half a unit in its last digit.
pub(crate) fn bounds(text: &str) -> Option<Bounds> {
    let text = text.trim();
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    if mantissa.is_empty() || mantissa.contains(['e', 'E']) {
        return None;
    }
    let m = Decimal::from_str_exact(mantissa).ok()?;
    let scale = i32::try_from(m.scale()).ok()?;
    // The last significant digit sits at 10^(exp - scale); half of it is 5 * 10^(exp - scale - 1).
    let half_exp = exp.checked_sub(scale)?.checked_sub(1)?;
    let value = shift(m, exp)?;
    let half = shift(Decimal::from(5), half_exp)?;
    Some(Bounds {
        value: value.to_string(),
        low: value.checked_sub(half)?.to_string(),
        high: value.checked_add(half)?.to_string(),
    })
}

/// `d * 10^exp`, exactly, or None when out of the representable range.
fn shift(d: Decimal, exp: i32) -> Option<Decimal> {
    if exp > MAX_EXPONENT {
        return None;
    }
    if exp >= 0 {
        let p = Decimal::from_i128_with_scale(10i128.checked_pow(exp.unsigned_abs())?, 0);
        let mut r = d.checked_mul(p)?;
        // Keep the trailing zeros that carry precision only when no exponent was written.
        r.rescale(d.scale().saturating_sub(exp.unsigned_abs()));
        Some(r)
    } else {
        let s = d.scale().checked_add(exp.unsigned_abs())?;
        if s > MAX_FRACTION_DIGITS + 1 {
            return None;
        }
        let mut r = d;
        r.set_scale(s).ok()?;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_bounds() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("5.4", "5.4", "5.35", "5.45"),
            ("100", "100", "99.5", "100.5"),
            ("0.001", "0.001", "0.0005", "0.0015"),
            ("5.40", "5.40", "5.395", "5.405"),
            ("-3", "-3", "-3.5", "-2.5"),
            ("1.0e2", "100", "95", "105"),
            ("1e-3", "0.001", "0.0005", "0.0015"),
            ("2.5E1", "25", "24.5", "25.5"),
        ];
        for (input, v, lo, hi) in cases {
            let b = bounds(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(
                (b.value.as_str(), b.low.as_str(), b.high.as_str()),
                (*v, *lo, *hi),
                "{input}"
            );
        }
        assert_eq!(bounds("abc"), None);
        assert_eq!(bounds(""), None);
    }

    #[test]
    fn out_of_range_exponents_are_refused_without_building_them() {
        // Once `shift` wrote "1" and 2,147,483,647 zeros (seconds and gigabytes).
        for text in [
            "1e2147483647",
            "1E2147483647",
            "-1e2147483647",
            "0e2147483647",
            "1e-2147483648",
            "1e99999999999",
            "1e29",
            "1e-29",
            "99999999999999999999999999999",
        ] {
            assert_eq!(bounds(text), None, "{text}");
        }
        assert!(bounds("8e28").is_none(), "beyond Decimal's ~7.9e28");
        assert!(bounds("1e28").is_some());
        assert!(bounds("1e-26").is_some());
        let long = format!("1{}", "0".repeat(100_000));
        assert_eq!(bounds(&long), None);
    }
}
