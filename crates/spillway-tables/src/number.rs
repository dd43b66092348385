//! DynamoDB numbers: up to 38 significant digits, magnitudes from 1E-130 to
//! 9.9999999999999999999999999999999999999E+125, exact decimal arithmetic and ordering.
//!
//! A [`Number`] is kept normalized (no leading or trailing zeros) so that equal values are equal
//! whatever text the client sent ("1.50" and "15E-1"), and is given back in plain notation as
//! DynamoDB does. Arithmetic (`SET a = a + :n`, `ADD`) is exact; a result that needs more than
//! 38 digits or leaves the range is refused, never rounded silently.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use bigdecimal::{BigDecimal, Signed, Zero};

/// Most significant digits a number may carry.
pub const MAX_DIGITS: u64 = 38;
/// Decimal exponent bounds, with the value written as 0.d1d2... × 10^e.
const MAX_EXPONENT: i64 = 126;
const MIN_EXPONENT: i64 = -129;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// The text the client sent (DynamoDB quotes it after the colon; empty text stands alone).
    #[error("The parameter cannot be converted to a numeric value{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    NotANumber(String),
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooPrecise,
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    #[error(
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    )]
    Underflow,
}

/// A validated, normalized DynamoDB number.
#[derive(Clone)]
pub struct Number {
    value: BigDecimal,
}

impl Number {
    /// Parses what a client sent. DynamoDB accepts Java's decimal syntax (a sign, digits with an
    /// optional point, an optional exponent); it refuses NaN, infinities, hex and blanks.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let t = text.trim();
        if t.is_empty()
            || t.len() > 1024
            || !t
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
            || !t.bytes().any(|b| b.is_ascii_digit())
        {
            return Err(NumberError::NotANumber(text.to_owned()));
        }
        // An exponent far outside DynamoDB's range is decided from the text: bigdecimal's
        // scale arithmetic would overflow on exponents near i64's limits.
        if let Some(at) = t.find(['e', 'E']) {
            let (mantissa, exp) = (&t[..at], &t[at + 1..]);
            let digits = exp.trim_start_matches(['+', '-']);
            let significant = digits.trim_start_matches('0');
            if significant.len() > 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
                if !mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
                    return Ok(Number::zero());
                }
                return Err(if exp.starts_with('-') {
                    NumberError::Underflow
                } else {
                    NumberError::Overflow
                });
            }
        }
        let value =
            BigDecimal::from_str(t).map_err(|_| NumberError::NotANumber(text.to_owned()))?;
        Number::checked(value)
    }

    /// Normalizes and checks the digit count and the range.
    fn checked(value: BigDecimal) -> Result<Number, NumberError> {
        let value = value.normalized();
        if value.is_zero() {
            return Ok(Number {
                value: BigDecimal::zero(),
            });
        }
        let digits = value.digits();
        if digits > MAX_DIGITS {
            return Err(NumberError::TooPrecise);
        }
        let e = exponent(&value);
        if e > MAX_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if e < MIN_EXPONENT {
            return Err(NumberError::Underflow);
        }
        Ok(Number { value })
    }

    pub fn zero() -> Number {
        Number {
            value: BigDecimal::zero(),
        }
    }

    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        Number::checked(&self.value + &other.value)
    }

    pub fn sub(&self, other: &Number) -> Result<Number, NumberError> {
        Number::checked(&self.value - &other.value)
    }

    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }

    /// Bytes DynamoDB counts for the number: one per two significant digits, plus one.
    pub fn stored_size(&self) -> usize {
        if self.value.is_zero() {
            return 2;
        }
        (self.value.digits() as usize).div_ceil(2) + 1
    }

    /// The number as a whole `u64` if it is one (TTL attributes, `Limit`-like values).
    pub fn as_u64(&self) -> Option<u64> {
        if self.value.is_negative() || !self.value.is_integer() {
            return None;
        }
        self.value.to_string().parse().ok()
    }

    /// The number as an `f64` for TTL comparisons where a fraction of a second does not
    /// matter (epoch seconds may be sent with a fraction).
    pub fn as_f64_lossy(&self) -> f64 {
        self.value.to_string().parse().unwrap_or(f64::NAN)
    }

    /// An order-preserving encoding: byte strings compare as the numbers do, and an encoding is
    /// never a prefix of another's, so encodings concatenate in composite keys.
    ///
    /// Zero is `0x80`. A positive number is `0xC0`, its exponent (e + 0x8000, big-endian) and
    /// its digits as bytes 1..=10, ended by `0x00` (a shorter digit string is the smaller
    /// number at equal exponent, and `0x00` sorts first). Negative numbers are `0x40` and the
    /// same bytes complemented, ended by `0xFF`, so larger magnitudes sort first.
    pub fn encode_ordered(&self, out: &mut Vec<u8>) {
        if self.value.is_zero() {
            out.push(0x80);
            return;
        }
        let negative = self.value.is_negative();
        let e = exponent(&self.value);
        let (int, _) = self.value.as_bigint_and_exponent();
        let digits = int.magnitude().to_string();
        let exp = ((e + 0x8000) as u16).to_be_bytes();
        let flip = |b: u8| if negative { !b } else { b };
        out.push(if negative { 0x40 } else { 0xC0 });
        out.push(flip(exp[0]));
        out.push(flip(exp[1]));
        for d in digits.bytes() {
            out.push(flip(d - b'0' + 1));
        }
        out.push(if negative { 0xFF } else { 0x00 });
    }
}

/// The exponent e of the value written as 0.d1d2... × 10^e.
fn exponent(value: &BigDecimal) -> i64 {
    let (_, scale) = value.as_bigint_and_exponent();
    value.digits() as i64 - scale
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_string().hash(state)
    }
}

impl fmt::Display for Number {
    /// Plain notation (no exponent), as DynamoDB returns numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_zero() {
            return f.write_str("0");
        }
        let (int, scale) = self.value.as_bigint_and_exponent();
        let digits = int.magnitude().to_string();
        if self.value.is_negative() {
            f.write_str("-")?;
        }
        if scale <= 0 {
            f.write_str(&digits)?;
            for _ in 0..(-scale) {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let scale = scale as usize;
        if digits.len() > scale {
            let (whole, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{whole}.{frac}")
        } else {
            f.write_str("0.")?;
            for _ in 0..(scale - digits.len()) {
                f.write_str("0")?;
            }
            f.write_str(&digits)
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "N({self})")
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Number::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalizes_and_prints_plain() {
        assert_eq!(n("1.50").to_string(), "1.5");
        assert_eq!(n("15E-1"), n("1.5"));
        assert_eq!(n("-0.000").to_string(), "0");
        assert_eq!(n("1e3").to_string(), "1000");
        assert_eq!(n("0.00012").to_string(), "0.00012");
        assert_eq!(n("+007").to_string(), "7");
        assert_eq!(n("-12.5e1").to_string(), "-125");
    }

    #[test]
    fn refuses_what_dynamodb_refuses() {
        for bad in ["", "abc", "NaN", "Infinity", "1..2", "0x10", " ", "1e"] {
            assert_eq!(
                Number::parse(bad),
                Err(NumberError::NotANumber(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(
            Number::parse("123456789012345678901234567890123456789"),
            Err(NumberError::TooPrecise)
        );
        assert!(Number::parse("12345678901234567890123456789012345678").is_ok());
        assert_eq!(Number::parse("1E126"), Err(NumberError::Overflow));
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
        assert_eq!(
            Number::parse("1e9223372036854775808"),
            Err(NumberError::Overflow)
        );
        assert_eq!(Number::parse("5e-99999999"), Err(NumberError::Underflow));
        assert_eq!(Number::parse("0e99999999"), Ok(Number::zero()));
        assert_eq!(
            Number::parse("1e+0000000005").map(|n| n.to_string()),
            Ok("100000".into())
        );
        assert!(Number::parse("1E-130").is_ok());
    }

    #[test]
    fn arithmetic_is_exact_decimal() {
        assert_eq!(
            n("0.1").add(&n("0.2")).map(|x| x.to_string()),
            Ok("0.3".into())
        );
        assert_eq!(
            n("12345678901234567890123456789012345678")
                .add(&n("1"))
                .map(|x| x.to_string()),
            Ok("12345678901234567890123456789012345679".into())
        );
        assert_eq!(
            n("99999999999999999999999999999999999999").add(&n("0.1")),
            Err(NumberError::TooPrecise)
        );
        assert_eq!(
            n("5").sub(&n("7.5")).map(|x| x.to_string()),
            Ok("-2.5".into())
        );
    }

    #[test]
    fn encoding_orders_as_numbers() {
        let mut values: Vec<Number> = [
            "-1e100", "-1000", "-999.9", "-1", "-0.5", "-0.0001", "0", "0.0001", "0.001", "0.5",
            "0.55", "1", "1.000001", "9", "10", "99.99", "100", "1e100",
        ]
        .iter()
        .map(|s| n(s))
        .collect();
        let sorted = values.clone();
        values.reverse();
        let mut encoded: Vec<(Vec<u8>, Number)> = values
            .into_iter()
            .map(|v| {
                let mut b = Vec::new();
                v.encode_ordered(&mut b);
                (b, v)
            })
            .collect();
        encoded.sort_by(|a, b| a.0.cmp(&b.0));
        let by_bytes: Vec<Number> = encoded.into_iter().map(|(_, v)| v).collect();
        assert_eq!(by_bytes, sorted);
    }

    #[test]
    fn size_counts_significant_digits() {
        assert_eq!(n("1").stored_size(), 2);
        assert_eq!(n("12").stored_size(), 2);
        assert_eq!(n("123").stored_size(), 3);
        assert_eq!(n("1000").stored_size(), 2);
    }
}
