//! The timed loop: `concurrency` callers, each on its own task with its own prepared
//! state (connection, pre-built requests), call back to back for a warm-up and then
//! for the measured period. Latencies go into one HdrHistogram per caller (merged at
//! the end), never into a growing list.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

/// The outcome of one call.
pub enum Step {
    /// Answered as expected.
    Done,
    /// The caller has nothing left to send (a pre-signed pool ran out).
    Exhausted,
}

/// One caller's state; `call` makes one request and checks its answer.
pub trait Call: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Result<Step, String>> + Send;
}

/// What one scenario measured.
pub struct Measured {
    /// Latencies of successful calls in the measured period, in microseconds.
    pub hist: Histogram<u64>,
    pub ok: u64,
    /// Failed calls, warm-up included (any error fails the CI smoke run).
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the end of the warm-up to the last measured answer.
    pub elapsed: Duration,
    /// A caller ran out of pre-built requests before the end.
    pub exhausted: bool,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// A percentile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.hist.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

struct CallerResult {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    last_answer: Option<Instant>,
    exhausted: bool,
}

async fn drive<C: Call>(mut caller: C, measure_from: Instant, end: Instant) -> CallerResult {
    let mut r = CallerResult {
        hist: histogram(),
        ok: 0,
        errors: 0,
        first_error: None,
        last_answer: None,
        exhausted: false,
    };
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        let result = caller.call().await;
        let done = Instant::now();
        match result {
            Ok(Step::Done) if start >= measure_from => {
                r.ok += 1;
                r.hist
                    .saturating_record(done.duration_since(start).as_micros() as u64);
                r.last_answer = Some(done);
            }
            Ok(Step::Done) => {}
            Ok(Step::Exhausted) => {
                r.exhausted = true;
                break;
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
            }
        }
    }
    r
}

/// Runs every caller for `warmup + secs`; only calls started after the warm-up count.
pub async fn run<C: Call>(callers: Vec<C>, warmup: Duration, secs: Duration) -> Measured {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + secs;
    let tasks: Vec<_> = callers
        .into_iter()
        .map(|c| tokio::spawn(drive(c, measure_from, end)))
        .collect();
    let mut m = Measured {
        hist: histogram(),
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        exhausted: false,
    };
    let mut last = measure_from;
    for task in tasks {
        let r = match task.await {
            Ok(r) => r,
            Err(e) => {
                m.errors += 1;
                m.first_error.get_or_insert(format!("caller task: {e}"));
                continue;
            }
        };
        m.hist.add(&r.hist).expect("histograms of the same bounds");
        m.ok += r.ok;
        m.errors += r.errors;
        m.exhausted |= r.exhausted;
        if m.first_error.is_none() {
            m.first_error = r.first_error;
        }
        if let Some(t) = r.last_answer {
            last = last.max(t);
        }
    }
    m.elapsed = last.duration_since(measure_from);
    m
}
