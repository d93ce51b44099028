// Small DOM helpers. Everything shown is set as text, never parsed as markup, so a
// message body can never become script.

/** An element with attributes (`class`, `data-*`, …) and children (nodes or text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The element with this id (the page always has it). */
export const $ = (id) => document.getElementById(id);

/** Replaces the children of `node`. */
export function fill(node, children) {
  node.replaceChildren(...children);
}

/** A short local time for a timestamp, or "" without one. */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

/** Shows `message` in the alert line `node` (empty clears it). */
export function say(node, message, kind = "error") {
  node.textContent = message || "";
  node.dataset.kind = kind;
}
