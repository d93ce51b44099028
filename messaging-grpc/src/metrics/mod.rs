//! The core's metrics: names and labels in one place (what the README lists), the
//! gRPC layer and the provider wrapper (the gauges read at scrape time are `crate::probes`:
//! they read the store, which records these). Values go
//! through the `metrics` facade; with no metrics address configured nothing records
//! them. Labels are bounded sets (methods, codes, outcomes): never ids, numbers or
//! content.

mod grpc;

pub use grpc::GrpcMetricsLayer;

/// Prefix of every metric of the core (its endpoint shows only these).
pub const PREFIX: &str = "messaging_";

/// Outbound messages that reached a final status, by status and Twilio error code.
pub fn final_status(status: &str, error_code: Option<i32>) {
    if matches!(status, "delivered" | "undelivered" | "failed") {
        let code = error_code_label(error_code.map(i64::from));
        metrics::counter!("messaging_sends_final_total", "status" => status.to_owned(), "error_code" => code)
            .increment(1);
    }
}

/// A Twilio error code as a label: Twilio's codes are 5 digits, so anything else (a
/// status callback can carry any integer) is `other` and the label set stays bounded.
pub fn error_code_label(code: Option<i64>) -> String {
    match code {
        None => String::new(),
        Some(c) if (10_000..=99_999).contains(&c) => c.to_string(),
        Some(_) => "other".to_owned(),
    }
}

/// A message's status changed.
pub fn status_changed(status: &str) {
    metrics::counter!("messaging_status_changes_total", "status" => status.to_owned()).increment(1);
}

/// One commit of the message-write path and how many messages it carried.
pub fn write_committed(seconds: f64, messages: usize) {
    metrics::histogram!("messaging_write_commit_seconds").record(seconds);
    metrics::histogram!("messaging_write_batch_size").record(messages as f64);
}

/// The SQLite checkpointer's last pass: pages in the WAL, and copied back.
pub fn wal_checkpoint(log: i64, checkpointed: i64) {
    metrics::gauge!("messaging_sqlite_wal_pages", "state" => "log").set(log as f64);
    metrics::gauge!("messaging_sqlite_wal_pages", "state" => "checkpointed")
        .set(checkpointed as f64);
}

/// A key-cache look-up.
pub fn key_cache(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!("messaging_key_cache_total", "result" => result).increment(1);
}

/// A pacing slot went stale while the SENDING mark committed and was booked again.
pub fn slot_rebooked() {
    metrics::counter!("messaging_pacing_rebooked_total").increment(1);
}

/// An inbound media copy attempt ended: `copied`, `retry` or `failed`.
pub fn media_copy(outcome: &'static str) {
    metrics::counter!("messaging_media_copies_total", "outcome" => outcome).increment(1);
}

/// A WatchEvents stream opened; the guard counts it closed when dropped.
pub fn watch_stream_opened() -> WatchStreamGuard {
    metrics::gauge!("messaging_watch_streams_open").increment(1.0);
    WatchStreamGuard(())
}

/// Counts an open WatchEvents stream until dropped.
pub struct WatchStreamGuard(());

impl Drop for WatchStreamGuard {
    fn drop(&mut self) {
        metrics::gauge!("messaging_watch_streams_open").decrement(1.0);
    }
}
