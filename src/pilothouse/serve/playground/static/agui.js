// An AG-UI client: POST a RunAgentInput, read the answer's server-sent events one by one.

import { errorOf } from "./api.js";

function dataOf(frame) {
  const lines = frame.split("\n").filter((line) => line.startsWith("data:"));
  return lines.map((line) => line.slice(5).replace(/^ /, "")).join("\n");
}

// Runs the agent at ``url`` with ``input`` and calls ``onEvent`` with each AG-UI event (a
// plain object with ``type``). Resolves when the stream ends; rejects with an HttpError when
// the request is refused, or an AbortError when ``signal`` aborts it.
export async function runAgent({ url, input, headers, signal, onEvent }) {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...headers, "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(input),
    signal,
  });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const data = dataOf(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (data) onEvent(JSON.parse(data));
    }
  }
}
