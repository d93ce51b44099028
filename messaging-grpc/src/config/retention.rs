//! Message retention settings.

use std::time::Duration;

use super::{ConfigError, number};
use crate::retention::RetentionSettings;

/// MESSAGE_RETENTION_DAYS and its tuning; `None` when unset (keep forever).
pub(super) fn retention(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<RetentionSettings>, ConfigError> {
    if get("MESSAGE_RETENTION_DAYS").is_none() {
        return Ok(None);
    }
    let days = number(get, "MESSAGE_RETENTION_DAYS", 0, 1, 36_500)?;
    Ok(Some(RetentionSettings {
        max_age: Duration::from_secs(days * 86_400),
        interval: Duration::from_millis(number(
            get,
            "MESSAGE_RETENTION_INTERVAL_MS",
            3_600_000,
            10,
            86_400_000,
        )?),
        batch: number(get, "MESSAGE_RETENTION_BATCH", 500, 1, 10_000)?,
    }))
}
