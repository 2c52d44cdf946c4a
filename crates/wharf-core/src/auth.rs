//! API token secrets: generated with enough entropy, stored only as a hash.

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::model::Scope;

/// Length of generated token secrets (Cloudflare's tokens are 40 characters).
pub const TOKEN_SECRET_LEN: usize = 40;

/// Shortest secret an operator may configure (`WHARF_API_TOKEN`). Secrets
/// are stored as unsalted SHA-256, so a short one could be guessed offline
/// from a copy of the data.
pub const MIN_CONFIGURED_SECRET_LEN: usize = 20;

/// A new random token secret.
pub fn generate_secret() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(TOKEN_SECRET_LEN).map(char::from).collect()
}

/// The hash stored for a secret. Secrets are random and long, so a fast hash
/// is enough: there is no low-entropy password to stretch.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether a token may be used with the given header syntax: printable ASCII
/// without spaces. Anything else is a malformed header, not a wrong token.
pub fn is_well_formed_secret(secret: &str) -> bool {
    !secret.is_empty() && secret.len() <= 256 && secret.bytes().all(|b| b.is_ascii_graphic())
}

/// Why an operator-chosen secret is refused, if it is.
pub fn configured_secret_problem(secret: &str) -> Option<String> {
    if !is_well_formed_secret(secret) {
        return Some("must be 1-256 printable ASCII characters without spaces".to_string());
    }
    if secret.len() < MIN_CONFIGURED_SECRET_LEN {
        return Some(format!(
            "is {} characters; at least {MIN_CONFIGURED_SECRET_LEN} are needed, since tokens are stored as unsalted \
             SHA-256 (leave it unset and Wharf generates one)",
            secret.len()
        ));
    }
    None
}

/// What an operation needs of the caller's token.
pub fn permits(granted: Scope, needed: Scope) -> bool {
    granted >= needed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_secrets_must_be_long_and_well_formed() {
        assert!(configured_secret_problem("short-secret").is_some_and(|why| why.contains("at least 20")));
        assert!(configured_secret_problem(&"x".repeat(19)).is_some());
        assert!(configured_secret_problem(&"x".repeat(20)).is_none());
        assert!(configured_secret_problem("twenty characters with spaces").is_some());
        assert!(configured_secret_problem(&generate_secret()).is_none());
    }

    #[test]
    fn secrets_are_long_random_and_well_formed() {
        let (first, second) = (generate_secret(), generate_secret());
        assert_eq!(first.len(), TOKEN_SECRET_LEN);
        assert_ne!(first, second);
        assert!(is_well_formed_secret(&first));
    }

    #[test]
    fn write_implies_read_but_not_the_reverse() {
        assert!(permits(Scope::Write, Scope::Read));
        assert!(!permits(Scope::Read, Scope::Write));
    }

    #[test]
    fn rejects_spaces_and_control_characters() {
        assert!(!is_well_formed_secret("a b"));
        assert!(!is_well_formed_secret("a\u{7}"));
        assert!(!is_well_formed_secret(""));
    }
}
