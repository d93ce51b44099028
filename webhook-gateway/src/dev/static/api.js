// The two APIs the console calls: the public REST API (`/api/…`) with the user's
// bearer token, exactly as CommPro's apps call it, and the console's own `/dev/api/…`.
// The token lives in memory only: never in a URL, storage or the log.

/** A refusal, with the API's `{error, code, field}`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
  }
}

async function answer(resp) {
  const type = resp.headers.get("content-type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) throw new ApiError(resp.status, typeof body === "object" ? body : { error: body.trim() });
  return body;
}

/** JSON request options. */
function json(method, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  return opts;
}

/** The REST API as one user. */
export class Api {
  constructor(token) {
    this.token = token;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  async call(method, path, body) {
    const opts = json(method, body);
    opts.headers = this.headers(opts.headers);
    return answer(await fetch(path, opts));
  }

  conversations(archived) {
    return this.call("GET", `/api/messages/conversations?pageSize=50${archived ? "&archived=true" : ""}`);
  }
  conversation(contactId) {
    return this.call("GET", `/api/messages/conversations/${enc(contactId)}?pageSize=50`);
  }
  markConversationRead(contactId) {
    return this.call("PUT", `/api/messages/conversations/${enc(contactId)}/read`);
  }
  send(body) {
    return this.call("POST", "/api/messages/send", body);
  }
  sendMms(body) {
    return this.call("POST", "/api/messages/send-mms", body);
  }
  cancel(messageId) {
    return this.call("POST", `/api/messages/${enc(messageId)}/cancel`);
  }
  deleteMessage(messageId) {
    return this.call("DELETE", `/api/messages/${enc(messageId)}`);
  }
  deleteConversation(contactId) {
    return this.call("DELETE", `/api/messages/conversations/${enc(contactId)}`);
  }
  archive(contactId, on) {
    return this.call(on ? "PUT" : "DELETE", `/api/messages/conversations/${enc(contactId)}/archive`);
  }
  mute(contactId, on) {
    return this.call(on ? "PUT" : "DELETE", `/api/messages/conversations/${enc(contactId)}/mute`);
  }
  blocked() {
    return this.call("GET", "/api/blocked-numbers?pageSize=100");
  }
  block(number) {
    return this.call("POST", "/api/blocked-numbers", { number });
  }
  unblock(number) {
    return this.call("DELETE", `/api/blocked-numbers/${enc(number)}`);
  }
  setName(contactId, name) {
    return this.call("PUT", `/api/contacts/${enc(contactId)}/name`, { name: name || null });
  }
  search(q) {
    return this.call("GET", `/api/messages/search?q=${enc(q)}&pageSize=50`);
  }

  /** Uploads an image file; the stored media `{id, …}`. */
  async upload(file) {
    const resp = await fetch("/api/media", {
      method: "POST",
      headers: this.headers({ "Content-Type": file.type || "application/octet-stream" }),
      body: file,
    });
    return answer(resp);
  }

  /** An object URL for a stored image (fetched with the token, as `<img>` cannot send it). */
  async mediaUrl(path) {
    const resp = await fetch(path, { headers: this.headers() });
    if (!resp.ok) throw new ApiError(resp.status, { error: `image: HTTP ${resp.status}` });
    return URL.createObjectURL(await resp.blob());
  }
}

/** The console's own API (loopback only; no token). */
export const dev = {
  token: (userId) => fetch("/dev/api/tokens", json("POST", { userId, assignNumber: true })).then(answer),
  phone: (number) => fetch(`/dev/api/phones/${enc(number)}/messages`, { cache: "no-store" }).then(answer),
  nextDelivery: (number, errorCode) =>
    fetch(`/dev/api/phones/${enc(number)}/next-delivery`, json("POST", { errorCode })).then(answer),
  async image(number, file) {
    const resp = await fetch(`/dev/api/phones/${enc(number)}/media`, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    return answer(resp);
  },
  reply: (number, body) => fetch(`/dev/api/phones/${enc(number)}/reply`, json("POST", body)).then(answer),
};

function enc(s) {
  return encodeURIComponent(s);
}
