// The right side: the contact's phone. It shows what the console SMS provider
// delivered to the number (polled: the phone has no event stream), replies through the
// real gateway (a signed Twilio webhook, an image as MMS), and arms a failure for the
// next delivery.

import { dev } from "./api.js";
import { $, el, fill, say, when } from "./dom.js";

export class Phone {
  constructor() {
    this.number = null;
    this.seen = "";
    this.timer = null;
  }

  start() {
    $("phone-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.open($("phone-number").value.trim());
    });
    $("reply-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.reply($("reply-body").value, $("reply-image").files[0]);
    });
    $("reply-stop").addEventListener("click", () => this.reply("STOP"));
    $("reply-start").addEventListener("click", () => this.reply("START"));
    $("failure-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.arm(Number($("failure-code").value));
    });
    this.open($("phone-number").value.trim());
  }

  /** The CommPro number replies go to, unless the user typed another. */
  setDefaultTo(number) {
    $("reply-to").value = number;
  }

  /** Shows `number`'s phone and keeps it current. */
  open(number) {
    this.number = number;
    this.seen = "";
    document.body.dataset.phone = number;
    fill($("phone-messages"), []);
    clearInterval(this.timer);
    this.poll();
    this.timer = setInterval(() => this.poll(), 700);
  }

  async poll() {
    const number = this.number;
    try {
      const view = await dev.phone(number);
      if (number !== this.number) return;
      const key = JSON.stringify(view);
      if (key === this.seen) return;
      this.seen = key;
      this.render(view);
      say($("phone-error"), "");
    } catch (err) {
      if (number === this.number) say($("phone-error"), `Phone: ${err.message}`);
    }
  }

  render(view) {
    const items = view.messages.map((m) =>
      el(
        "li",
        { class: "message phone-message", "data-status": m.status, "data-error-code": m.errorCode ?? null },
        el("p", { class: "from", text: `From ${m.from}` }),
        m.body ? el("p", { class: "body", text: m.body }) : null,
        m.mediaUrls.map((url) => el("img", { class: "mms", src: url, alt: "image received" })),
        el(
          "p",
          { class: "meta" },
          el("span", {
            class: "status",
            "data-status": m.status,
            text: m.errorCode ? `${m.status} · error ${m.errorCode}` : m.status,
          }),
          " ",
          el("time", { datetime: m.at, text: when(m.at) }),
        ),
      ),
    );
    if (!items.length) items.push(el("li", { class: "empty", text: "Nothing delivered to this phone yet." }));
    fill($("phone-messages"), items);
    $("phone-messages").lastElementChild?.scrollIntoView({ block: "end" });
    const armed = view.nextDeliveryErrorCode;
    say($("failure-state"), armed ? `Armed: the next delivery here fails with ${armed}.` : "", "note");
  }

  /** Texts the CommPro number: a signed inbound webhook through the gateway. */
  async reply(body, file) {
    const to = $("reply-to").value.trim();
    say($("phone-error"), "");
    $("reply-send").disabled = true;
    try {
      const request = { to, body: body || "" };
      if (file) {
        const image = await dev.image(this.number, file);
        request.mediaUrl = image.url;
      }
      await dev.reply(this.number, request);
      $("reply-body").value = "";
      $("reply-image").value = "";
      say($("phone-error"), `Sent “${body || "image"}” to ${to}.`, "note");
    } catch (err) {
      say($("phone-error"), `Reply: ${err.message}`);
    } finally {
      $("reply-send").disabled = false;
    }
  }

  async arm(errorCode) {
    try {
      await dev.nextDelivery(this.number, errorCode);
      await this.poll();
    } catch (err) {
      say($("phone-error"), `Failure: ${err.message}`);
    }
  }
}
