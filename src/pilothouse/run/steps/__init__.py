"""The named steps of a run: prepare, model request, tool batch, finish.

`pilothouse.run.loop` drives them; each reads and changes one `pilothouse.run.state.RunState`.
"""
