//! Scheduled-send settings.

use std::time::Duration;

use super::{ConfigError, err, number};
use crate::messaging::ScheduleSettings;

pub(super) fn schedule(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<ScheduleSettings, ConfigError> {
    let d = ScheduleSettings::default();
    let min_lead = number(
        get,
        "SCHEDULE_MIN_LEAD_SECS",
        d.min_lead.as_secs(),
        0,
        86_400,
    )?;
    let max_lead = number(
        get,
        "SCHEDULE_MAX_LEAD_SECS",
        d.max_lead.as_secs(),
        1,
        366 * 86_400,
    )?;
    if min_lead >= max_lead {
        return Err(err(
            "SCHEDULE_MIN_LEAD_SECS",
            "must be less than SCHEDULE_MAX_LEAD_SECS",
        ));
    }
    Ok(ScheduleSettings {
        min_lead: Duration::from_secs(min_lead),
        max_lead: Duration::from_secs(max_lead),
    })
}
