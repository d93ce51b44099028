//! A contact's block (inbound stored but not shown) and name (sealed, shown
//! everywhere).

use super::*;

backend_tests! {
    async fn a_blocked_numbers_inbound_is_stored_but_not_shown(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let carol = server.inbound("SMb1", CAROL, OWN, "hello from carol").await;
        let mut events = watch(&server, "alice").await;

        let blocked = call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        assert_eq!(blocked.number, BOB);
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.contact_id.as_str()), (EventKind::NumberBlocked as i32, blocked.contact_id.as_str()));
        let again = call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        assert_eq!((again.contact_id.as_str(), again.blocked_at), (blocked.contact_id.as_str(), blocked.blocked_at), "idempotent");
        call!(alice, block_number, pb::BlockNumberRequest { number: CAROL.into() }).unwrap();
        next(&mut events).await;
        let page = call!(alice, list_blocked_numbers, pb::ListBlockedNumbersRequest::default()).unwrap();
        let numbers: Vec<_> = page.blocked_numbers.iter().map(|b| b.number.as_str()).collect();
        assert_eq!(numbers, [CAROL, BOB], "most recently blocked first");

        // Stored, encrypted, but no conversation, no unread, no event.
        let hidden = server.inbound("SMb2", BOB, OWN, "you cannot ignore me").await;
        let hidden_from_carol = server.inbound("SMb3", CAROL, OWN, "me neither").await;
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM messages WHERE id IN ('{}', '{}') AND blocked", hidden.id, hidden_from_carol.id)).await, 2);
        let inbox = list(&mut alice, false).await;
        assert_eq!(inbox.len(), 1);
        assert_eq!((inbox[0].unread_count, inbox[0].last_message.as_ref().unwrap().id.as_str()), (1, carol.id.as_str()));
        let page = alice.get(&carol.contact_id, 50, "").await.unwrap();
        assert_eq!(bodies(&page.messages), ["hello from carol"]);
        assert!(search(&mut alice, "ignore", "").await.unwrap().is_empty());
        assert_eq!(alice.mark_conversation_read(&carol.contact_id, "").await.unwrap(), 0);
        // Sends to a blocked number are refused.
        let err = alice.send(OWN, BOB, "hi").await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().starts_with("to: ") && err.message().contains("blocked") && !err.message().contains(BOB), "{}", err.message());

        let done = call!(alice, unblock_number, pb::UnblockNumberRequest { number: BOB.into() }).unwrap();
        assert_eq!(done.contact_id, blocked.contact_id);
        // The events: CAROL unread read mark, then the unblock. Nothing for the hidden ones.
        let (e, before) = until(&mut events, EventKind::NumberUnblocked).await;
        assert_eq!(e.contact_id, blocked.contact_id);
        assert!(before.iter().all(|e| e.kind != EventKind::MessageReceived as i32), "{before:?}");
        call!(alice, unblock_number, pb::UnblockNumberRequest { number: BOB.into() }).unwrap();
        alice.send(OWN, BOB, "welcome back").await.unwrap();
        server.inbound("SMb4", BOB, OWN, "thanks").await;
        assert_eq!(alice.unread(&blocked.contact_id).await, 1);

        // A scheduled message to a number blocked before it is due is canceled.
        let restarted = server.restart(HashMap::from([("SCHEDULE_MIN_LEAD_SECS", "1".to_owned())]), |_| {}).await;
        let mut alice = restarted.user("alice").await;
        let m = alice.send_req(sms_at(BOB, "later", Some(in_secs(2)))).await.unwrap();
        call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        alice.wait_status(&m, MessageStatus::Canceled, 10).await;

        for bad in ["", "+1 415", "not a number!"] {
            let err = call!(alice, block_number, pb::BlockNumberRequest { number: bad.into() }).unwrap_err();
            refused(&err, Code::InvalidArgument, Some("number"));
        }
        let err = call!(alice, unblock_number, pb::UnblockNumberRequest { number: "+14155550199".into() }).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "number not found"));
        let mut mallory = restarted.user("mallory").await;
        assert!(call!(mallory, list_blocked_numbers, pb::ListBlockedNumbersRequest::default()).unwrap().blocked_numbers.is_empty());
        let err = call!(mallory, unblock_number, pb::UnblockNumberRequest { number: BOB.into() }).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        restarted.stop().await;
    }

    async fn contact_names_are_sealed_and_shown_everywhere(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let sent = alice.send(OWN, BOB, "hello plumber").await.unwrap();
        assert_eq!(sent.contact_name, "");
        let mut events = watch(&server, "alice").await;
        let name = |id: &str, name: &str| pb::SetContactNameRequest { contact_id: id.into(), name: name.into() };

        let contact = call!(alice, set_contact_name, name(&sent.contact_id, "  Bob the Plumber ")).unwrap();
        assert_eq!((contact.id.as_str(), contact.number.as_str(), contact.name.as_str(), contact.blocked), (sent.contact_id.as_str(), BOB, "Bob the Plumber", false));
        let e = next_change(&mut events).await;
        assert_eq!((e.kind, e.contact_id.as_str()), (EventKind::ContactUpdated as i32, sent.contact_id.as_str()));

        let conv = list(&mut alice, false).await.remove(0);
        assert_eq!((conv.contact_name.as_str(), conv.last_message.unwrap().contact_name.as_str()), ("Bob the Plumber", "Bob the Plumber"));
        let page = alice.get(&sent.contact_id, 10, "").await.unwrap();
        assert_eq!(page.contact_name, "Bob the Plumber");
        assert!(page.messages.iter().all(|m| m.contact_name == "Bob the Plumber"));
        assert_eq!(search(&mut alice, "plumber", "").await.unwrap()[0].contact_name, "Bob the Plumber");
        assert_eq!(alice.send(OWN, BOB, "again").await.unwrap().contact_name, "Bob the Plumber");
        let inbound = server.inbound("SMn1", BOB, OWN, "hi").await;
        assert_eq!(alice.mark_read(&inbound.id).await.unwrap().contact_name, "Bob the Plumber");
        // Not in clear in the database.
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM contacts WHERE name_ct IS NOT NULL").await, 1);

        let err = call!(alice, set_contact_name, name(&sent.contact_id, &"n".repeat(101))).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("name"));
        let err = call!(alice, set_contact_name, name(&sent.contact_id, "tab\there")).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("name"));
        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, set_contact_name, name(&sent.contact_id, "mine")).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "contact_id not found"));
        let cleared = call!(alice, set_contact_name, name(&sent.contact_id, "")).unwrap();
        assert_eq!(cleared.name, "");
        assert_eq!(list(&mut alice, false).await[0].contact_name, "");
        server.stop().await;
    }
}
