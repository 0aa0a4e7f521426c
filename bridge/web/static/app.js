// The counter page: one order at a time for this till, live verdicts over Server-Sent Events.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { till: null, current: null, lastScan: null };

function money(minor, cur) { return (minor / 100).toFixed(2) + " " + cur; }
function hhmm(t) { return t ? new Date(t * 1000).toLocaleTimeString() : ""; }
function ago(t) {
  if (!t) return "never";
  const s = Math.max(0, Math.round(Date.now() / 1000 - t));
  return s < 60 ? s + " s ago" : Math.round(s / 60) + " min ago";
}
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  const doc = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(doc.message || doc.error || ("HTTP " + r.status));
  return doc;
}

function showStatus(kind, title, detail) {
  const s = $("status");
  s.className = "status " + kind;
  $("status-title").textContent = title;
  $("status-detail").textContent = detail || "";
}

function renderCurrent(order, scan) {
  const cur = $("current"), form = $("order-form");
  if (!order) { cur.hidden = true; form.hidden = false; return; }
  state.current = order;
  cur.hidden = false; form.hidden = true;
  $("status-amount").textContent = order.amount_text + (order.reference ? " · " + order.reference : "");
  const final = ["completed", "cancelled", "expired"].includes(order.state);
  $("cancel-btn").hidden = order.state !== "open";
  $("new-btn").hidden = !final;
  if (order.state === "completed") showStatus("accepted", "Paid", "by " + (order.payer || "?"));
  else if (order.state === "authorizing") showStatus("pending", "Waiting for approval", order.payer ? "by " + order.payer : "");
  else if (order.state === "cancelled") showStatus("rejected", "Cancelled", "");
  else if (order.state === "expired") showStatus("rejected", "Expired", "no scan in time");
  else if (scan && scan.verdict === "rejected") showStatus("rejected", scan.text || scan.reason, "scan again · " + scan.reason);
  else showStatus("waiting", "Waiting for scan", "show the payment code to the scanner");
}

function renderOrders(orders) {
  const tb = $("orders").tBodies[0];
  tb.replaceChildren();
  for (const o of orders) {
    const tr = el("tr");
    tr.dataset.id = o.id;
    tr.append(el("td", hhmm(o.created_at)), el("td", o.amount_text), el("td", o.state, o.state), el("td", o.payer || ""));
    tb.append(tr);
  }
}

function renderScanners(list) {
  const ul = $("scanners");
  ul.replaceChildren();
  if (!list.length) { ul.append(el("li", "none yet", "muted")); return; }
  for (const s of list) {
    const li = el("li");
    li.dataset.device = s.device;
    li.append(el("span", "", "dot" + (s.online ? " on" : "")), el("strong", s.device));
    const bits = [s.online ? "online" : (s.silent ? "silent" : "offline"), "last seen " + ago(s.last_seen), s.scans + " scans"];
    if (s.decode_rate !== null && s.decode_rate !== undefined) bits.push(s.decode_rate + " codes/min");
    if (s.frames_per_s !== null && s.frames_per_s !== undefined) bits.push(s.frames_per_s + " frames/s");
    if (s.last_decode_ms) bits.push("decode " + s.last_decode_ms + " ms");
    li.append(el("div", bits.join(" · "), "muted"));
    if (s.fault) {  // the scanner is up but cannot scan (camera fault): say why and what to do
      li.append(el("div", "Cannot scan: " + s.fault.code + " — " + (s.fault.message || ""), "fault"));
      if (s.fault_fix) li.append(el("div", "Fix: " + s.fault_fix, "fault-fix"));
    }
    ul.append(li);
  }
}

function renderOutbox(counts, dead) {
  $("outbox-counts").textContent = "delivered " + counts.delivered + " · waiting " + counts.pending + " · dead letters " + counts.dead;
  const ul = $("dead");
  ul.replaceChildren();
  for (const d of dead) {
    const li = el("li", "#" + d.id + " " + d.kind + " " + (d.amount !== null ? money(d.amount, d.currency) : "") + " — " + (d.last_error || ""));
    const b = el("button", "Retry");
    b.onclick = () => api("POST", "/api/outbox/" + d.id + "/retry", {}).then(refresh).catch((e) => alert(e.message));
    li.append(b);
    ul.append(li);
  }
}

let scannersCache = [];
async function refresh() {
  const s = await api("GET", "/api/state");
  state.till = s.till;
  $("till").textContent = s.till || "";
  scannersCache = s.scanners;
  renderScanners(s.scanners);
  renderOrders(s.orders);
  renderOutbox(s.outbox, s.dead);
  if (s.current) renderCurrent(s.current, state.lastScan);
  else if (state.current) {
    const o = s.orders.find((x) => x.id === state.current.id);
    renderCurrent(o || null, state.lastScan);
  } else renderCurrent(null);
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("hello", () => { $("conn").textContent = "live"; $("conn").className = "conn on"; refresh(); });
  es.onerror = () => { $("conn").textContent = "reconnecting"; $("conn").className = "conn off"; };
  es.addEventListener("order", (e) => {
    const o = JSON.parse(e.data);
    if (o.till !== state.till) return;
    if (state.current && o.id === state.current.id) renderCurrent(o, state.lastScan);
    refresh();
  });
  es.addEventListener("scan", (e) => {
    const s = JSON.parse(e.data);
    if (s.till !== state.till) return;
    state.lastScan = s;
    if (state.current && s.order === state.current.id && s.verdict === "rejected" && state.current.state === "open") renderCurrent(state.current, s);
  });
  es.addEventListener("scanner", (e) => {
    const d = JSON.parse(e.data);
    const i = scannersCache.findIndex((x) => x.device === d.device);
    if (i >= 0) scannersCache[i] = d; else scannersCache.push(d);
    renderScanners(scannersCache);
  });
  es.addEventListener("outbox", () => refresh());
}

$("order-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("form-error").textContent = "";
  try {
    const o = await api("POST", "/api/orders", { amount: $("amount").value, currency: $("currency").value, reference: $("reference").value, till: state.till });
    state.lastScan = null;
    renderCurrent(o, null);
    $("amount").value = ""; $("reference").value = "";
    refresh();
  } catch (e) { $("form-error").textContent = e.message; }
});
$("cancel-btn").onclick = () => api("POST", "/api/orders/" + state.current.id + "/cancel", {}).then(refresh).catch((e) => alert(e.message));
$("new-btn").onclick = () => { state.current = null; state.lastScan = null; renderCurrent(null); $("amount").focus(); };
setInterval(() => renderScanners(scannersCache), 5000);
connect();
