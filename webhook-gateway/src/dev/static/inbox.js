// The left side: one user's conversations (newest first, unread counts, names), search,
// blocked numbers and the composer; the open conversation is a Thread.

import { $, el, fill, say, when } from "./dom.js";
import { Thread } from "./thread.js";

export class Inbox {
  constructor() {
    this.api = null;
    this.generation = 0;
    this.timer = null;
    this.thread = new Thread(this);
    this.blocked = new Set();
    this.conversations = new Map();
    $("show-archived").addEventListener("change", () => this.refresh());
    $("new-message").addEventListener("click", () => this.thread.close());
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.search($("search-q").value.trim());
    });
    $("search-clear").addEventListener("click", () => {
      $("search-q").value = "";
      this.search("");
    });
    $("compose").addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
  }

  /** Shows `userId`'s inbox with `api`; `from()` is the number they send from. */
  async start(api, userId, from) {
    this.api = api;
    this.from = from;
    this.generation += 1;
    this.thread.close();
    $("search-q").value = "";
    this.search("");
    await this.refresh();
  }

  /** An event of the stream: reload what it touches (coalesced). */
  onEvent(kind, data) {
    if (kind === "keepalive") return;
    this.thread.onEvent(kind, data);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), 100);
  }

  /** Reloads the conversation list, the blocked numbers and the open thread. */
  async refresh() {
    const generation = this.generation;
    const api = this.api;
    if (!api) return;
    try {
      const [page, blocked] = await Promise.all([
        api.conversations($("show-archived").checked),
        api.blocked(),
      ]);
      if (generation !== this.generation) return;
      this.blocked = new Set(blocked.blockedNumbers.map((b) => b.number));
      this.renderList(page.conversations);
      this.renderBlocked(blocked.blockedNumbers);
      await this.thread.reload();
    } catch (err) {
      if (generation === this.generation) this.error(err);
    }
  }

  renderList(conversations) {
    this.conversations = new Map(conversations.map((c) => [c.contactId, c]));
    const items = conversations.map((c) => {
      const last = c.lastMessage;
      const preview = last
        ? `${last.direction === "outbound" ? "You: " : ""}${last.body || (last.media.length ? "[image]" : "")}`
        : "";
      const button = el(
        "button",
        { type: "button", class: "open", "aria-label": `Open conversation with ${c.contactName || c.contactNumber}` },
        el("span", { class: "who", text: c.contactName || c.contactNumber }),
        c.contactName ? el("span", { class: "number", text: c.contactNumber }) : null,
        el("span", { class: "preview", text: preview }),
        el("span", { class: "time", text: when(c.updatedAt) }),
        c.unreadCount > 0 ? el("span", { class: "unread", "aria-label": `${c.unreadCount} unread`, text: c.unreadCount }) : null,
        c.muted ? el("span", { class: "flag", text: "muted" }) : null,
        c.archived ? el("span", { class: "flag", text: "archived" }) : null,
      );
      button.addEventListener("click", () => this.thread.open(c.contactId));
      return el(
        "li",
        {
          class: "conversation",
          "data-contact-id": c.contactId,
          "data-contact-number": c.contactNumber,
          "data-unread": c.unreadCount,
          "aria-current": this.thread.contactId === c.contactId ? "true" : null,
        },
        button,
      );
    });
    if (!items.length) items.push(el("li", { class: "empty", text: "No conversations yet: send a message, or reply from the phone." }));
    fill($("conversations"), items);
  }

  renderBlocked(list) {
    $("blocked-count").textContent = list.length;
    fill(
      $("blocked"),
      list.map((b) => {
        const unblock = el("button", { type: "button", text: "Unblock", "aria-label": `Unblock ${b.number}` });
        unblock.addEventListener("click", () => this.act(() => this.api.unblock(b.number)));
        return el("li", {}, el("span", { text: b.number }), unblock);
      }),
    );
  }

  /** Searches the user's messages (empty: back to the list). */
  async search(q) {
    const results = $("search-results");
    $("search-clear").hidden = !q;
    $("conversations").hidden = !!q;
    results.hidden = !q;
    if (!q) return;
    try {
      const found = await this.api.search(q);
      const items = found.messages.map((m) => {
        const button = el(
          "button",
          { type: "button", class: "open", "aria-label": `Open the conversation of this result from ${m.contactName || m.contactNumber}` },
          el("span", { class: "who", text: m.contactName || m.contactNumber }),
          el("span", { class: "preview", text: m.body }),
          el("span", { class: "time", text: when(m.createdAt) }),
        );
        button.addEventListener("click", () => this.thread.open(m.contactId));
        return el("li", { class: "result", "data-message-id": m.id }, button);
      });
      if (!items.length) items.push(el("li", { class: "empty", text: `Nothing matches “${q}”.` }));
      fill(results, items);
    } catch (err) {
      this.error(err);
    }
  }

  /** Sends the composer's SMS or MMS, now or at its time. */
  async send() {
    const to = $("compose-to").value.trim();
    const body = $("compose-body").value;
    const file = $("compose-image").files[0];
    const at = $("compose-at").value;
    const request = { from: this.from(), to, body };
    if (at) request.sendAt = new Date(at).toISOString();
    say($("inbox-error"), "");
    $("send").disabled = true;
    try {
      if (file) {
        const media = await this.api.upload(file);
        request.mediaIds = [media.id];
      }
      const sent = await (file ? this.api.sendMms(request) : this.api.send(request));
      $("compose-body").value = "";
      $("compose-image").value = "";
      $("compose-at").value = "";
      await this.thread.open(sent.message.contactId, { markRead: false });
      await this.refresh();
    } catch (err) {
      this.error(err);
    } finally {
      $("send").disabled = false;
    }
  }

  /** Runs one mailbox action, shows its refusal if any, then reloads. */
  async act(action) {
    say($("inbox-error"), "");
    try {
      await action();
    } catch (err) {
      this.error(err);
    }
    await this.refresh();
  }

  error(err) {
    say($("inbox-error"), err.message);
  }
}
