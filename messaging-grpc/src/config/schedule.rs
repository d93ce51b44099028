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

/// Retention never deletes a message before it is sent, and deletes it once it is
/// older than the retention: a message scheduled further ahead than the retention
/// would go the moment it was sent. An explicit SCHEDULE_MAX_LEAD_SECS that long is
/// refused; the default is lowered to half the retention.
pub(super) fn bounded_by_retention(
    get: &impl Fn(&str) -> Option<String>,
    mut schedule: ScheduleSettings,
    retention: Option<&crate::retention::RetentionSettings>,
) -> Result<ScheduleSettings, ConfigError> {
    let Some(r) = retention else {
        return Ok(schedule);
    };
    if schedule.max_lead < r.max_age {
        return Ok(schedule);
    }
    if get("SCHEDULE_MAX_LEAD_SECS").is_some() {
        return Err(err(
            "SCHEDULE_MAX_LEAD_SECS",
            format!(
                "must be shorter than MESSAGE_RETENTION_DAYS ({} s): a message scheduled further ahead would be deleted as soon as it is sent",
                r.max_age.as_secs()
            ),
        ));
    }
    schedule.max_lead = r.max_age / 2;
    if schedule.min_lead >= schedule.max_lead {
        return Err(err(
            "SCHEDULE_MIN_LEAD_SECS",
            "must be less than half of MESSAGE_RETENTION_DAYS",
        ));
    }
    Ok(schedule)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn scheduling_ahead_stays_within_the_retention() {
        let retention = crate::retention::RetentionSettings {
            max_age: Duration::from_secs(30 * 86_400),
            interval: Duration::from_secs(60),
            batch: 10,
        };
        // Default lead (35 days) with a 30-day retention: lowered to 15 days.
        let get = vars(&[]);
        let s = bounded_by_retention(&get, schedule(&get).unwrap(), Some(&retention)).unwrap();
        assert_eq!(s.max_lead, Duration::from_secs(15 * 86_400));
        // Asked for explicitly: refused by name.
        let get = vars(&[("SCHEDULE_MAX_LEAD_SECS", "3000000")]);
        let e = bounded_by_retention(&get, schedule(&get).unwrap(), Some(&retention)).unwrap_err();
        assert_eq!(e.var, "SCHEDULE_MAX_LEAD_SECS");
        // Without retention, anything allowed stays.
        let s = bounded_by_retention(&get, schedule(&get).unwrap(), None).unwrap();
        assert_eq!(s.max_lead, Duration::from_secs(3_000_000));
    }
}
