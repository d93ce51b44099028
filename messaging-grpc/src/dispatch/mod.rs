//! The outbox dispatcher: claims due send jobs, paces them per sender, hands them to
//! the provider and records the outcome; plus the reconciliation of unknown outcomes
//! and of messages whose final status never arrived.
//!
//! Guarantees (see docs/delivery.md): a job is only removed in the same
//! transaction that records its outcome, so nothing acknowledged is lost; a message
//! is marked SENDING (committed) before the provider call, so after a crash or a
//! timeout its outcome is looked up at the provider before any resend.

mod heartbeat;
mod in_flight;
mod outbox;
mod pacing;
mod reconcile;
mod scheduled;
mod worker;

use std::{sync::Arc, time::Duration};

use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::retry::RetryPolicy;
pub use outbox::{Again, DispatchItem, Mark, Outbox, TWILIO_UNSUBSCRIBED};
pub use pacing::{LocalPacer, Pacer, PacingConfig, SharedPacer, Slot};

use crate::{provider::SmsProvider, store};

/// Dispatcher tuning (environment variables in the README).
#[derive(Clone, Debug)]
pub struct DispatchSettings {
    pub enabled: bool,
    pub retry: RetryPolicy,
    pub pacing: PacingConfig,
    /// How long a claim protects a job from other dispatchers.
    pub lease: Duration,
    /// Poll period when no new message wakes the dispatcher.
    pub poll_interval: Duration,
    /// Most sends in flight at once (`OUTBOX_MAX_IN_FLIGHT`). Below it, the number in
    /// flight follows what pacing allows times the provider's observed latency.
    pub max_in_flight: usize,
    /// An unknown send outcome is settled by look-ups only this long after the create
    /// started (past the provider's processing time and its list lag).
    pub unknown_settle: Duration,
    /// A message not handed over within this time after it was queued fails.
    pub validity: Duration,
    /// Longest pacing wait slept through in a dispatcher slot; a longer one releases
    /// the job and claims skip its sender until due.
    pub max_inline_wait: Duration,
    /// A SENT message without a final status this long is asked about.
    pub reconcile_after: Duration,
    pub reconcile_interval: Duration,
    /// Messages older than this are no longer asked about.
    pub reconcile_max_age: Duration,
    /// In-flight sends get this long to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retry: RetryPolicy::default(),
            pacing: PacingConfig::default(),
            // Short, because the heartbeat renews it while we live (dispatch/heartbeat.rs).
            lease: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            // A slot is held from the claim through the SENDING mark to Twilio's
            // answer (not through the answer's write): 1,000 keeps 2,000 msg/s going
            // at a 300 ms Twilio with room for the mark (BENCHMARKS.md, outbox drain).
            max_in_flight: 1000,
            unknown_settle: Duration::from_secs(60),
            validity: Duration::from_secs(4 * 3600),
            max_inline_wait: Duration::from_millis(100),
            reconcile_after: Duration::from_secs(15 * 60),
            reconcile_interval: Duration::from_secs(60),
            reconcile_max_age: Duration::from_secs(48 * 3600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

pub(crate) struct Inner {
    outbox: Outbox,
    provider: Arc<dyn SmsProvider>,
    settings: DispatchSettings,
    pacer: Pacer,
    in_flight: in_flight::InFlight,
    held: heartbeat::Held,
}

/// Runs the dispatcher and the reconciliation job until `shutdown`.
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    pub fn new(outbox: Outbox, provider: Arc<dyn SmsProvider>, settings: DispatchSettings) -> Self {
        // PostgreSQL: clocks shared by every replica; SQLite: this process's own.
        let pacer = Pacer::for_store(outbox.records().store(), settings.pacing.clone());
        Self {
            inner: Arc::new(Inner {
                outbox,
                provider,
                settings,
                pacer,
                in_flight: in_flight::InFlight::default(),
                held: heartbeat::Held::default(),
            }),
        }
    }

    /// Claims and sends until `shutdown`, then lets in-flight sends finish within the
    /// grace period. Sends still running after it are abandoned mid-way: their
    /// SENDING mark makes the next run reconcile them.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = self.inner;
        let signal = inner.outbox.waker();
        let cap = inner.settings.max_in_flight.max(1);
        let slots = Arc::new(Semaphore::new(cap));
        let mut tasks = JoinSet::new();
        match inner.outbox.release_dead_claims().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                jobs = n,
                "claims of the previous process released (SQLite: one process)"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "releasing the previous process's claims failed; they end with their lease")
            }
        }
        let reconciler = tokio::spawn(reconcile::run_periodic(inner.clone(), shutdown.clone()));
        // Beats on through the shutdown grace: sends still in flight keep their claims.
        let beat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat::run(inner.clone(), beat_stop.clone()));
        tracing::info!(
            provider = inner.provider.name(),
            max_in_flight = cap,
            "outbox dispatcher started"
        );

        loop {
            while let Some(ended) = tasks.try_join_next() {
                log_panic(ended);
            }
            let busy = cap - slots.available_permits();
            let target = inner
                .in_flight
                .target(inner.settings.pacing.account_sps, cap);
            metrics::gauge!("messaging_dispatch_in_flight_target").set(target as f64);
            metrics::gauge!("messaging_dispatch_in_flight").set(busy as f64);
            let free = target.saturating_sub(busy);
            // Refill in batches: a claim for every freed slot would be one claim
            // query per send. A finished send wakes us, so a backlog drains at the
            // speed of sends, not of the poll.
            if busy > 0 && free < (target / 16).max(1) {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    Some(ended) = tasks.join_next() => log_panic(ended),
                }
                continue;
            }
            let claimed = claim(&inner, free).await;
            let idle = claimed.is_empty();
            if let Some(first) = claimed.first() {
                inner.held.claimed(&first.token, claimed.len());
            }
            for job in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (inner, shutdown) = (inner.clone(), shutdown.clone());
                tasks.spawn(async move {
                    let token = job.token.clone();
                    // The slot goes back once Twilio answered (see `worker::send`).
                    worker::process(&inner, job, &shutdown, permit).await;
                    inner.held.done(&token);
                });
            }
            if !idle {
                continue;
            }
            // Nothing due: sleep until a message is queued, the earliest retry is due,
            // or the poll (which also picks up leases that expired).
            let wait = until_next_due(&inner).await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = signal.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }

        let grace = inner.settings.shutdown_grace;
        let drain = async {
            while let Some(ended) = tasks.join_next().await {
                log_panic(ended);
            }
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "sends still in flight after the grace period; they will be reconciled"
            );
            tasks.abort_all();
        }
        beat_stop.cancel();
        heartbeat.abort();
        // The reconciler stops at the shutdown signal; a pass in progress gets the grace.
        let stop_reconciler = reconciler.abort_handle();
        match tokio::time::timeout(grace, reconciler).await {
            Ok(ended) => log_panic(ended),
            Err(_) => {
                tracing::warn!("reconciliation pass still running at shutdown; abandoned");
                stop_reconciler.abort();
            }
        }
        tracing::info!("outbox dispatcher stopped");
    }
}

/// A send task or the reconciler that panicked is a bug: say so loudly (its job
/// stays claimed until the lease ends, then is retried and reconciled).
fn log_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended
        && e.is_panic()
    {
        tracing::error!(error = %e, "dispatcher task panicked");
    }
}

/// How long the dispatcher may sleep: until the earliest scheduled job is due, at
/// most the poll interval, at least a few milliseconds (a job due now that another
/// replica is claiming must not make us spin).
async fn until_next_due(inner: &Inner) -> Duration {
    let poll = inner.settings.poll_interval;
    match inner.outbox.next_due().await {
        // Due already, yet nothing was claimed: its sender is paced out (or another
        // replica holds it). Sleep until the first paced sender is free.
        Ok(Some(at)) if at <= store::now() => match inner.pacer.next_free().await {
            Ok(free) => free.unwrap_or(poll),
            Err(e) => {
                tracing::warn!(error = %e, "reading the pacing clocks failed");
                poll
            }
        }
        .clamp(Duration::from_millis(5), poll),
        Ok(Some(at)) => (at - store::now())
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(5), poll),
        Ok(None) => poll,
        Err(e) => {
            tracing::warn!(error = %e, "reading the next due outbox job failed");
            poll
        }
    }
}

/// Paced-out senders a claim skips at most (bounds the query).
const MAX_SKIPPED_SENDERS: usize = 200;

async fn claim(inner: &Inner, limit: usize) -> Vec<store::outbox::Claimed> {
    // Senders paced out for longer than a send may wait in a slot are not due.
    let beyond = inner.settings.max_inline_wait;
    let paced_out = match inner.pacer.paced_out(beyond, MAX_SKIPPED_SENDERS).await {
        Ok(senders) => senders,
        Err(e) => {
            // Claim without skipping: a paced-out sender's job is claimed and let go
            // again, which costs a round trip but keeps sending.
            tracing::warn!(error = %e, "reading the pacing clocks failed");
            Vec::new()
        }
    };
    match inner
        .outbox
        .claim(inner.settings.lease, limit as u64, &paced_out)
        .await
    {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "claiming outbox jobs failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            Vec::new()
        }
    }
}
