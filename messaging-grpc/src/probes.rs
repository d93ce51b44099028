//! What the core's metrics endpoint reads at each scrape (the outbox, the database
//! pool) and how it answers `/readyz`: ready while the database answers.

use std::{future::Future, pin::Pin};

use commpro_telemetry::metrics::Probes;

use crate::store::{self, Store};

/// The core's scrape-time gauges and readiness.
pub struct CoreProbes {
    store: Store,
}

impl CoreProbes {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn outbox(&self) {
        let db = self.store.conn();
        // A scrape must not fail for a slow query: keep the last values instead.
        if let Ok(depth) = store::outbox::pending_any(db).await {
            metrics::gauge!("messaging_outbox_depth").set(depth as f64);
        }
        let now = store::now();
        if let Ok(next) = store::outbox::next_due_any(db, now).await {
            let age = next.map_or(0.0, |at| {
                (now - at).num_milliseconds().max(0) as f64 / 1000.0
            });
            metrics::gauge!("messaging_outbox_oldest_due_age_seconds").set(age);
        }
    }

    fn pool(&self) {
        let (open, idle, max) = self.store.pool_usage();
        let in_use = (open as usize).saturating_sub(idle);
        metrics::gauge!("messaging_db_pool_connections", "state" => "in_use").set(in_use as f64);
        metrics::gauge!("messaging_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("messaging_db_pool_max_connections").set(f64::from(max));
    }
}

impl Probes for CoreProbes {
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.outbox().await;
            self.pool();
        })
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { self.store.ping().await.is_ok() })
    }
}
