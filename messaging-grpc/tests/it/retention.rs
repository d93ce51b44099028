//! Message retention: exactly the messages older than MESSAGE_RETENTION_DAYS go, in
//! several small batches, with their media (rows and objects) and outbox jobs; unread
//! counts and each conversation's last message stay exact (also with two replicas
//! running it on PostgreSQL); a conversation with nothing left disappears; recent
//! messages and uploads stay.

use std::collections::{BTreeSet, HashMap};

use commpro_messaging_api::v1 as pb;
use messaging_grpc::store::entities::{conversation, media as media_row, message};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use tonic::Code;

use crate::{backend_tests, helpers::*, media};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const CAROL: &str = "+14155550101";
const DAVE: &str = "+14155550102";

fn days_ago(n: i64) -> chrono::DateTime<chrono::Utc> {
    messaging_grpc::store::now() - chrono::Duration::days(n)
}

backend_tests! {
    async fn retention_deletes_exactly_what_is_older_across_batches(backend: Backend) {
        // One media store for every replica, as in production (S3).
        let media_store = tempfile::tempdir().unwrap();
        let server = TestServer::start_with(&backend, HashMap::from([
            ("MEDIA_STORE", media_store.path().display().to_string()),
            ("MESSAGE_RETENTION_DAYS", "30".to_owned()),
            ("MESSAGE_RETENTION_BATCH", "3".to_owned()),
            ("MESSAGE_RETENTION_INTERVAL_MS", "100".to_owned()),
        ])).await;
        // PostgreSQL: a second replica runs retention too (one batch at a time between them).
        let _other = match &backend {
            Backend::Postgres(_) => Some(server.sibling(|_| {}).await),
            Backend::Sqlite => None,
        };
        server.assign(OWN, "alice").await;
        server.assign("+15005550007", "bob").await;
        let mut alice = server.user("alice").await;
        let mut sid = 0;
        let mut inbound = |from: &'static str, body: &'static str| {
            sid += 1;
            let s = format!("SM{sid:032}");
            let server = &server;
            async move { server.inbound(&s, from, OWN, body).await.id }
        };
        // Bob: two old inbound (one read), one old outbound; three recent.
        let in1 = inbound(BOB, "old read").await;
        let in2 = inbound(BOB, "old unread").await;
        let out1 = alice.send(OWN, BOB, "old reply").await.unwrap().id;
        let in3 = inbound(BOB, "new 1").await;
        let in4 = inbound(BOB, "new 2").await;
        let out2 = alice.send(OWN, BOB, "new reply").await.unwrap().id;
        alice.mark_read(&in1).await.unwrap();
        // Carol: everything old, an MMS among it.
        let in5 = inbound(CAROL, "carol old 1").await;
        let image = media::png(4096, 1);
        let sent_media = media::upload(&server, "alice", media::frames(Some(("image/png", "c.png")), &image)).await.unwrap();
        let mms = media::send_mms(&server, "alice", pb::SendMmsRequest {
            from: OWN.into(), to: CAROL.into(), body: "carol picture".into(),
            media_ids: vec![sent_media.id.clone()], ..Default::default()
        }).await.unwrap().id;
        let in6 = inbound(CAROL, "carol old 2").await;
        // Dave: the newest message is the old one (out of order), the older one stays.
        let out3 = alice.send(OWN, DAVE, "dave stays").await.unwrap().id;
        let out4 = alice.send(OWN, DAVE, "dave goes").await.unwrap().id;
        // A message scheduled for tomorrow but written long ago waits for its time.
        let tomorrow = messaging_grpc::store::now() + chrono::Duration::days(1);
        let scheduled = alice.send_req(pb::SendSmsRequest {
            from: OWN.into(), to: DAVE.into(), body: "dave later".into(),
            send_at: Some(prost_types::Timestamp { seconds: tomorrow.timestamp(), nanos: 0 }),
            ..Default::default()
        }).await.unwrap().id;
        // Another user's old message goes too.
        let bob_old = server.user("bob").await.send("+15005550007", BOB, "bob old").await.unwrap().id;
        // Uploads never sent: an old one goes, a recent one stays.
        let stale = media::upload(&server, "alice", media::frames(Some(("image/png", "s.png")), &media::png(512, 2))).await.unwrap();
        let fresh = media::upload(&server, "alice", media::frames(Some(("image/png", "f.png")), &media::png(512, 3))).await.unwrap();

        let db = server.store().await;
        let old_ids = vec![in1.clone(), in2.clone(), out1.clone(), in5, mms, in6, out4, bob_old];
        message::Entity::update_many()
            .col_expr(message::Column::CreatedAt, Expr::value(days_ago(31)))
            .filter(message::Column::Id.eq(scheduled.clone()))
            .exec(db.conn()).await.unwrap();
        let object = |id: &str| media_store.path().join(format!("media/{id}"));
        assert!(object(&sent_media.id).exists() && object(&stale.id).exists());
        message::Entity::update_many()
            .col_expr(message::Column::CreatedAt, Expr::value(days_ago(31)))
            .filter(message::Column::Id.is_in(old_ids.clone()))
            .exec(db.conn()).await.unwrap();
        media_row::Entity::update_many()
            .col_expr(media_row::Column::CreatedAt, Expr::value(days_ago(40)))
            .filter(media_row::Column::Id.eq(stale.id.clone()))
            .exec(db.conn()).await.unwrap();

        wait_until("retention to delete the old messages", 20, || async {
            message::Entity::find().count(db.conn()).await.unwrap() == 5
                && media_row::Entity::find().count(db.conn()).await.unwrap() == 1
        }).await;

        let left: BTreeSet<String> = message::Entity::find().all(db.conn()).await.unwrap().into_iter().map(|m| m.id).collect();
        assert_eq!(left, BTreeSet::from([in3.clone(), in4.clone(), out2.clone(), out3.clone(), scheduled]), "exactly the recent ones (and the scheduled one) stay");
        let list = alice.list(10, "").await.unwrap();
        let by_number: HashMap<&str, &pb::Conversation> = list.conversations.iter().map(|c| (c.contact_number.as_str(), c)).collect();
        assert_eq!(by_number.len(), 2, "carol's conversation had nothing left: {:?}", by_number.keys());
        assert_eq!(by_number[BOB].unread_count, 2, "the old unread one no longer counts");
        assert_eq!(by_number[BOB].last_message.as_ref().unwrap().id, out2);
        assert_eq!(by_number[DAVE].last_message.as_ref().unwrap().id, out3, "the last message moved back");
        let page = alice.get(&by_number[BOB].contact_id, 50, "").await.unwrap();
        assert_eq!(page.messages.iter().map(|m| m.id.clone()).collect::<BTreeSet<_>>(), BTreeSet::from([in3, in4, out2]));
        // Every stored unread count equals its unread inbound messages.
        for c in conversation::Entity::find().all(db.conn()).await.unwrap() {
            let unread = message::Entity::find()
                .filter(message::Column::UserId.eq(c.user_id.clone()))
                .filter(message::Column::ContactId.eq(c.contact_id.clone()))
                .filter(message::Column::Direction.eq("inbound"))
                .filter(message::Column::ReadAt.is_null())
                .count(db.conn()).await.unwrap();
            assert_eq!(c.unread_count as u64, unread, "{c:?}");
        }
        // Media: the sent one and the stale upload are gone, objects included.
        for id in [&sent_media.id, &stale.id] {
            assert_eq!(media::get_media(&server, "alice", id).await.unwrap_err().code(), Code::NotFound);
            assert!(!object(id).exists(), "object of {id} deleted");
        }
        assert_eq!(media::get_media(&server, "alice", &fresh.id).await.unwrap().1, media::png(512, 3));
        // No outbox job points at a deleted message.
        assert_eq!(messaging_grpc::store::entities::outbox::Entity::find()
            .filter(messaging_grpc::store::entities::outbox::Column::MessageId.is_in(old_ids)).count(db.conn()).await.unwrap(), 0);
    }
}
