//! Data keys: master-key rotation under concurrent sends (one process on SQLite, two
//! replicas on PostgreSQL), resumed after an interruption, and the old master key
//! removed afterwards; a user's key rotation; crypto-shredding seen from every
//! replica, with other users untouched; the audit log of it all.

use std::collections::{BTreeSet, HashMap};

use base64::{Engine, engine::general_purpose::STANDARD};
use commpro_messaging_api::v1::{self as pb, ContentState, MediaState};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;

use crate::{backend_tests, helpers::*, media};

const CONTACT: &str = "+14155550100";

fn key(id: &str, byte: u8) -> String {
    format!("{id}:{}", STANDARD.encode([byte; 32]))
}

fn number(i: usize) -> String {
    format!("+1500555{:04}", 1000 + i)
}

/// Old key `t1` (what every test server starts with) behind a new active `t2`.
fn rotated_keys() -> HashMap<&'static str, String> {
    HashMap::from([(
        "MESSAGING_MASTER_KEYS",
        format!("{},{}", key("t2", 8), key("t1", 7)),
    )])
}

async fn rotate(server: &TestServer, max_keys: u32) -> pb::RotateMasterKeyResponse {
    server
        .admin()
        .await
        .call(
            |c, r| Box::pin(c.rotate_master_key(r)),
            pb::RotateMasterKeyRequest { max_keys },
        )
        .await
        .expect("rotation")
}

async fn key_status(server: &TestServer) -> HashMap<String, u64> {
    let s = server
        .admin()
        .await
        .call(|c, r| Box::pin(c.key_status(r)), pb::KeyStatusRequest {})
        .await
        .expect("key status");
    s.master_keys
        .into_iter()
        .map(|m| (m.master_key_id, m.data_keys))
        .collect()
}

/// Every body of `user`'s conversation with CONTACT, as the server decrypts it.
async fn bodies(server: &TestServer, user: &str) -> BTreeSet<String> {
    let mut client = server.user(user).await;
    let list = client.list(100, "").await.expect("list");
    let mut out = BTreeSet::new();
    for conv in list.conversations {
        let mut token = String::new();
        loop {
            let page = client
                .get(&conv.contact_id, 200, &token)
                .await
                .expect("get");
            for m in page.messages {
                assert_eq!(
                    m.content_state,
                    ContentState::Available as i32,
                    "{user}: {}",
                    m.id
                );
                out.insert(m.body);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
    }
    out
}

/// Sends `count` messages as `user` from `number(i)`; returns their bodies.
async fn send_many(server: &TestServer, user: String, i: usize, count: usize) -> Vec<String> {
    let mut client = server.user(&user).await;
    let mut sent = Vec::new();
    for k in 0..count {
        let body = format!("{user} says #{k} on replica {}", server.addr.port());
        client
            .send(&number(i), CONTACT, &body)
            .await
            .expect("send during rotation");
        sent.push(body);
    }
    sent
}

backend_tests! {
    async fn master_key_rotation_under_concurrent_sends_then_old_key_removed(backend: Backend) {
        let server = TestServer::start(&backend).await;
        let users: Vec<String> = (0..8).map(|i| format!("user-{i}")).collect();
        for (i, u) in users.iter().enumerate() {
            server.assign(&number(i), u).await;
        }
        let mut expected: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            expected.entry(u.clone()).or_default().extend(send_many(&server, u.clone(), i, 2).await);
        }
        // New users appear during the rotation: their first keys are created meanwhile.
        let newcomers: Vec<String> = (8..12).map(|i| format!("user-{i}")).collect();
        for (i, u) in newcomers.iter().enumerate() {
            server.assign(&number(8 + i), u).await;
        }

        let server = server.restart(rotated_keys(), |_| {}).await;
        // PostgreSQL: a second replica sends and rotates at the same time.
        let replicas = match backend {
            Backend::Sqlite => vec![server],
            Backend::Postgres(_) => {
                let other = server.sibling(|_| {}).await;
                vec![server, other]
            }
        };
        let all: Vec<String> = users.iter().chain(&newcomers).cloned().collect();
        let results = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let senders = {
            let mut set = tokio::task::JoinSet::new();
            for (i, u) in all.iter().enumerate() {
                let replica = &replicas[i % replicas.len()];
                let (addr, token, u, results) = (replica.addr, replica.token(u), u.clone(), results.clone());
                set.spawn(async move {
                    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
                    let mut client = UserClient { client: pb::messaging_service_client::MessagingServiceClient::new(channel), token };
                    for k in 0..6 {
                        let body = format!("{u} during rotation #{k} via {addr}");
                        client.send(&number(i), CONTACT, &body).await.expect("send during rotation");
                        results.lock().await.push((u.clone(), body));
                    }
                });
            }
            set
        };
        // Small rotation steps on every replica while the sends run, then to the end.
        let mut senders = senders;
        let mut rounds = 0;
        while !senders.is_empty() {
            for r in &replicas {
                rotate(r, 2).await;
            }
            rounds += 1;
            while let Some(done) = senders.try_join_next() {
                done.unwrap();
            }
            tokio::task::yield_now().await;
        }
        assert!(rounds > 0);
        let last = rotate(&replicas[0], 0).await;
        assert_eq!(last.active_master_key_id, "t2");
        assert!(last.remaining.is_empty(), "nothing left under t1: {:?}", last.remaining);
        let status = key_status(&replicas[0]).await;
        assert_eq!(status.get("t1"), Some(&0), "{status:?}");
        assert_eq!(status.get("t2"), Some(&(all.len() as u64)), "one data key per user: {status:?}");

        for (u, body) in results.lock().await.drain(..) {
            expected.entry(u).or_default().insert(body);
        }
        for u in &all {
            let want = expected.get(u).cloned().unwrap_or_default();
            for r in &replicas {
                assert_eq!(bodies(r, u).await, want, "{u} before the old key is removed");
            }
        }

        // The old master key leaves the configuration: everything still decrypts.
        let mut replicas = replicas;
        let server = replicas.remove(0);
        for r in replicas {
            r.stop().await;
        }
        let server = server
            .restart(HashMap::from([("MESSAGING_MASTER_KEYS", key("t2", 8))]), |_| {})
            .await;
        for u in &all {
            assert_eq!(bodies(&server, u).await, expected[u], "{u} after t1 was removed");
        }
        let status = key_status(&server).await;
        assert_eq!(status.keys().collect::<Vec<_>>(), ["t2"], "{status:?}");
    }

    async fn interrupted_rotation_completes_when_run_again(backend: Backend) {
        let server = TestServer::start(&backend).await;
        let mut expected = HashMap::new();
        for i in 0..5 {
            let u = format!("user-{i}");
            server.assign(&number(i), &u).await;
            expected.insert(u.clone(), send_many(&server, u, i, 1).await.into_iter().collect::<BTreeSet<_>>());
        }
        let server = server.restart(rotated_keys(), |_| {}).await;
        assert_eq!(key_status(&server).await, HashMap::from([("t1".into(), 5), ("t2".into(), 0)]));

        // Stopped after two keys (as a crash or a deadline would leave it).
        let first = rotate(&server, 2).await;
        assert_eq!(first.rewrapped, 2);
        assert_eq!(first.remaining.iter().map(|m| (m.master_key_id.as_str(), m.data_keys)).collect::<Vec<_>>(), [("t1", 3)]);
        for (u, want) in &expected {
            assert_eq!(&bodies(&server, u).await, want, "{u} half-way");
        }
        let second = rotate(&server, 0).await;
        assert_eq!((second.rewrapped, second.skipped), (3, 0));
        assert!(second.remaining.is_empty());
        let again = rotate(&server, 0).await;
        assert_eq!(again.rewrapped, 0, "nothing is rewrapped twice");

        let server = server
            .restart(HashMap::from([("MESSAGING_MASTER_KEYS", key("t2", 8))]), |_| {})
            .await;
        for (u, want) in &expected {
            assert_eq!(&bodies(&server, u).await, want, "{u} after t1 was removed");
        }
        let audit = audit_events(&server, "rotate_master_key", "").await;
        assert_eq!(audit.len(), 3);
        assert!(audit.iter().all(|e| e.actor == "operator" && e.target == "t2"));
        assert!(audit.iter().any(|e| e.details.contains("\"rewrapped\":3")), "{audit:?}");
    }

    async fn a_user_key_rotation_keeps_old_messages_readable(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(&number(0), "alice").await;
        let mut want: BTreeSet<String> = send_many(&server, "alice".into(), 0, 2).await.into_iter().collect();
        let rotated = server
            .admin()
            .await
            .call(|c, r| Box::pin(c.rotate_user_key(r)), pb::RotateUserKeyRequest { user_id: "alice".into() })
            .await
            .unwrap();
        assert_eq!(rotated.key_version, 2);
        want.extend(send_many(&server, "alice".into(), 0, 2).await);
        assert_eq!(bodies(&server, "alice").await, want);
        let db = server.store().await;
        let versions = db.conn().query_all_raw(Statement::from_string(db.backend(),
            "SELECT key_version, COUNT(*) AS n FROM messages WHERE user_id = 'alice' GROUP BY key_version ORDER BY key_version")).await.unwrap();
        let versions: Vec<(i32, i64)> = versions.iter().map(|r| (r.try_get("", "key_version").unwrap(), r.try_get("", "n").unwrap())).collect();
        assert_eq!(versions, [(1, 2), (2, 2)], "new messages use the new version");
    }

    async fn shredding_destroys_one_users_content_on_every_replica(backend: Backend) {
        let server = TestServer::start(&backend).await;
        let (alice_no, bob_no) = (number(0), number(1));
        server.assign(&alice_no, "alice").await;
        server.assign(&bob_no, "bob").await;
        let image = media::png(2048, 3);
        let uploaded = media::upload(&server, "alice", media::frames(Some(("image/png", "a.png")), &image)).await.unwrap();
        media::send_mms(&server, "alice", pb::SendMmsRequest {
            from: alice_no.clone(), to: CONTACT.into(), body: "look".into(),
            media_ids: vec![uploaded.id.clone()], ..Default::default()
        }).await.unwrap();
        let mut alice = server.user("alice").await;
        alice.send(&alice_no, CONTACT, "secret plans").await.unwrap();
        server.inbound("SM00000000000000000000000000000001", CONTACT, &alice_no, "reply").await;
        let mut bob = server.user("bob").await;
        bob.send(&bob_no, CONTACT, "bob's own").await.unwrap();

        // The other replica (PostgreSQL) reads alice's messages: her key is in its cache.
        let other = match &backend {
            Backend::Postgres(_) => Some(server.sibling(|_| {}).await),
            Backend::Sqlite => None,
        };
        if let Some(o) = &other {
            assert_eq!(bodies(o, "alice").await.len(), 3);
        }
        let db = server.store().await;
        let object: String = db.conn().query_one_raw(Statement::from_string(db.backend(),
            format!("SELECT storage_key FROM media WHERE id = '{}'", uploaded.id))).await.unwrap().unwrap().try_get("", "storage_key").unwrap();
        let object_path = server.dir.path().join("media").join(&object);
        assert!(object_path.exists(), "{object_path:?}");

        let mut admin = server.admin().await;
        let refused = admin.call(|c, r| Box::pin(c.shred_user(r)), pb::ShredUserRequest {
            user_id: "alice".into(), confirm_user_id: "alicia".into() }).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(bodies(&server, "alice").await.len(), 3, "an unconfirmed shred changes nothing");

        let shred = admin.call(|c, r| Box::pin(c.shred_user(r)), pb::ShredUserRequest {
            user_id: "alice".into(), confirm_user_id: "alice".into() }).await.unwrap();
        assert_eq!((shred.destroyed_key_versions, shred.messages, shred.media, shred.media_objects_deleted), (1, 3, 1, 1));
        assert_eq!(shred.released_numbers, std::slice::from_ref(&alice_no));

        // Reads show destroyed content, without errors, on this replica and the other.
        let mut readers = vec![&server];
        readers.extend(other.as_ref());
        for r in readers {
            wait_until("alice's content destroyed on every replica", 10, || async {
                let mut c = r.user("alice").await;
                let list = c.list(10, "").await.unwrap();
                let page = c.get(&list.conversations[0].contact_id, 50, "").await.unwrap();
                page.messages.len() == 3 && page.messages.iter().all(|m| m.content_state == ContentState::Destroyed as i32 && m.body.is_empty())
            }).await;
            let mut c = r.user("alice").await;
            let list = c.list(10, "").await.unwrap();
            let page = c.get(&list.conversations[0].contact_id, 50, "").await.unwrap();
            let mms = page.messages.iter().find(|m| !m.media.is_empty()).expect("the MMS is still listed");
            assert_eq!((mms.media[0].state, mms.media[0].content_state), (MediaState::Destroyed as i32, ContentState::Destroyed as i32));
            let err = media::get_media(r, "alice", &uploaded.id).await.unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition);
        }
        // The wrapped keys are gone from the database, the object from the media store.
        let left = db.conn().query_one_raw(Statement::from_string(db.backend(),
            "SELECT COUNT(*) AS n FROM user_keys WHERE user_id = 'alice' AND wrapped_dek IS NOT NULL")).await.unwrap().unwrap();
        assert_eq!(left.try_get::<i64>("", "n").unwrap(), 0);
        assert!(!object_path.exists(), "media object deleted");

        // Bob is untouched.
        assert_eq!(bodies(&server, "bob").await, BTreeSet::from(["bob's own".to_owned()]));
        bob.send(&bob_no, CONTACT, "still works").await.unwrap();

        // No sends until a new key exists; numbers come back only after it.
        let err = alice.send(&alice_no, CONTACT, "again").await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "her number was released");
        let err = admin.call(|c, r| Box::pin(c.assign_number(r)), pb::AssignNumberRequest {
            number: alice_no.clone(), user_id: "alice".into() }).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        let rotated = admin.call(|c, r| Box::pin(c.rotate_user_key(r)), pb::RotateUserKeyRequest { user_id: "alice".into() }).await.unwrap();
        assert_eq!(rotated.key_version, 2);
        server.assign(&alice_no, "alice").await;
        let fresh = alice.send(&alice_no, CONTACT, "a new start").await.unwrap();
        let read = alice.message(&fresh.contact_id, &fresh.id).await;
        assert_eq!((read.body.as_str(), read.content_state), ("a new start", ContentState::Available as i32));

        // The log says who did what to whom, and nothing of the content.
        let audit = audit_events(&server, "", "alice").await;
        let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["assign_number", "rotate_user_key", "shred_user", "assign_number"]);
        assert!(audit.iter().all(|e| e.actor == "operator"));
        assert!(audit.iter().all(|e| !e.details.contains("secret") && !e.details.contains("plans")));
    }
}

/// The audit log, newest first, read across pages of 2.
pub(crate) async fn audit_events(
    server: &TestServer,
    action: &str,
    user: &str,
) -> Vec<pb::AuditEvent> {
    let mut admin = server.admin().await;
    let (mut out, mut token) = (Vec::new(), String::new());
    loop {
        let page = admin
            .call(
                |c, r| Box::pin(c.list_audit_events(r)),
                pb::ListAuditEventsRequest {
                    page_size: 2,
                    page_token: token,
                    action: action.into(),
                    target_user_id: user.into(),
                },
            )
            .await
            .unwrap();
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Runs `messaging ARGS` against `server` as an operator would on a dev setup (an
/// admin token minted from the shared HS256 secret); returns (success, stdout, stderr).
pub(crate) async fn messaging_cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let (addr, dir) = (server.addr, tempfile::tempdir().unwrap());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_messaging"))
            .args(&args)
            .env("MESSAGING_DATA_DIR", dir.path())
            .env("MESSAGING_GRPC_ADDR", addr.to_string())
            .env("JWT_HS256_SECRET", SECRET)
            .env_remove("DATABASE_URL")
            .env_remove("MESSAGING_MASTER_KEYS")
            .env_remove("MESSAGING_ADMIN_TOKEN")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_commands_drive_the_running_core() {
    let server = TestServer::start(&Backend::Sqlite).await;
    server.assign(&number(0), "alice").await;
    send_many(&server, "alice".into(), 0, 1).await;

    let (ok, out, err) = messaging_cli(&server, &["keys", "status"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("t1\t1\tactive"), "{out}");

    let (ok, _, err) = messaging_cli(&server, &["keys", "shred", "--user", "alice"]).await;
    assert!(
        !ok && err.contains("--confirm alice"),
        "shredding wants a confirmation: {err}"
    );
    assert_eq!(
        bodies(&server, "alice").await.len(),
        1,
        "nothing was shredded"
    );

    let (ok, out, err) = messaging_cli(
        &server,
        &["keys", "shred", "--user", "alice", "--confirm", "alice"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("1 key versions destroyed; 1 messages"),
        "{out}"
    );
    assert!(out.contains(&number(0)), "{out}");

    let (ok, out, err) = messaging_cli(&server, &["keys", "rotate-user", "--user", "alice"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "alice now seals with data-key version 2");

    let (ok, out, err) = messaging_cli(&server, &["keys", "rotate"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("rewrapped 0 data keys under t1"), "{out}");
    assert!(
        out.contains("no data key depends on an older master key"),
        "{out}"
    );
}
