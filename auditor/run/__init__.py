"""The run machinery: `discover` the files, `engine` the stages over them (`parallel` for
several processes, `cache` per directory), `suppress` and `baseline` filter findings, `fix`
writes edits (`atomic_write`), `config` and `config_file` read the user's settings.

It sits above the stages (sources, setup, checks, report) and below the command line.
"""
