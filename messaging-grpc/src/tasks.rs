//! Background tasks of a server, tracked rather than detached: each is named, and
//! how it ended (returned, panicked) is logged, also when it ends before shutdown.

use std::future::Future;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A set of named background tasks sharing one shutdown token.
pub struct Tasks {
    set: JoinSet<()>,
    shutdown: CancellationToken,
}

impl Tasks {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            set: JoinSet::new(),
            shutdown,
        }
    }

    /// Runs `task` in the background; its end is reported under `name`.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        // The inner task's handle reports a panic as soon as it happens.
        let inner = tokio::spawn(task);
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

    /// Waits for every task to end (call after cancelling the shutdown token).
    pub async fn join_all(mut self) {
        while self.set.join_next().await.is_some() {}
    }
}
