"""The ground floor: the vocabulary every stage shares, importing nothing of the project above it.

`model` (findings, spans, setups, plans), `record` (slotted value classes), `probability` (a
written value as a probability), `lazy_regex` and `catalogue` (the rule catalogue). A module
here imports only the standard library, third-party parsers and other `core` modules
(tests/test_layout.py holds that).
"""
