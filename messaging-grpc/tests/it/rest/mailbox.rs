//! The mailbox through the REST API, end to end on SQLite and PostgreSQL, every answer
//! checked against the served OpenAPI document by the parent module's client.

use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::{BOB, Body, CAROL, EventStream, OWN, Rest, stack_with, urlencode};
use crate::{backend_tests, helpers::*};

fn rfc3339_in(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn delete(rest: &Rest, path: &str, token: &str) -> super::Answer {
    rest.call(Method::DELETE, path, Some(token), Body::None)
        .await
}

fn bodies(v: &Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

backend_tests! {
    async fn scheduled_sends_and_cancel_over_rest(backend: Backend) {
        let (server, _gw, rest) = stack_with(&backend, &[("SCHEDULE_MIN_LEAD_SECS", "1")], &[]).await;
        server.assign(OWN, "alice").await;
        let alice = server.token("alice");

        let at = rfc3339_in(3600);
        let sent = rest
            .post("/api/messages/send", &alice, json!({"from": OWN, "to": BOB, "body": "later", "sendAt": at}))
            .await
            .expect(200);
        assert_eq!((sent["status"].as_str(), sent["message"]["sendAt"].as_str()), (Some("scheduled"), Some(at.as_str())));
        let id = sent["messageId"].as_str().unwrap().to_owned();
        let cancel = format!("/api/messages/{id}/cancel");
        let canceled = rest.call(Method::POST, &cancel, Some(&alice), Body::None).await.expect(200);
        assert_eq!(canceled["status"], "canceled");
        let again = rest.call(Method::POST, &cancel, Some(&alice), Body::None).await.expect(200);
        assert_eq!(again["status"], "canceled");
        rest.call(Method::POST, &cancel, Some(&server.token("mallory")), Body::None)
            .await
            .expect_error(404, "not_found", None);

        // Refusals name the JSON field.
        for send_at in ["tomorrow", &rfc3339_in(-60), &rfc3339_in(40 * 86_400)] {
            rest.post("/api/messages/send", &alice, json!({"from": OWN, "to": BOB, "body": "x", "sendAt": send_at}))
                .await
                .expect_error(400, "invalid_argument", Some("sendAt"));
        }
        let now = rest.post("/api/messages/send", &alice, json!({"from": OWN, "to": BOB, "body": "now"})).await.expect(200);
        assert_eq!(now["message"]["sendAt"], Value::Null);
        rest.call(Method::POST, &format!("/api/messages/{}/cancel", now["messageId"].as_str().unwrap()), Some(&alice), Body::None)
            .await
            .expect_error(409, "failed_precondition", None);

        // Two seconds ahead, MMS: scheduled, then sent and delivered by the console provider.
        let mms = rest
            .post("/api/messages/send-mms", &alice, json!({"from": OWN, "to": CAROL, "mediaUrls": ["https://example.com/a.png"], "sendAt": rfc3339_in(2)}))
            .await
            .expect(200);
        assert_eq!(mms["status"], "scheduled");
        let contact = mms["message"]["contactId"].as_str().unwrap().to_owned();
        wait_until("the scheduled MMS delivered", 15, || {
            let (rest, alice, path) = (rest.clone(), alice.clone(), format!("/api/messages/conversations/{contact}"));
            async move { rest.get(&path, &alice).await.json()["messages"][0]["status"] == "delivered" }
        })
        .await;
    }

    async fn search_archive_mute_block_delete_and_names_over_rest(backend: Backend) {
        let (server, _gw, rest) = stack_with(&backend, &[], &[]).await;
        server.assign(OWN, "alice").await;
        let (alice, mallory) = (server.token("alice"), server.token("mallory"));
        let first = server.inbound("SMr1", BOB, OWN, "Le gâteau est prêt").await;
        server.inbound("SMr2", BOB, OWN, "Gateau for two?").await;
        let carol = server.inbound("SMr3", CAROL, OWN, "no cake here").await;
        let bob_id = first.contact_id.clone();

        // Search: folded words, within a conversation, by number; `q` named on refusal.
        let found = rest.get("/api/messages/search?q=GATEAU", &alice).await.expect(200);
        assert_eq!(bodies(&found), ["Gateau for two?", "Le gâteau est prêt"]);
        assert_eq!(found["nextPageToken"], Value::Null);
        let page = rest.get("/api/messages/search?q=gateau&pageSize=1", &alice).await.expect(200);
        assert_eq!(bodies(&page).len(), 1);
        let token = page["nextPageToken"].as_str().unwrap();
        let next = rest.get(&format!("/api/messages/search?q=gateau&pageSize=1&pageToken={}", urlencode(token)), &alice).await.expect(200);
        assert_eq!(bodies(&next), ["Le gâteau est prêt"]);
        let by_number = rest.get(&format!("/api/messages/search?q={}", urlencode(CAROL)), &alice).await.expect(200);
        assert_eq!(bodies(&by_number), ["no cake here"]);
        let within = rest.get(&format!("/api/messages/search?q=cake&contactId={bob_id}"), &alice).await.expect(200);
        assert!(bodies(&within).is_empty());
        rest.get("/api/messages/search?q=", &alice).await.expect_error(400, "invalid_argument", Some("q"));
        rest.get("/api/messages/search", &alice).await.expect_error(400, "invalid_argument", Some("q"));
        assert!(bodies(&rest.get("/api/messages/search?q=gateau", &mallory).await.expect(200)).is_empty());
        rest.get(&format!("/api/messages/search?q=cake&contactId={bob_id}"), &mallory).await.expect_error(404, "not_found", None);

        // Archive and the archive folder.
        let archive = format!("/api/messages/conversations/{bob_id}/archive");
        let conv = rest.put(&archive, &alice, Body::None).await.expect(200);
        assert_eq!((conv["archived"].as_bool(), conv["contactId"].as_str()), (Some(true), Some(bob_id.as_str())));
        let inbox = rest.get("/api/messages/conversations", &alice).await.expect(200);
        assert_eq!(inbox["conversations"].as_array().unwrap().len(), 1);
        let archived = rest.get("/api/messages/conversations?archived=true", &alice).await.expect(200);
        assert_eq!(archived["conversations"][0]["contactId"], bob_id.as_str());
        rest.get("/api/messages/conversations?archived=maybe", &alice).await.expect_error(400, "invalid_argument", Some("archived"));
        let conv = delete(&rest, &archive, &alice).await.expect(200);
        assert_eq!(conv["archived"], false);
        rest.put(&archive, &mallory, Body::None).await.expect_error(404, "not_found", None);

        // Mute, seen on the event stream; `until` checked.
        let mut events = EventStream::open(&rest, &alice, &[], "").await;
        events.next(10).await; // the opening keepalive
        let mute = format!("/api/messages/conversations/{bob_id}/mute");
        let until = rfc3339_in(3600);
        let conv = rest.put(&mute, &alice, Body::Json(json!({"until": until}))).await.expect(200);
        assert_eq!((conv["muted"].as_bool(), conv["mutedUntil"].as_str()), (Some(true), Some(until.as_str())));
        let (muted, _) = events.until("conversation_muted").await;
        assert_eq!((muted.data["muted"].as_bool(), muted.data["contactId"].as_str()), (Some(true), Some(bob_id.as_str())));
        server.inbound("SMr4", BOB, OWN, "still there?").await;
        let (received, _) = events.until("message_received").await;
        assert_eq!(received.data["muted"], true);
        rest.put(&mute, &alice, Body::Json(json!({"until": rfc3339_in(-10)})))
            .await
            .expect_error(400, "invalid_argument", Some("until"));
        rest.put(&mute, &alice, Body::Json(json!({"until": "soon"})))
            .await
            .expect_error(400, "invalid_argument", Some("until"));
        let conv = rest.put(&mute, &alice, Body::None).await.expect(200);
        assert_eq!((conv["muted"].as_bool(), &conv["mutedUntil"]), (Some(true), &Value::Null));
        let conv = delete(&rest, &mute, &alice).await.expect(200);
        assert_eq!(conv["muted"], false);
        events.until("conversation_unmuted").await;

        // Names.
        let named = rest
            .put(&format!("/api/contacts/{bob_id}/name"), &alice, Body::Json(json!({"name": "Bob"})))
            .await
            .expect(200);
        assert_eq!((named["name"].as_str(), named["number"].as_str(), named["blocked"].as_bool()), (Some("Bob"), Some(BOB), Some(false)));
        let conv = rest.get(&format!("/api/messages/conversations/{bob_id}"), &alice).await.expect(200);
        assert_eq!((conv["contactName"].as_str(), conv["messages"][0]["contactName"].as_str()), (Some("Bob"), Some("Bob")));
        rest.put(&format!("/api/contacts/{bob_id}/name"), &alice, Body::Json(json!({"name": "x".repeat(101)})))
            .await
            .expect_error(400, "invalid_argument", Some("name"));
        rest.put(&format!("/api/contacts/{bob_id}/name"), &mallory, Body::Json(json!({"name": "mine"})))
            .await
            .expect_error(404, "not_found", None);
        let cleared = rest.put(&format!("/api/contacts/{bob_id}/name"), &alice, Body::Json(json!({"name": null}))).await.expect(200);
        assert_eq!(cleared["name"], Value::Null);

        // Block: listed, inbound hidden, sends refused (409 with the number masked), unblock.
        let blocked = rest.post("/api/blocked-numbers", &alice, json!({"number": CAROL})).await.expect(200);
        assert_eq!((blocked["number"].as_str(), blocked["contactId"].as_str()), (Some(CAROL), Some(carol.contact_id.as_str())));
        let list = rest.get("/api/blocked-numbers", &alice).await.expect(200);
        assert_eq!(list["blockedNumbers"][0]["number"], CAROL);
        server.inbound("SMr5", CAROL, OWN, "hidden cake").await;
        let conv = rest.get(&format!("/api/messages/conversations/{}", carol.contact_id), &alice).await.expect(200);
        assert_eq!(bodies(&conv), ["no cake here"]);
        let e = rest.post("/api/messages/send", &alice, json!({"from": OWN, "to": CAROL, "body": "hi"})).await.expect_error(409, "failed_precondition", None);
        assert!(!e["error"].as_str().unwrap().contains(CAROL), "{e}");
        rest.post("/api/blocked-numbers", &alice, json!({"number": "nope!"})).await.expect_error(400, "invalid_argument", Some("number"));
        rest.post("/api/blocked-numbers", &alice, json!({"numbr": CAROL})).await.expect_error(400, "invalid_argument", Some("numbr"));
        let unblocked = delete(&rest, &format!("/api/blocked-numbers/{CAROL}"), &alice).await.expect(200);
        assert_eq!(unblocked["contactId"], carol.contact_id.as_str());
        delete(&rest, &format!("/api/blocked-numbers/{}", urlencode(CAROL)), &alice).await.expect(200);
        delete(&rest, &format!("/api/blocked-numbers/{CAROL}"), &mallory).await.expect_error(404, "not_found", None);
        assert_eq!(rest.get("/api/blocked-numbers", &alice).await.expect(200)["blockedNumbers"], json!([]));

        // Delete one message, then the conversation.
        delete(&rest, &format!("/api/messages/{}", first.id), &mallory).await.expect_error(404, "not_found", None);
        let d = delete(&rest, &format!("/api/messages/{}", first.id), &alice).await.expect(200);
        assert_eq!((d["contactId"].as_str(), d["unreadCount"].as_u64()), (Some(bob_id.as_str()), Some(2)));
        delete(&rest, &format!("/api/messages/{}", first.id), &alice).await.expect_error(404, "not_found", None);
        assert_eq!(bodies(&rest.get("/api/messages/search?q=gateau", &alice).await.expect(200)), ["Gateau for two?"]);
        let conv_path = format!("/api/messages/conversations/{bob_id}");
        delete(&rest, &conv_path, &mallory).await.expect_error(404, "not_found", None);
        let d = delete(&rest, &conv_path, &alice).await.expect(200);
        assert_eq!(d, json!({"contactId": bob_id, "deletedMessages": 2}));
        assert_eq!(delete(&rest, &conv_path, &alice).await.expect(200)["deletedMessages"], 0);
        let inbox = rest.get("/api/messages/conversations", &alice).await.expect(200);
        let left: Vec<&str> = inbox["conversations"].as_array().unwrap().iter().map(|c| c["contactNumber"].as_str().unwrap()).collect();
        assert_eq!(left, [CAROL]);
        let (gone, _) = events.until("conversation_deleted").await;
        assert_eq!(gone.data["contactId"], bob_id.as_str());
    }
}
