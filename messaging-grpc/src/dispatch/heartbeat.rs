//! The claims a dispatcher holds, and the heartbeat that keeps them. A claim's lease
//! is short (`OUTBOX_LEASE_SECS`, 10 s by default) and renewed every third of it
//! while the process lives, so a job is never taken from a live dispatcher however
//! long its send takes, and a dead replica's jobs are taken over within one lease
//! instead of minutes. A send whose lease ran out anyway (the database unreachable for
//! a lease) is still safe: its message is SENDING, and the new holder looks Twilio up
//! and waits the settle time before any resend.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use super::Inner;

/// Claim tokens in use, with how many of their jobs are still being handled (one
/// token per claim query, so a handful at a time).
#[derive(Debug, Default)]
pub(super) struct Held {
    tokens: Mutex<HashMap<String, usize>>,
}

impl Held {
    /// `jobs` jobs were claimed under `token`.
    pub(super) fn claimed(&self, token: &str, jobs: usize) {
        if jobs > 0 {
            *self.lock().entry(token.to_owned()).or_default() += jobs;
        }
    }

    /// One job of `token` is finished (settled, released or rescheduled).
    pub(super) fn done(&self, token: &str) {
        let mut tokens = self.lock();
        if let Some(left) = tokens.get_mut(token) {
            *left -= 1;
            if *left == 0 {
                tokens.remove(token);
            }
        }
    }

    fn snapshot(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding this lock leaves a consistent map (single updates).
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often the heartbeat renews: a third of the lease, so one missed beat (a slow
/// write) does not lose a claim.
pub(super) fn interval(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(100))
}

/// Renews the held claims every [`interval`] until `shutdown`.
pub(super) async fn run(inner: Arc<Inner>, shutdown: CancellationToken) {
    let lease = inner.settings.lease;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval(lease)) => {}
        }
        let tokens = inner.held.snapshot();
        if tokens.is_empty() {
            continue;
        }
        if let Err(e) = inner.outbox.renew_tokens(tokens, lease).await {
            tracing::warn!(error = %e, "renewing the dispatcher's claims failed; they end with their lease unless the next beat succeeds");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_held_until_its_last_job_is_done() {
        let held = Held::default();
        held.claimed("a", 2);
        held.claimed("b", 1);
        held.claimed("c", 0);
        let mut now = held.snapshot();
        now.sort();
        assert_eq!(now, ["a", "b"]);
        held.done("a");
        held.done("b");
        assert_eq!(held.snapshot(), ["a"]);
        held.done("a");
        held.done("a"); // a stray second report changes nothing
        assert!(held.snapshot().is_empty());
    }
}
