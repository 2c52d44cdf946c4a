//! 128-bit identifiers rendered as 32 lowercase hex characters, the shape
//! Cloudflare uses for every resource identifier (a UUID without dashes).

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identifier must be 32 hexadecimal characters")]
pub struct MalformedId;

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u128);

        impl $name {
            /// A fresh random identifier.
            pub fn random() -> Self {
                Self(rand::random::<u128>())
            }

            pub fn to_bytes(self) -> [u8; 16] {
                self.0.to_be_bytes()
            }

            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(u128::from_be_bytes(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = MalformedId;

            fn from_str(text: &str) -> Result<Self, MalformedId> {
                parse_hex128(text).map(Self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// An account: the namespace that owns queues and tokens.
    AccountId
);
hex_id!(
    /// A queue.
    QueueId
);
hex_id!(
    /// A consumer attached to a queue.
    ConsumerId
);
hex_id!(
    /// A message; unique across the whole server.
    MessageId
);
hex_id!(
    /// An API token (not its secret).
    TokenId
);
hex_id!(
    /// An event subscription.
    SubscriptionId
);

/// Parses exactly 32 hex digits (either case) into a u128.
fn parse_hex128(text: &str) -> Result<u128, MalformedId> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(MalformedId);
    }
    u128::from_str_radix(text, 16).map_err(|_| MalformedId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = QueueId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<QueueId>(), Ok(id));
    }

    #[test]
    fn keeps_leading_zeros() {
        assert_eq!(QueueId(1).to_string(), format!("{:0>32}", "1"));
    }

    #[test]
    fn rejects_bad_text() {
        for bad in ["", "abc", "+0000000000000000000000000000001", &"g".repeat(32), &"0".repeat(33)] {
            assert_eq!(bad.parse::<QueueId>(), Err(MalformedId), "{bad}");
        }
    }
}
