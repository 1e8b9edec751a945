// The playground: pick an agent, chat with it over AG-UI, answer its paused tool calls,
// cancel a run, reopen a session. The conversation's place (agent and thread) is kept in the
// address's fragment, so a reload reopens it.

import { runAgent } from "./agui.js";
import { Api, uuid } from "./api.js";
import { AssistantTurn, el, interruptsOfRun, sessionItem, userTurn } from "./view.js";

const $ = (id) => document.getElementById(id);
const ui = {
  agent: $("agent"),
  newChat: $("new-chat"),
  toggleSessions: $("toggle-sessions"),
  changeKey: $("change-key"),
  sessions: $("sessions"),
  sessionList: $("session-list"),
  state: $("session-state"),
  notice: $("notice"),
  conversation: $("conversation"),
  composer: $("composer"),
  message: $("message"),
  send: $("send"),
  cancel: $("cancel"),
  keyDialog: $("key-dialog"),
  keyForm: $("key-form"),
  keyInput: $("key-input"),
  keyRemember: $("key-remember"),
  keyError: $("key-error"),
};
const api = new Api();
const app = { agents: [], agentId: null, threadId: null, run: null, state: {} };
const enc = encodeURIComponent;

// --- where we are -----------------------------------------------------------------------------

function readPlace() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { agent: params.get("agent"), thread: params.get("thread") };
}

function writePlace() {
  const params = new URLSearchParams();
  if (app.agentId) params.set("agent", app.agentId);
  if (app.threadId) params.set("thread", app.threadId);
  history.replaceState(null, "", `#${params}`);
}

function notice(text, isError = false) {
  ui.notice.hidden = !text;
  ui.notice.textContent = text || "";
  ui.notice.classList.toggle("error", isError);
}

function setBusy(busy) {
  document.body.dataset.busy = busy ? "true" : "false";
  ui.send.disabled = busy;
  ui.agent.disabled = busy;
  ui.newChat.disabled = busy;
  ui.cancel.disabled = !(busy && app.run && app.run.runId);
}

// The conversation follows a streaming answer while the person is at its end, and stays put
// when they scrolled up to read.
let following = true;

function scrollDown(force = false) {
  if (force) following = true;
  if (following) ui.conversation.scrollTop = ui.conversation.scrollHeight;
}

// --- the key ------------------------------------------------------------------------------------

function askForKey(problem) {
  ui.keyError.textContent = problem || "";
  ui.keyInput.value = "";
  if (!ui.keyDialog.open) ui.keyDialog.showModal();
  ui.keyInput.focus();
}

function refused(error) {
  return error && (error.status === 401 || error.status === 403);
}

function keyProblem(error) {
  return api.key ? `The key was refused: ${error.message}` : "This server needs a security key.";
}

// --- agents and sessions ------------------------------------------------------------------------

async function connect() {
  try {
    app.agents = await api.get("agents");
  } catch (error) {
    if (refused(error)) return askForKey(keyProblem(error));
    return notice(`Could not load the agents: ${error.message}`, true);
  }
  notice("");
  if (ui.keyDialog.open) ui.keyDialog.close();
  ui.agent.replaceChildren(...app.agents.map((a) =>
    el("option", { value: a.id, text: a.name ? `${a.name} (${a.id})` : a.id })));
  if (!app.agents.length) return notice("This server serves no agents.", true);
  const place = readPlace();
  const known = app.agents.some((a) => a.id === place.agent);
  app.agentId = known ? place.agent : app.agents[0].id;
  ui.agent.value = app.agentId;
  if (known && place.thread) await openThread(place.thread);
  else newChat();
  await loadSessions();
}

async function loadSessions() {
  if (!app.agentId) return;
  let page;
  try {
    page = await api.get(`sessions?component_id=${enc(app.agentId)}&limit=50`);
  } catch (error) {
    ui.sessionList.replaceChildren(el("li", { class: "note", text: `Sessions: ${error.message}` }));
    return;
  }
  const items = page.data.map((s) =>
    sessionItem(s, s.session_id === app.threadId, () => openThread(s.session_id)));
  ui.sessionList.replaceChildren(...(items.length ? items : [el("li", { class: "note", text: "No sessions yet." })]));
}

function showState(state) {
  app.state = state && typeof state === "object" ? state : {};
  ui.state.textContent = JSON.stringify(app.state, null, 2);
}

function newChat() {
  if (app.run) return;
  app.threadId = null;
  ui.conversation.replaceChildren();
  showState({});
  writePlace();
  markCurrentSession();
  ui.message.focus();
}

function markCurrentSession() {
  for (const button of ui.sessionList.querySelectorAll("button.session")) {
    if (button.dataset.sessionId === app.threadId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

function inputText(run) {
  const content = run.input ? run.input.input_content : "";
  return typeof content === "string" ? content : JSON.stringify(content);
}

async function openThread(threadId) {
  if (app.run) return;
  let runs;
  let session;
  try {
    [runs, session] = await Promise.all([
      api.get(`sessions/${enc(threadId)}/runs`),
      api.get(`sessions/${enc(threadId)}`),
    ]);
  } catch (error) {
    if (refused(error)) return askForKey(keyProblem(error));
    notice(`Could not open the session: ${error.message}`, true);
    return newChat();
  }
  app.threadId = threadId;
  writePlace();
  ui.conversation.replaceChildren();
  runs.forEach((run, index) => showStoredRun(run, index === runs.length - 1));
  showState(session.session_state);
  markCurrentSession();
  scrollDown(true);
}

function showStoredRun(run, isLast) {
  ui.conversation.append(userTurn(inputText(run)));
  const turn = new AssistantTurn();
  ui.conversation.append(turn.li);
  if (run.reasoning_content) {
    turn.reasoningStart("stored");
    turn.reasoningDelta("stored", run.reasoning_content);
  }
  for (const execution of run.tools || []) turn.storedTool(execution);
  const status = (run.status || "").toLowerCase();
  if (status === "completed") turn.answer(typeof run.content === "string" ? run.content : JSON.stringify(run.content, null, 2));
  else if (status === "error") turn.error(run.content || "The run failed.");
  else if (status === "cancelled") turn.note("Cancelled.");
  else if (status === "paused" && isLast) {
    turn.interrupts(interruptsOfRun(run), (entries) => resume(entries, turn));
  } else turn.note(`This run is ${status}.`);
  turn.metrics(run.metrics, null);
  turn.finish(status === "paused" && isLast ? "interrupted" : status);
}

// --- running --------------------------------------------------------------------------------

async function send(text) {
  if (app.run || !text.trim() || !app.agentId) return;
  ui.message.value = "";
  if (!app.threadId) {
    app.threadId = uuid();
    writePlace();
  }
  ui.conversation.append(userTurn(text));
  scrollDown(true);
  await stream({
    threadId: app.threadId,
    runId: uuid(),
    messages: [{ id: uuid(), role: "user", content: text }],
    tools: [],
    context: [],
  });
}

function resume(entries, turn) {
  stream({ threadId: app.threadId, runId: uuid(), messages: [], resume: entries }, turn);
}

function applyPatch(state, patch) {
  const copy = structuredClone(state);
  for (const op of patch) {
    const keys = op.path.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
    if (!keys.length) {
      return op.op === "remove" ? {} : op.value;
    }
    let target = copy;
    for (const key of keys.slice(0, -1)) target = target[key] ??= {};
    const last = keys[keys.length - 1];
    if (op.op === "remove") delete target[last];
    else if (op.op === "add" || op.op === "replace") target[last] = op.value;
  }
  return copy;
}

function handle(turn, event) {
  const run = app.run;
  switch (event.type) {
    case "RUN_STARTED":
      run.runId = event.metadata?.pilothouse?.runId || null;
      setBusy(true);
      break;
    case "REASONING_MESSAGE_START":
      turn.reasoningStart(event.messageId);
      break;
    case "REASONING_MESSAGE_CONTENT":
      turn.reasoningDelta(event.messageId, event.delta);
      break;
    case "TEXT_MESSAGE_START":
      turn.textStart(event.messageId);
      break;
    case "TEXT_MESSAGE_CONTENT":
      turn.textDelta(event.messageId, event.delta);
      break;
    case "TOOL_CALL_START":
      turn.toolStart(event.toolCallId, event.toolCallName);
      break;
    case "TOOL_CALL_ARGS":
      turn.toolArgs(event.toolCallId, event.delta);
      break;
    case "TOOL_CALL_RESULT":
      turn.toolResult(event.toolCallId, event.content, event.metadata?.pilothouse || {});
      break;
    case "STATE_SNAPSHOT":
      showState(event.snapshot);
      break;
    case "STATE_DELTA":
      showState(applyPatch(app.state, event.delta));
      break;
    case "RUN_FINISHED":
      finished(turn, event);
      break;
    case "RUN_ERROR":
      turn.error(event.message || "The run failed.");
      turn.finish("error");
      break;
    default:
      break;
  }
  scrollDown();
}

function finished(turn, event) {
  turn.metrics(event.metadata?.pilothouse?.metrics, event.usage);
  const outcome = event.outcome || { type: "success" };
  if (outcome.type === "interrupt") {
    turn.finish("interrupted");
    turn.interrupts(outcome.interrupts, (entries) => resume(entries, turn));
  } else if (outcome.type === "cancelled") {
    turn.note("Cancelled.");
    turn.finish("cancelled");
  } else {
    turn.finish("completed");
  }
}

async function stream(input, existing) {
  const turn = existing || new AssistantTurn();
  if (existing) turn.begin();
  else ui.conversation.append(turn.li);
  scrollDown();
  const controller = new AbortController();
  app.run = { controller, runId: null, agentId: app.agentId };
  setBusy(true);
  try {
    await runAgent({
      url: api.url(`agents/${enc(app.agentId)}/agui`),
      input,
      headers: api.headers(),
      signal: controller.signal,
      onEvent: (event) => handle(turn, event),
    });
    if (!turn.ended) {
      turn.error("The connection ended before the run did.");
      turn.finish("error");
    }
  } catch (error) {
    if (error.name === "AbortError") turn.note("Stopped.");
    else turn.error(error.message);
    turn.finish("error");
    if (refused(error)) askForKey(keyProblem(error));
  } finally {
    app.run = null;
    setBusy(false);
    markCurrentSession();
    loadSessions();
  }
}

async function cancel() {
  const run = app.run;
  if (!run || !run.runId) return;
  ui.cancel.disabled = true;
  try {
    await api.post(`agents/${enc(run.agentId)}/runs/${enc(run.runId)}/cancel`);
  } catch (error) {
    notice(`Could not cancel the run: ${error.message}`, true);
  }
}

// --- wiring -------------------------------------------------------------------------------------

function bind() {
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send(ui.message.value);
  });
  ui.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send(ui.message.value);
    } else if (event.key === "Escape" && app.run) {
      cancel();
    }
  });
  ui.conversation.addEventListener("scroll", () => {
    const c = ui.conversation;
    following = c.scrollHeight - c.scrollTop - c.clientHeight < 48;
  });
  ui.cancel.addEventListener("click", cancel);
  ui.newChat.addEventListener("click", newChat);
  ui.agent.addEventListener("change", () => {
    app.agentId = ui.agent.value;
    newChat();
    loadSessions();
  });
  ui.toggleSessions.addEventListener("click", () => {
    const open = ui.sessions.classList.toggle("open");
    ui.toggleSessions.setAttribute("aria-expanded", String(open));
  });
  ui.changeKey.addEventListener("click", () => askForKey(""));
  ui.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    api.setKey(ui.keyInput.value.trim(), ui.keyRemember.checked);
    ui.keyError.textContent = "Checking…";
    connect();
  });
}

bind();
setBusy(false);
connect();
