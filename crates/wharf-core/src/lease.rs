//! Lease tokens: opaque, authenticated handles that name a queue, a message and
//! one delivery of it. An HMAC with the server's secret makes them
//! unforgeable, and binding the queue id means a token from one queue is
//! useless on another. Peek references use the same codec with another kind.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::{MessageId, QueueId};

type HmacSha256 = Hmac<Sha256>;

const PAYLOAD_LEN: usize = 1 + 16 + 16 + 4 + 4;
const MAC_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleKind {
    /// Issued by pull: names one delivery (`attempts`).
    Lease = 1,
    /// Issued by preview: names the message, no delivery.
    Preview = 2,
    /// Issued by peek as `ref`.
    PeekRef = 3,
}

impl HandleKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(HandleKind::Lease),
            2 => Some(HandleKind::Preview),
            3 => Some(HandleKind::PeekRef),
            _ => None,
        }
    }
}

/// What an authentic handle says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleClaims {
    pub kind: HandleKind,
    pub queue: QueueId,
    pub message: MessageId,
    /// The delivery the lease was issued for (the message's `attempts` then).
    pub attempts: u32,
}

/// Why a handle was not accepted; the text goes into `warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleProblem {
    #[error("malformed lease id")]
    Malformed,
    #[error("lease id is not authentic")]
    NotAuthentic,
    #[error("lease id belongs to another queue")]
    OtherQueue,
    #[error("lease id is not of the expected kind")]
    WrongKind,
}

#[derive(Clone)]
pub struct HandleCodec {
    /// HMAC state with the key already absorbed: cloning it costs a copy,
    /// where keying anew would cost two extra SHA-256 blocks per handle
    /// (every pulled message is encoded once and every ack decoded once).
    keyed: HmacSha256,
}

impl std::fmt::Debug for HandleCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleCodec { key: <secret> }")
    }
}

impl HandleCodec {
    pub fn new(key: [u8; 32]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        let keyed = match HmacSha256::new_from_slice(&key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("hmac accepts every key length"),
        };
        Self { keyed }
    }

    pub fn encode(&self, kind: HandleKind, queue: QueueId, message: MessageId, attempts: u32) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
        bytes.push(kind as u8);
        bytes.extend_from_slice(&queue.to_bytes());
        bytes.extend_from_slice(&message.to_bytes());
        bytes.extend_from_slice(&attempts.to_be_bytes());
        // A nonce makes each issued handle distinct, so an extended lease
        // gets a new identifier as the API promises.
        bytes.extend_from_slice(&rand::random::<u32>().to_be_bytes());
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(&self, text: &str, queue: QueueId, expected: HandleKind) -> Result<HandleClaims, HandleProblem> {
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).map_err(|_| HandleProblem::Malformed)?;
        if bytes.len() != PAYLOAD_LEN + MAC_LEN {
            return Err(HandleProblem::Malformed);
        }
        let (payload, mac) = bytes.split_at(PAYLOAD_LEN);
        let mut verifier = self.keyed();
        verifier.update(payload);
        verifier.verify_truncated_left(mac).map_err(|_| HandleProblem::NotAuthentic)?;
        let kind = HandleKind::from_byte(payload[0]).ok_or(HandleProblem::Malformed)?;
        let claims = HandleClaims {
            kind,
            queue: QueueId::from_bytes(slice16(&payload[1..17])),
            message: MessageId::from_bytes(slice16(&payload[17..33])),
            attempts: u32::from_be_bytes([payload[33], payload[34], payload[35], payload[36]]),
        };
        if claims.queue != queue {
            return Err(HandleProblem::OtherQueue);
        }
        if claims.kind != expected {
            return Err(HandleProblem::WrongKind);
        }
        Ok(claims)
    }

    fn keyed(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.keyed();
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }
}

fn slice16(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> HandleCodec {
        HandleCodec::new([7u8; 32])
    }

    #[test]
    fn round_trips() {
        let (queue, message) = (QueueId::random(), MessageId::random());
        let token = codec().encode(HandleKind::Lease, queue, message, 3);
        let claims = codec().decode(&token, queue, HandleKind::Lease).expect("authentic");
        assert_eq!((claims.message, claims.attempts), (message, 3));
    }

    #[test]
    fn each_issue_is_distinct() {
        let (queue, message) = (QueueId::random(), MessageId::random());
        assert_ne!(
            codec().encode(HandleKind::Lease, queue, message, 1),
            codec().encode(HandleKind::Lease, queue, message, 1)
        );
    }

    #[test]
    fn refuses_other_queue_kind_key_and_garbage() {
        let (queue, message) = (QueueId::random(), MessageId::random());
        let token = codec().encode(HandleKind::Lease, queue, message, 1);
        assert_eq!(codec().decode(&token, QueueId::random(), HandleKind::Lease), Err(HandleProblem::OtherQueue));
        assert_eq!(codec().decode(&token, queue, HandleKind::PeekRef), Err(HandleProblem::WrongKind));
        let other_key = HandleCodec::new([8u8; 32]);
        assert_eq!(other_key.decode(&token, queue, HandleKind::Lease), Err(HandleProblem::NotAuthentic));
        assert_eq!(codec().decode("not a token", queue, HandleKind::Lease), Err(HandleProblem::Malformed));
        assert_eq!(codec().decode("", queue, HandleKind::Lease), Err(HandleProblem::Malformed));
    }

    #[test]
    fn a_flipped_bit_is_not_authentic() {
        let (queue, message) = (QueueId::random(), MessageId::random());
        let token = codec().encode(HandleKind::Lease, queue, message, 1);
        let mut bytes = URL_SAFE_NO_PAD.decode(token).expect("base64");
        bytes[20] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(codec().decode(&tampered, queue, HandleKind::Lease), Err(HandleProblem::NotAuthentic));
    }
}
