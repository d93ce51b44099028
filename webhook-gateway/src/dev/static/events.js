// `GET /api/events` read with fetch: EventSource cannot send an Authorization header,
// and the API never takes tokens in URLs. Server-Sent Events are parsed here; on a
// dropped stream it reconnects with `Last-Event-ID` (the last cursor seen), as an
// EventSource would, so no change is missed in between.

/**
 * Watches the user's events until `signal` aborts: `onEvent(kind, data)` for each,
 * `onState("live" | "reconnecting" | "resync")` as the stream comes and goes.
 */
export async function watch(api, signal, onEvent, onState) {
  let lastId = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const headers = api.headers({ Accept: "text/event-stream" });
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const resp = await fetch("/api/events", { headers, signal, cache: "no-store" });
      if (resp.status === 400 && lastId !== null) {
        // The cursor is older than the retention: start afresh and reload everything.
        lastId = null;
        onState("resync");
        continue;
      }
      if (!resp.ok) throw new Error(`events: HTTP ${resp.status}`);
      onState("live");
      delay = 500;
      for await (const event of parse(resp.body, signal)) {
        if (event.id) lastId = event.id;
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          continue;
        }
        onEvent(event.event || "message", data);
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    onState("reconnecting");
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 8000);
  }
}

/** The events of an SSE byte stream. */
async function* parse(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  let buffer = "";
  let event = { id: "", event: "", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(buffer[newline] === "\r" && buffer[newline + 1] === "\n" ? newline + 2 : newline + 1);
      if (line === "") {
        if (event.data.length) yield { id: event.id, event: event.event, data: event.data.join("\n") };
        event = { id: event.id, event: "", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") event.data.push(value);
      else if (field === "event") event.event = value;
      else if (field === "id") event.id = value;
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
