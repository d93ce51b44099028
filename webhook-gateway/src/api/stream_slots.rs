//! Open `/api/events` streams per user (GATEWAY_MAX_EVENT_STREAMS_PER_USER). Each one
//! holds a `WatchEvents` stream on the core, a connection slot and its buffers here:
//! one user's token, leaked or looped, must not be able to take them all. The user is
//! the token's `sub`, read only after the core accepted the token for the stream (so
//! it is the core's verified subject, not a claim of the client's).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use hyper::StatusCode;

use crate::error::GatewayError;

/// Streams open per user on this gateway.
pub struct StreamSlots {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream, counted until dropped (when the SSE body ends).
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    user: String,
}

impl StreamSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more of `user`'s streams; 429 naming the limit when they have
    /// the most already.
    pub fn acquire(self: &Arc<Self>, user: &str) -> Result<StreamSlot, GatewayError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user.to_owned()).or_insert(0);
        if *count >= self.max {
            return Err(GatewayError::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "resource_exhausted",
                format!(
                    "too many open event streams for this user (at most {}, \
                     GATEWAY_MAX_EVENT_STREAMS_PER_USER); close one first",
                    self.max
                ),
            ));
        }
        *count += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_s_streams_are_capped_and_given_back() {
        let slots = StreamSlots::new(2);
        let a = slots.acquire("alice").unwrap();
        let _b = slots.acquire("alice").unwrap();
        let refused = slots.acquire("alice").err().unwrap();
        assert_eq!(refused.status().as_u16(), 429);
        assert!(
            refused
                .to_string()
                .contains("GATEWAY_MAX_EVENT_STREAMS_PER_USER")
        );
        assert!(slots.acquire("bob").is_ok(), "another user");
        drop(a);
        assert!(slots.acquire("alice").is_ok());
    }
}
