// gymops view: a hash-routed page over the viewer's JSON API. No build step, no dependencies.
// Every text from a row goes into the page through textContent, never as HTML.
"use strict";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let views = [];
let timer = null;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path) {
  const answer = await fetch(path);
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || answer.statusText);
  return body;
}

const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
const count = (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en"));

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function card(label, value, id) {
  return h("div", { class: "card", "data-card": id }, h("div", { class: "n" }, value), h("div", { class: "l" }, label));
}

function rewardPill(reward, threshold) {
  if (reward === null || reward === undefined) return h("span", { class: "pill warn" }, "no reward");
  return h("span", { class: "pill " + (reward >= threshold ? "pass" : "fail") }, "reward " + fmt(reward, 2));
}

// ---- routing ------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(qs || "") };
}

function go(hash) {
  location.hash = hash;
}

async function route() {
  clearTimeout(timer);
  const { parts, params } = parseHash();
  if (!views.length || parts[0] !== "v") {
    try {
      views = await api("/api/views");
    } catch (err) {
      return show(h("p", { class: "error" }, "Cannot list what to open: " + err.message));
    }
  }
  if (parts[0] !== "v") {
    if (views.length === 1 && !views[0].name) return go("#/v/0");
    return showHome();
  }
  const v = Number(parts[1]);
  const view = views[v];
  if (!view) return show(h("p", { class: "error" }, "No such view."));
  drawNav(v, parts[2] || "");
  try {
    if (view.kind === "dataset") {
      if (parts[2] === "row") return await showDatasetRow(v, parts[3], Number(parts[4]));
      return await showDataset(v, params);
    }
    if (parts[2] === "rollouts") return await showRollouts(v, params);
    if (parts[2] === "tasks") return await showTasks(v, params);
    if (parts[2] === "task") return await showTask(v, Number(parts[3]), params);
    return await showOverview(v);
  } catch (err) {
    show(h("p", { class: "error" }, "Error: " + err.message));
  }
}

function drawNav(v, page) {
  const links = [];
  views.forEach((view, i) => {
    const label = (view.kind === "job" ? "job: " : "dataset: ") + view.uri.replace(/\/$/, "").split("/").pop();
    links.push(h("a", { href: "#/v/" + i, class: i === v && !page ? "active" : null }, label));
  });
  if (views[v] && views[v].kind === "job") {
    links.push(h("a", { href: `#/v/${v}/rollouts`, class: page === "rollouts" ? "active" : null }, "table"));
    links.push(h("a", { href: `#/v/${v}/tasks`, class: page === "tasks" ? "active" : null }, "tasks"));
  }
  nav.replaceChildren(...links);
}

function showHome() {
  nav.replaceChildren();
  const rows = views.map((view) =>
    h("tr", { class: "clickable", onclick: () => go("#/v/" + view.id) },
      h("td", {}, view.kind === "job" ? "RolloutJob" : "Dataset"), h("td", {}, view.name || "–"),
      h("td", {}, view.phase || "–"), h("td", {}, view.detail || ""), h("td", {}, view.uri)));
  show(
    h("h1", {}, "Outputs"),
    views.length
      ? h("table", { id: "outputs" }, h("tr", {}, ["kind", "name", "phase", "progress", "output"].map((t) => h("th", {}, t))), rows)
      : h("p", { class: "muted" }, "No RolloutJob or Dataset with an output yet."),
  );
  if (views.some((v) => v.name)) timer = setTimeout(() => { if (!location.hash.startsWith("#/v/")) route(); }, 5000);
}

// ---- job overview ---------------------------------------------------------------------------

function statusBanner(s) {
  if (s.error) return h("div", { class: "banner error" }, "Reading the output failed: " + s.error);
  const parts = [];
  if (s.success) parts.push("Finished: _SUCCESS written.");
  else parts.push("Running (no _SUCCESS yet): refreshing from the manifests every few seconds.");
  parts.push(`Shards ${s.shardsFinished}/${s.numShards ?? s.shards} finished.`);
  if (s.expectedRollouts) parts.push(`Committed ${count(s.committed)} of ${count(s.expectedRollouts)} rollout slots.`);
  if (s.inputErrors) parts.push(`Input rows that could not be used: ${count(s.inputErrors)}.`);
  if (s.indexing && s.partsIndexed < s.partsKnown) parts.push(`Indexing part ${s.partsIndexed} of ${s.partsKnown}…`);
  if (s.shardsOtherDigest.length) parts.push(`Shards with another spec digest: ${s.shardsOtherDigest.join(", ")}.`);
  return h("div", { class: "banner " + (s.success ? "done" : "running"), id: "job-status" }, parts.join(" "));
}

function specLine(spec) {
  const policy = spec.policy || {};
  const sampling = spec.sampling || {};
  const verifier = spec.verifier || {};
  const bits = [];
  if (policy.model || policy.embedded) bits.push("model " + (policy.model || policy.embedded));
  if (sampling.numRepeats) bits.push(sampling.numRepeats + " repeats");
  const ver = verifier.builtin || verifier.url || verifier.image;
  if (ver) bits.push("verifier " + ver);
  return bits.join(" · ");
}

async function showOverview(v) {
  const o = await api(`/api/v/${v}/overview`);
  const s = o.status;
  const c = o.counts;
  const chart = (name, alt) => h("img", { src: `/api/v/${v}/chart/${name}.svg?v=${o.version}`, alt, width: 600 });
  const failureRows = o.failureClasses.map((f) =>
    h("tr", { class: "clickable", onclick: () => go(`#/v/${v}/rollouts?failure=${encodeURIComponent(f.class === "bad_input" ? "bad_input" : f.class)}`) },
      h("td", {}, h("span", { class: "pill fail" }, f.class)),
      h("td", { class: "num" }, count(f.count)),
      h("td", {}, f.message || ""),
      h("td", {}, f.task >= 0 ? h("a", { href: `#/v/${v}/task/${f.task}`, onclick: (e) => e.stopPropagation() }, "task " + f.task) : "")));
  const typeRows = o.taskTypes.map((t) =>
    h("tr", { class: "clickable", onclick: () => go(`#/v/${v}/rollouts?task_type=${encodeURIComponent(t.taskType)}`) },
      h("td", {}, t.taskType), h("td", { class: "num" }, count(t.tasks)), h("td", { class: "num" }, count(t.rollouts)),
      h("td", { class: "num" }, count(t.failures)), h("td", { class: "num" }, pct(t.passRate)), h("td", { class: "num" }, fmt(t.rewardMean))));
  show(
    h("h1", {}, "RolloutJob output"),
    h("div", { class: "muted" }, s.uri, " · spec digest ", h("code", { id: "digest" }, (s.digest || "–").slice(0, 16)), " · ", specLine(s.spec)),
    statusBanner(s),
    h("div", { class: "cards", id: "counts" },
      card("rollouts", count(c.rollouts), "rollouts"),
      card("failures", count(c.failures), "failures"),
      card("bad input rows", count(c.badInput), "badInput"),
      card("truncated", count(c.truncated), "truncated"),
      card("with tool calls", count(c.withToolCalls), "tools"),
      card("tasks", count(c.tasks), "tasks"),
      card("mean reward", fmt(o.reward.mean), "rewardMean"),
      card(`pass rate (reward ≥ ${o.passThreshold})`, pct(o.reward.passRate), "passRate"),
      card("tasks passed never / sometimes / always", `${count(o.tasksPassed.never)} / ${count(o.tasksPassed.sometimes)} / ${count(o.tasksPassed.always)}`, "spread")),
    h("h2", {}, "Rewards and pass rates"),
    h("div", { class: "charts" }, chart("rewards", "reward histogram"), chart("pass_rates", "pass rate per task"),
      chart("task_types", "pass rate per task type"), chart("throughput", "throughput")),
    h("h2", {}, "Per task type"),
    h("table", { id: "task-types" }, h("tr", {}, h("th", {}, "task type"), h("th", { class: "num" }, "tasks"), h("th", { class: "num" }, "rollouts"),
      h("th", { class: "num" }, "failures"), h("th", { class: "num" }, "pass rate"), h("th", { class: "num" }, "mean reward")), typeRows),
    h("h2", {}, "Failure classes"),
    o.failureClasses.length
      ? h("table", { id: "failure-classes" }, h("tr", {}, h("th", {}, "class"), h("th", { class: "num" }, "count"), h("th", {}, "example message"), h("th", {}, "example")), failureRows)
      : h("p", { class: "muted" }, "No failures."),
    h("p", {}, h("a", { href: `#/v/${v}/rollouts?failure=any`, id: "show-failures" }, "Show every failure"), " · ",
      h("a", { href: `#/v/${v}/tasks` }, "Tasks, hardest first"), " · ", h("a", { href: `#/v/${v}/rollouts` }, "All rollouts")),
  );
  if (!s.success || s.indexing) timer = setTimeout(() => { if (location.hash === `#/v/${v}` || location.hash === "") route(); }, 2000);
}

// ---- rollouts table -----------------------------------------------------------------------

const FILTERS = ["reward_min", "reward_max", "failure", "task_type", "truncated", "tools", "q", "sort", "order"];

function select(name, value, options) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

async function showRollouts(v, params) {
  const offset = Number(params.get("offset") || 0);
  const query = new URLSearchParams();
  for (const k of FILTERS) if (params.get(k)) query.set(k, params.get(k));
  query.set("offset", offset);
  query.set("limit", 50);
  const page = await api(`/api/v/${v}/rollouts?${query}`);
  const form = h("form", { class: "filters", id: "filters", onsubmit: (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, val] of new FormData(e.target)) if (val) next.set(k, val);
    go(`#/v/${v}/rollouts?${next}`);
  } },
    h("label", {}, "reward ≥", h("input", { class: "num", name: "reward_min", value: params.get("reward_min") || "" })),
    h("label", {}, "reward ≤", h("input", { class: "num", name: "reward_max", value: params.get("reward_max") || "" })),
    h("label", {}, "failure", select("failure", params.get("failure") || "", [["", "all rows"], ["none", "verified only"], ["any", "failures only"], ...page.failureClasses.map((f) => [f, f])])),
    h("label", {}, "task type", select("task_type", params.get("task_type") || "", [["", "all"], ...page.taskTypes.map((t) => [t, t])])),
    h("label", {}, "truncated", select("truncated", params.get("truncated") || "", [["", "all"], ["yes", "yes"], ["no", "no"]])),
    h("label", {}, "tool calls", select("tools", params.get("tools") || "", [["", "all"], ["yes", "yes"], ["no", "no"]])),
    h("label", {}, "text", h("input", { name: "q", value: params.get("q") || "", placeholder: "search rows" })),
    h("label", {}, "sort", select("sort", params.get("sort") || "task", [["task", "task"], ["reward", "reward"], ["tokens", "output tokens"], ["created", "time"]])),
    h("label", {}, "order", select("order", params.get("order") || "", [["", "ascending"], ["desc", "descending"]])),
    h("button", { type: "submit", id: "apply" }, "Apply"),
    h("a", { href: `#/v/${v}/rollouts` }, "clear"));
  const rows = page.rows.map((r) =>
    h("tr", { class: "clickable", onclick: () => go(`#/v/${v}/task/${r.task}?repeat=${r.repeat}`) },
      h("td", { class: "num" }, r.task), h("td", { class: "num" }, r.repeat), h("td", {}, r.taskType),
      h("td", {}, r.kind === "rollout" ? fmt(r.reward, 2) : h("span", { class: "pill fail" }, r.failureClass)),
      h("td", {}, r.truncated ? h("span", { class: "pill warn" }, "truncated") : "", r.toolCalls ? h("span", { class: "pill" }, "tools") : ""),
      h("td", { class: "num" }, r.tokens ?? "–"), h("td", {}, r.prompt), h("td", {}, r.answer)));
  const pager = (id) => h("div", { class: "pager" },
    h("button", { disabled: offset <= 0, onclick: () => { params.set("offset", Math.max(0, offset - 50)); go(`#/v/${v}/rollouts?${params}`); } }, "‹ previous"),
    h("span", { id }, `${count(page.total)} rows · ${page.total ? offset + 1 : 0}–${Math.min(offset + 50, page.total)}`),
    h("button", { disabled: offset + 50 >= page.total, onclick: () => { params.set("offset", offset + 50); go(`#/v/${v}/rollouts?${params}`); } }, "next ›"));
  show(h("h1", {}, "Rollouts"), form, pager("row-count"),
    h("table", { id: "rollouts" }, h("tr", {}, ["task", "repeat", "task type", "reward / failure", "flags", "tokens", "prompt", "answer"].map((t) => h("th", {}, t))), rows),
    pager(null));
}

// ---- tasks table --------------------------------------------------------------------------

async function showTasks(v, params) {
  const offset = Number(params.get("offset") || 0);
  const sort = params.get("sort") || "pass_rate";
  const page = await api(`/api/v/${v}/tasks?sort=${sort}&offset=${offset}&limit=50`);
  const rows = page.tasks.map((t) =>
    h("tr", { class: "clickable", onclick: () => go(`#/v/${v}/task/${t.task}`) },
      h("td", { class: "num" }, t.task), h("td", {}, t.taskType), h("td", { class: "num" }, `${t.passed}/${t.rollouts}`),
      h("td", { class: "num" }, pct(t.passRate)), h("td", { class: "num" }, fmt(t.rewardMean)), h("td", { class: "num" }, t.failures)));
  show(h("h1", {}, "Tasks"),
    h("p", {}, "Sorted by ", sort === "pass_rate" ? "pass rate (hardest first)" : "task index", " · ",
      h("a", { href: `#/v/${v}/tasks?sort=${sort === "pass_rate" ? "task" : "pass_rate"}` }, "sort by " + (sort === "pass_rate" ? "task index" : "pass rate"))),
    h("div", { class: "pager" },
      h("button", { disabled: offset <= 0, onclick: () => go(`#/v/${v}/tasks?sort=${sort}&offset=${Math.max(0, offset - 50)}`) }, "‹ previous"),
      h("span", {}, `${count(page.total)} tasks`),
      h("button", { disabled: offset + 50 >= page.total, onclick: () => go(`#/v/${v}/tasks?sort=${sort}&offset=${offset + 50}`) }, "next ›")),
    h("table", { id: "tasks" }, h("tr", {}, ["task", "task type", "passed", "pass rate", "mean reward", "failures"].map((t) => h("th", {}, t))), rows));
}

// ---- task page ----------------------------------------------------------------------------

function turnBox(t) {
  const who = t.kind === "tool_call" ? `tool call: ${t.name}` : t.kind === "tool_output" ? "tool output" : t.kind === "reasoning" ? "reasoning" : t.role;
  return h("div", { class: `turn ${t.role} ${t.kind}` }, h("div", { class: "who" }, who, t.callId ? ` (${t.callId})` : ""), h("pre", {}, t.text || ""));
}

function kvTable(obj) {
  return h("table", { class: "kv" }, Object.entries(obj || {}).map(([k, val]) =>
    h("tr", {}, h("td", {}, k), h("td", {}, h("pre", { class: "block" }, typeof val === "string" ? val : JSON.stringify(val, null, 1))))));
}

async function showTask(v, number, params) {
  const t = await api(`/api/v/${v}/task/${number}`);
  const focus = params.get("repeat");
  const boxes = t.repeats.map((r) =>
    h("div", { class: "repeat", id: `repeat-${r.repeat}`, style: focus !== null && Number(focus) === r.repeat ? "outline: 2px solid #2f5fb3" : null },
      h("h3", {}, `repeat ${r.repeat}`,
        r.kind === "rollout" ? rewardPill(r.reward, t.passThreshold) : h("span", { class: "pill fail" }, (r.failure || {}).class || r.kind),
        r.truncated ? h("span", { class: "pill warn" }, "truncated") : ""),
      r.failure ? h("div", { class: "banner error" }, `${r.failure.class} after ${r.failure.attempts ?? "?"} attempts: ${r.failure.message || ""}`) : "",
      r.tools.length ? h("div", { class: "muted" }, "tools offered: " + r.tools.join(", ")) : "",
      r.turns.map(turnBox),
      r.components ? h("div", {}, h("b", {}, "reward components"), kvTable(r.components)) : "",
      h("details", { open: true }, h("summary", {}, "task fields and the verifier's answer"), kvTable(r.fields)),
      r.usage ? h("div", { class: "muted" }, `tokens in ${r.usage.input_tokens ?? "?"} · out ${r.usage.output_tokens ?? "?"} · status ${r.status}`) : ""));
  show(h("h1", {}, `Task ${number}`),
    h("p", {}, `${t.passed} of ${t.rollouts} verified repeats passed (reward ≥ ${t.passThreshold}); ${t.repeats.length} rows in all. `,
      h("a", { href: `#/v/${v}/rollouts?` + new URLSearchParams({ q: "" }) }, "back to the table")),
    h("div", { class: "repeats", id: "repeats" }, boxes));
}

// ---- dataset ------------------------------------------------------------------------------

function inline(text) {
  const out = [];
  const re = /(`[^`]+`|\*\*[^*]+\*\*)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    out.push(text.slice(last, m.index));
    const tok = m[0];
    out.push(tok.startsWith("`") ? h("code", {}, tok.slice(1, -1)) : h("b", {}, tok.slice(2, -2)));
    last = m.index + tok.length;
  }
  out.push(text.slice(last));
  return out;
}

function markdown(text, v) {
  const lines = text.split("\n");
  const out = [];
  let i = 0;
  if (lines[0] === "---") { i = lines.indexOf("---", 1) + 1; }
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith("```")) {
      const body = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
      out.push(h("pre", {}, body.join("\n"))); i++; continue;
    }
    const img = line.match(/^!\[([^\]]*)\]\(([^)]+)\)$/);
    if (img) { out.push(h("img", { alt: img[1], src: `/api/v/${v}/file/${encodeURIComponent(img[2])}` })); i++; continue; }
    const head = line.match(/^(#{1,4}) (.*)$/);
    if (head) { out.push(h("h" + Math.min(4, head[1].length + 1), {}, inline(head[2]))); i++; continue; }
    if (line.startsWith("|")) {
      const rows = [];
      for (; i < lines.length && lines[i].startsWith("|"); i++) if (!/^\|[-| ]+\|$/.test(lines[i])) rows.push(lines[i]);
      out.push(h("table", {}, rows.map((r, n) => h("tr", {}, r.slice(1, -1).split("|").map((c) => h(n ? "td" : "th", {}, inline(c.trim())))))));
      continue;
    }
    if (line.startsWith("- ")) {
      const items = [];
      for (; i < lines.length && lines[i].startsWith("- "); i++) items.push(h("li", {}, inline(lines[i].slice(2))));
      out.push(h("ul", {}, items)); continue;
    }
    if (line.trim()) out.push(h("p", {}, inline(line)));
    i++;
  }
  return h("div", { class: "md", id: "card" }, out);
}

function sidesView(view) {
  const prompt = view.prompt.length ? h("div", {}, h("h3", {}, "prompt"), view.prompt.map(turnBox)) : "";
  const cols = view.columns.map((c) => h("div", { class: "side " + c.label.replace(/.*\((.*)\)/, "$1") }, h("h3", {}, c.label), c.turns.map(turnBox)));
  return h("div", {}, prompt, h("div", { class: view.kind === "pair" ? "pair" : "" }, cols));
}

async function showDataset(v, params) {
  const d = await api(`/api/v/${v}/dataset`);
  const split = params.get("split") || "train";
  const offset = Number(params.get("offset") || 0);
  const page = await api(`/api/v/${v}/drows?split=${split}&offset=${offset}&limit=20`);
  const dropped = Object.entries(d.counts.dropped || {});
  const rows = page.rows.map((r) => {
    const first = r.view.columns.map((c) => c.label + ": " + ((c.turns.find((t) => t.text) || {}).text || "").slice(0, 80));
    const prompt = (r.view.prompt.filter((t) => t.role === "user").pop() || {}).text || "";
    return h("tr", { class: "clickable", onclick: () => go(`#/v/${v}/row/${split}/${r.number}`) },
      h("td", { class: "num" }, r.number), h("td", {}, prompt.slice(0, 100)), h("td", {}, first.join(" · ")));
  });
  show(
    h("h1", {}, `Dataset ${d.name}`),
    h("div", { class: "muted" }, `${d.kind} · ${d.format} · ${d.uri}`),
    h("div", { class: "cards", id: "dataset-counts" },
      card("rollouts read", count(d.counts.input), "input"), card("rows written", count(d.counts.kept), "kept"),
      card("train", count(d.splits.train), "train"), card("validation", count(d.splits.validation), "validation")),
    h("h2", {}, "Dropped"),
    dropped.length ? h("table", { id: "dropped" }, h("tr", {}, h("th", {}, "reason"), h("th", { class: "num" }, "rollouts")),
      dropped.map(([k, n]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, count(n))))) : h("p", { class: "muted" }, "Nothing was dropped."),
    h("h2", {}, "Rows"),
    h("div", { class: "split-tabs" }, ["train", "validation"].map((s) => h("a", { href: `#/v/${v}?split=${s}`, class: s === split ? "active" : null }, `${s} (${count(d.splits[s] || 0)})`))),
    h("div", { class: "pager" },
      h("button", { disabled: offset <= 0, onclick: () => go(`#/v/${v}?split=${split}&offset=${Math.max(0, offset - 20)}`) }, "‹ previous"),
      h("span", {}, `${count(page.total)} rows`),
      h("button", { disabled: offset + 20 >= page.total, onclick: () => go(`#/v/${v}?split=${split}&offset=${offset + 20}`) }, "next ›")),
    h("table", { id: "dataset-rows" }, h("tr", {}, h("th", {}, "#"), h("th", {}, "prompt"), h("th", {}, "completion(s)")), rows),
    h("h2", {}, "Card"),
    markdown(d.cardText || "", v),
  );
}

async function showDatasetRow(v, split, number) {
  const page = await api(`/api/v/${v}/drows?split=${split}&offset=${number}&limit=1`);
  const r = page.rows[0];
  if (!r) return show(h("p", { class: "error" }, "No such row."));
  show(h("h1", {}, `${split} row ${number}`),
    h("p", {}, h("a", { href: `#/v/${v}?split=${split}&offset=${Math.floor(number / 20) * 20}` }, "back to the rows"),
      number > 0 ? [" · ", h("a", { href: `#/v/${v}/row/${split}/${number - 1}` }, "previous")] : "",
      number + 1 < page.total ? [" · ", h("a", { href: `#/v/${v}/row/${split}/${number + 1}` }, "next")] : ""),
    h("div", { id: "dataset-row" }, sidesView(r.view)),
    h("details", {}, h("summary", {}, "raw row"), h("pre", { class: "block" }, JSON.stringify(r.row, null, 2))));
}

window.addEventListener("hashchange", route);
route();
