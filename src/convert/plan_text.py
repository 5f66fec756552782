"""A draft plan (surge.convert.draft) as YAML text with comments.

Written by hand rather than by a YAML library so the comments sit where they
belong (what was dropped, where), and every value is either a plain word or a
JSON string (JSON strings and flow collections are valid YAML), so it reads
back as written.
"""
from __future__ import annotations

import json
import re

from surge.convert.draft import NO_BODY, Draft, DraftStep

# A scalar that YAML reads as this same string without quotes.
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*( [A-Za-z0-9_./-]+)*\Z")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\Z")


def scalar(value) -> str:
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def key(name: str) -> str:
    return name if _PLAIN_KEY.match(name) and name.lower() not in _YAML_WORDS else json.dumps(name)


def _comment(line: str, indent: str) -> str:
    text = line.replace("\r", " ").replace("\n", " ")
    return f"{indent}# {text}".rstrip()


def _step(step: DraftStep) -> list[str]:
    lines = [_comment(c, "      ") for c in step.comments]
    lines.append(f"      - name: {scalar(step.name)}")
    lines.append(f"        request: {scalar(step.request)}")
    if step.headers:
        lines.append("        headers:")
        lines += [f"          {key(name)}: {scalar(value)}" for name, value in step.headers]
    if step.auth:
        (kind, values), = step.auth.items()
        inner = ", ".join(f"{k}: {scalar(v)}" for k, v in values.items())
        lines.append(f"        auth: {{{kind}: {{{inner}}}}}")
    if step.json is not NO_BODY:
        lines.append(f"        json: {json.dumps(step.json, ensure_ascii=False)}")
    elif step.body is not None:
        lines.append(f"        body: {scalar(step.body)}")
    if step.expect_status is not None:
        lines.append(f"        expect: {{status: {step.expect_status}}}")
    if step.extract:
        lines.append("        extract:")
        for var, how in step.extract.items():
            (kind, value), = how.items()
            lines.append(f"          {var}: {{{kind}: {json.dumps(value)}}}")
    if step.think:
        lines.append(f"        think: {step.think}")
    lines += [_comment(n, "        ") for n in step.notes]
    return lines


def plan_text(draft: Draft) -> str:
    """The plan file's text."""
    lines = [_comment(f"written by surge convert from {draft.source}; edit the load, then "
                      f"`surge validate` and `surge run` it", "")]
    lines += [_comment(c, "") for c in draft.header_comments]
    lines.append(f"name: {scalar(draft.name)}")
    lines.append(f"target: {scalar('${env.' + draft.target.env + ':-' + draft.target.origin + '}')}")
    if draft.insecure:
        lines.append("tls: {insecure: true}          # curl -k: certificates are not checked")
    if draft.hosts:
        lines.append("hosts:")
        for host in draft.hosts:
            lines.append(f"  {host.name}: {{url: {scalar('${env.' + host.env + ':-' + host.origin + '}')}}}")
    lines.append("load: {model: closed, vus: %d, duration: %s}      # each virtual user replays the journey "
                 "over and over" % (draft.vus, draft.duration))
    if draft.objectives:
        lines.append("objectives:")
        lines += [f"  - {scalar(o)}" for o in draft.objectives]
    lines.append("scenarios:")
    lines.append(f"  - name: {scalar(draft.scenario)}")
    lines.append("    steps:")
    for step in draft.steps:
        lines += _step(step)
    lines += [_comment(c, "      ") for c in draft.trailing_comments]
    return "\n".join(lines) + "\n"
