//! The fake's Messages list against what Twilio documents: `date_sent` null while
//! queued, `DateSent` filters on `date_sent`, `To`/`From`, newest first, paging.

use std::{
    collections::HashSet,
    io::{Read, Write},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{TimeZone, Utc};
use serde_json::Value;
use twilio_fake::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Scripted};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";

/// One HTTP/1.1 exchange with Basic auth; `None` when the connection closed unanswered.
async fn exchange(
    fake: &FakeTwilio,
    method: &str,
    target: &str,
    form: &str,
) -> Option<(u16, Value)> {
    let addr = fake.addr();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}")),
        form.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok()?;
        let answer = String::from_utf8(answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    })
    .await
    .ok()?
}

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

async fn create(fake: &FakeTwilio, from: &str, to: &str, body: &str) -> Option<String> {
    let form = query(&[("From", from), ("To", to), ("Body", body)]);
    let (status, json) = exchange(fake, "POST", &messages_path(), &form).await?;
    assert_eq!(status, 201, "{json}");
    json["sid"].as_str().map(str::to_owned)
}

/// A list page: (status, the page).
async fn list(fake: &FakeTwilio, pairs: &[(&str, &str)]) -> (u16, Value) {
    let target = format!("{}?{}", messages_path(), query(pairs));
    exchange(fake, "GET", &target, "").await.unwrap_or_default()
}

/// Follows a page URI as a client does: the fake's base URL, then the path.
async fn follow(fake: &FakeTwilio, uri: &str) -> (u16, Value) {
    exchange(fake, "GET", uri, "").await.unwrap_or_default()
}

fn sids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["sid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

fn yesterday() -> String {
    (Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string()
}

fn tomorrow() -> String {
    (Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn a_queued_message_has_no_date_sent_and_no_date_sent_filter_finds_it() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.hold_queued(true);
    let sid = create(&fake, FROM, TO, "held").await.unwrap();

    let (status, fetched) = follow(
        &fake,
        &format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["status"], "queued");
    assert!(fetched["date_sent"].is_null(), "{fetched}");
    assert!(fetched["date_created"].is_string());
    assert!(fake.messages()[0].date_sent.is_none());

    let (today, yesterday, tomorrow) = (today(), yesterday(), tomorrow());
    for filter in [
        ("DateSent>", yesterday.as_str()),
        ("DateSent>", today.as_str()),
        ("DateSent", today.as_str()),
        ("DateSent<", tomorrow.as_str()),
        ("DateSent", ">=1970-01-01"),
    ] {
        let (status, page) = list(&fake, &[("From", FROM), ("To", TO), filter]).await;
        assert_eq!(status, 200);
        assert!(
            sids(&page).is_empty(),
            "{filter:?} matched a null date_sent: {page}"
        );
    }
    // Without a DateSent filter Twilio does list it.
    let (_, page) = list(&fake, &[("From", FROM), ("To", TO)]).await;
    assert_eq!(sids(&page), std::slice::from_ref(&sid));
    assert!(page["messages"][0]["date_sent"].is_null());

    // Released, it is sent now and found by day.
    fake.hold_queued(false);
    let (_, page) = list(
        &fake,
        &[("From", FROM), ("To", TO), ("DateSent>", &yesterday)],
    )
    .await;
    assert_eq!(sids(&page), std::slice::from_ref(&sid));
    assert_eq!(page["messages"][0]["status"], "sent");
    assert!(page["messages"][0]["date_sent"].is_string());
}

#[tokio::test]
async fn a_lost_answer_after_twilio_took_the_message_is_not_found_by_date_sent_while_queued() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.hold_queued(true);
    fake.script([Scripted::CreateThenDrop]);
    let form = query(&[("From", FROM), ("To", TO), ("Body", "lost answer")]);
    assert!(
        exchange(&fake, "POST", &messages_path(), &form)
            .await
            .is_none(),
        "no answer"
    );
    assert_eq!(fake.messages().len(), 1, "Twilio took it");

    let (_, page) = list(
        &fake,
        &[("From", FROM), ("To", TO), ("DateSent>", &yesterday())],
    )
    .await;
    assert!(
        sids(&page).is_empty(),
        "a DateSent lookup cannot see a queued message"
    );
    let (_, page) = list(&fake, &[("From", FROM), ("To", TO)]).await;
    assert_eq!(sids(&page), [fake.messages()[0].sid.clone()]);
    let seen = fake.list_requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].param("DateSent>"), Some(yesterday().as_str()));
    assert_eq!(seen[1].param("DateSent>"), None);
}

#[tokio::test]
async fn the_queue_hold_delays_date_sent() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.set_queue_hold(Duration::from_millis(300));
    let sid = create(&fake, FROM, TO, "slow queue").await.unwrap();
    let (_, page) = list(&fake, &[("To", TO), ("DateSent>", &today())]).await;
    assert!(sids(&page).is_empty());
    assert_eq!(fake.messages()[0].status, "queued");

    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, page) = list(&fake, &[("To", TO), ("DateSent>", &yesterday())]).await;
    assert_eq!(sids(&page), [sid]);
    let m = &fake.messages()[0];
    assert_eq!(m.status, "sent");
    let sent = m.date_sent.unwrap();
    assert!(sent - m.created_at >= chrono::Duration::milliseconds(300));
}

#[tokio::test]
async fn by_default_a_message_is_sent_at_once_but_the_create_answer_says_queued() {
    let fake = FakeTwilio::start().await.unwrap();
    let form = query(&[("From", FROM), ("To", TO), ("Body", "now")]);
    let (status, created) = exchange(&fake, "POST", &messages_path(), &form)
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(created["status"], "queued");
    assert!(created["date_sent"].is_null());
    let (_, page) = list(&fake, &[("To", TO), ("DateSent>", &yesterday())]).await;
    assert_eq!(
        sids(&page),
        [created["sid"].as_str().unwrap_or_default().to_owned()]
    );
    assert_eq!(page["messages"][0]["status"], "sent");
}

#[tokio::test]
async fn pages_of_fifty_over_a_hundred_and_twenty_messages() {
    let fake = FakeTwilio::start().await.unwrap();
    let mut created = Vec::new();
    for i in 0..120 {
        created.push(create(&fake, FROM, TO, &format!("m{i}")).await.unwrap());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let (status, first) = list(&fake, &[("From", FROM), ("To", TO), ("PageSize", "50")]).await;
    assert_eq!(status, 200);
    assert_eq!(sids(&first), newest_first[..50]);
    assert_eq!(
        (first["page"].as_u64(), first["page_size"].as_u64()),
        (Some(0), Some(50))
    );
    assert_eq!(
        (first["start"].as_u64(), first["end"].as_u64()),
        (Some(0), Some(49))
    );
    assert!(first["previous_page_uri"].is_null());
    let uri = first["uri"].as_str().unwrap_or_default();
    assert!(
        uri.starts_with(&messages_path()) && uri.contains("To=%2B14155550100"),
        "{uri}"
    );
    assert_eq!(first["first_page_uri"], first["uri"]);
    let next = first["next_page_uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        next.starts_with(&messages_path()),
        "a path on the fake: {next}"
    );
    assert!(
        next.contains("Page=1") && next.contains("PageToken=PA"),
        "{next}"
    );
    assert!(
        next.contains("From=%2B15005550006") && next.contains("PageSize=50"),
        "{next}"
    );

    let (_, second) = follow(&fake, &next).await;
    assert_eq!(sids(&second), newest_first[50..100]);
    assert_eq!(
        (
            second["page"].as_u64(),
            second["start"].as_u64(),
            second["end"].as_u64()
        ),
        (Some(1), Some(50), Some(99))
    );
    let next = second["next_page_uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let (_, third) = follow(&fake, &next).await;
    assert_eq!(sids(&third), newest_first[100..]);
    assert_eq!(third["page"].as_u64(), Some(2));
    assert!(
        third["next_page_uri"].is_null(),
        "the last page has no next"
    );

    // Back one page.
    let previous = third["previous_page_uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(previous.contains("PageToken=PB"), "{previous}");
    let (_, back) = follow(&fake, &previous).await;
    assert_eq!(sids(&back), newest_first[50..100]);

    let all: HashSet<String> = [first, second, third].iter().flat_map(sids).collect();
    assert_eq!(all.len(), 120);

    // PageSize defaults to 50; Page alone does not move (it is "simply for client state").
    let (_, default) = list(&fake, &[("To", TO)]).await;
    assert_eq!(
        (sids(&default).len(), default["page_size"].as_u64()),
        (50, Some(50))
    );
    let (_, page_one) = list(&fake, &[("To", TO), ("Page", "1")]).await;
    assert_eq!(sids(&page_one), newest_first[..50]);
    // A short list is one page.
    let (_, all_at_once) = list(&fake, &[("To", TO), ("PageSize", "1000")]).await;
    assert_eq!(sids(&all_at_once), newest_first);
    assert!(all_at_once["next_page_uri"].is_null());

    // What a client sent, in order.
    let tokens: Vec<Option<String>> = fake
        .list_requests()
        .iter()
        .map(|r| r.param("PageToken").map(str::to_owned))
        .collect();
    assert!(tokens[0].is_none() && tokens[1].as_deref().is_some_and(|t| t.starts_with("PA")));
}

#[tokio::test]
async fn paging_refusals_are_twilios() {
    let fake = FakeTwilio::start().await.unwrap();
    let (status, body) = list(&fake, &[("PageSize", "1001")]).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(20007)));
    let (status, body) = list(
        &fake,
        &[("PageToken", "PASM00000000000000000000000000000000")],
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(21481)));
    let (status, _) = list(&fake, &[("DateSent>", "not a date")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn to_and_from_filter_exactly() {
    let fake = FakeTwilio::start().await.unwrap();
    let (a, b) = ("+14155550101", "+14155550102");
    let (x, y) = ("+15005550006", "+15005550007");
    let a_x = create(&fake, x, a, "1").await.unwrap();
    let b_x = create(&fake, x, b, "2").await.unwrap();
    let a_y = create(&fake, y, a, "3").await.unwrap();

    let (_, page) = list(&fake, &[("To", a)]).await;
    assert_eq!(sids(&page), [a_y.clone(), a_x.clone()]);
    let (_, page) = list(&fake, &[("From", x)]).await;
    assert_eq!(sids(&page), [b_x.clone(), a_x.clone()]);
    let (_, page) = list(&fake, &[("To", a), ("From", x)]).await;
    assert_eq!(sids(&page), [a_x]);
    let (_, page) = list(&fake, &[("To", b), ("From", y)]).await;
    assert!(sids(&page).is_empty());
    let (_, page) = list(&fake, &[]).await;
    assert_eq!(sids(&page).len(), 3);
}

#[tokio::test]
async fn newest_date_sent_first_and_date_sent_days_are_inclusive() {
    let fake = FakeTwilio::start().await.unwrap();
    let day = |d: u32, h: u32| Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).single();
    let old = create(&fake, FROM, TO, "created first, sent last")
        .await
        .unwrap();
    let mid = create(&fake, FROM, TO, "sent on the 11th").await.unwrap();
    let new = create(&fake, FROM, TO, "created last, sent first")
        .await
        .unwrap();
    let queued = create(&fake, FROM, TO, "still queued").await.unwrap();
    let created = day(10, 1).unwrap_or_default();
    fake.set_dates(&old, created, day(12, 23));
    fake.set_dates(&mid, created, day(11, 0));
    fake.set_dates(&new, created, day(10, 2));
    fake.set_dates(&queued, created, None);
    assert_eq!(fake.messages()[3].status, "queued");

    let (_, page) = list(&fake, &[("To", TO)]).await;
    assert_eq!(
        sids(&page),
        [queued.clone(), old.clone(), mid.clone(), new.clone()],
        "null date_sent first, then newest date_sent"
    );

    fake.list_unsent_last(true);
    let (_, page) = list(&fake, &[("To", TO)]).await;
    assert_eq!(
        sids(&page),
        [old.clone(), mid.clone(), new.clone(), queued.clone()],
        "null date_sent last"
    );
    fake.list_unsent_last(false);

    let (_, page) = list(&fake, &[("DateSent", "2024-03-11")]).await;
    assert_eq!(sids(&page), std::slice::from_ref(&mid));
    let (_, page) = list(&fake, &[("DateSent>", "2024-03-11")]).await;
    assert_eq!(sids(&page), [old.clone(), mid.clone()], "on or after");
    let (_, page) = list(&fake, &[("DateSent<", "2024-03-11")]).await;
    assert_eq!(sids(&page), [mid.clone(), new.clone()], "on or before");
    let (_, page) = list(
        &fake,
        &[("DateSent>", "2024-03-11"), ("DateSent<", "2024-03-11")],
    )
    .await;
    assert_eq!(sids(&page), [mid]);
    let (_, page) = list(&fake, &[("DateSent", "<=2024-03-10")]).await;
    assert_eq!(sids(&page), [new]);
    let (_, page) = list(&fake, &[("DateSent>", "2024-03-13")]).await;
    assert!(sids(&page).is_empty());
}

#[tokio::test]
async fn list_reads_can_be_scripted_to_fail() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.script_list([
        Scripted::TooManyRequests {
            retry_after: Some(2),
        },
        Scripted::Drop,
        Scripted::ServerError(503),
    ]);
    let (status, body) = list(&fake, &[("To", TO)]).await;
    assert_eq!((status, body["code"].as_i64()), (429, Some(20429)));
    assert!(
        exchange(&fake, "GET", &messages_path(), "").await.is_none(),
        "dropped"
    );
    assert_eq!(list(&fake, &[]).await.0, 503);
    assert_eq!(list(&fake, &[]).await.0, 200);
    // POSTs are scripted apart.
    assert!(create(&fake, FROM, TO, "fine").await.is_some());
    assert_eq!(fake.list_requests().len(), 4);
}

#[tokio::test]
async fn set_status_past_the_queue_sets_date_sent() {
    let fake = FakeTwilio::start().await.unwrap();
    fake.hold_queued(true);
    let sid = create(&fake, FROM, TO, "carrier").await.unwrap();
    fake.set_status(&sid, "delivered");
    let m = &fake.messages()[0];
    assert_eq!(m.status, "delivered");
    assert!(m.date_sent.is_some());
    let (_, fetched) = follow(
        &fake,
        &format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
    )
    .await;
    assert!(fetched["date_sent"].is_string());
    assert_eq!(fake.fetch_requests().len(), 1);
}
