//! Whole numbers as clients send them. The official SDKs type settings such
//! as `delivery_delay` as floats, so a value read back and sent again arrives
//! as `3.0`: a whole number written with a fraction is accepted; `3.5`, a
//! negative number or one out of range is refused with a clear message.

use serde::de::{Deserializer, Error};
use serde::Deserialize;
use serde_json::Number;

/// Largest float that still represents every whole number below it exactly.
const EXACT_FLOAT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// For `#[serde(default, deserialize_with = "integral::option")]` on an
/// `Option` of an integer type.
pub fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    let Some(number) = Option::<Number>::deserialize(deserializer)? else { return Ok(None) };
    let out_of_range = || D::Error::custom(format!("{number} is out of range"));
    if let Some(value) = number.as_u64() {
        return T::try_from(value).map(Some).map_err(|_| out_of_range());
    }
    if let Some(value) = number.as_i64() {
        return T::try_from(value).map(Some).map_err(|_| out_of_range());
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && value.abs() < EXACT_FLOAT_LIMIT => {
            T::try_from(value as i64).map(Some).map_err(|_| out_of_range())
        }
        _ => Err(D::Error::custom(format!("{number} is not a whole number"))),
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "super::option")]
        small: Option<u32>,
        #[serde(default, deserialize_with = "super::option")]
        signed: Option<i64>,
    }

    fn parse(json: &str) -> Result<Sample, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn whole_numbers_in_any_notation_are_accepted() {
        let sample = parse(r#"{"small": 3.0, "signed": -2}"#).expect("parses");
        assert_eq!((sample.small, sample.signed), (Some(3), Some(-2)));
        assert_eq!(parse("{}").expect("parses").small, None);
        assert_eq!(parse(r#"{"small": null}"#).expect("parses").small, None);
        assert_eq!(parse(r#"{"small": 1e3}"#).expect("parses").small, Some(1000));
    }

    #[test]
    fn fractions_negatives_and_overflow_are_refused() {
        for bad in [r#"{"small": 3.5}"#, r#"{"small": -1}"#, r#"{"small": 4294967296}"#, r#"{"small": "3"}"#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
