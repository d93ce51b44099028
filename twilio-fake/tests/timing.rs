//! The fake's timing, as Twilio's: a create takes its latency, completes although the
//! caller hung up, and shows in the list only after the list's lag.

#![allow(clippy::unwrap_used)] // a test: a failed call is the failure

use std::time::{Duration, Instant};

use twilio_fake::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Latency, Scripted};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";

fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

fn messages_url(fake: &FakeTwilio) -> String {
    format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        fake.base_url()
    )
}

async fn create(
    fake: &FakeTwilio,
    client: &reqwest::Client,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(messages_url(fake))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&[("To", TO), ("From", FROM), ("Body", "timed")])
        .send()
        .await
}

async fn listed(fake: &FakeTwilio) -> usize {
    let page: serde_json::Value = http(Duration::from_secs(5))
        .get(messages_url(fake))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .query(&[("To", TO), ("From", FROM)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["messages"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_create_takes_its_latency() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.set_create_latency(Latency::Fixed(Duration::from_millis(300)));
    let start = Instant::now();
    let resp = create(&fake, &http(Duration::from_secs(5))).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fake.created_count(), 1);
}

#[tokio::test]
async fn a_range_of_latencies_stays_within_its_bounds() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.set_create_latency(Latency::Range(
        Duration::from_millis(50),
        Duration::from_millis(150),
    ));
    let client = http(Duration::from_secs(5));
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(create(&fake, &client).await.unwrap().status(), 201);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(1),
            "{took:?}"
        );
    }
    assert_eq!(
        Latency::parse_millis("100-300"),
        Some(Latency::Range(
            Duration::from_millis(100),
            Duration::from_millis(300)
        ))
    );
    assert_eq!(
        Latency::parse_millis("150"),
        Some(Latency::Fixed(Duration::from_millis(150)))
    );
    assert_eq!(Latency::parse_millis("0"), Some(Latency::None));
    assert_eq!(Latency::parse_millis("300-100"), None);
}

#[tokio::test]
async fn a_create_completes_although_the_caller_hung_up() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.set_create_latency(Latency::Fixed(Duration::from_millis(800)));
    let gave_up = create(&fake, &http(Duration::from_millis(200))).await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    assert_eq!(fake.created_count(), 0, "still being created");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        fake.created_count(),
        1,
        "Twilio finished the create without its caller"
    );
    // The same for a scripted slow create.
    fake.set_create_latency(Latency::None);
    fake.script([Scripted::Slow(Duration::from_millis(600))]);
    assert!(
        create(&fake, &http(Duration::from_millis(100)))
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fake.created_count(), 2);
}

#[tokio::test]
async fn the_list_shows_a_new_message_only_after_its_lag() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.set_list_lag(Duration::from_millis(700));
    let resp = create(&fake, &http(Duration::from_secs(5))).await.unwrap();
    assert_eq!(resp.status(), 201);
    let sid = resp.json::<serde_json::Value>().await.unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(listed(&fake).await, 0, "not listed yet");
    let fetched = http(Duration::from_secs(5))
        .get(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
            fake.base_url()
        ))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200, "a fetch by SID finds it at once");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(listed(&fake).await, 1);
}

/// Twilio's concurrency limit: while `max` creates are in progress (one whose caller
/// hung up included) another is refused at once with 429 / 20429 and creates nothing;
/// once they complete, creates are taken again.
#[tokio::test]
async fn a_create_beyond_the_concurrency_limit_is_refused_until_one_completes() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.set_create_latency(Latency::Fixed(Duration::from_millis(1500)));
    fake.set_max_open_creates(Some(2));
    let slow = http(Duration::from_secs(5));
    let first = tokio::spawn({
        let (url, client) = (messages_url(&fake), slow.clone());
        async move { post(&client, &url).await }
    });
    // The second caller hangs up long before its create ends: it still counts.
    let hung_up = create(&fake, &http(Duration::from_millis(300))).await;
    assert!(hung_up.is_err(), "the caller timed out");
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.open_creates() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.open_creates(), 2, "both creates in progress");
    let refused = create(&fake, &slow).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_none());
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 20429);
    assert_eq!(fake.refused_busy(), 1);
    // The limit counts every request of the account: a look-up is refused too.
    let looked_up = slow
        .get(messages_url(&fake))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(looked_up.status(), 429);
    assert_eq!(fake.refused_busy(), 2);
    assert_eq!(first.await.unwrap(), 201);
    // Both creates complete (the hung-up one too), so the limit has room again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.open_creates() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.open_creates(), 0);
    assert_eq!(fake.messages().len(), 2, "the refused create made nothing");
    assert_eq!(create(&fake, &slow).await.unwrap().status(), 201);
}

async fn post(client: &reqwest::Client, url: &str) -> u16 {
    client
        .post(url)
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(&[("To", TO), ("From", FROM), ("Body", "timed")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
