//! Kubernetes resource quantities (`100m`, `1Gi`, `2`, `1e3`).
//!
//! A [`Quantity`] keeps its wire form as written; [`Quantity::parse`] turns it
//! into a [`ParsedQuantity`], an exact value in nano-units plus the notation
//! it was written in. Parsing never allocates (except to build an error) and
//! never panics, so the scheduler can read the requests of every pod cheaply:
//!
//! ```
//! use ketch_core::Quantity;
//! assert_eq!(Quantity::from("100m").milli_value(), Ok(100));
//! assert_eq!(Quantity::from("1.5").milli_value(), Ok(1500));
//! assert_eq!(Quantity::from("1Gi").value(), Ok(1 << 30));
//! assert_eq!(Quantity::from("0.5Ki").value(), Ok(512));
//! assert_eq!(Quantity::from("1e3").value(), Ok(1000));
//! assert_eq!(Quantity::from("1.5Gi").canonical().unwrap().to_string(), "1536Mi");
//! assert_eq!(Quantity::from("1.5.0").value().unwrap_err().to_string(), r#"invalid quantity "1.5.0""#);
//! ```
//!
//! # Grammar and range
//!
//! ```text
//! quantity ::= sign? number suffix
//! number   ::= digits | digits "." digits? | "." digits
//! suffix   ::= "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"   (decimal SI)
//!            | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"                     (binary SI)
//!            | ("e" | "E") sign? digits                                   (decimal exponent)
//! ```
//!
//! As in Kubernetes, a quantity's magnitude is at most 2^63-1 base units and
//! precision finer than one nano-unit is rounded up (away from zero), so
//! `0.1n` reads as `1n`. A larger magnitude is [`QuantityError::OutOfRange`],
//! never a wrap-around or a panic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource quantity in its Kubernetes wire form, e.g. `"500m"` or `"1Gi"`.
///
/// The wire form is kept as written; YAML numbers (`cpu: 2`) are accepted and
/// kept as their decimal text. Deserializing does not check the text: use
/// [`Quantity::parse`] (or the validation module) to reject malformed ones.
///
/// ```
/// use ketch_core::Quantity;
/// let q: Quantity = "250m".parse().unwrap();
/// assert_eq!(q.milli_value(), Ok(250));
/// assert_eq!(Quantity::from_milli(2000).to_string(), "2");
/// assert_eq!(Quantity::from_bytes(512 << 20).to_string(), "512Mi");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quantity(pub String);

/// Why a quantity could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not follow the quantity grammar.
    #[error("invalid quantity {0:?}")]
    Invalid(String),
    /// The number is well formed but the suffix is not a known unit.
    #[error("invalid quantity {quantity:?}: unknown suffix {suffix:?}")]
    UnknownSuffix {
        /// The whole quantity.
        quantity: String,
        /// The unrecognized suffix.
        suffix: String,
    },
    /// The magnitude does not fit (more than 2^63-1 base units, or a
    /// milli-value beyond `i64`).
    #[error("quantity {0:?} is out of range")]
    OutOfRange(String),
}

/// The notation a quantity was written in; canonical formatting keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Powers of ten with SI suffixes: `500m`, `2`, `1k`, `1G`.
    #[default]
    DecimalSI,
    /// Powers of 1024 with IEC suffixes: `1Ki`, `512Mi`, `1Gi`.
    BinarySI,
    /// Scientific notation: `1e3`, `5e-3`.
    DecimalExponent,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// The largest magnitude in nano-units: 2^63-1 base units.
const MAX_NANOS: u128 = i64::MAX as u128 * NANOS_PER_UNIT as u128;

/// An exact quantity value: a whole number of nano-units and the notation it
/// is formatted in.
///
/// `Display` writes the Kubernetes canonical form; `FromStr` parses any
/// quantity.
///
/// ```
/// use ketch_core::quantity::{Format, ParsedQuantity};
/// let q: ParsedQuantity = "1.5Gi".parse().unwrap();
/// assert_eq!(q.format(), Format::BinarySI);
/// assert_eq!(q.value(), 1_610_612_736);
/// assert_eq!(q.to_string(), "1536Mi");
/// assert_eq!(ParsedQuantity::from_milli(1500).to_string(), "1500m");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ParsedQuantity {
    nanos: i128,
    format: Format,
}

impl ParsedQuantity {
    /// A quantity of `nanos` nano-units, or `None` when its magnitude exceeds
    /// 2^63-1 base units.
    ///
    /// ```
    /// use ketch_core::quantity::{Format, ParsedQuantity};
    /// let q = ParsedQuantity::from_nanos(1_500, Format::DecimalSI).unwrap();
    /// assert_eq!(q.to_string(), "1500n");
    /// assert!(ParsedQuantity::from_nanos(i128::MAX, Format::DecimalSI).is_none());
    /// ```
    pub fn from_nanos(nanos: i128, format: Format) -> Option<Self> {
        (nanos.unsigned_abs() <= MAX_NANOS).then_some(Self { nanos, format })
    }

    /// A quantity of `milli` thousandths, in decimal notation (CPU).
    ///
    /// ```
    /// use ketch_core::quantity::ParsedQuantity;
    /// assert_eq!(ParsedQuantity::from_milli(250).to_string(), "250m");
    /// ```
    pub fn from_milli(milli: i64) -> Self {
        Self {
            nanos: milli as i128 * 1_000_000,
            format: Format::DecimalSI,
        }
    }

    /// A quantity of `value` base units in the given notation.
    ///
    /// ```
    /// use ketch_core::quantity::{Format, ParsedQuantity};
    /// assert_eq!(ParsedQuantity::from_value(3 << 30, Format::BinarySI).to_string(), "3Gi");
    /// assert_eq!(ParsedQuantity::from_value(3000, Format::DecimalSI).to_string(), "3k");
    /// ```
    pub fn from_value(value: i64, format: Format) -> Self {
        Self {
            nanos: value as i128 * NANOS_PER_UNIT,
            format,
        }
    }

    /// The exact value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The notation the quantity is formatted in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The value in base units (bytes, cores, counts), rounded up away from
    /// zero as Kubernetes' `Value()` does.
    ///
    /// ```
    /// use ketch_core::quantity::ParsedQuantity;
    /// assert_eq!(ParsedQuantity::from_milli(1001).value(), 2);
    /// assert_eq!(ParsedQuantity::from_milli(-1001).value(), -2);
    /// ```
    pub fn value(&self) -> i64 {
        // |nanos| <= i64::MAX * 1e9, so the rounded quotient fits.
        div_away_from_zero(self.nanos, NANOS_PER_UNIT) as i64
    }

    /// The value in thousandths (milli-cores for CPU), rounded up away from
    /// zero, or `None` if it does not fit an `i64`.
    ///
    /// ```
    /// use ketch_core::quantity::ParsedQuantity;
    /// assert_eq!("0.1m".parse::<ParsedQuantity>().unwrap().milli_value(), Some(1));
    /// assert_eq!("9E".parse::<ParsedQuantity>().unwrap().milli_value(), None);
    /// ```
    pub fn milli_value(&self) -> Option<i64> {
        i64::try_from(div_away_from_zero(self.nanos, 1_000_000)).ok()
    }

    /// The sum of two quantities (keeping `self`'s notation), or `None` when
    /// it is out of range.
    ///
    /// ```
    /// use ketch_core::quantity::ParsedQuantity;
    /// let sum = ParsedQuantity::from_milli(500).checked_add(&ParsedQuantity::from_milli(700));
    /// assert_eq!(sum.map(|q| q.to_string()), Some("1200m".to_string()));
    /// ```
    pub fn checked_add(&self, other: &Self) -> Option<Self> {
        Self::from_nanos(self.nanos.checked_add(other.nanos)?, self.format)
    }

    /// The difference of two quantities (keeping `self`'s notation), or
    /// `None` when it is out of range.
    ///
    /// ```
    /// use ketch_core::quantity::ParsedQuantity;
    /// let d = ParsedQuantity::from_milli(500).checked_sub(&ParsedQuantity::from_milli(700));
    /// assert_eq!(d.map(|q| q.to_string()), Some("-200m".to_string()));
    /// ```
    pub fn checked_sub(&self, other: &Self) -> Option<Self> {
        Self::from_nanos(self.nanos.checked_sub(other.nanos)?, self.format)
    }

    /// Parses a quantity without allocating (unless it fails).
    ///
    /// ```
    /// use ketch_core::quantity::{Format, ParsedQuantity};
    /// let q = ParsedQuantity::parse("+2k").unwrap();
    /// assert_eq!((q.value(), q.format()), (2000, Format::DecimalSI));
    /// assert!(ParsedQuantity::parse("2 k").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let parts = split(s)?;
        let magnitude =
            scaled_magnitude(&parts, 9).ok_or_else(|| QuantityError::OutOfRange(s.to_string()))?;
        if magnitude > MAX_NANOS {
            return Err(QuantityError::OutOfRange(s.to_string()));
        }
        // MAX_NANOS < i128::MAX, so the conversion is exact.
        let nanos = magnitude as i128;
        Ok(Self {
            nanos: if parts.negative { -nanos } else { nanos },
            format: parts.format,
        })
    }
}

/// `n / d` rounded away from zero (`d > 0`).
fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n > 0 {
        q + 1
    } else {
        q - 1
    }
}

/// The pieces of a quantity's text.
struct Parts<'a> {
    negative: bool,
    /// Digits before the decimal point.
    int: &'a [u8],
    /// Digits after the decimal point.
    frac: &'a [u8],
    /// Power of ten from the suffix.
    exp10: i64,
    /// Power of two from the suffix.
    exp2: u32,
    format: Format,
}

/// Largest exponent magnitude kept; beyond it every non-zero value is out of
/// range (positive) or rounds to one nano-unit (negative) anyway.
const EXPONENT_CLAMP: i64 = 1_000_000;

fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let invalid = || QuantityError::Invalid(s.to_string());
    let b = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match b.first() {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let int_start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let int = &b[int_start..pos];
    let mut frac: &[u8] = &[];
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        frac = &b[frac_start..pos];
    }
    if int.is_empty() && frac.is_empty() {
        return Err(invalid());
    }
    let suffix = &s[pos..];
    let (exp10, exp2, format) = match suffix {
        "" => (0, 0, Format::DecimalSI),
        "n" => (-9, 0, Format::DecimalSI),
        "u" => (-6, 0, Format::DecimalSI),
        "m" => (-3, 0, Format::DecimalSI),
        "k" => (3, 0, Format::DecimalSI),
        "M" => (6, 0, Format::DecimalSI),
        "G" => (9, 0, Format::DecimalSI),
        "T" => (12, 0, Format::DecimalSI),
        "P" => (15, 0, Format::DecimalSI),
        "E" => (18, 0, Format::DecimalSI),
        "Ki" => (0, 10, Format::BinarySI),
        "Mi" => (0, 20, Format::BinarySI),
        "Gi" => (0, 30, Format::BinarySI),
        "Ti" => (0, 40, Format::BinarySI),
        "Pi" => (0, 50, Format::BinarySI),
        "Ei" => (0, 60, Format::BinarySI),
        _ => {
            let exp = match suffix.as_bytes() {
                [b'e' | b'E', rest @ ..] => parse_exponent(rest),
                _ => None,
            };
            match exp {
                Some(e) => (e, 0, Format::DecimalExponent),
                None if suffix.bytes().all(|c| c.is_ascii_alphabetic()) => {
                    return Err(QuantityError::UnknownSuffix {
                        quantity: s.to_string(),
                        suffix: suffix.to_string(),
                    });
                }
                None => return Err(invalid()),
            }
        }
    };
    Ok(Parts {
        negative,
        int,
        frac,
        exp10,
        exp2,
        format,
    })
}

/// Parses `sign? digits`, clamping the magnitude to [`EXPONENT_CLAMP`].
fn parse_exponent(b: &[u8]) -> Option<i64> {
    let (negative, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut e: i64 = 0;
    for d in digits {
        e = (e * 10 + i64::from(d - b'0')).min(EXPONENT_CLAMP);
    }
    Some(if negative { -e } else { e })
}

/// `10^i` for every `i` whose power fits a `u128`.
const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The magnitude in units of `10^-scale`, rounded up: `ceil(|digits| *
/// 10^(exp10 - frac_len + scale) * 2^exp2)`, or `None` if it does not fit a
/// `u128`.
fn scaled_magnitude(p: &Parts<'_>, scale: i64) -> Option<u128> {
    let n = p.int.len() + p.frac.len();
    let digit = |i: usize| -> u8 {
        let c = if i < p.int.len() {
            p.int[i]
        } else {
            p.frac[i - p.int.len()]
        };
        c - b'0'
    };
    // exp2 <= 60, so 2^exp2 fits a u64.
    let pow2: u64 = 1 << p.exp2;
    // frac.len() is bounded by the input length, far below i64::MAX.
    let exp = p.exp10 - p.frac.len() as i64 + scale;
    if exp >= 0 {
        let mut acc: u128 = 0;
        for i in 0..n {
            acc = acc.checked_mul(10)?.checked_add(u128::from(digit(i)))?;
        }
        if acc == 0 {
            return Some(0);
        }
        let scale = POW10.get(usize::try_from(exp).ok()?)?;
        return acc.checked_mul(*scale)?.checked_mul(u128::from(pow2));
    }
    // The last `m` digits (with leading zeros when m > n) are fractional.
    let m = usize::try_from(exp.unsigned_abs()).unwrap_or(usize::MAX);
    let split = n.saturating_sub(m);
    let mut int_part: u128 = 0;
    for i in 0..split {
        int_part = int_part
            .checked_mul(10)?
            .checked_add(u128::from(digit(i)))?;
    }
    // Multiply the fraction 0.f1f2...fk by 2^exp2, right to left with carry:
    // the final carry is its integer part, any non-zero digit left behind a
    // remainder that rounds the result up. The carry stays below 2^60, so
    // `digit * 2^exp2 + carry < 10 * 2^60` fits a u64.
    let mut carry: u64 = 0;
    let mut remainder = false;
    for i in (split..n).rev() {
        let t = u64::from(digit(i)) * pow2 + carry;
        remainder |= !t.is_multiple_of(10);
        carry = t / 10;
    }
    let mut leading_zeros = m.saturating_sub(n);
    while carry != 0 && leading_zeros > 0 {
        remainder |= !carry.is_multiple_of(10);
        carry /= 10;
        leading_zeros -= 1;
    }
    int_part
        .checked_mul(u128::from(pow2))?
        .checked_add(u128::from(carry))?
        .checked_add(u128::from(remainder))
}

/// The value of `s` in units of `10^-scale`, rounded up away from zero,
/// computed at that scale directly (no wide division). Rounding twice
/// (`ceil(ceil(x * 10^9) / 10^(9 - scale))`) gives the same result, so this
/// agrees with [`ParsedQuantity::value`] and [`ParsedQuantity::milli_value`].
fn scaled_i64(s: &str, scale: i64) -> Result<i64, QuantityError> {
    let parts = split(s)?;
    let out_of_range = || QuantityError::OutOfRange(s.to_string());
    let magnitude = scaled_magnitude(&parts, scale)
        // Base units are bounded by 2^63-1 in both directions; scaled
        // values only by the i64 range.
        .filter(|m| *m <= i64::MAX as u128 || (scale > 0 && parts.negative && *m == 1 << 63))
        .ok_or_else(out_of_range)?;
    // magnitude <= 2^63, so the conversions are exact.
    let signed = if parts.negative {
        -(magnitude as i128)
    } else {
        magnitude as i128
    };
    i64::try_from(signed).map_err(|_| out_of_range())
}

impl FromStr for ParsedQuantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ParsedQuantity {
    /// Writes the Kubernetes canonical form: the shortest integer mantissa
    /// with a suffix whose exponent is a multiple of three (decimal) or ten
    /// (binary). Binary notation falls back to decimal for values that are not
    /// a whole number of Ki. This differs from Kubernetes in one corner:
    /// Kubernetes writes a binary 17049000 as `17049000`, which reads back
    /// as decimal and then formats as `17049k`; ketch writes `17049k` at
    /// once, so the canonical form of a canonical form is itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut format = self.format;
        if format == Format::BinarySI && self.nanos % (1024 * NANOS_PER_UNIT) != 0 {
            format = Format::DecimalSI;
        }
        if self.nanos == 0 {
            return f.write_str("0");
        }
        if format == Format::BinarySI {
            let mut v = self.nanos / NANOS_PER_UNIT;
            let mut exp = 0;
            while exp < 60 && v % 1024 == 0 {
                v /= 1024;
                exp += 10;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp / 10];
            return write!(f, "{v}{suffix}");
        }
        let mut mantissa = self.nanos;
        let mut exp: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exp += 1;
        }
        let shift = exp.rem_euclid(3);
        mantissa *= 10i128.pow(shift as u32);
        exp -= shift;
        if format == Format::DecimalExponent {
            return if exp == 0 {
                write!(f, "{mantissa}")
            } else {
                write!(f, "{mantissa}e{exp}")
            };
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            // The range bound (2^63-1 base units) keeps the exponent <= 18.
            _ => "E",
        };
        write!(f, "{mantissa}{suffix}")
    }
}

impl Quantity {
    /// Parses the wire form into an exact value.
    ///
    /// ```
    /// use ketch_core::Quantity;
    /// assert_eq!(Quantity::from("1Mi").parse().unwrap().value(), 1 << 20);
    /// ```
    pub fn parse(&self) -> Result<ParsedQuantity, QuantityError> {
        ParsedQuantity::parse(&self.0)
    }

    /// The value in thousandths (milli-cores for CPU), rounded up.
    ///
    /// ```
    /// use ketch_core::Quantity;
    /// assert_eq!(Quantity::from("0.5").milli_value(), Ok(500));
    /// assert_eq!(Quantity::from("2").milli_value(), Ok(2000));
    /// ```
    pub fn milli_value(&self) -> Result<i64, QuantityError> {
        scaled_i64(&self.0, 3)
    }

    /// The value in base units (bytes for memory, plain counts for extended
    /// resources), rounded up like Kubernetes' `Value()`.
    ///
    /// ```
    /// use ketch_core::Quantity;
    /// assert_eq!(Quantity::from("500Mi").value(), Ok(500 << 20));
    /// assert_eq!(Quantity::from("1G").value(), Ok(1_000_000_000));
    /// assert_eq!(Quantity::from("100m").value(), Ok(1));
    /// ```
    pub fn value(&self) -> Result<i64, QuantityError> {
        scaled_i64(&self.0, 0)
    }

    /// The canonical form of this quantity (`1000m` becomes `1`, `1024Mi`
    /// becomes `1Gi`).
    ///
    /// ```
    /// use ketch_core::Quantity;
    /// assert_eq!(Quantity::from("1000m").canonical(), Ok(Quantity::from("1")));
    /// assert_eq!(Quantity::from("2048Ki").canonical(), Ok(Quantity::from("2Mi")));
    /// ```
    pub fn canonical(&self) -> Result<Quantity, QuantityError> {
        Ok(self.parse()?.into())
    }

    /// `milli` thousandths in canonical decimal form (`100m`, `1`, `1500m`).
    ///
    /// ```
    /// use ketch_core::Quantity;
    /// assert_eq!(Quantity::from_milli(100).0, "100m");
    /// assert_eq!(Quantity::from_milli(1000).0, "1");
    /// ```
    pub fn from_milli(milli: i64) -> Quantity {
        ParsedQuantity::from_milli(milli).into()
    }

    /// `bytes` in canonical binary form (`512Mi`, `1Gi`), decimal when not a
    /// multiple of 1024.
    ///
    /// ```
    /// use ketch_core::Quantity;
    /// assert_eq!(Quantity::from_bytes(1 << 30).0, "1Gi");
    /// assert_eq!(Quantity::from_bytes(1500).0, "1500");
    /// ```
    pub fn from_bytes(bytes: i64) -> Quantity {
        ParsedQuantity::from_value(bytes, Format::BinarySI).into()
    }

    /// A plain count (cores, pods, extended resources) in canonical decimal
    /// form.
    ///
    /// ```
    /// use ketch_core::Quantity;
    /// assert_eq!(Quantity::from_value(4).0, "4");
    /// assert_eq!(Quantity::from_value(2000).0, "2k");
    /// ```
    pub fn from_value(value: i64) -> Quantity {
        ParsedQuantity::from_value(value, Format::DecimalSI).into()
    }
}

impl From<ParsedQuantity> for Quantity {
    fn from(q: ParsedQuantity) -> Self {
        Quantity(q.to_string())
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    /// Checks the text and keeps it as written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ParsedQuantity::parse(s)?;
        Ok(Quantity(s.to_string()))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity(s.to_string())
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as \"100m\", \"1Gi\" or 2")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> ParsedQuantity {
        match ParsedQuantity::parse(s) {
            Ok(q) => q,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_values_and_milli_values() {
        // (input, value(), milli_value(), canonical form)
        let cases: &[(&str, i64, Option<i64>, &str)] = &[
            ("0", 0, Some(0), "0"),
            ("100m", 1, Some(100), "100m"),
            ("0.5", 1, Some(500), "500m"),
            ("2", 2, Some(2000), "2"),
            ("+1", 1, Some(1000), "1"),
            ("-1", -1, Some(-1000), "-1"),
            ("1.5", 2, Some(1500), "1500m"),
            ("1.", 1, Some(1000), "1"),
            (".5", 1, Some(500), "500m"),
            ("1Gi", 1 << 30, Some(1000 << 30), "1Gi"),
            ("500Mi", 500 << 20, Some(500_000 << 20), "500Mi"),
            ("1024Mi", 1 << 30, Some(1000 << 30), "1Gi"),
            ("1.5Gi", 1_610_612_736, Some(1_610_612_736_000), "1536Mi"),
            ("0.5Ki", 512, Some(512_000), "512"),
            ("1.1Ki", 1127, Some(1_126_400), "1126400m"),
            ("1G", 1_000_000_000, Some(1_000_000_000_000), "1G"),
            ("1e3", 1000, Some(1_000_000), "1e3"),
            ("1E3", 1000, Some(1_000_000), "1e3"),
            ("1.5e3", 1500, Some(1_500_000), "1500"),
            ("5e-3", 1, Some(5), "5e-3"),
            ("1e+2", 100, Some(100_000), "100"),
            ("1000m", 1, Some(1000), "1"),
            ("1500m", 2, Some(1500), "1500m"),
            ("2000", 2000, Some(2_000_000), "2k"),
            ("1k", 1000, Some(1_000_000), "1k"),
            ("10M", 10_000_000, Some(10_000_000_000), "10M"),
            ("1T", 1_000_000_000_000, Some(1_000_000_000_000_000), "1T"),
            (
                "1P",
                1_000_000_000_000_000,
                Some(1_000_000_000_000_000_000),
                "1P",
            ),
            ("250u", 1, Some(1), "250u"),
            ("1n", 1, Some(1), "1n"),
            ("0.1n", 1, Some(1), "1n"),
            ("1e-30", 1, Some(1), "1e-9"),
            ("-0.1n", -1, Some(-1), "-1n"),
            (
                "000000000000000000000000000000000000000000012",
                12,
                Some(12_000),
                "12",
            ),
            (
                "0.000000000000000000000000000000000000000000",
                0,
                Some(0),
                "0",
            ),
            (
                "1.0000000000000000000000000000000000000000000001Ki",
                1025,
                Some(1_024_001),
                "1024000000001n",
            ),
            ("9223372036854775807", i64::MAX, None, "9223372036854775807"),
        ];
        for &(input, value, milli, canonical) in cases {
            let p = q(input);
            assert_eq!(p.value(), value, "value of {input}");
            assert_eq!(p.milli_value(), milli, "milli of {input}");
            assert_eq!(p.to_string(), canonical, "canonical form of {input}");
        }
        // 2^63 is one past the range.
        assert_eq!(
            ParsedQuantity::parse("8Ei"),
            Err(QuantityError::OutOfRange("8Ei".into()))
        );
    }

    #[test]
    fn binary_quantities_that_are_not_whole_ki_format_as_decimal() {
        assert_eq!(
            ParsedQuantity::from_value(1000, Format::BinarySI).to_string(),
            "1k"
        );
        assert_eq!(
            ParsedQuantity::from_value(-2048, Format::BinarySI).to_string(),
            "-2Ki"
        );
        assert_eq!(q("1.5Ki").to_string(), "1536");
        assert_eq!(q("7Ei").to_string(), "7Ei");
        assert_eq!(
            ParsedQuantity::from_value(17_049_000, Format::BinarySI).to_string(),
            "17049k"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("1.5.0", r#"invalid quantity "1.5.0""#),
            ("", r#"invalid quantity """#),
            ("+", r#"invalid quantity "+""#),
            (".", r#"invalid quantity ".""#),
            ("m", r#"invalid quantity "m""#),
            ("1 Gi", r#"invalid quantity "1 Gi""#),
            ("1e", r#"invalid quantity "1e": unknown suffix "e""#),
            ("1e3.5", r#"invalid quantity "1e3.5""#),
            ("5Gb", r#"invalid quantity "5Gb": unknown suffix "Gb""#),
            ("1K", r#"invalid quantity "1K": unknown suffix "K""#),
            ("--1", r#"invalid quantity "--1""#),
            ("1e19", r#"quantity "1e19" is out of range"#),
            ("10E", r#"quantity "10E" is out of range"#),
            (
                "1e99999999999999999999",
                r#"quantity "1e99999999999999999999" is out of range"#,
            ),
            (
                "123456789012345678901234567890123456789012345",
                r#"quantity "123456789012345678901234567890123456789012345" is out of range"#,
            ),
        ];
        for &(input, message) in cases {
            let err = ParsedQuantity::parse(input).expect_err(input);
            assert_eq!(err.to_string(), message);
        }
        assert_eq!(
            Quantity::from("9E").milli_value(),
            Err(QuantityError::OutOfRange("9E".into()))
        );
    }

    #[test]
    fn tiny_negative_exponents_round_up_to_one_nano() {
        assert_eq!(q("1e-999999999999").nanos(), 1);
        assert_eq!(q("0e99999999").nanos(), 0);
    }

    #[test]
    fn quantity_keeps_wire_form_and_constructors_are_canonical() {
        let parsed: Quantity = "1000m".parse().unwrap();
        assert_eq!(parsed.0, "1000m");
        assert_eq!(Quantity::from_milli(1500).0, "1500m");
        assert_eq!(Quantity::from_bytes(3 << 20).0, "3Mi");
        assert_eq!(Quantity::from_value(1_000_000).0, "1M");
        assert!("1.5.0".parse::<Quantity>().is_err());
        let yaml: Quantity = serde_json::from_str("0.5").unwrap();
        assert_eq!(yaml.milli_value(), Ok(500));
    }

    fn format_strategy() -> impl Strategy<Value = Format> {
        prop_oneof![
            Just(Format::DecimalSI),
            Just(Format::BinarySI),
            Just(Format::DecimalExponent)
        ]
    }

    fn nanos_strategy() -> impl Strategy<Value = i128> {
        let max = MAX_NANOS as i128;
        prop_oneof![
            -max..=max,
            any::<i64>().prop_map(|v| v as i128 * NANOS_PER_UNIT),
            (any::<i32>(), 0u32..7)
                .prop_map(|(v, e)| v as i128 * (1i128 << (10 * e)) * NANOS_PER_UNIT)
                .prop_filter("in range", move |n| n.unsigned_abs() <= MAX_NANOS),
            (any::<i32>(), 0u32..28)
                .prop_map(|(v, e)| v as i128 * 10i128.pow(e))
                .prop_filter("in range", move |n| n.unsigned_abs() <= MAX_NANOS),
        ]
    }

    proptest! {
        #[test]
        fn parse_of_format_is_identity(nanos in nanos_strategy(), format in format_strategy()) {
            let x = ParsedQuantity::from_nanos(nanos, format).unwrap();
            let text = x.to_string();
            let back = ParsedQuantity::parse(&text).unwrap();
            prop_assert_eq!(back.nanos(), x.nanos());
            prop_assert_eq!(back.to_string(), text.clone());
            if back.format() != x.format() {
                // Only binary values that are not whole Ki, and exponent
                // values with exponent zero, change notation.
                prop_assert!(!text.ends_with('i'));
                prop_assert!(!text.contains('e'));
            }
        }

        #[test]
        fn no_input_panics(s in "\\PC{0,40}") {
            let _ = ParsedQuantity::parse(&s);
        }

        #[test]
        fn no_quantity_shaped_input_panics(s in "[+-]?[0-9]{0,30}(\\.[0-9]{0,30})?([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]{1,25})?") {
            if let Ok(p) = ParsedQuantity::parse(&s) {
                let back = ParsedQuantity::parse(&p.to_string()).unwrap();
                prop_assert_eq!(back.nanos(), p.nanos());
            }
        }

        #[test]
        fn direct_and_parsed_values_agree(s in "[+-]?[0-9]{0,20}(\\.[0-9]{0,12})?([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]{1,2})?") {
            let q = Quantity(s.clone());
            match ParsedQuantity::parse(&s) {
                Ok(p) => {
                    prop_assert_eq!(q.value(), Ok(p.value()));
                    match p.milli_value() {
                        Some(m) => prop_assert_eq!(q.milli_value(), Ok(m)),
                        None => prop_assert_eq!(q.milli_value(), Err(QuantityError::OutOfRange(s.clone()))),
                    }
                }
                Err(e) => {
                    prop_assert_eq!(q.value(), Err(e.clone()));
                    prop_assert_eq!(q.milli_value(), Err(e));
                }
            }
        }

        #[test]
        fn milli_value_matches_integer_arithmetic(milli in any::<i64>()) {
            let text = format!("{milli}m");
            prop_assert_eq!(Quantity(text).milli_value(), Ok(milli));
        }

        #[test]
        fn binary_values_are_exact(v in 0i64..(1 << 20), e in 0u32..4) {
            let suffix = ["Ki", "Mi", "Gi", "Ti"][e as usize];
            let text = format!("{v}{suffix}");
            prop_assert_eq!(Quantity(text).value(), Ok(v << (10 * (e + 1))));
        }
    }
}
