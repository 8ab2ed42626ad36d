"""`dropout-audit server`: the audit as a language server, so findings appear while a recipe,
config or training script is typed rather than at commit time.

Only `lsp.py` imports pygls and lsprotocol (the optional `[server]` extra); the other modules
are plain functions over the engine (what to check, where a finding sits in a buffer, which
edits a code action makes, what a hover says), tested without a client. Nothing imports this
package except the click command, when `server` is run.
"""
