//! The console provider's phones: what it "delivered" to each number, in memory and
//! bounded, and the failure a number's next delivery is to meet. The dev console reads
//! it to show the contact's side; nothing else depends on it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};

/// Messages kept per phone (the oldest go first).
pub const MAX_MESSAGES_PER_PHONE: usize = 200;
/// Phones kept (the one written longest ago goes first).
pub const MAX_PHONES: usize = 500;

/// One message handed to a phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The provider's SID, to update its status.
    pub sid: String,
    pub from: String,
    pub body: String,
    pub media_urls: Vec<String>,
    /// As Twilio spells it: `sent`, then `delivered` or `undelivered`.
    pub status: String,
    pub error_code: Option<i64>,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
struct Phone {
    messages: VecDeque<Delivered>,
    next_failure: Option<u32>,
    /// When this phone was last written (for eviction).
    touched: u64,
}

#[derive(Default)]
struct Phones {
    by_number: HashMap<String, Phone>,
    clock: u64,
}

impl Phones {
    fn phone(&mut self, number: &str) -> &mut Phone {
        self.clock += 1;
        if !self.by_number.contains_key(number) && self.by_number.len() >= MAX_PHONES {
            let oldest = self
                .by_number
                .iter()
                .min_by_key(|(_, p)| p.touched)
                .map(|(n, _)| n.clone());
            if let Some(n) = oldest {
                self.by_number.remove(&n);
            }
        }
        let phone = self.by_number.entry(number.to_owned()).or_default();
        phone.touched = self.clock;
        phone
    }
}

/// The phones; cheap to clone, shared by the provider and the dev console.
#[derive(Clone, Default)]
pub struct PhoneLog {
    inner: Arc<Mutex<Phones>>,
}

impl PhoneLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Phones> {
        // A panic elsewhere while holding it leaves plain data: keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a message handed to `to`.
    pub fn deliver(&self, to: &str, message: Delivered) {
        let mut phones = self.lock();
        let phone = phones.phone(to);
        if phone.messages.len() >= MAX_MESSAGES_PER_PHONE {
            phone.messages.pop_front();
        }
        phone.messages.push_back(message);
    }

    /// Sets the status of message `sid` to `to`.
    pub fn set_status(&self, to: &str, sid: &str, status: &str, error_code: Option<i64>) {
        let mut phones = self.lock();
        if let Some(m) = phones
            .by_number
            .get_mut(to)
            .and_then(|p| p.messages.iter_mut().find(|m| m.sid == sid))
        {
            status.clone_into(&mut m.status);
            m.error_code = error_code;
        }
    }

    /// The next delivery to `number` fails with `error_code`.
    pub fn fail_next(&self, number: &str, error_code: u32) {
        self.lock().phone(number).next_failure = Some(error_code);
    }

    /// The failure armed for `number`, disarming it.
    pub fn take_failure(&self, number: &str) -> Option<u32> {
        self.lock()
            .by_number
            .get_mut(number)
            .and_then(|p| p.next_failure.take())
    }

    /// What reached `number`, oldest first, and the failure armed for it.
    pub fn view(&self, number: &str) -> (Vec<Delivered>, Option<u32>) {
        let phones = self.lock();
        phones.by_number.get(number).map_or_else(
            || (Vec::new(), None),
            |p| (p.messages.iter().cloned().collect(), p.next_failure),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sid: &str) -> Delivered {
        Delivered {
            sid: sid.into(),
            from: "+15005550006".into(),
            body: format!("body {sid}"),
            media_urls: Vec::new(),
            status: "sent".into(),
            error_code: None,
            at: Utc::now(),
        }
    }

    #[test]
    fn keeps_order_updates_statuses_and_stays_bounded() {
        let log = PhoneLog::default();
        for i in 0..MAX_MESSAGES_PER_PHONE + 5 {
            log.deliver("+14155550100", message(&format!("SM{i}")));
        }
        log.set_status("+14155550100", "SM5", "delivered", None);
        log.set_status("+14155550100", "SM6", "undelivered", Some(30003));
        let (messages, armed) = log.view("+14155550100");
        assert_eq!(messages.len(), MAX_MESSAGES_PER_PHONE);
        assert_eq!(messages[0].sid, "SM5", "the oldest went first");
        assert_eq!(messages[0].status, "delivered");
        assert_eq!(
            (messages[1].status.as_str(), messages[1].error_code),
            ("undelivered", Some(30003))
        );
        assert_eq!(armed, None);
        assert!(log.view("+14155550199").0.is_empty());

        for i in 0..MAX_PHONES + 1 {
            log.deliver(&format!("+1415555{i:04}"), message("SMx"));
        }
        assert!(log.lock().by_number.len() <= MAX_PHONES);
    }

    #[test]
    fn a_failure_is_armed_for_one_delivery() {
        let log = PhoneLog::default();
        assert_eq!(log.take_failure("+14155550100"), None);
        log.fail_next("+14155550100", 30007);
        assert_eq!(log.view("+14155550100").1, Some(30007));
        assert_eq!(log.take_failure("+14155550101"), None, "another phone's");
        assert_eq!(log.take_failure("+14155550100"), Some(30007));
        assert_eq!(log.take_failure("+14155550100"), None, "used once");
    }
}
