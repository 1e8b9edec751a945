// The conversation on the page: turns, streamed answers, tool cards, interrupts, metrics.
// Text from the server only ever reaches the page as text (textContent), or as the output of
// the escaping markdown renderer.

import { renderMarkdown } from "./markdown.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function seconds(value) {
  if (typeof value !== "number") return "–";
  if (value < 0.0005) return "<1 ms";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

export function userTurn(text) {
  return el("li", { class: "turn user" }, el("h3", { class: "sr-only", text: "You said" }),
    el("div", { class: "bubble", text }));
}

// One assistant turn: everything one run shows, including the legs after a resume.
export class AssistantTurn {
  constructor() {
    this.parts = el("div", { class: "parts" });
    this.footer = el("div", { class: "turn-footer" });
    this.li = el("li", { class: "turn assistant", "aria-busy": "true", "data-status": "running" },
      el("h3", { class: "sr-only", text: "The agent" }), this.parts, this.footer);
    this.texts = new Map();
    this.reasoning = new Map();
    this.tools = new Map();
    this.ended = false;
    this.pending = new Set();
    this.frame = 0;
  }

  begin() {
    this.ended = false;
    this.li.setAttribute("aria-busy", "true");
    this.li.dataset.status = "running";
  }

  // --- streamed text and reasoning ------------------------------------------------------

  textStart(id) {
    const body = el("div", { class: "answer markdown", "data-message-id": id });
    this.texts.set(id, { body, text: "" });
    this.parts.append(body);
  }

  textDelta(id, delta) {
    if (!this.texts.has(id)) this.textStart(id);
    const entry = this.texts.get(id);
    entry.text += delta;
    this.schedule(entry);
  }

  reasoningStart(id) {
    const body = el("div", { class: "reasoning-text" });
    const box = el("details", { class: "reasoning" }, el("summary", { text: "Reasoning" }), body);
    this.reasoning.set(id, { body, text: "" });
    this.parts.append(box);
  }

  reasoningDelta(id, delta) {
    if (!this.reasoning.has(id)) this.reasoningStart(id);
    const entry = this.reasoning.get(id);
    entry.text += delta;
    entry.body.textContent = entry.text;
  }

  schedule(entry) {
    // Markdown is rendered at most once a frame, however fast the pieces come.
    this.pending.add(entry);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    for (const entry of this.pending) entry.body.innerHTML = renderMarkdown(entry.text);
    this.pending.clear();
  }

  answer(text) {
    const id = `stored-${this.texts.size}`;
    this.textStart(id);
    this.texts.get(id).text = text;
    this.texts.get(id).body.innerHTML = renderMarkdown(text);
  }

  // --- tool calls -------------------------------------------------------------------------

  toolStart(id, name) {
    const status = el("span", { class: "tool-status", text: "running" });
    const preview = el("span", { class: "tool-preview" });
    const time = el("span", { class: "tool-time" });
    const args = el("pre", { class: "tool-args" });
    const result = el("pre", { class: "tool-result", text: "…" });
    const card = el("details", { class: "tool", "data-tool-call-id": id, "data-status": "running" },
      el("summary", {}, el("span", { class: "tool-icon", "aria-hidden": "true", text: "⚙" }),
        el("span", { class: "tool-name", text: name }), preview, status, time),
      el("div", { class: "tool-body" },
        el("h4", { text: "Arguments" }), args, el("h4", { text: "Result" }), result));
    const tool = { card, status, time, args, preview, result, argText: "", started: performance.now() };
    this.tools.set(id, tool);
    this.parts.append(card);
    return tool;
  }

  toolArgs(id, delta) {
    const tool = this.tools.get(id);
    if (!tool) return;
    tool.argText += delta;
    tool.args.textContent = pretty(tool.argText);
    tool.preview.textContent = tool.argText;
  }

  toolResult(id, content, meta = {}) {
    const tool = this.tools.get(id) || this.toolStart(id, meta.toolName || "tool");
    const duration = typeof meta.duration === "number"
      ? meta.duration : (performance.now() - tool.started) / 1000;
    tool.result.textContent = pretty(content);
    tool.card.dataset.status = meta.error ? "error" : "done";
    tool.status.textContent = meta.error ? "failed" : "done";
    tool.time.textContent = seconds(duration);
  }

  toolWaiting(id) {
    const tool = this.tools.get(id);
    if (!tool) return;
    tool.card.dataset.status = "waiting";
    tool.status.textContent = "waiting for you";
    tool.result.textContent = "–";
  }

  storedTool(execution) {
    const id = execution.tool_call_id || `tool-${this.tools.size}`;
    this.toolStart(id, execution.tool_name);
    this.toolArgs(id, JSON.stringify(execution.tool_args || {}));
    if (execution.metrics) {
      this.toolResult(id, execution.result ?? "", {
        duration: execution.metrics.duration, error: execution.tool_call_error });
    } else {
      this.toolWaiting(id);
    }
  }

  // --- human in the loop -------------------------------------------------------------------

  // Shows the interrupts of a paused run; ``onAnswered`` gets the resume entries once every
  // interrupt has its answer.
  interrupts(list, onAnswered) {
    const answers = new Map();
    const panel = el("section", { class: "interrupts", "aria-label": "Waiting for your answer" });
    const done = (interrupt, entry, summary, box) => {
      answers.set(interrupt.id, entry);
      // Answered: the controls give way to the answer.
      for (const control of box.querySelectorAll(".interrupt-form, label, .actions")) control.remove();
      box.dataset.answered = "true";
      box.querySelector(".interrupt-answer").textContent = summary;
      if (answers.size === list.length) {
        onAnswered(list.map((i) => answers.get(i.id)));
      }
    };
    for (const interrupt of list) {
      this.toolWaiting(interrupt.toolCallId);
      panel.append(interruptBox(interrupt, done));
    }
    this.parts.append(panel);
    const first = panel.querySelector("button, input, textarea");
    if (first) first.focus();
  }

  // --- the end ------------------------------------------------------------------------------

  metrics(metrics, usage) {
    if (!metrics && !usage) return;
    const m = metrics || {};
    const tokens = m.total_tokens ?? (usage || []).reduce((n, u) => n + (u.totalTokens || 0), 0);
    const cost = typeof m.cost !== "number" ? "n/a"
      : m.cost === 0 ? "$0" : `$${m.cost.toFixed(m.cost < 0.01 ? 6 : 4)}`;
    const item = (name, label, value) => el("span", { class: "metric", "data-metric": name },
      el("span", { class: "metric-label", text: label }), " ", el("span", { text: value }));
    const line = el("p", { class: "metrics", "aria-label": "Run metrics" },
      item("tokens", "Tokens", `${tokens} (${m.input_tokens ?? 0} in, ${m.output_tokens ?? 0} out)`),
      item("ttft", "First token", seconds(m.time_to_first_token)),
      item("duration", "Time", seconds(m.duration)),
      item("cost", "Cost", cost));
    this.footer.replaceChildren(line);
  }

  error(message) {
    this.parts.append(el("p", { class: "error", role: "alert", text: message }));
  }

  note(text) {
    this.parts.append(el("p", { class: "note", text }));
  }

  finish(status) {
    this.flush();
    this.ended = true;
    this.li.setAttribute("aria-busy", "false");
    this.li.dataset.status = status;
  }
}

function field(name, spec, required) {
  const type = spec.type === "integer" || spec.type === "number" ? "number"
    : spec.type === "boolean" ? "checkbox" : "text";
  const input = el("input", { name, type, required: required && type !== "checkbox" });
  if (type === "number" && spec.type === "integer") input.step = "1";
  if (spec.default !== undefined && spec.default !== null) {
    if (type === "checkbox") input.checked = Boolean(spec.default);
    else input.value = String(spec.default);
  }
  const label = el("label", { class: type === "checkbox" ? "check" : "field" },
    el("span", { text: spec.description ? `${name} — ${spec.description}` : name }), input);
  return { label, input, type, spec };
}

function valueOf({ input, type, spec }) {
  if (type === "checkbox") return input.checked;
  if (input.value === "") return null;
  if (type === "number") return spec.type === "integer" ? parseInt(input.value, 10) : Number(input.value);
  return input.value;
}

function interruptBox(interrupt, done) {
  const box = el("div", { class: "interrupt", "data-interrupt-id": interrupt.id,
    "data-reason": interrupt.reason });
  box.append(el("p", { class: "interrupt-message", text: interrupt.message || interrupt.reason }));
  const answer = el("p", { class: "interrupt-answer", role: "status" });
  const schema = interrupt.responseSchema || { properties: {} };
  const properties = schema.properties || {};
  if (interrupt.reason === "confirmation") {
    const note = el("input", { name: "note", type: "text" });
    box.append(el("label", { class: "field" }, el("span", { text: "Note (optional)" }), note));
    const inputs = Object.entries(properties)
      .filter(([name]) => name !== "approved" && name !== "note")
      .map(([name, spec]) => field(name, spec, false));
    for (const f of inputs) box.append(f.label);
    const reply = (approved) => {
      const payload = { approved };
      if (note.value) payload.note = note.value;
      for (const f of inputs) if (valueOf(f) !== null) payload[f.input.name] = valueOf(f);
      done(interrupt, { interruptId: interrupt.id, status: "resolved", payload },
        approved ? "Approved." : "Rejected.", box);
    };
    box.append(el("div", { class: "actions" },
      button("Approve", "approve", () => reply(true)),
      button("Reject", "reject", () => reply(false))));
  } else {
    const form = el("form", { class: "interrupt-form" });
    const inputs = Object.entries(properties).map(([name, spec]) =>
      interrupt.reason === "external_execution" && name === "result"
        ? textareaField(name) : field(name, spec, (schema.required || []).includes(name)));
    for (const f of inputs) form.append(f.label);
    form.append(el("div", { class: "actions" }, el("button", { type: "submit", text: "Send" })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const payload = {};
      for (const f of inputs) payload[f.input.name] = valueOf(f);
      done(interrupt, { interruptId: interrupt.id, status: "resolved", payload }, "Sent.", box);
    });
    box.append(form);
  }
  box.append(answer);
  return box;
}

function textareaField(name) {
  const input = el("textarea", { name, rows: 3, required: true });
  return { label: el("label", { class: "field" }, el("span", { text: "Result" }), input),
    input, type: "text", spec: {} };
}

function button(text, name, onClick) {
  const node = el("button", { type: "button", class: name, text });
  node.addEventListener("click", onClick);
  return node;
}

// The interrupts of a stored paused run, as the AG-UI endpoint would send them.
export function interruptsOfRun(run) {
  const list = [];
  for (const t of run.tools || []) {
    if (t.metrics || !t.tool_call_id) continue;
    let reason = null;
    if (t.requires_confirmation && t.confirmed == null) reason = "confirmation";
    else if (t.requires_user_input && !t.answered) reason = "user_input";
    else if (t.external_execution_required && t.result == null) reason = "external_execution";
    if (!reason) continue;
    const properties = {};
    const required = [];
    if (reason === "confirmation") {
      properties.approved = { type: "boolean" };
      required.push("approved");
    }
    if (t.requires_user_input && !t.answered) {
      for (const f of t.user_input_schema || []) {
        properties[f.name] = { type: f.field_type, description: f.description, default: f.value };
        if (f.value == null && reason === "user_input") required.push(f.name);
      }
    }
    if (reason === "external_execution") {
      properties.result = {};
      required.push("result");
    }
    const args = JSON.stringify(t.tool_args || {});
    const message = reason === "confirmation" ? `Allow the call ${t.tool_name}(${args})?`
      : reason === "user_input" ? `The call ${t.tool_name}(${args}) needs your input.`
        : `Run ${t.tool_name}(${args}) and send back its result.`;
    list.push({ id: t.tool_call_id, reason, toolCallId: t.tool_call_id, message,
      responseSchema: { type: "object", properties, required } });
  }
  return list;
}

export function sessionItem(session, current, onOpen) {
  const when = new Date((session.updated_at || session.created_at || 0) * 1000);
  const runs = session.run_count === 1 ? "1 run" : `${session.run_count || 0} runs`;
  const open = el("button", { type: "button", class: "session", title: session.session_id,
    "aria-current": current ? "true" : null, "data-session-id": session.session_id },
  el("span", { class: "session-when", text: when.toLocaleString() }),
  el("span", { class: "session-runs", text: runs }));
  open.addEventListener("click", onOpen);
  return el("li", {}, open);
}
