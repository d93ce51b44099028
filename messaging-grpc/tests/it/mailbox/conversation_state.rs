//! A conversation's state: archive and unarchive (an inbound message brings it back),
//! mute (events flagged, unread still counts), delete (rows, media and terms removed,
//! counts fixed).

use super::*;

backend_tests! {
    async fn archive_unarchive_and_an_inbound_message_brings_it_back(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let bob = alice.send(OWN, BOB, "hi bob").await.unwrap();
        alice.send(OWN, CAROL, "hi carol").await.unwrap();
        let mut events = watch(&server, "alice").await;
        let archive = |id: &str| pb::ArchiveConversationRequest { contact_id: id.into() };

        let conv = call!(alice, archive_conversation, archive(&bob.contact_id)).unwrap();
        assert!(conv.archived);
        let e = next_change(&mut events).await;
        assert_eq!((e.kind, e.contact_id.as_str()), (EventKind::ConversationArchived as i32, bob.contact_id.as_str()));
        let inbox: Vec<_> = list(&mut alice, false).await.into_iter().map(|c| c.contact_number).collect();
        assert_eq!(inbox, [CAROL]);
        let archived = list(&mut alice, true).await;
        assert_eq!((archived.len(), archived[0].contact_number.as_str(), archived[0].archived), (1, BOB, true));
        // Archiving again changes nothing and announces nothing; a send keeps it archived.
        call!(alice, archive_conversation, archive(&bob.contact_id)).unwrap();
        alice.send(OWN, BOB, "still archived").await.unwrap();
        let e = next_change(&mut events).await;
        assert_eq!(e.kind, EventKind::ConversationUpdated as i32);
        assert_eq!(list(&mut alice, true).await.len(), 1);

        let conv = call!(alice, unarchive_conversation, pb::UnarchiveConversationRequest { contact_id: bob.contact_id.clone() }).unwrap();
        assert!(!conv.archived);
        let (e, _) = until(&mut events, EventKind::ConversationUnarchived).await;
        assert_eq!(e.contact_id, bob.contact_id);
        assert_eq!(list(&mut alice, false).await.len(), 2);

        // Archived again, then Bob writes: back in the inbox, announced first.
        call!(alice, archive_conversation, archive(&bob.contact_id)).unwrap();
        until(&mut events, EventKind::ConversationArchived).await;
        let inbound = server.inbound("SMa1", BOB, OWN, "are you there?").await;
        let back = next_change(&mut events).await;
        assert_eq!((back.kind, back.contact_id.as_str()), (EventKind::ConversationUnarchived as i32, bob.contact_id.as_str()));
        let received = next_change(&mut events).await;
        assert_eq!((received.kind, received.message_id.as_str()), (EventKind::MessageReceived as i32, inbound.id.as_str()));
        let inbox = list(&mut alice, false).await;
        assert_eq!((inbox[0].contact_number.as_str(), inbox[0].archived, inbox[0].unread_count), (BOB, false, 1));
        assert!(list(&mut alice, true).await.is_empty());

        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, archive_conversation, archive(&bob.contact_id)).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "contact_id not found"));
        let err = call!(alice, archive_conversation, archive("")).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("contact_id"));
        server.stop().await;
    }

    async fn mute_flags_events_and_unread_still_counts(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let bob = server.inbound("SMm1", BOB, OWN, "one").await;
        let carol = server.inbound("SMm2", CAROL, OWN, "two").await;
        let mut events = watch(&server, "alice").await;
        let mute = |id: &str, until| pb::MuteConversationRequest { contact_id: id.into(), until };

        let conv = call!(alice, mute_conversation, mute(&bob.contact_id, None)).unwrap();
        assert!(conv.muted && conv.muted_until.is_none());
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.muted), (EventKind::ConversationMuted as i32, true));
        server.inbound("SMm3", BOB, OWN, "three").await;
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.muted, e.unread_count), (EventKind::MessageReceived as i32, true, 2), "muted, still counted");
        server.inbound("SMm4", CAROL, OWN, "four").await;
        let e = next(&mut events).await;
        assert_eq!((e.contact_id.as_str(), e.muted), (carol.contact_id.as_str(), false));
        assert_eq!(alice.unread(&bob.contact_id).await, 2);
        let listed = list(&mut alice, false).await;
        assert!(listed.iter().find(|c| c.contact_id == bob.contact_id).unwrap().muted);

        let conv = call!(alice, unmute_conversation, pb::UnmuteConversationRequest { contact_id: bob.contact_id.clone() }).unwrap();
        assert!(!conv.muted);
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.muted), (EventKind::ConversationUnmuted as i32, false));
        server.inbound("SMm5", BOB, OWN, "five").await;
        assert!(!next(&mut events).await.muted);

        // Until a time: muted, then not once it has passed.
        let conv = call!(alice, mute_conversation, mute(&bob.contact_id, Some(in_secs(1)))).unwrap();
        assert!(conv.muted && conv.muted_until.is_some());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let listed = list(&mut alice, false).await;
        assert!(!listed.iter().find(|c| c.contact_id == bob.contact_id).unwrap().muted, "the mute expired");
        server.inbound("SMm6", BOB, OWN, "six").await;
        let (e, _) = until(&mut events, EventKind::MessageReceived).await;
        assert!(!e.muted);

        let err = call!(alice, mute_conversation, mute(&bob.contact_id, Some(in_secs(-5)))).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("until"));
        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, mute_conversation, mute(&bob.contact_id, None)).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = call!(mallory, unmute_conversation, pb::UnmuteConversationRequest { contact_id: bob.contact_id.clone() }).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        server.stop().await;
    }

    async fn delete_removes_rows_media_and_terms_and_fixes_counts(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let media_dir = server.dir.path().join("media");
        let image = {
            let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
            b.extend(std::iter::repeat_n(7u8, 500));
            b
        };
        let upload = vec![
            pb::UploadMediaRequest { frame: Some(pb::upload_media_request::Frame::Metadata(pb::UploadMediaMetadata { content_type: "image/png".into(), filename: "a.png".into() })) },
            pb::UploadMediaRequest { frame: Some(pb::upload_media_request::Frame::Chunk(image)) },
        ];
        let media = alice.client.upload_media(authed(tokio_stream::iter(upload), &alice.token)).await.unwrap().into_inner();
        let object = media_dir.join("media").join(&media.id);
        assert!(object.exists(), "{}", object.display());
        let mms = call!(alice, send_mms, pb::SendMmsRequest { from: OWN.into(), to: BOB.into(), body: "photo zebra".into(), media_ids: vec![media.id.clone()], ..Default::default() }).unwrap();
        alice.wait_status(&mms, MessageStatus::Delivered, 10).await;
        let one = server.inbound("SMd1", BOB, OWN, "first zebra").await;
        let two = server.inbound("SMd2", BOB, OWN, "second zebra").await;
        let three = server.inbound("SMd3", BOB, OWN, "third zebra").await;
        let contact = one.contact_id.clone();
        assert_eq!(alice.unread(&contact).await, 3);
        let mut events = watch(&server, "alice").await;
        let delete = |id: &str| pb::DeleteMessageRequest { message_id: id.into() };
        let terms_of = |id: &str| {
            format!(
                "SELECT (SELECT COUNT(*) FROM search_terms WHERE message_id = '{id}') \
                 + (SELECT COUNT(*) FROM search_pending WHERE message_id = '{id}') AS n"
            )
        };
        assert!(count(&server, &terms_of(&two.id)).await > 0);

        // An unread one in the middle: gone, counted out.
        let d = call!(alice, delete_message, delete(&two.id)).unwrap();
        assert_eq!((d.contact_id.as_str(), d.unread_count), (contact.as_str(), 2));
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.message_id.as_str(), e.unread_count), (EventKind::MessageDeleted as i32, two.id.as_str(), 2));
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM messages WHERE id = '{}'", two.id)).await, 0);
        assert_eq!(count(&server, &terms_of(&two.id)).await, 0);
        assert_eq!(bodies(&search(&mut alice, "zebra", "").await.unwrap()), ["third zebra", "first zebra", "photo zebra"]);
        // The last one: the conversation's last message moves back.
        call!(alice, delete_message, delete(&three.id)).unwrap();
        let conv = list(&mut alice, false).await.remove(0);
        assert_eq!((conv.last_message.unwrap().id, conv.unread_count), (one.id.clone(), 1));
        // The MMS: its media row and encrypted object go too.
        call!(alice, delete_message, delete(&mms.id)).unwrap();
        assert!(!object.exists(), "the media object is deleted");
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM media WHERE id = '{}'", media.id)).await, 0);
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM message_media WHERE message_id = '{}'", mms.id)).await, 0);
        let err = call!(alice, delete_message, delete(&mms.id)).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "message_id not found"));
        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, delete_message, delete(&one.id)).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = call!(mallory, delete_conversation, pb::DeleteConversationRequest { contact_id: contact.clone() }).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(alice.unread(&contact).await, 1, "nothing changed by another user");

        // A scheduled message deletes, its outbox job with it.
        let restarted_at = count(&server, "SELECT COUNT(*) AS n FROM outbox").await;
        let later = alice
            .send_req(pb::SendSmsRequest { send_at: Some(in_secs(3600)), ..sms_at(BOB, "much later", None) })
            .await
            .unwrap();
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM outbox").await, restarted_at + 1);
        call!(alice, delete_message, delete(&later.id)).unwrap();
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM outbox").await, restarted_at);

        // The whole conversation: rows, terms and the conversation go; the contact stays.
        server.inbound("SMd4", BOB, OWN, "fourth zebra").await;
        let d = call!(alice, delete_conversation, pb::DeleteConversationRequest { contact_id: contact.clone() }).unwrap();
        assert_eq!(d.deleted_messages, 2);
        let (e, _) = until(&mut events, EventKind::ConversationDeleted).await;
        assert_eq!(e.contact_id, contact);
        assert!(list(&mut alice, false).await.is_empty());
        assert!(search(&mut alice, "zebra", "").await.unwrap().is_empty());
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM messages WHERE user_id = 'alice'").await, 0);
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM search_terms WHERE user_id = 'alice'").await, 0);
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM search_pending WHERE user_id = 'alice'").await, 0);
        assert!(alice.get(&contact, 10, "").await.unwrap().messages.is_empty());
        let d = call!(alice, delete_conversation, pb::DeleteConversationRequest { contact_id: contact.clone() }).unwrap();
        assert_eq!(d.deleted_messages, 0, "a retry finds nothing left");
        // A new message starts a fresh conversation.
        server.inbound("SMd5", BOB, OWN, "hello again").await;
        assert_eq!(alice.unread(&contact).await, 1);
        server.stop().await;
    }
}
