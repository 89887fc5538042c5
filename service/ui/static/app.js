// The escalation queue: polls GET /v1/conversations?min_level=monitor and, for each row
// whose conversation changed since the last poll, GET /v1/conversations/{id} (reasons,
// evidence, response style and the messages' sentiment). Text from the API is only ever
// set as textContent, never parsed as markup: conversations hold customers' words.
"use strict";

const POLL_SECONDS = 5; // documented in docs/api.md ("The escalation queue page")
const PAGE_SIZE = 50; // the newest 50 changes; older ones are a GET /v1/conversations page away
const KEY_STORAGE = "convintel-api-key";
const SVG_NS = "http://www.w3.org/2000/svg";

const details = new Map(); // conversation id -> {updatedAt, state}: fetched once per change
let apiKey = sessionStorage.getItem(KEY_STORAGE);
let timer = null;

class AuthError extends Error {}

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function api(path) {
  const headers = apiKey ? { "X-API-Key": apiKey } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new AuthError("The API key is missing or not valid.");
  if (response.status === 403) {
    throw new AuthError("This key lacks the conversations scope the queue reads with.");
  }
  if (response.status === 404) return null; // deleted between the list and the read
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function detailOf(item) {
  const cached = details.get(item.conversation_id);
  if (cached && cached.updatedAt === item.updated_at) return cached.state;
  const state = await api(`/v1/conversations/${encodeURIComponent(item.conversation_id)}`);
  details.set(item.conversation_id, { updatedAt: item.updated_at, state });
  return state;
}

async function refresh() {
  try {
    const page = await api(`/v1/conversations?min_level=monitor&limit=${PAGE_SIZE}`);
    const states = await Promise.all(page.items.map(detailOf));
    const shown = new Set(page.items.map((item) => item.conversation_id));
    for (const id of details.keys()) if (!shown.has(id)) details.delete(id);
    render(page.items, states);
    setStatus(`Last updated ${new Date().toLocaleTimeString()}.`);
    schedule();
  } catch (error) {
    if (error instanceof AuthError) {
      askForKey(error.message);
    } else {
      setStatus(`Could not refresh (${error.message}); retrying.`, true);
      schedule();
    }
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(refresh, POLL_SECONDS * 1000); // after the last poll ended: never two at once
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function askForKey(message) {
  clearTimeout(timer);
  $("queue-section").hidden = true;
  $("key-section").hidden = false;
  if (apiKey) $("key-message").textContent = `${message} Enter another key.`;
  $("key-input").focus();
}

function render(items, states) {
  $("key-section").hidden = true;
  $("queue-section").hidden = false;
  $("forget-key").hidden = !apiKey;
  $("count").textContent = `(${items.length})`;
  $("empty").hidden = items.length > 0;
  // Rows are rebuilt on every poll; keyboard focus stays on the conversation it was on.
  const focusedId = document.activeElement?.dataset?.conversationId;
  const rows = items.map((item, index) => row(item, states[index]));
  $("rows").replaceChildren(...rows);
  const again = rows.find((tr) => tr.dataset.conversationId === focusedId);
  if (again) again.focus();
}

function row(item, state) {
  const escalation = state?.conversation?.escalation;
  const level = item.escalation.level || "unknown";
  const tr = element("tr");
  tr.tabIndex = 0; // keyboard users can step through the queue
  tr.dataset.conversationId = item.conversation_id;
  tr.setAttribute("aria-label", `${level}: conversation ${item.conversation_id}`);

  const levelCell = element("td");
  levelCell.append(element("span", `level level-${level}`, level));
  tr.append(levelCell);

  const idCell = element("td");
  idCell.append(element("span", "conversation-id", item.conversation_id));
  const who = [item.channel, item.customer_id ? `customer ${item.customer_id}` : null, `${item.message_count} messages`];
  idCell.append(element("span", "sub", who.filter(Boolean).join(" · ")));
  tr.append(idCell);

  tr.append(element("td", null, item.escalation.route_to || "—"));
  tr.append(reasonsCell(item, escalation));

  const style = escalation?.response_style;
  const styleCell = element("td", null, style ? style.style : "—");
  if (style?.emotion) styleCell.append(element("span", "sub", `answers ${style.emotion}`));
  tr.append(styleCell);

  tr.append(trendCell(state));
  tr.append(element("td", null, new Date(item.updated_at).toLocaleString()));
  return tr;
}

function reasonsCell(item, escalation) {
  const cell = element("td");
  const list = element("ul", "reasons");
  const reasons = escalation?.reasons;
  if (reasons && reasons.length) {
    for (const reason of reasons) {
      const li = element("li");
      li.append(element("strong", null, reason.rule), document.createTextNode(` (${reason.level}): ${reason.detail}`));
      for (const evidence of reason.evidence || []) {
        const where = `message ${evidence.message_id}`;
        li.append(element("span", "evidence", evidence.quote ? `“${evidence.quote}” — ${where}` : where));
      }
      list.append(li);
    }
  } else {
    for (const rule of item.escalation.rules) list.append(element("li", null, rule));
  }
  cell.append(list.childElementCount ? list : document.createTextNode("—"));
  return cell;
}

function trendCell(state) {
  const cell = element("td");
  const scores = (state?.messages || [])
    .filter((message) => message.role === "customer")
    .map((message) => message.analysis.sentiment.score);
  const trend = state?.conversation?.sentiment_trend?.label || "unknown";
  if (scores.length) cell.append(sparkline(scores, trend));
  cell.append(element("span", "sub", trend)); // the trend in words, not in shape alone
  return cell;
}

// An inline SVG line of the customer's sentiment scores (-1..1), oldest left; the dashed
// line is neutral (0).
function sparkline(scores, trend) {
  const width = 120;
  const height = 32;
  const pad = 3;
  const x = (i) => (scores.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (scores.length - 1));
  const y = (score) => pad + ((1 - score) / 2) * (height - 2 * pad);
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const first = scores[0].toFixed(2);
  const last = scores[scores.length - 1].toFixed(2);
  const label = `Customer sentiment over ${scores.length} messages, from ${first} to ${last} (${trend})`;
  svg.setAttribute("aria-label", label);
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent = label;
  svg.append(title);

  const zero = document.createElementNS(SVG_NS, "line");
  zero.setAttribute("class", "zero");
  zero.setAttribute("x1", 0);
  zero.setAttribute("x2", width);
  zero.setAttribute("y1", y(0));
  zero.setAttribute("y2", y(0));
  svg.append(zero);

  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("class", "line");
  line.setAttribute("points", scores.map((s, i) => `${x(i).toFixed(1)},${y(s).toFixed(1)}`).join(" "));
  svg.append(line);

  const dot = document.createElementNS(SVG_NS, "circle");
  dot.setAttribute("class", "point");
  dot.setAttribute("cx", x(scores.length - 1));
  dot.setAttribute("cy", y(scores[scores.length - 1]));
  dot.setAttribute("r", 2.5);
  svg.append(dot);
  return svg;
}

function start() {
  $("interval").textContent = String(POLL_SECONDS);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apiKey = $("key-input").value.trim();
    sessionStorage.setItem(KEY_STORAGE, apiKey);
    $("key-input").value = "";
    details.clear();
    setStatus("Loading…");
    refresh();
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    apiKey = null;
    details.clear();
    $("key-message").textContent = "Enter an API key. A key with only the conversations scope is enough.";
    askForKey("");
  });
  setStatus("Loading…");
  refresh(); // without keys configured the queue shows at once; with them, a 401 asks for one
}

start();
