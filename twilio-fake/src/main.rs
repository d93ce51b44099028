//! `twilio-fake`: the fake Twilio as a standalone server for local runs.
//! Listens on TWILIO_FAKE_ADDR (default 127.0.0.1:3999); `GET /_fake/messages` lists
//! what it "sent". TWILIO_FAKE_CREATE_LATENCY_MS (`150`, or a range `100-300`) makes
//! each create take that long; TWILIO_FAKE_LIST_LAG_MS delays a new message in the list;
//! TWILIO_FAKE_MAX_CONCURRENT refuses creates beyond that many in progress (429, 20429).

use std::time::Duration;

use twilio_fake::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Latency};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("TWILIO_FAKE_ADDR").unwrap_or_else(|_| "127.0.0.1:3999".into());
    let fake = FakeTwilio::start_on(addr.parse()?).await?;
    if let Ok(spec) = std::env::var("TWILIO_FAKE_CREATE_LATENCY_MS") {
        let latency = Latency::parse_millis(&spec).ok_or_else(|| {
            anyhow::anyhow!(
                "TWILIO_FAKE_CREATE_LATENCY_MS: `{spec}` is not N or LOW-HIGH milliseconds"
            )
        })?;
        fake.set_create_latency(latency);
    }
    if let Ok(spec) = std::env::var("TWILIO_FAKE_LIST_LAG_MS") {
        let ms: u64 = spec.trim().parse().map_err(|_| {
            anyhow::anyhow!("TWILIO_FAKE_LIST_LAG_MS: `{spec}` is not milliseconds")
        })?;
        fake.set_list_lag(Duration::from_millis(ms));
    }
    if let Ok(spec) = std::env::var("TWILIO_FAKE_MAX_CONCURRENT") {
        let max: usize = spec.trim().parse().map_err(|_| {
            anyhow::anyhow!("TWILIO_FAKE_MAX_CONCURRENT: `{spec}` is not a number of creates")
        })?;
        fake.set_max_open_creates(Some(max));
    }
    println!("fake Twilio listening on {}", fake.base_url());
    println!("  TWILIO_API_BASE={}", fake.base_url());
    println!("  TWILIO_ACCOUNT_SID={ACCOUNT_SID}");
    println!("  TWILIO_AUTH_TOKEN={AUTH_TOKEN}");
    println!(
        "  what it received: curl -s {}/_fake/messages",
        fake.base_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
