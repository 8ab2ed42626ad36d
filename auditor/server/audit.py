"""What the language server checks when a buffer changes, with what configuration, and what
it re-checks after.

One `Audit` lives for the whole editor session: the catalogue, the bound rules and the
knowledge tables stay loaded in its engines (one per configuration file), so a change costs
only the reading and checking of the files it concerns. Those are the ones `check` on an
explicit file would read (`checkrun.siblings` and `checkrun.linkers`: the directory's other
files and the scripts above it that name the file), plus any open buffer that names it, and
only the reported files run their own file's rules (`Options.given_source_rules`: the others
are read for the setups they make); the buffers themselves are read through `sources.text.set_buffer`, so an unsaved
adapter_config.json changes the verdict on the recipe beside it. The files each check read,
links included, are remembered per document, so a change to one file re-checks the documents
whose setups it is part of, and nothing else.

Paths given to the engine are relative to the working directory when inside it (the server
runs from the workspace root), so messages and plans read as they do on the command line.

Imports inside functions (`setup.graph`, `run.config_file`) are deferred for start-up time: a
session that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor import sources
from auditor.cli import checkrun
from auditor.core.catalogue import RuleError
from auditor.core.model import finding_identity
from auditor.run.engine import Engine, Options
from auditor.setup import resolve
from auditor.sources import text as source_text

CONFIG_NAMES = (".dropout-audit.toml", "pyproject.toml")
_SCRIPT_SUFFIXES = (".py", ".sh", ".ipynb")


class Configured:
    """An engine with the configuration it was built from (None: no configuration file)."""

    __slots__ = ("path", "stamp", "engine", "exclude", "exclude_root", "problem")

    def __init__(self, path, stamp, engine, exclude=(), exclude_root=".", problem=""):
        self.path = path
        self.stamp = stamp
        self.engine = engine
        self.exclude = exclude
        self.exclude_root = exclude_root
        self.problem = problem

    def excluded(self, paths: list) -> set:
        if not self.exclude:
            return set()
        kept = set(checkrun.excluded(paths, self.exclude, self.exclude_root))
        return {p for p in paths if p not in kept}


def _stamp(path: str | None):
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return "gone"
    return (st.st_mtime_ns, st.st_size)


class Audit:
    def __init__(self, root: str = "."):
        self.root = os.path.abspath(root)
        self.buffers = {}      # absolute path -> the open document's text
        self.related = {}      # absolute path -> absolute paths its last check read
        self.problems = []     # configuration problems not yet shown to the user
        self._config_at = {}   # directory -> its configuration file (None: none)
        self._engines = {}     # configuration file or None -> Configured
        self._linkers = {}     # tuple of engine paths -> scripts above them that name them
        self._suffixes = frozenset(sources.readers())

    # --- paths ------------------------------------------------------------------------

    def engine_path(self, path: str) -> str:
        """The spelling the engine gets: relative to the working directory when inside it."""
        here = os.getcwd()
        if path == here or path.startswith(here.rstrip(os.sep) + os.sep):
            return os.path.relpath(path, here)
        return path

    def link_root(self) -> str:
        return self.engine_path(self.root)

    def readable(self, path: str) -> bool:
        """A file kind the audit reads (by suffix, as the command line decides)."""
        return sources.suffix_of(path) in self._suffixes

    # --- buffers ----------------------------------------------------------------------

    def set_buffer(self, path: str, text: str | None) -> None:
        """The open document's text (None: closed, read from the disk again)."""
        path = os.path.abspath(path)
        if text is None:
            self.buffers.pop(path, None)
            self.related.pop(path, None)
        else:
            self.buffers[path] = text
        source_text.set_buffer(path, text)

    def disk_changed(self) -> None:
        """Files were saved, created or deleted: which scripts name which file may differ."""
        self._linkers.clear()

    def config_changed(self) -> None:
        """A configuration file was saved, created or deleted: build the engines anew."""
        self._config_at.clear()
        self._engines.clear()
        self._linkers.clear()

    # --- configuration ----------------------------------------------------------------

    def _config_of(self, directory: str):
        from auditor.run import config_file

        if directory not in self._config_at:
            try:
                found = config_file.find(directory)
                self._config_at[directory] = found[0] if found else None
            except config_file.ConfigFileError as exc:
                self.problems.append(str(exc))
                self._config_at[directory] = None
        return self._config_at[directory]

    def configured(self, path: str) -> Configured:
        """The engine for a file: its configuration's, rebuilt when that file changed on disk."""
        cfg_path = self._config_of(os.path.dirname(os.path.abspath(path)))
        known = self._engines.get(cfg_path)
        if known is not None and known.stamp == _stamp(cfg_path):
            return known
        made = self._build(cfg_path)
        self._engines[cfg_path] = made
        if made.problem:
            self.problems.append(made.problem)
        return made

    def _build(self, cfg_path) -> Configured:
        stamp = _stamp(cfg_path)
        try:
            loaded = checkrun.load_config(cfg_path, ".") if cfg_path else None
            options = checkrun.options_from(checkrun.Request(), loaded)
            options["root"] = self.link_root()
            engine = Engine(Options(**options, given_source_rules=True))
        except (checkrun.ConfigProblem, checkrun.UsageProblem, RuleError) as exc:
            fallback = self._engines.get(None)
            if fallback is None or cfg_path is None:
                fallback = Configured(None, None, Engine(Options(root=self.link_root(), given_source_rules=True)))
            return Configured(cfg_path, stamp, fallback.engine,
                              problem=f"{exc}; checking with the default settings until it is fixed")
        exclude = tuple(loaded.cfg.exclude) if loaded is not None else ()
        return Configured(cfg_path, stamp, engine, exclude, loaded.root if loaded is not None else ".")

    # --- what one check reads ---------------------------------------------------------

    def _files(self, configured: Configured, reported: list) -> list:
        """Engine paths to read for reporting on `reported` (engine paths): the check of
        explicit files, with open buffers that name them standing in for the disk."""
        engine = configured.engine
        files = checkrun.siblings(reported, engine.suffixes)
        key = tuple(sorted(reported))
        found = self._linkers.get(key)
        if found is None:
            found = self._linkers[key] = checkrun.linkers(reported, engine.options.root)
            if len(self._linkers) > 256:
                self._linkers.clear()
        names = {os.path.basename(p) for p in reported}
        given = {os.path.abspath(p) for p in reported}
        open_linkers = [self.engine_path(p) for p, text in self.buffers.items()
                        if p not in given and p.endswith(_SCRIPT_SUFFIXES) and any(n in text for n in names)]
        files = checkrun.with_linkers(files, list(found) + open_linkers)
        dropped = configured.excluded(files)
        return [p for p in files if p not in dropped]

    def check(self, path: str) -> dict:
        """Findings (not suppressed) of `path` and of every open document in its directory,
        by absolute path; each of them remembers the files this check read."""
        path = os.path.abspath(path)
        configured = self.configured(path)
        engine = configured.engine
        directory = os.path.dirname(path)
        wanted = sorted({path} | {p for p in self.buffers if os.path.dirname(p) == directory})
        out = {p: [] for p in wanted}
        reported = [self.engine_path(p) for p in wanted if self.readable(p)]
        dropped = configured.excluded(reported)
        reported = [p for p in reported if p not in dropped]
        if not reported:
            return out
        files = self._files(configured, reported)
        engine.options.only_given = frozenset(os.path.normpath(p) for p in reported)
        engine.linked = {}  # linked files are read anew: one of them may be an edited buffer
        read, seen = set(files), set()
        for group_dir, group in resolve.by_directory(files):
            for f in engine.check_directory(group_dir, group):
                ident = finding_identity(f)
                if ident in seen:
                    continue
                seen.add(ident)
                if not f.suppressed:
                    out.setdefault(os.path.abspath(f.path), []).append(f)
            read |= engine.deps
        read = {os.path.abspath(p) for p in read}
        for p in wanted:
            self.related[p] = read
        return {p: out[p] for p in wanted}

    def dependents(self, path: str) -> list:
        """Open documents outside `path`'s directory whose last check read it."""
        path = os.path.abspath(path)
        directory = os.path.dirname(path)
        return sorted(p for p, read in self.related.items()
                      if path in read and os.path.dirname(p) != directory and p in self.buffers)

    def plans(self, path: str) -> tuple:
        """(the file's Source as read now, the plans of every setup it is part of): what a
        hover explains. A recipe a launch command runs is planned as launched, once."""
        from auditor.setup import graph

        path = os.path.abspath(path)
        configured = self.configured(path)
        engine = configured.engine
        if not self.readable(path):
            return None, []
        me = self.engine_path(path)
        engine.linked = {}
        own, setups = None, []
        for group_dir, group in resolve.by_directory(self._files(configured, [me])):
            loaded = engine.load_directory(group)
            for src in loaded:
                if os.path.abspath(src.path) == path:
                    own = src
            setups.extend(s for s in graph.setups(engine, group_dir, loaded)
                          if any(os.path.abspath(x.path) == path for x in s.sources))
        launched = {os.path.realpath(s.driver.path) for s in setups if s.launch is not None and s.driver is not None}
        plans = [graph.plan(s) for s in setups
                 if s.launch is not None or s.driver is None or os.path.realpath(s.driver.path) not in launched]
        return own, plans

    def rule(self, code: str):
        """The active rule with this code, from any engine of the session."""
        for configured in self._engines.values():
            for rule in configured.engine.rules:
                if rule.code == code:
                    return rule
        return None
