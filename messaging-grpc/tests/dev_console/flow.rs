//! The seed's whole test flow, played in a real browser on the console: one
//! `messaging dev` and one Chromium session for every step (a new browser costs
//! seconds; the steps share it and run in order).

use std::path::{Path, PathBuf};

use crate::{browser::Browser, png, stack::Dev};

const BOB: &str = "+14155550100";
const CAROL: &str = "+14155550111";

/// `li.conversation` of `number` (a CSS selector).
fn conversation(number: &str) -> String {
    format!(r#".conversation[data-contact-number="{number}"]"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_plays_the_whole_flow_in_a_real_browser() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dev = Dev::start().await;
    let images = tempfile::tempdir().unwrap();
    let sent_png = write(
        images.path(),
        "sent.png",
        png::striped(96, [31, 111, 235], [255, 255, 255]),
    );
    let reply_png = write(
        images.path(),
        "reply.png",
        png::striped(96, [46, 125, 50], [255, 236, 179]),
    );

    b.client.goto(&dev.url("/dev")).await.unwrap();
    b.until("the default user's inbox, live", "document.body.dataset.user === 'dev-user' && document.getElementById('live').dataset.state === 'live'").await;
    switch_user(&b, "alice").await;
    let alice = b.js("document.getElementById('from-number').value").await;
    let alice = alice.as_str().unwrap().to_owned();
    assert!(
        alice.starts_with("+1628555"),
        "a dev number was assigned: {alice}"
    );

    send_and_see_it_delivered(&b).await;
    reply_and_see_it_unread_then_read(&b).await;
    images_both_ways(&b, &sent_png, &reply_png).await;
    failed_delivery_shows_its_code(&b).await;
    mailbox_actions(&b).await;
    stop_refuses_the_next_send(&b).await;
    users_never_see_each_other(&b, &alice).await;

    // The picture for the docs: alice's thread with Bob, beside Bob's phone.
    b.click(&format!("{} button.open", conversation(BOB))).await;
    b.until("the thread's images", "[...document.querySelectorAll('#messages img.mms')].filter(i => i.complete && i.naturalWidth > 0).length >= 2").await;
    b.until("the phone's image", "[...document.querySelectorAll('#phone-messages img.mms')].some(i => i.complete && i.naturalWidth > 0)").await;
    save_screenshot(&b).await;

    every_control_is_labelled(&b).await;
    fits_a_phone_screen(&b).await;
}

fn write(dir: &Path, name: &str, bytes: Vec<u8>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn switch_user(b: &Browser, user: &str) {
    b.fill("user-id", user).await;
    b.click("#switch-user").await;
    b.until(
        &format!("{user}'s inbox"),
        &format!("document.body.dataset.user === '{user}' && document.getElementById('from-number').options.length > 0 && document.getElementById('live').dataset.state === 'live'"),
    )
    .await;
}

async fn send(b: &Browser, to: &str, body: &str) {
    b.click("#new-message").await;
    b.fill("compose-to", to).await;
    b.fill("compose-body", body).await;
    b.click("#send").await;
}

/// The thread's message whose body is `body` has `status` (JS expression).
fn message_has(list: &str, body: &str, condition: &str) -> String {
    format!(
        "[...document.querySelectorAll('#{list} .message')].some(m => m.querySelector('.body')?.textContent === {body:?} && {condition})"
    )
}

async fn send_and_see_it_delivered(b: &Browser) {
    send(b, BOB, "Hello Bob, from the console").await;
    b.until(
        "the message delivered on Bob's phone",
        &message_has(
            "phone-messages",
            "Hello Bob, from the console",
            "m.dataset.status === 'delivered'",
        ),
    )
    .await;
    // The inbox learns it from the event stream: its status reaches delivered live.
    b.until(
        "the thread's status to reach delivered",
        &message_has("messages", "Hello Bob, from the console", "m.dataset.status === 'delivered' && m.querySelector('.status').textContent === 'delivered'"),
    )
    .await;
}

async fn reply_and_see_it_unread_then_read(b: &Browser) {
    // A second conversation, now the newest: Bob's is not on top and not open.
    send(b, CAROL, "Hi Carol").await;
    b.until(
        "Carol's conversation on top",
        &format!("document.querySelector('#conversations .conversation')?.dataset.contactNumber === '{CAROL}'"),
    )
    .await;
    b.fill("reply-body", "Hi back from Bob").await;
    b.click("#reply-send").await;
    b.until(
        "Bob's conversation to jump to the top with 1 unread",
        &format!("(() => {{ const top = document.querySelector('#conversations .conversation'); return top && top.dataset.contactNumber === '{BOB}' && top.dataset.unread === '1' && top.querySelector('.unread')?.textContent === '1' && top.querySelector('.preview').textContent === 'Hi back from Bob'; }})()"),
    )
    .await;
    b.click(&format!("{} button.open", conversation(BOB))).await;
    b.until(
        "Bob's conversation read once opened",
        &format!("(() => {{ const c = document.querySelector('{}'); return c && c.dataset.unread === '0' && !c.querySelector('.unread'); }})()", conversation(BOB)),
    )
    .await;
    b.until(
        "the reply in the thread",
        &message_has(
            "messages",
            "Hi back from Bob",
            "m.classList.contains('inbound')",
        ),
    )
    .await;
}

async fn images_both_ways(b: &Browser, sent: &Path, reply: &Path) {
    // From the inbox: an MMS (uploaded through POST /api/media), shown in the thread
    // and, through the gateway's signed media URL, on the phone.
    b.fill("compose-body", "A picture for Bob").await;
    b.pick_file("compose-image", sent).await;
    b.click("#send").await;
    let rendered =
        "m.querySelector('img.mms')?.complete && m.querySelector('img.mms').naturalWidth === 96";
    b.until(
        "the sent image rendered in the thread",
        &message_has("messages", "A picture for Bob", rendered),
    )
    .await;
    b.until(
        "the sent image rendered on the phone",
        &message_has("phone-messages", "A picture for Bob", rendered),
    )
    .await;
    // From the phone: an MMS whose image the core copies from the phone's URL.
    b.fill("reply-body", "Bob's picture").await;
    b.pick_file("reply-image", reply).await;
    b.click("#reply-send").await;
    b.until(
        "the phone's image copied and rendered in the thread",
        &message_has(
            "messages",
            "Bob's picture",
            &format!("m.classList.contains('inbound') && {rendered}"),
        ),
    )
    .await;
}

async fn failed_delivery_shows_its_code(b: &Browser) {
    b.select("failure-code", "30003").await;
    b.click("#arm-failure").await;
    b.until(
        "the phone armed",
        "document.getElementById('failure-state').textContent.includes('30003')",
    )
    .await;
    b.fill("compose-body", "Are you reachable?").await;
    b.click("#send").await;
    b.until(
        "the failure with its code in the thread",
        &message_has("messages", "Are you reachable?", "m.dataset.status === 'undelivered' && m.dataset.errorCode === '30003' && m.querySelector('.status').textContent.includes('30003')"),
    )
    .await;
    b.until(
        "the failure on the phone",
        &message_has("phone-messages", "Are you reachable?", "m.dataset.status === 'undelivered' && m.querySelector('.status').textContent.includes('30003')"),
    )
    .await;
}

async fn mailbox_actions(b: &Browser) {
    // Name a contact: the list shows the name.
    b.click(&format!("{} button.open", conversation(CAROL)))
        .await;
    b.until(
        "Carol's thread",
        &message_has("messages", "Hi Carol", "true"),
    )
    .await;
    b.fill("contact-name", "Carol Example").await;
    b.click("#name-form button").await;
    b.until(
        "the name in the list",
        &format!(
            "document.querySelector('{} .who')?.textContent === 'Carol Example'",
            conversation(CAROL)
        ),
    )
    .await;
    // Mute, then archive: it leaves the list and is under "Show archived".
    b.click("#mute").await;
    b.until(
        "muted",
        &format!(
            "[...document.querySelectorAll('{} .flag')].some(f => f.textContent === 'muted')",
            conversation(CAROL)
        ),
    )
    .await;
    b.click("#archive").await;
    b.until(
        "archived away",
        &format!(
            "!document.querySelector('#conversations {}')",
            conversation(CAROL)
        ),
    )
    .await;
    b.click("#show-archived").await;
    b.until(
        "in the archive",
        &format!(
            "!!document.querySelector('#conversations {}')",
            conversation(CAROL)
        ),
    )
    .await;
    b.click("#show-archived").await;
    // Schedule a message an hour out, then cancel it.
    b.click(&format!("{} button.open", conversation(BOB))).await;
    b.until(
        "Bob's thread",
        &message_has("messages", "Hello Bob, from the console", "true"),
    )
    .await;
    b.js("(() => { const d = new Date(Date.now() + 3600e3); d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); document.getElementById('compose-at').value = d.toISOString().slice(0, 19); return true; })()").await;
    b.fill("compose-body", "Later, Bob").await;
    b.click("#send").await;
    b.until(
        "scheduled",
        &message_has("messages", "Later, Bob", "m.dataset.status === 'scheduled'"),
    )
    .await;
    b.click(r#"#messages .message[data-status="scheduled"] .message-actions button"#)
        .await;
    b.until(
        "canceled",
        &message_has("messages", "Later, Bob", "m.dataset.status === 'canceled'"),
    )
    .await;
    b.click(
        r#"#messages .message[data-status="canceled"] button[aria-label="Delete this message"]"#,
    )
    .await;
    b.until(
        "the canceled message deleted",
        &format!("!({})", message_has("messages", "Later, Bob", "true")),
    )
    .await;
    // Search over the encrypted bodies.
    b.fill("search-q", "reachable").await;
    b.click("#search-form button[type=submit]").await;
    b.until("a search hit", "[...document.querySelectorAll('#search-results .result .preview')].some(p => p.textContent === 'Are you reachable?')").await;
    b.click("#search-clear").await;
    // Block and unblock Carol's number, then delete the conversation.
    b.click("#show-archived").await;
    b.click(&format!("{} button.open", conversation(CAROL)))
        .await;
    b.until(
        "Carol's thread again",
        &message_has("messages", "Hi Carol", "true"),
    )
    .await;
    b.click("#block").await;
    b.until(
        "blocked",
        "document.getElementById('blocked-count').textContent === '1'",
    )
    .await;
    b.click("#blocked-box summary").await;
    b.click("#blocked button").await;
    b.until(
        "unblocked",
        "document.getElementById('blocked-count').textContent === '0'",
    )
    .await;
    b.click("#delete-conversation").await;
    b.until(
        "the conversation deleted",
        &format!("!document.querySelector('{}')", conversation(CAROL)),
    )
    .await;
    b.click("#show-archived").await;
    b.until(
        "the inbox again",
        &format!("!!document.querySelector('{}')", conversation(BOB)),
    )
    .await;
}

async fn stop_refuses_the_next_send(b: &Browser) {
    b.click(&format!("{} button.open", conversation(BOB))).await;
    b.click("#reply-stop").await;
    b.until(
        "STOP received",
        &message_has("messages", "STOP", "m.classList.contains('inbound')"),
    )
    .await;
    b.fill("compose-body", "Still there?").await;
    b.click("#send").await;
    b.until(
        "the refusal with its reason",
        "document.getElementById('inbox-error').textContent.includes('opted out')",
    )
    .await;
    b.click("#reply-start").await;
    b.until(
        "START received",
        &message_has("messages", "START", "m.classList.contains('inbound')"),
    )
    .await;
}

async fn users_never_see_each_other(b: &Browser, alice_number: &str) {
    switch_user(b, "bob-user").await;
    b.until("an empty inbox", "!document.querySelector('.conversation') && !!document.querySelector('#conversations .empty')").await;
    send(b, BOB, "bob-user's own message").await;
    b.until(
        "bob-user's conversation",
        &message_has("messages", "bob-user's own message", "true"),
    )
    .await;
    let bodies = b
        .js("[...document.querySelectorAll('#messages .body')].map(e => e.textContent)")
        .await;
    assert_eq!(
        bodies,
        serde_json::json!(["bob-user's own message"]),
        "only bob-user's"
    );
    let own = b.js("document.getElementById('from-number').value").await;
    assert_ne!(own.as_str(), Some(alice_number), "a number of their own");

    switch_user(b, "alice").await;
    b.click(&format!("{} button.open", conversation(BOB))).await;
    b.until(
        "alice's thread",
        &message_has("messages", "Hello Bob, from the console", "true"),
    )
    .await;
    let leaked = b.js("[...document.querySelectorAll('#messages .body')].some(e => e.textContent.includes('bob-user'))").await;
    assert_eq!(leaked, false, "alice never sees bob-user's messages");
}

async fn save_screenshot(b: &Browser) {
    let png = b.client.screenshot().await.unwrap();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dev-console.png");
    std::fs::write(&tmp, &png).unwrap();
    // The README's picture is refreshed on request, so test runs leave the tree clean.
    if std::env::var_os("UPDATE_DOCS_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/images/dev-console.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::write(&docs, &png).unwrap();
    }
}

async fn every_control_is_labelled(b: &Browser) {
    let unlabelled = b
        .js("[...document.querySelectorAll('input, select, textarea, button')].filter(c => !(c.labels?.length || c.getAttribute('aria-label') || (c.tagName === 'BUTTON' && c.textContent.trim()))).map(c => c.outerHTML)")
        .await;
    assert_eq!(
        unlabelled,
        serde_json::json!([]),
        "every control has a label"
    );
}

async fn fits_a_phone_screen(b: &Browser) {
    b.client.set_window_size(390, 844).await.unwrap();
    b.until("the phone-width layout", "window.innerWidth <= 400")
        .await;
    let overflow = b
        .js("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(overflow, 0, "no sideways scrolling at phone width");
    let stacked = b.js("document.querySelector('.phone').getBoundingClientRect().top > document.querySelector('.inbox').getBoundingClientRect().bottom - 1").await;
    assert_eq!(stacked, true, "the phone sits below the inbox");
}
