"""Reading a plan file into plain values plus the line of every field.

YAML (`.yaml`, `.yml`, anything not `.toml`) is composed into nodes so each
mapping key and list item keeps its line; TOML (`.toml`) is parsed with
tomllib and its lines are found by scanning the text for table headers and
keys (approximate: a field inside an inline table or a multi-line array gets
the line of the key that holds it).  Syntax errors come back as one problem
each, `FILE:LINE:COLUMN: invalid YAML: ...`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# PyYAML and tomllib are imported on the first plan read, not with this module:
# a URL run reads no plan, and the two imports cost ~20 ms of CPU (PyYAML's
# reader compiles a large regular expression), counted in every run's cost.
yaml = None
tomllib = None

FieldPath = tuple  # of str (mapping keys) and int (list indexes)

MAX_DEPTH = 64
MAX_NODES = 1_000_000               # aliases can make a small file expand without bound
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+\Z")


@dataclass
class Document:
    """A plan file's content (plain dicts, lists and scalars) and its lines."""
    filename: str                   # as given: messages start with it
    value: object
    lines: dict = field(default_factory=dict)   # FieldPath -> 1-based line
    problems: list = field(default_factory=list)  # (line, message) found while reading
    unreadable: set = field(default_factory=set)  # FieldPaths whose value could not be read (now None)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of a field, else of the nearest enclosing field that has one."""
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def format_path(path: FieldPath) -> str:
    """('scenarios', 1, 'weight') -> 'scenarios[1].weight'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def format_problem(filename: str, line: int | None, path: FieldPath, message: str) -> str:
    """'plan.yaml:14 scenarios[1].weight: must be > 0, got -5' (no line: 'plan.toml scenarios...')."""
    where = f"{filename}:{line}" if line else filename
    shown = format_path(path)
    text = f"{where} {shown}: {message}" if shown else f"{where}: {message}"
    return one_line(text)


def one_line(text: str) -> str:
    """Control characters escaped, so a problem is always exactly one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def read_document(path: str) -> tuple[Document | None, list[str]]:
    """(the file's Document, []), or (None, the problems that stop it being read).
    Problems that leave the rest readable are in Document.problems."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, [f"{path}: cannot read the plan: {reason}"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        return None, [f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x})"]
    if str(path).lower().endswith(".toml"):
        return _toml_document(text, str(path))
    return _yaml_document(text, str(path))


# ---- YAML ---------------------------------------------------------------------------

def _import_yaml() -> None:
    global yaml
    if yaml is None:
        import yaml as module
        yaml = module


def _yaml_document(text: str, filename: str) -> tuple[Document | None, list[str]]:
    _import_yaml()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        context = exc.context
        if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            context += f" at line {exc.context_mark.line + 1}"
        said = ", ".join(_one_line(part) for part in (context, exc.problem) if part)
        return None, [f"{where}: invalid YAML: {said}"]
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        return None, [f"{filename}:{line}:{column}: invalid YAML: character #x{code:04x} is not "
                      f"allowed in YAML text"]
    except yaml.YAMLError as exc:
        return None, [f"{filename}: invalid YAML: {_one_line(str(exc))}"]
    except RecursionError:
        return None, [f"{filename}: invalid YAML: nested too deeply"]
    if node is None:
        return None, [f"{filename}: the plan is empty; expected a mapping with target, load and scenarios"]
    converter = _YamlConverter(filename)
    value = converter.convert(node, ())
    return Document(filename, value, converter.lines, converter.problems, converter.unreadable), []


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _YamlConverter:
    """Nodes -> plain values, recording each field's line; problems for what
    YAML allows but a plan cannot hold (non-string keys, duplicate keys, tags)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.lines: dict = {(): 1}
        self.problems: list[tuple[int, str]] = []
        self.unreadable: set = set()
        self.constructor = yaml.constructor.SafeConstructor()
        self.nodes = 0
        self.active: set[int] = set()        # nodes being converted: a recursive alias comes back to one

    def problem(self, node, path, message, unreadable=True):
        line = node.start_mark.line + 1
        self.problems.append((line, format_problem(self.filename, line, path, message)))
        if unreadable:
            self.unreadable.add(path)

    def convert(self, node, path: FieldPath):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.problem(node, path, f"the document expands to more than {MAX_NODES} values (aliases?)")
            return None
        if len(path) > MAX_DEPTH:
            self.problem(node, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        if id(node) in self.active:
            self.problem(node, path, "a recursive alias (a value that contains itself)")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.problem(node, path, f"tag {node.tag!r} is not allowed in a plan")
                return [self.item(child, path + (n,)) for n, child in enumerate(node.value)]
            if node.tag != _MAP_TAG:
                self.problem(node, path, f"tag {node.tag!r} is not allowed in a plan")
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def item(self, node, path):
        self.lines.setdefault(path, node.start_mark.line + 1)
        return self.convert(node, path)

    def scalar(self, node, path):
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else str(exc)
            self.problem(node, path, f"cannot read the value {node.value[:40]!r}: {_one_line(reason)}")
            return None

    def mapping(self, node, path) -> dict:
        result: dict = {}
        first_line: dict = {}
        for key_node, value_node in self.merged_pairs(node, path):
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, path, "a key must be plain text, got a "
                             f"{'list' if isinstance(key_node, yaml.SequenceNode) else 'mapping'}")
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.problem(key_node, path + (key,), f"duplicate key (first at line {first_line[key]})",
                             unreadable=False)
                continue
            first_line[key] = line
            self.lines[path + (key,)] = line
            result[key] = self.convert(value_node, path + (key,))
        return result

    def merged_pairs(self, node, path):
        """The node's pairs with YAML merge keys (`<<: *base`) expanded; keys
        written in the mapping itself win over merged ones."""
        own = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        written = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        merged = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode) or id(source) in self.active:
                    self.problem(key_node, path, "a merge key (<<) takes a mapping or a list of mappings")
                    continue
                for k, v in source.value:
                    if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE_TAG and k.value not in written:
                        written.add(k.value)
                        merged.append((k, v))
        return merged + own


# ---- TOML ---------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_KEY = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)"""
_TOML_DOTTED = re.compile(rf"^\s*({_TOML_KEY}(?:\s*\.\s*{_TOML_KEY})*)\s*")
_TOML_KEY_PART = re.compile(rf"\s*({_TOML_KEY})\s*\.?")


def _import_tomllib() -> None:
    global tomllib
    if tomllib is None:
        try:
            import tomllib as module
        except ModuleNotFoundError:          # Python 3.10
            try:
                import tomli as module
            except ModuleNotFoundError:
                return
        tomllib = module


def _toml_document(text: str, filename: str) -> tuple[Document | None, list[str]]:
    _import_tomllib()
    if tomllib is None:
        return None, [f"{filename}: TOML plans need Python 3.11+ or the tomli package"]
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        where = f"{filename}:{match.group(1)}:{match.group(2)}" if match else filename
        message = message[:match.start()] if match else message
        return None, [f"{where}: invalid TOML: {_one_line(message)}"]
    except (ValueError, RecursionError) as exc:        # e.g. an integer too long to convert
        return None, [f"{filename}: invalid TOML: {_one_line(str(exc)) or 'nested too deeply'}"]
    return Document(filename, value, _toml_lines(text)), []


def _toml_lines(text: str) -> dict:
    """FieldPath -> line for table headers and `key =` lines, found by scanning."""
    lines: dict = {(): 1}
    table: tuple = ()
    counts: dict = {}                 # array-of-tables path -> tables seen so far
    in_multiline = None
    for number, raw in enumerate(text.splitlines(), 1):
        if in_multiline:
            if raw.count(in_multiline) % 2:
                in_multiline = None
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            keys = _toml_keys(stripped[2:].split("]]")[0])
            array = _toml_resolve(keys[:-1], counts) + tuple(keys[-1:])
            index = counts.get(array, 0)
            counts[array] = index + 1
            table = array + (index,)
            lines.setdefault(array, number)
            lines[table] = number
        elif stripped.startswith("["):
            table = _toml_resolve(_toml_keys(stripped[1:].split("]")[0]), counts)
            lines.setdefault(table, number)
        else:
            match = _TOML_DOTTED.match(stripped)
            if match and stripped[match.end():].startswith("="):
                lines.setdefault(table + tuple(_toml_keys(match.group(1))), number)
                rest = stripped[match.end() + 1:]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2:
                        in_multiline = quote
    return lines


def _toml_keys(text: str) -> list[str]:
    keys = []
    for match in _TOML_KEY_PART.finditer(text):
        key = match.group(1)
        if key[:1] in "\"'":
            key = key[1:-1]
        keys.append(key)
    return keys


def _toml_resolve(keys: list[str], counts: dict) -> tuple:
    """Dotted keys -> a FieldPath, entering the latest table of each array of tables."""
    path: tuple = ()
    for key in keys:
        path += (key,)
        if path in counts:
            path += (counts[path] - 1,)
    return path
