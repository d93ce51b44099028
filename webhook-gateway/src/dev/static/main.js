// The console: a user switcher over an inbox (a client of the public REST API with
// that user's token) beside the contact's phone (the console's own /dev/api).

import { Api, dev } from "./api.js";
import { $, el, fill, say } from "./dom.js";
import { watch } from "./events.js";
import { Inbox } from "./inbox.js";
import { Phone } from "./phone.js";

const inbox = new Inbox();
const phone = new Phone();
let stream = null;

/** Mints a token for `userId` (a dev number is assigned if they have none) and shows their inbox. */
async function switchUser(userId) {
  const error = $("inbox-error");
  say(error, "");
  let minted;
  try {
    minted = await dev.token(userId);
  } catch (err) {
    say(error, `Switching user: ${err.message}`);
    return;
  }
  if (stream) stream.abort();
  stream = new AbortController();
  const api = new Api(minted.token);
  $("inbox-user").textContent = minted.userId;
  document.body.dataset.user = minted.userId;
  fill(
    $("from-number"),
    minted.numbers.map((n) => el("option", { value: n, text: n })),
  );
  phone.setDefaultTo(minted.numbers[0] || "");
  await inbox.start(api, minted.userId, () => $("from-number").value);
  const signal = stream.signal;
  watch(
    api,
    signal,
    (kind, data) => inbox.onEvent(kind, data),
    (state) => {
      if (signal.aborted) return;
      const live = $("live");
      live.dataset.state = state;
      live.textContent = state === "live" ? "live (events)" : state;
      if (state === "live" || state === "resync") inbox.refresh();
    },
  );
}

$("user-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const userId = $("user-id").value.trim();
  if (userId) switchUser(userId);
});
$("from-number").addEventListener("change", () => phone.setDefaultTo($("from-number").value));

phone.start();
switchUser($("user-id").value.trim() || "dev-user");
