//! `twilio-fake`: the fake Twilio as a standalone server for local runs.
//! Listens on TWILIO_FAKE_ADDR (default 127.0.0.1:3999); `GET /_fake/messages` lists
//! what it "sent".

use twilio_fake::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("TWILIO_FAKE_ADDR").unwrap_or_else(|_| "127.0.0.1:3999".into());
    let fake = FakeTwilio::start_on(addr.parse()?).await?;
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
