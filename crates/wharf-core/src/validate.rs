//! Checks shared by every backend, so that a bad request fails the same way
//! whatever stores the data.

use crate::error::{WharfError, WharfResult};
use crate::ids::QueueId;
use crate::limits::Limits;
use crate::model::{ConsumerSettings, NewMessage, QueueSettings};

/// `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`
pub fn queue_name(name: &str) -> WharfResult<()> {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| *b != b'-');
    let valid =
        (1..=63).contains(&bytes.len()) && bytes.iter().all(allowed) && edge_ok(bytes.first()) && edge_ok(bytes.last());
    if valid {
        Ok(())
    } else {
        Err(WharfError::QueueNameInvalid { name: name.chars().take(100).collect() })
    }
}

pub fn queue_settings(settings: &QueueSettings, limits: &Limits) -> WharfResult<()> {
    let invalid = |detail: String| Err(WharfError::QueueSettingsInvalid { detail });
    if settings.delivery_delay > limits.max_delay_seconds {
        return invalid(format!("delivery_delay must be between 0 and {}", limits.max_delay_seconds));
    }
    let retention = limits.min_retention_seconds..=limits.max_retention_seconds;
    if !retention.contains(&settings.message_retention_period) {
        return invalid(format!(
            "message_retention_period must be between {} and {}",
            limits.min_retention_seconds, limits.max_retention_seconds
        ));
    }
    Ok(())
}

pub fn consumer_settings(settings: &ConsumerSettings, limits: &Limits) -> WharfResult<()> {
    let invalid = |detail: String| Err(WharfError::ConsumerSettingsInvalid { detail });
    if !(1..=limits.max_pull_batch).contains(&settings.batch_size) {
        return invalid(format!("batch_size must be between 1 and {}", limits.max_pull_batch));
    }
    if settings.max_retries > limits.max_retries {
        return invalid(format!("max_retries must be between 0 and {}", limits.max_retries));
    }
    if settings.retry_delay > limits.max_delay_seconds {
        return invalid(format!("retry_delay must be between 0 and {}", limits.max_delay_seconds));
    }
    if settings.max_wait_time_ms > 60_000 {
        return invalid("max_wait_time_ms must be between 0 and 60000".to_string());
    }
    if settings.max_concurrency.is_some_and(|n| !(1..=250).contains(&n)) {
        return invalid("max_concurrency must be between 1 and 250, or null".to_string());
    }
    if !(1..=limits.max_visibility_timeout_ms).contains(&settings.visibility_timeout_ms) {
        return invalid(format!("visibility_timeout_ms must be between 1 and {}", limits.max_visibility_timeout_ms));
    }
    Ok(())
}

pub fn delay_seconds(delay: u32, limits: &Limits) -> WharfResult<()> {
    if delay > limits.max_delay_seconds {
        return Err(WharfError::MessageMetadataInvalid {
            detail: format!("delay_seconds must be between 0 and {}", limits.max_delay_seconds),
        });
    }
    Ok(())
}

/// Size and count limits of a push; one message is a batch of one.
pub fn messages(messages: &[NewMessage], limits: &Limits) -> WharfResult<()> {
    let count = messages.len() as u64;
    if count > limits.max_batch_messages {
        return Err(WharfError::BatchTooManyMessages { count, limit: limits.max_batch_messages });
    }
    let mut total = 0u64;
    for message in messages {
        let size = message.body.len() as u64;
        if size > limits.max_message_bytes {
            return Err(WharfError::MessageTooLarge { size, limit: limits.max_message_bytes });
        }
        if let Some(delay) = message.delay_seconds {
            delay_seconds(delay, limits)?;
        }
        total += size;
    }
    if total > limits.max_batch_bytes {
        return Err(WharfError::BatchTooLarge { size: total, limit: limits.max_batch_bytes });
    }
    Ok(())
}

pub fn pull_batch_size(batch_size: u32, limits: &Limits) -> WharfResult<()> {
    if !(1..=limits.max_pull_batch).contains(&batch_size) {
        return Err(WharfError::JsonInvalid {
            detail: format!("batch_size must be between 1 and {}", limits.max_pull_batch),
        });
    }
    Ok(())
}

/// Most messages one redrive call moves: bounded so that one call holds the
/// engine's state lock (or a PostgreSQL transaction) for milliseconds, not
/// seconds; `wharf queues redrive` repeats calls until the queue is drained.
pub const REDRIVE_BATCH_MAX: u32 = 10_000;

pub fn redrive_batch(max_messages: u32) -> WharfResult<()> {
    if !(1..=REDRIVE_BATCH_MAX).contains(&max_messages) {
        return Err(WharfError::JsonInvalid {
            detail: format!("max_messages must be between 1 and {REDRIVE_BATCH_MAX}"),
        });
    }
    Ok(())
}

/// The destination of a redrive that names none: the one queue whose
/// consumer dead-letters into `source_name` (`feeding`, in any order).
pub fn default_redrive_destination(source_name: &str, feeding: &[QueueId]) -> WharfResult<QueueId> {
    match feeding {
        [only] => Ok(*only),
        [] => Err(WharfError::RedriveDestination {
            detail: format!(
                "no queue's consumer names {source_name:?} as its dead_letter_queue; give destination_queue_id"
            ),
        }),
        several => Err(WharfError::RedriveDestination {
            detail: format!(
                "{} queues dead-letter into {source_name:?}; give destination_queue_id (one of {})",
                several.len(),
                several.iter().map(QueueId::to_string).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// A redrive's destination must be another queue of the same account.
pub fn redrive_destination(source: QueueId, destination: QueueId, destination_exists: bool) -> WharfResult<()> {
    if destination == source {
        return Err(WharfError::RedriveDestination { detail: "destination_queue_id is the queue itself".into() });
    }
    if !destination_exists {
        return Err(WharfError::RedriveDestination {
            detail: format!("destination queue {destination} does not exist in this account"),
        });
    }
    Ok(())
}

pub fn visibility_timeout(timeout_ms: u64, limits: &Limits) -> WharfResult<()> {
    if !(1..=limits.max_visibility_timeout_ms).contains(&timeout_ms) {
        return Err(WharfError::JsonInvalid {
            detail: format!("visibility_timeout_ms must be between 1 and {}", limits.max_visibility_timeout_ms),
        });
    }
    Ok(())
}

/// Whether a queue whose backlog holds `backlog_bytes` may take `incoming`
/// more body bytes; a backlog exactly at the limit is allowed.
pub fn backlog_room(backlog_bytes: u64, incoming: u64, limits: &Limits) -> WharfResult<()> {
    if backlog_bytes.saturating_add(incoming) > limits.max_queue_backlog_bytes {
        return Err(WharfError::QueueStorageLimitExceeded { limit: limits.max_queue_backlog_bytes });
    }
    Ok(())
}

/// Whether an account with `queues` queues may create one more.
pub fn queue_count_room(queues: u64, limits: &Limits) -> WharfResult<()> {
    if queues >= limits.max_queues_per_account {
        return Err(WharfError::QueueLimitExceeded { limit: limits.max_queues_per_account });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContentType;

    #[test]
    fn queue_names_follow_the_cloudflare_rule() {
        for good in ["a", "0", "my-queue", "a1-b2", &"a".repeat(63)] {
            assert!(queue_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "ä", &"a".repeat(64)] {
            assert!(queue_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_outside_the_limits_are_refused() {
        let limits = Limits::cloudflare();
        let mut settings = QueueSettings::default();
        assert!(queue_settings(&settings, &limits).is_ok());
        settings.message_retention_period = 59;
        assert!(queue_settings(&settings, &limits).is_err());
        settings.message_retention_period = 60;
        settings.delivery_delay = 86_401;
        assert!(queue_settings(&settings, &limits).is_err());
    }

    #[test]
    fn batch_limits_are_checked_in_order() {
        let limits = Limits::cloudflare();
        let message =
            |size: usize| NewMessage { body: vec![b'x'; size], content_type: ContentType::Text, delay_seconds: None };
        assert!(messages(&[message(128_000)], &limits).is_ok());
        assert!(matches!(messages(&[message(128_001)], &limits), Err(WharfError::MessageTooLarge { .. })));
        let many: Vec<_> = (0..101).map(|_| message(1)).collect();
        assert!(matches!(messages(&many, &limits), Err(WharfError::BatchTooManyMessages { .. })));
        let heavy: Vec<_> = (0..3).map(|_| message(100_000)).collect();
        assert!(matches!(messages(&heavy, &limits), Err(WharfError::BatchTooLarge { .. })));
    }

    #[test]
    fn backlog_and_queue_count_limits_allow_reaching_them_but_not_passing() {
        let limits = Limits { max_queue_backlog_bytes: 10, max_queues_per_account: 2, ..Limits::cloudflare() };
        assert!(backlog_room(6, 4, &limits).is_ok());
        assert!(matches!(backlog_room(6, 5, &limits), Err(WharfError::QueueStorageLimitExceeded { limit: 10 })));
        assert!(backlog_room(u64::MAX, 1, &limits).is_err());
        assert!(queue_count_room(1, &limits).is_ok());
        assert!(matches!(queue_count_room(2, &limits), Err(WharfError::QueueLimitExceeded { limit: 2 })));
    }
}
