"""AG-UI 1.0 on the serving app: ``POST /agui`` and ``POST /agents/{agent_id}/agui``.

Any AG-UI client (CopilotKit and others, or the app's own playground) can run the served
agents. The request is a ``RunAgentInput``; the answer is an SSE stream of AG-UI events,
built with the ``ag-ui-protocol`` package's types and encoder:

- ``threadId`` is the session (its history and state are kept by the service), the last
  message (the user's) is the input, ``state`` is merged into the session state;
- RUN_STARTED, then TEXT_MESSAGE_*, REASONING_* (when the model reasons), TOOL_CALL_START /
  ARGS / END / RESULT, STATE_SNAPSHOT and STATE_DELTA (JSON Patch) as the session state
  changes, and RUN_FINISHED with the run's token usage (or RUN_ERROR);
- a run that pauses for a tool call (confirmation, user input, external execution) ends with
  RUN_FINISHED whose outcome is ``interrupt``, one interrupt per waiting call; the client's
  next request on the thread answers them in ``resume`` and the same run continues
  (`pilothouse.serve.agui.interrupts` describes the payloads).

RUN_STARTED's ``metadata.pilothouse.runId`` is the run's id in the service, for
``POST /agents/{agent_id}/runs/{run_id}/cancel`` and ``GET .../runs/{run_id}``.
"""

from pilothouse.serve.agui.route import router

__all__ = ["router"]
