// The open conversation: its messages with live statuses (queued → sending → sent →
// delivered, or failed with Twilio's code), images, and the mailbox actions.

import { $, el, fill, when } from "./dom.js";

const STATUS_TEXT = {
  queued: "queued",
  sending: "sending",
  sent: "sent",
  delivered: "delivered",
  undelivered: "undelivered",
  failed: "failed",
  received: "received",
  scheduled: "scheduled",
  canceled: "canceled",
};

// What Twilio's delivery receipts carry is the code alone; these are its meanings.
const TWILIO_ERRORS = {
  21211: "invalid 'To' number",
  21610: "recipient unsubscribed",
  30003: "unreachable destination handset",
  30004: "message blocked",
  30005: "unknown destination handset",
  30006: "landline or unreachable carrier",
  30007: "message filtered",
  30008: "unknown error",
};

export class Thread {
  constructor(inbox) {
    this.inbox = inbox;
    this.contactId = null;
    this.conversation = null;
    this.images = new Map();
    this.pendingPolls = 0;
    $("mark-read").addEventListener("click", () => this.act((api, id) => api.markConversationRead(id)));
    $("archive").addEventListener("click", () =>
      this.act((api, id) => api.archive(id, !this.conversation.archived)),
    );
    $("mute").addEventListener("click", () => this.act((api, id) => api.mute(id, !this.conversation.muted)));
    $("block").addEventListener("click", () => {
      const number = this.conversation.contactNumber;
      this.act((api) => (this.inbox.blocked.has(number) ? api.unblock(number) : api.block(number)));
    });
    $("delete-conversation").addEventListener("click", async () => {
      await this.act((api, id) => api.deleteConversation(id));
      this.close();
    });
    $("name-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.act((api, id) => api.setName(id, $("contact-name").value.trim()));
    });
  }

  get api() {
    return this.inbox.api;
  }

  /** Shows no conversation: the composer writes a new message. */
  close() {
    this.contactId = null;
    this.conversation = null;
    $("thread-title").textContent = "New message";
    $("thread-actions").hidden = true;
    fill($("messages"), []);
    document.querySelectorAll(".conversation[aria-current]").forEach((n) => n.removeAttribute("aria-current"));
  }

  /** Opens a conversation; opening it marks it read (as a messaging app does). */
  async open(contactId, { markRead = true } = {}) {
    this.contactId = contactId;
    try {
      if (markRead) await this.api.markConversationRead(contactId);
      await this.reload();
      if (markRead) await this.inbox.refresh();
    } catch (err) {
      this.inbox.error(err);
    }
  }

  onEvent(kind, data) {
    if (kind === "conversation_deleted" && data.contactId === this.contactId) this.close();
  }

  /** Reloads the open conversation's messages. */
  async reload() {
    const contactId = this.contactId;
    if (!contactId) return;
    const generation = this.inbox.generation;
    const page = await this.api.conversation(contactId);
    if (contactId !== this.contactId || generation !== this.inbox.generation) return;
    // Archive and mute state is on the listing; a conversation missing from the
    // current listing is in the other one (archived or not).
    const listed = this.inbox.conversations.get(contactId);
    const showingArchived = $("show-archived").checked;
    this.conversation = {
      contactId,
      contactNumber: page.contactNumber,
      contactName: page.contactName,
      archived: listed ? listed.archived : !showingArchived,
      muted: listed ? listed.muted : false,
    };
    document.querySelectorAll(".conversation").forEach((n) => {
      if (n.dataset.contactId === contactId) n.setAttribute("aria-current", "true");
      else n.removeAttribute("aria-current");
    });
    this.renderHead();
    $("compose-to").value = page.contactNumber;
    // Newest first from the API; a thread reads oldest first.
    const messages = [...page.messages].reverse();
    fill($("messages"), messages.map((m) => this.renderMessage(m)));
    $("messages").lastElementChild?.scrollIntoView({ block: "end" });
    this.pollWhilePending(messages);
  }

  renderHead() {
    const c = this.conversation;
    $("thread-title").textContent = c.contactName ? `${c.contactName} (${c.contactNumber})` : c.contactNumber;
    $("thread-actions").hidden = false;
    $("contact-name").value = c.contactName || "";
    $("archive").textContent = c.archived ? "Unarchive" : "Archive";
    $("mute").textContent = c.muted ? "Unmute" : "Mute";
    $("block").textContent = this.inbox.blocked.has(c.contactNumber) ? "Unblock" : "Block";
  }

  renderMessage(m) {
    const status = STATUS_TEXT[m.status] || m.status;
    const meaning = m.errorMessage || TWILIO_ERRORS[m.errorCode];
    const failure = m.errorCode ? ` · error ${m.errorCode}${meaning ? `: ${meaning}` : ""}` : "";
    const meta = el(
      "p",
      { class: "meta" },
      el("span", { class: "status", "data-status": m.status, text: `${status}${failure}` }),
      " ",
      el("time", { datetime: m.createdAt, text: when(m.sendAt && m.status === "scheduled" ? m.sendAt : m.createdAt) }),
    );
    const actions = el("div", { class: "message-actions" });
    if (m.status === "scheduled") {
      const cancel = el("button", { type: "button", text: "Cancel", "aria-label": "Cancel this scheduled message" });
      cancel.addEventListener("click", () => this.act((api) => api.cancel(m.id)));
      actions.append(cancel);
    }
    const remove = el("button", { type: "button", class: "link", text: "Delete", "aria-label": "Delete this message" });
    remove.addEventListener("click", () => this.act((api) => api.deleteMessage(m.id)));
    actions.append(remove);
    return el(
      "li",
      {
        class: `message ${m.direction}`,
        "data-id": m.id,
        "data-status": m.status,
        "data-error-code": m.errorCode ?? null,
      },
      m.body ? el("p", { class: "body", text: m.body }) : null,
      m.media.map((media) => this.renderImage(media)),
      meta,
      actions,
    );
  }

  /** An image fetched with the bearer token (an <img> cannot send it). */
  renderImage(media) {
    if (media.state !== "ready") {
      return el("p", { class: "media-state", text: `image ${media.state}` });
    }
    const img = el("img", { class: "mms", alt: `image (${media.contentType})`, "data-media-id": media.id });
    const known = this.images.get(media.id);
    if (known) {
      img.src = known;
    } else {
      this.api
        .mediaUrl(media.url)
        .then((url) => {
          this.images.set(media.id, url);
          img.src = url;
        })
        .catch(() => img.replaceWith(el("p", { class: "media-state", text: "image unavailable" })));
    }
    return img;
  }

  /** Inbound images are copied in the background and no event says when: look again a few times. */
  pollWhilePending(messages) {
    const pending = messages.some((m) => m.media.some((x) => x.state === "pending"));
    if (!pending) {
      this.pendingPolls = 0;
      return;
    }
    if (this.pendingPolls >= 20) return;
    this.pendingPolls += 1;
    setTimeout(() => this.reload().catch(() => {}), 500);
  }

  async act(action) {
    if (!this.contactId) return;
    await this.inbox.act(() => action(this.api, this.contactId));
  }
}
