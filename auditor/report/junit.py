"""JUnit XML: one test case per file checked, failing with its findings.

CI systems that understand nothing else (Jenkins, Azure Pipelines, GitLab's test report)
show a red test per broken config file; files without findings appear as passing cases so
the count of checked files is visible too. What XML 1.0 cannot hold (most control characters,
undecodable bytes of a file name) is shown escaped as `\\xNN` (report/safe_text.py).
"""

from xml.sax.saxutils import escape, quoteattr

from auditor.report.locations import message_of, relative
from auditor.report.safe_text import xml_safe


def write(findings, stream, ctx) -> None:
    shown = [f for f in findings if not f.suppressed]
    by_file = {}
    for f in shown:
        by_file.setdefault(xml_safe(relative(f.path, ctx.root), keep_newlines=False), []).append(f)
    files = sorted({xml_safe(relative(p, ctx.root), keep_newlines=False) for p in (ctx.files or ())} | set(by_file))
    failures = sum(1 for p in files if p in by_file)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(f'<testsuites name="dropout-audit" tests="{len(files)}" failures="{failures}" errors="0">\n')
    stream.write(f'  <testsuite name="dropout-audit" tests="{len(files)}" failures="{failures}" errors="0" '
                 f'skipped="0">\n')
    for path in files:
        attrs = f'name={quoteattr(path)} classname="dropout-audit" file={quoteattr(path)}'
        found = by_file.get(path)
        if not found:
            stream.write(f"    <testcase {attrs}/>\n")
            continue
        codes = ", ".join(sorted({f.code for f in found}))
        message = f"{len(found)} finding{'s' if len(found) != 1 else ''}: {codes}"
        body = "\n".join(f"{path}:{f.span.line}:{f.span.column}: {f.code} [{f.severity}] "
                         f"{xml_safe(message_of(f), keep_newlines=False)}" for f in found)
        stream.write(f"    <testcase {attrs}>\n")
        stream.write(f'      <failure message={quoteattr(message)} type="dropout-audit">{escape(body)}</failure>\n')
        stream.write("    </testcase>\n")
    stream.write("  </testsuite>\n</testsuites>\n")
