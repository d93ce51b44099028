//! Our Twilio REST client against the fake: wire format, errors, lookups.

use std::time::Duration;

use messaging_grpc::twilio::{CreateMessage, TwilioAuth, TwilioClient, TwilioError};
use secrecy::SecretString;
use twilio_fake::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Scripted};

fn client(fake: &FakeTwilio, password: &str) -> TwilioClient {
    let auth = TwilioAuth {
        account_sid: ACCOUNT_SID.into(),
        username: ACCOUNT_SID.into(),
        password: SecretString::from(password.to_owned()),
    };
    TwilioClient::new(&fake.base_url(), auth, Duration::from_secs(2)).unwrap()
}

fn msg<'a>(to: &'a str, body: &'a str, media: &'a [String]) -> CreateMessage<'a> {
    CreateMessage {
        to,
        from: "+15005550006",
        body,
        media_urls: media,
        status_callback: Some("https://gw.test/webhook/status"),
        validity_period: Some(600),
    }
}

#[tokio::test]
async fn create_fetch_and_list() {
    let fake = FakeTwilio::start().await.unwrap();
    let c = client(&fake, AUTH_TOKEN);
    let media = vec![
        "https://gw.test/media/a".to_owned(),
        "https://gw.test/media/b".to_owned(),
    ];
    let created = c
        .create_message(&msg("+14155550100", "hi", &media))
        .await
        .unwrap();
    assert!(created.sid.starts_with("SM") && created.sid.len() == 34);
    assert_eq!(
        (
            created.status.as_str(),
            created.segments(),
            created.media_count()
        ),
        ("queued", Some(1), Some(2))
    );
    assert!(created.created_at().is_some());
    let post = &fake.create_requests()[0];
    assert_eq!(
        post.fields("MediaUrl"),
        ["https://gw.test/media/a", "https://gw.test/media/b"],
        "one MediaUrl per item"
    );
    assert_eq!(post.field("ValidityPeriod"), Some("600"));

    fake.set_status(&created.sid, "delivered");
    assert_eq!(
        c.fetch_message(&created.sid).await.unwrap().status,
        "delivered"
    );
    let listed = c
        .list_messages(
            "+15005550006",
            "+14155550100",
            chrono::Utc::now() - chrono::Duration::minutes(5),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| m.sid.as_str()).collect::<Vec<_>>(),
        [created.sid.as_str()]
    );
    let none = c
        .list_messages(
            "+15005550006",
            "+14155550199",
            chrono::Utc::now() - chrono::Duration::minutes(5),
            10,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn errors_are_typed() {
    let fake = FakeTwilio::start().await.unwrap();
    let c = client(&fake, AUTH_TOKEN);
    match c
        .create_message(&msg("+15005550001", "x", &[]))
        .await
        .unwrap_err()
    {
        TwilioError::Api {
            status,
            code,
            message,
            more_info,
            ..
        } => {
            assert_eq!((status, code), (400, Some(21211)));
            assert!(message.contains("not a valid phone number"));
            assert_eq!(
                more_info.as_deref(),
                Some("https://www.twilio.com/docs/errors/21211")
            );
        }
        other => panic!("{other:?}"),
    }
    fake.script([Scripted::TooManyRequests {
        retry_after: Some(7),
    }]);
    match c
        .create_message(&msg("+14155550100", "x", &[]))
        .await
        .unwrap_err()
    {
        TwilioError::Api {
            status: 429,
            retry_after,
            ..
        } => assert_eq!(retry_after, Some(Duration::from_secs(7))),
        other => panic!("{other:?}"),
    }
    match c
        .fetch_message("SM00000000000000000000000000000000")
        .await
        .unwrap_err()
    {
        TwilioError::Api {
            status: 404,
            code: Some(20404),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    let wrong = client(&fake, "not-the-token");
    assert!(matches!(
        wrong
            .create_message(&msg("+14155550100", "x", &[]))
            .await
            .unwrap_err(),
        TwilioError::Api {
            status: 401,
            code: Some(20003),
            ..
        }
    ));
    fake.script([Scripted::Drop]);
    assert!(matches!(
        c.create_message(&msg("+14155550100", "x", &[]))
            .await
            .unwrap_err(),
        TwilioError::NoAnswer(_)
    ));
    fake.go_down();
    assert!(matches!(
        c.create_message(&msg("+14155550100", "x", &[]))
            .await
            .unwrap_err(),
        TwilioError::Connect(_)
    ));
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_not_a_hang() {
    let fake = FakeTwilio::start().await.unwrap();
    let c = client(&fake, AUTH_TOKEN);
    fake.script([Scripted::Slow(Duration::from_secs(5))]);
    assert!(matches!(
        c.create_message(&msg("+14155550100", "x", &[]))
            .await
            .unwrap_err(),
        TwilioError::NoAnswer(_)
    ));
}
