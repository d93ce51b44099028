//! Background tasks of a server, tracked rather than detached: each is named, and
//! how it ended (returned, panicked) is logged, also when it ends before shutdown.

use std::{future::Future, time::Duration};

use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// A set of named background tasks sharing one shutdown token.
pub struct Tasks {
    set: JoinSet<()>,
    /// The tasks themselves (the set holds their watchers), to abort stragglers.
    running: Vec<AbortHandle>,
    shutdown: CancellationToken,
}

impl Tasks {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            set: JoinSet::new(),
            running: Vec::new(),
            shutdown,
        }
    }

    /// Runs `task` in the background; its end is reported under `name`.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        // The inner task's handle reports a panic as soon as it happens.
        let inner = tokio::spawn(task);
        self.running.push(inner.abort_handle());
        self.set.spawn(async move {
            match inner.await {
                Err(e) if e.is_panic() => {
                    tracing::error!(task = name, error = %e, "background task panicked");
                }
                _ if !shutdown.is_cancelled() => {
                    tracing::warn!(task = name, "background task ended before shutdown");
                }
                _ => tracing::debug!(task = name, "background task stopped"),
            }
        });
    }

    /// Waits up to `limit` for every task to end (call after cancelling the shutdown
    /// token); tasks still running then are aborted, and said so.
    pub async fn join_all(mut self, limit: Duration) {
        let all = async { while self.set.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(
                left = self.set.len(),
                "background tasks still running at shutdown; aborted"
            );
            self.running.iter().for_each(AbortHandle::abort);
        }
    }
}
