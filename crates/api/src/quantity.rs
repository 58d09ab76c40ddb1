//! Parsing of Kubernetes resource quantities, exact enough to compare requests with limits.

use std::fmt;

/// A quantity in nano-units, saturating at the bounds of `i128` (far beyond what Kubernetes accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nanos(pub i128);

/// Why a string is not a quantity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError(String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a quantity (expected a number with an optional suffix such as 100m, 1.5, 512Mi or 2G)",
            self.0
        )
    }
}

impl std::error::Error for QuantityError {}

/// Parses a quantity such as `100m`, `1.5`, `512Mi`, `2G` or `1e3` into nano-units, rounding up what lies
/// below one nano-unit as the API server does.
pub fn parse(input: &str) -> Result<Nanos, QuantityError> {
    let err = || QuantityError(input.to_string());
    let (negative, rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (digits, decimals) = split_number(number).ok_or_else(err)?;
    let (decimal_exponent, binary_exponent) = suffix_exponents(suffix).ok_or_else(err)?;

    // value = digits.decimals * 10^decimal_exponent * 2^binary_exponent, in nano-units (10^9).
    let mantissa: String = format!("{digits}{decimals}");
    let mut value: i128 = 0;
    for b in mantissa.bytes() {
        value = value.saturating_mul(10).saturating_add(i128::from(b - b'0'));
    }
    let scale = i64::from(decimal_exponent) + 9 - i64::try_from(decimals.len()).map_err(|_| err())?;
    value = value.saturating_mul(1i128 << binary_exponent);
    value = if scale >= 0 {
        let mut v = value;
        for _ in 0..scale {
            v = v.saturating_mul(10);
        }
        v
    } else {
        let mut divisor: i128 = 1;
        for _ in 0..(-scale) {
            divisor = divisor.saturating_mul(10);
        }
        // Round up: a positive quantity never becomes zero by precision loss.
        value / divisor + i128::from(value % divisor != 0)
    };
    Ok(Nanos(if negative { -value } else { value }))
}

fn split_number(number: &str) -> Option<(&str, &str)> {
    let (digits, decimals) = match number.split_once('.') {
        Some((d, f)) => (d, f),
        None => (number, ""),
    };
    let valid = !(digits.is_empty() && decimals.is_empty())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && decimals.bytes().all(|b| b.is_ascii_digit());
    valid.then_some((digits, decimals))
}

/// The decimal and binary exponents a suffix stands for.
fn suffix_exponents(suffix: &str) -> Option<(i32, u32)> {
    let exponents = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Beyond +-40 the value saturates or rounds to one nano-unit anyway.
            let e: i32 = exponent.parse().ok()?;
            (e.clamp(-40, 40), 0)
        }
    };
    Some(exponents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse("100m").unwrap(), Nanos(100_000_000));
        assert_eq!(parse("1").unwrap(), Nanos(1_000_000_000));
        assert_eq!(parse("1.5").unwrap(), parse("1500m").unwrap());
        assert_eq!(parse("1Gi").unwrap(), parse("1073741824").unwrap());
        assert_eq!(parse("1Ki").unwrap(), parse("1024").unwrap());
        assert_eq!(parse("2G").unwrap(), parse("2e9").unwrap());
        assert_eq!(parse("0.1").unwrap(), parse("100m").unwrap());
        assert_eq!(parse(".5").unwrap(), parse("500m").unwrap());
        assert_eq!(parse("1E").unwrap(), parse("1e18").unwrap());
        assert_eq!(parse("-1").unwrap(), Nanos(-1_000_000_000));
        assert_eq!(parse("1n").unwrap(), Nanos(1));
    }

    #[test]
    fn below_a_nano_unit_rounds_up() {
        assert_eq!(parse("0.1n").unwrap(), Nanos(1));
    }

    #[test]
    fn orders_across_suffixes() {
        assert!(parse("100Mi").unwrap() < parse("1000Mi").unwrap());
        assert!(parse("1000M").unwrap() < parse("1000Mi").unwrap());
        assert!(parse("999m").unwrap() < parse("1").unwrap());
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for bad in ["", "m", "1.2.3", "abc", "1Q", "1 Gi", "1e", "1e+", "1ki", "--1", "1e3.5", "."] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
