// rujuk supervisor console: GraphQL over HTTP and graphql-transport-ws, no dependencies, no build step.
"use strict";

const T = JSON.parse(document.getElementById("strings").textContent);
const $ = (id) => document.getElementById(id);
const SECTORS = ["HEALTH", "EDUCATION", "PKH", "FOOD", "ENERGY", "AGRICULTURE", "FISHERIES", "HOUSING",
  "CIVIL_REGISTRATION", "SOCIAL_REHABILITATION", "OTHER"];
const STATUSES = ["NEW", "RETURNED", "VERIFIED", "IN_PROGRESS", "REFERRED", "RESOLVED", "REJECTED"];
const SLA = ["ON_TRACK", "AT_RISK", "BREACHED", "CLOSED"];
const OPEN = new Set(["NEW", "RETURNED", "VERIFIED", "IN_PROGRESS", "REFERRED"]);

const ROW = `id version status kind sector priority slaState slaDueAt createdAt regionCode description
  region { code name } assignee { id fullName } household { id }`;

// --- GraphQL over HTTP -------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

async function gql(query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-rujuk-console": "1" },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError("NETWORK", T.offline);
  }
  const body = await response.json().catch(() => ({}));
  if (body.errors && body.errors.length) {
    const code = (body.errors[0].extensions || {}).code || "ERROR";
    if (code === "UNAUTHENTICATED" || code === "TOKEN_EXPIRED") sessionEnded();
    throw new ApiError(code, body.errors[0].message);
  }
  return body.data;
}

function sessionEnded() {
  window.location.assign("/console/login?expired=1");
}

// --- graphql-transport-ws with reconnect and resume -------------------------------------------------------------

class LiveSocket {
  constructor(onStatus) {
    this.onStatus = onStatus;
    this.subs = new Map();   // id -> {query, variables(), onData, onError}
    this.ws = null;
    this.backoff = 500;
    this.nextId = 1;
    this.connect();
  }

  subscribe(query, variables, onData, onError) {
    const id = String(this.nextId++);
    this.subs.set(id, { query, variables, onData, onError });
    if (this.ready) this.start(id);
    return id;
  }

  start(id) {
    const sub = this.subs.get(id);
    this.send({ id, type: "subscribe", payload: { query: sub.query, variables: sub.variables() } });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
    this.ready = false;
    this.onStatus(this.everConnected ? "reconnecting" : "offline");
    const ws = new WebSocket(url, "graphql-transport-ws");
    this.ws = ws;
    ws.onopen = () => this.send({ type: "connection_init", payload: {} });
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ready = false;
      if (event.code === 4403 || event.code === 4401) { sessionEnded(); return; }
      this.onStatus("reconnecting");
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  receive(message) {
    if (message.type === "connection_ack") {
      this.ready = true;
      this.everConnected = true;
      this.backoff = 500;
      this.onStatus("connected");
      for (const id of this.subs.keys()) this.start(id);
    } else if (message.type === "ping") {
      this.send({ type: "pong" });
    } else if (message.type === "next") {
      const sub = this.subs.get(message.id);
      if (!sub) return;
      if (message.payload.errors) {
        const code = (message.payload.errors[0].extensions || {}).code;
        if (code === "SLOW_CONSUMER" || code === "RESUBSCRIBE") { this.start(message.id); return; }
        if (code === "SERVICE_UNAVAILABLE") { this.drop(); return; }  // reconnect and resume from the cursor
        if (code === "UNAUTHENTICATED") { sessionEnded(); return; }
        if (sub.onError) sub.onError(message.payload.errors);
        return;
      }
      sub.onData(message.payload.data);
    } else if (message.type === "error") {
      const code = ((message.payload[0] || {}).extensions || {}).code;
      if (code === "SERVICE_UNAVAILABLE") { this.drop(); return; }
      const sub = this.subs.get(message.id);
      if (sub && sub.onError) sub.onError(message.payload);
    }
  }

  drop() { if (this.ws) this.ws.close(); }
}

// --- state --------------------------------------------------------------------------------------------------------

const state = {
  me: null,
  cursor: null,            // last case event seen: resume point after a drop
  cases: new Map(),        // id -> complaint row
  selected: new Set(),
  workload: [],
  sortKey: "open",
  sortDesc: true,
  staff: [],
  detail: null,
  regions: new Map(),      // code -> name
};

function fmtTime(iso) {
  if (!iso) return T.none;
  const d = new Date(iso);
  return d.toLocaleString(document.documentElement.lang === "id" ? "id-ID" : "en-GB",
    { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") Object.assign(node.style, v);
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) node.append(child);
  return node;
}

function banner(text, kind = "error") {
  const b = $("banner");
  b.textContent = text;
  b.className = "banner " + kind;
  b.hidden = !text;
  if (text && kind !== "error") setTimeout(() => { if (b.textContent === text) b.hidden = true; }, 4000);
}

// --- filters ------------------------------------------------------------------------------------------------------

function filterValues() {
  const form = $("filters");
  return { region: form.region.value, sector: form.sector.value, status: form.status.value, sla: form.sla.value };
}

function apiFilter() {
  const f = filterValues();
  const filter = {};
  if (f.region) filter.regionCode = f.region;
  if (f.sector) filter.sector = [f.sector];
  if (f.status) filter.status = [f.status];
  if (f.sla) filter.slaState = [f.sla];
  return filter;
}

function matches(c) {
  const f = filterValues();
  return (!f.region || c.regionCode === f.region || c.regionCode.startsWith(f.region + "."))
    && (!f.sector || c.sector === f.sector) && (!f.status || c.status === f.status)
    && (!f.sla || c.slaState === f.sla);
}

function fillSelect(select, values, label) {
  for (const v of values) select.append(el("option", { value: v, text: label(v) }));
}

// --- intake feed --------------------------------------------------------------------------------------------------

function renderRow(c, fresh) {
  const tr = el("tr", {
    id: "case-" + c.id, tabindex: "0", "data-id": c.id,
    class: ["sla-" + c.slaState, fresh ? "fresh" : ""].join(" "),
    onclick: (e) => { if (e.target.type !== "checkbox") openDetail(c.id); },
    onkeydown: (e) => { if (e.key === "Enter") openDetail(c.id); },
  });
  const box = el("input", { type: "checkbox", "aria-label": T.bulk_reassign, checked: state.selected.has(c.id),
    disabled: !OPEN.has(c.status) });
  box.addEventListener("change", () => {
    if (box.checked) state.selected.add(c.id); else state.selected.delete(c.id);
    renderBulk();
  });
  tr.append(el("td", {}, box), el("td", { text: fmtTime(c.createdAt) }),
    el("td", { text: c.region ? c.region.name : c.regionCode }), el("td", { text: T[c.sector] || c.sector }),
    el("td", { text: T[c.kind] || c.kind }), el("td", { class: "prio-" + c.priority, text: T[c.priority] }),
    el("td", { class: "status", text: T[c.status] || c.status }),
    el("td", { class: "sla", text: T[c.slaState] || c.slaState }),
    el("td", { class: "assignee", text: c.assignee ? c.assignee.fullName : T.none }));
  return tr;
}

function upsertCase(c, fresh) {
  state.cases.set(c.id, c);
  const old = $("case-" + c.id);
  if (!matches(c)) { if (old) old.remove(); state.selected.delete(c.id); renderBulk(); return; }
  const row = renderRow(c, fresh);
  if (old) old.replaceWith(row); else $("feed").prepend(row);
  $("feed-empty").hidden = true;
  if (fresh) setTimeout(() => row.classList.remove("fresh"), 8000);
}

async function loadFeed() {
  const data = await gql(`query Feed($filter: ComplaintFilter) {
    complaints(first: 50, filter: $filter, orderBy: RECENT) { edges { node { ${ROW} } } } }`, { filter: apiFilter() });
  $("feed").replaceChildren();
  state.cases.clear();
  const rows = data.complaints.edges.map((e) => e.node);
  for (const c of rows.reverse()) upsertCase(c, false);
  $("feed-empty").hidden = rows.length > 0;
}

function onCaseEvent(data) {
  const e = data.caseEvents;
  state.cursor = e.cursor;
  if (e.complaint) upsertCase(e.complaint, e.kind === "COMPLAINT_FILED" || e.kind === "COMPLAINT_RESUBMITTED");
  if (state.detail && e.complaint && e.complaint.id === state.detail.id) openDetail(state.detail.id, true);
  scheduleAlarms();
}

// --- SLA alarms -----------------------------------------------------------------------------------------------

let alarmTimer = null;
function scheduleAlarms() {
  if (alarmTimer) return;
  alarmTimer = setTimeout(() => { alarmTimer = null; loadAlarms(); }, 500);
}

async function loadAlarms() {
  const data = await gql(`{ risk: complaints(first: 1, filter: {slaState: [AT_RISK]}) { totalCount }
    late: complaints(first: 1, filter: {slaState: [BREACHED]}) { totalCount } }`);
  $("count-at-risk").querySelector("b").textContent = data.risk.totalCount;
  $("count-breached").querySelector("b").textContent = data.late.totalCount;
}

// --- workload board -----------------------------------------------------------------------------------------------

function onWorkload(data) {
  state.workload = data.workloadChanged.entries;
  renderWorkload();
}

function renderWorkload() {
  const key = state.sortKey;
  const value = (w) => key === "name" ? w.staff.fullName : key === "oldestOpenAt" ? (w.oldestOpenAt || "~") : w[key];
  const rows = [...state.workload].sort((a, b) => {
    const x = value(a), y = value(b);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return state.sortDesc ? -order : order;
  });
  const max = Math.max(1, ...rows.map((w) => w.open));
  const body = $("workload");
  body.replaceChildren(...rows.map((w) => {
    const bar = el("div", { class: "bar", role: "img", "aria-label": `${w.open} ${T.current_load}` },
      el("span", { class: "ok", style: { width: `${100 * (w.open - w.atRisk - w.breached) / max}%` } }),
      el("span", { class: "risk", style: { width: `${100 * w.atRisk / max}%` } }),
      el("span", { class: "late", style: { width: `${100 * w.breached / max}%` } }));
    return el("tr", { "data-staff": w.staff.id },
      el("th", { scope: "row", text: w.staff.fullName, title: w.staff.region ? w.staff.region.name : "" }),
      el("td", { class: "num open", text: w.open }), el("td", { class: "num", text: w.newToday }),
      el("td", { class: "num risk", text: w.atRisk }), el("td", { class: "num late", text: w.breached }),
      el("td", { text: fmtTime(w.oldestOpenAt) }), el("td", { class: "chart-col" }, bar));
  }));
  const villages = new Map();
  for (const w of state.workload) {
    const name = w.staff.region ? w.staff.region.name : T.none;
    const v = villages.get(name) || { open: 0, atRisk: 0, breached: 0 };
    v.open += w.open; v.atRisk += w.atRisk; v.breached += w.breached;
    villages.set(name, v);
  }
  $("villages").replaceChildren(...[...villages.entries()].sort((a, b) => b[1].open - a[1].open).map(([name, v]) =>
    el("tr", {}, el("th", { scope: "row", text: name }), el("td", { class: "num", text: v.open }),
      el("td", { class: "num risk", text: v.atRisk }), el("td", { class: "num late", text: v.breached }))));
  fillTargets();
}

function loadOf(staffId) {
  const w = state.workload.find((x) => x.staff.id === staffId);
  return w ? w.open : 0;
}

// --- reassignment targets -----------------------------------------------------------------------------------------

function covers(staff, regionCode) {
  return staff.regionCodes.some((r) => regionCode === r || regionCode.startsWith(r + "."));
}

function targetOptions(select, regionCodes, exclude) {
  const current = select.value;
  select.replaceChildren(...state.staff
    .filter((s) => regionCodes.every((code) => covers(s, code)) && s.id !== exclude)
    .sort((a, b) => loadOf(a.id) - loadOf(b.id))
    .map((s) => el("option", { value: s.id, text: `${s.fullName} (${loadOf(s.id)} ${T.current_load})` })));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

function fillTargets() {
  if (state.detail) targetOptions($("act-target"), [state.detail.regionCode], state.detail.assignee && state.detail.assignee.id);
  const regions = [...state.selected].map((id) => state.cases.get(id)).filter(Boolean).map((c) => c.regionCode);
  targetOptions($("bulk-target"), regions, null);
}

// --- case detail and actions --------------------------------------------------------------------------------------

const DETAIL = `query Detail($id: ID!) { node(id: $id) { ... on Complaint { ${ROW} decision statusReason
  member { name } program { code name }
  household { id address rt rw dtksStatus region { name } familyCards { numberMasked }
    members { id name nik nikMasked relation sex birthDate } }
  referrals { id status receivingAgency createdAt program { name } }
  assignmentHistory { at reason fromStaff { fullName } toStaff { fullName } by { fullName } }
  timeline { cursor kind occurredAt } } } }`;

function section(title, ...children) {
  return el("section", { class: "detail-section" }, el("h3", { text: title }), ...children);
}

function definitionList(pairs) {
  const dl = el("dl");
  for (const [k, v] of pairs) dl.append(el("dt", { text: k }), el("dd", { text: v ?? T.none }));
  return dl;
}

async function openDetail(id, refresh = false) {
  const data = await gql(DETAIL, { id });
  const c = data.node;
  if (!c) return;
  state.detail = c;
  upsertCase(c, false);
  const h = c.household;
  const members = el("table", { class: "members" },
    el("thead", {}, el("tr", {}, ...[T.members, T.nik, T.relation, T.birth_date].map((x) => el("th", { text: x })))),
    el("tbody", {}, ...h.members.map((m) => el("tr", {}, el("td", { text: m.name }),
      el("td", { text: m.nik || m.nikMasked || T.none }), el("td", { text: T[m.relation] || m.relation }),
      el("td", { text: m.birthDate })))));
  $("detail-title").textContent = `${T.complaint} · ${T[c.status] || c.status}`;
  $("detail-body").replaceChildren(
    section(T.complaint, definitionList([[T.description, c.description], [T.sector, T[c.sector]],
      [T.kind, T[c.kind]], [T.priority, T[c.priority]], [T.status, T[c.status]], [T.sla, T[c.slaState]],
      [T.due, fmtTime(c.slaDueAt)], [T.assignee, c.assignee ? c.assignee.fullName : T.none],
      [T.program, c.program ? c.program.name : T.none], [T.reason, c.statusReason || c.decision]])),
    section(T.household, definitionList([[T.village, h.region ? h.region.name : T.none],
      [T.address, h.address ? `${h.address} RT ${h.rt || "-"}/RW ${h.rw || "-"}` : T.none],
      [T.family_card, h.familyCards.map((k) => k.numberMasked).join(", ")]]), members),
    section(T.referrals, el("ul", {}, ...c.referrals.map((r) =>
      el("li", { text: `${r.program.name} → ${r.receivingAgency}: ${r.status}` })))),
    section(T.assignments, el("ul", {}, ...c.assignmentHistory.map((a) =>
      el("li", { text: `${fmtTime(a.at)} ${a.fromStaff ? a.fromStaff.fullName : T.none} → ${a.toStaff.fullName}` +
        ` (${a.by ? a.by.fullName : T.none}): ${a.reason}` })))),
    section(T.timeline, el("ol", { class: "timeline" }, ...c.timeline.map((e) =>
      el("li", { text: `${fmtTime(e.occurredAt)} ${T[e.kind] || e.kind}` })))));
  $("act-verify").disabled = c.status !== "NEW";
  $("act-return").disabled = !["NEW", "VERIFIED"].includes(c.status);
  $("act-reassign").disabled = !OPEN.has(c.status);
  fillTargets();
  const dialog = $("detail");
  if (!refresh) {
    $("detail-message").hidden = true;
    $("act-reason").value = "";
    if (!dialog.open) dialog.showModal();
  }
}

function showDetailError(text) {
  const m = $("detail-message");
  m.textContent = text;
  m.hidden = false;
}

async function act(mutation, field, input) {
  const c = state.detail;
  try {
    const data = await gql(`mutation($input: ${input.type}!) { ${mutation}(input: $input) {
      complaint { ${ROW} } errors { field code message } } }`, { input: input.value });
    const payload = data[mutation];
    if (payload.errors.length) {
      const code = payload.errors[0].code;
      if (code === "STALE_VERSION") {
        await openDetail(c.id, true);
        showDetailError(T.conflict);
      } else {
        showDetailError(T[code] || payload.errors[0].message);
      }
      return false;
    }
    upsertCase(payload.complaint, false);
    await openDetail(c.id, true);
    $("detail-message").hidden = true;
    banner(T.done, "ok");
    return true;
  } catch (e) {
    showDetailError(e.code === "NETWORK" ? T.offline : T.error);
    return false;
  }
}

function reasonOrComplain() {
  const reason = $("act-reason").value.trim();
  if (!reason) { showDetailError(T.reason_required); $("act-reason").focus(); }
  return reason;
}

// --- bulk ---------------------------------------------------------------------------------------------------------

function renderBulk() {
  $("bulk").hidden = state.selected.size === 0;
  $("bulk-count").textContent = `${state.selected.size} ${T.selected}`;
}

async function bulkSave() {
  const reason = $("bulk-reason").value.trim();
  const message = $("bulk-message");
  if (!reason) { message.textContent = T.reason_required; message.hidden = false; return; }
  const complaints = [...state.selected].map((id) => ({ id, expectedVersion: state.cases.get(id).version }));
  const data = await gql(`mutation($input: BulkReassignComplaintsInput!) { bulkReassignComplaints(input: $input) {
    complaints { ${ROW} } errors { field code message } } }`,
  { input: { complaints, assigneeId: $("bulk-target").value, reason } });
  const payload = data.bulkReassignComplaints;
  if (payload.errors.length) {
    const code = payload.errors[0].code;
    message.textContent = code === "STALE_VERSION" ? T.conflict : (T[code] || payload.errors[0].message);
    message.hidden = false;
    await loadFeed();
    return;
  }
  for (const c of payload.complaints) upsertCase(c, false);
  state.selected.clear();
  renderBulk();
  $("bulk-dialog").close();
  banner(T.done, "ok");
}

// --- start --------------------------------------------------------------------------------------------------------

function setConnection(status) {
  const c = $("connection");
  c.textContent = T[status];
  c.className = "connection " + status;
}

async function start() {
  fillSelect($("filter-sector"), SECTORS, (v) => T[v]);
  fillSelect($("filter-status"), STATUSES, (v) => T[v]);
  fillSelect($("filter-sla"), SLA, (v) => T[v]);
  const init = await gql(`{ me { id username fullName role regionCodes } latestCursor
    regions { code name level children { code name level children { code name level } } }
    staff(roles: [FACILITATOR, PUSKESOS_OFFICER]) { id fullName regionCodes region { name } } }`);
  state.me = init.me;
  state.cursor = init.latestCursor;
  state.staff = init.staff;
  const regionSelect = $("filter-region");
  const addRegion = (r, depth) => {
    if (r.level !== "DESA" && r.level !== "KECAMATAN" && depth === 0 && r.children.length) {
      for (const child of r.children) addRegion(child, depth);
      return;
    }
    regionSelect.append(el("option", { value: r.code, text: "\u00a0".repeat(depth * 2) + r.name }));
    for (const child of r.children || []) addRegion(child, depth + 1);
  };
  for (const r of init.regions) addRegion(r, 0);
  await loadFeed();
  loadAlarms();
  const live = new LiveSocket(setConnection);
  window.rujukLive = live;
  live.subscribe(`subscription($after: String) { caseEvents(after: $after) { cursor kind complaint { ${ROW} } } }`,
    () => ({ after: state.cursor }), onCaseEvent);
  live.subscribe(`subscription { workloadChanged { entries { open newToday atRisk breached oldestOpenAt
    staff { id fullName regionCodes region { code name } } } } }`, () => ({}), onWorkload);

  $("filters").addEventListener("change", () => loadFeed());
  for (const button of document.querySelectorAll("[data-sort]")) {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      state.sortDesc = state.sortKey === key ? !state.sortDesc : key !== "name";
      state.sortKey = key;
      renderWorkload();
    });
  }
  $("detail-close").addEventListener("click", () => { $("detail").close(); });
  $("detail").addEventListener("close", () => { state.detail = null; });
  $("act-verify").addEventListener("click", () => act("verifyComplaint", "reason", {
    type: "ComplaintTransitionInput", value: { id: state.detail.id, expectedVersion: state.detail.version } }));
  $("act-return").addEventListener("click", () => {
    const reason = reasonOrComplain();
    if (reason) act("returnComplaint", "reason", { type: "ComplaintTransitionInput",
      value: { id: state.detail.id, expectedVersion: state.detail.version, reason } });
  });
  $("act-reassign").addEventListener("click", () => {
    const reason = reasonOrComplain();
    if (reason) act("reassignComplaint", "assigneeId", { type: "ReassignComplaintInput",
      value: { id: state.detail.id, expectedVersion: state.detail.version, assigneeId: $("act-target").value, reason } });
  });
  $("bulk-open").addEventListener("click", () => {
    fillTargets();
    $("bulk-message").hidden = true;
    $("bulk-dialog").showModal();
  });
  $("bulk-cancel").addEventListener("click", () => $("bulk-dialog").close());
  $("bulk-save").addEventListener("click", () => bulkSave());
}

start().catch((e) => banner(`${T.error}: ${e.message}`));
