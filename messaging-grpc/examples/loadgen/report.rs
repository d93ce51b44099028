//! The table: every figure next to its floor from the same run, and the target.

use crate::driver::Measured;

/// Which floor a scenario is read against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    Tonic,
    Hyper,
}

/// The performance issue's target for a scenario (2 cores, 64 callers).
#[derive(Clone, Copy)]
pub struct Target {
    pub ratio: f64,
    pub p99_ms: f64,
}

pub struct Row {
    pub name: String,
    pub floor: Option<Floor>,
    pub target: Option<Target>,
    pub m: Measured,
    /// Resident memory of the server(s) behind the scenario, as printed.
    pub rss: String,
}

pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    fn floor_rate(&self, floor: Floor) -> Option<f64> {
        let name = match floor {
            Floor::Tonic => "floor: tonic echo",
            Floor::Hyper => "floor: hyper 200",
        };
        self.rows
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.m.rate())
            .filter(|r| *r > 0.0)
    }

    /// Prints the Markdown table BENCHMARKS.md holds.
    pub fn print(&self) {
        println!(
            "| scenario | rate (/s) | p50 | p90 | p99 | p99.9 | errors | RSS | ratio to floor | target |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for r in &self.rows {
            let ratio = r
                .floor
                .and_then(|f| Some((f, self.floor_rate(f)?)))
                .map(|(f, rate)| {
                    let of = match f {
                        Floor::Tonic => "echo",
                        Floor::Hyper => "hyper",
                    };
                    (r.m.rate() / rate, of)
                });
            let ratio_text = match (ratio, r.floor) {
                (Some((x, of)), _) => format!("{x:.3} of {of}"),
                (None, None) => "1.000 (floor)".into(),
                (None, Some(_)) => "no floor measured".into(),
            };
            let target = match (r.target, ratio) {
                (Some(t), Some((x, _))) => {
                    let met = x >= t.ratio && r.m.ms(0.99) < t.p99_ms;
                    format!(
                        "≥ {:.2}, p99 < {} ms: {}",
                        t.ratio,
                        t.p99_ms,
                        if met { "met" } else { "missed" }
                    )
                }
                (Some(t), None) => format!("≥ {:.2}, p99 < {} ms", t.ratio, t.p99_ms),
                (None, _) => String::new(),
            };
            let mut name = r.name.clone();
            if r.m.exhausted {
                name.push_str(" (pre-signed pool ran out: rate over a shorter time)");
            }
            println!(
                "| {name} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} | {ratio_text} | {target} |",
                r.m.rate(),
                r.m.ms(0.5),
                r.m.ms(0.9),
                r.m.ms(0.99),
                r.m.ms(0.999),
                r.m.errors,
                r.rss,
            );
        }
        for r in &self.rows {
            if let Some(e) = &r.m.first_error {
                println!("\n{}: {} errors, the first: {e}", r.name, r.m.errors);
            }
        }
    }

    /// Any error, or a scenario without a single answer, fails the smoke run.
    pub fn clean(&self) -> bool {
        self.rows.iter().all(|r| r.m.errors == 0 && r.m.ok > 0)
    }
}
