"""Scenario files: a scenario as TOML, so one can be written, shown and run without Python.

`dump(scenario)` writes a `Scenario` as TOML; `load(text, source)` reads one back. The file
mirrors the dataclasses field for field (docs/scenario-files.md): top-level keys are the
`Scenario` fields, `[workload]` is the `WorkloadSpec`, `[repair]` the `Repair`,
`[[consumers]]` and `[[faults]]` one table per `ConsumerSpec` and `FaultStep`. A field left
out takes its default, and `dump` leaves out every field equal to its default, so files stay
short and `load(dump(s)) == s`.

Reading checks only what TOML itself cannot say (unknown keys, missing keys, the type of
each value); everything else is checked by constructing the dataclasses, so a file gets
the same ConfigError a Python scenario would, re-raised as a ScenarioFileError naming the
file and the key path (`faults[2].duration_s`).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.faults.catalogue import ParamRange
from harness.scenario import ConsumerSpec, FaultStep, Repair, Scenario
from harness.workload import WorkloadSpec

SUFFIX = ".toml"


class ScenarioFileError(ConfigError):
    """A scenario file is not valid: names the file, the key path in it and the fix."""

    def __init__(self, source: str, path: str, problem: str, fix: str) -> None:
        self.source = source
        self.path = path
        super().__init__(f"{source}: {path}" if path else source, problem, fix)


# -- writing -----------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Characters a TOML basic string must escape besides the quote and the backslash: the
# control characters other than tab.
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\n": "\\n", "\f": "\\f",
                  "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    # repr is the shortest text that reads back as the same float, and is valid TOML
    # ("0.005", "1e-05", "1e+16"); a float stays a float ("200.0"), so a dump read back and
    # dumped again is the same text.
    return repr(value)


def _value(value: object) -> str:
    """TOML for the value types scenarios hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, ParamRange):
        # A fixed value is written as the number alone, a range as [low, high].
        if value.low == value.high and type(value.low) is type(value.high):
            return _number(value.low)
        return f"[{_number(value.low)}, {_number(value.high)}]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, frozenset):
        return _value(tuple(sorted(value)))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"a scenario file cannot hold {type(value).__name__}: {value!r}")


def _default(spec: Field[Any]) -> object:
    if spec.default is not MISSING:
        return spec.default
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    return MISSING


def _changed(obj: object, nested: frozenset[str] = frozenset()) -> Iterator[tuple[str, object]]:
    """(name, value) of the fields of dataclass `obj` that differ from their defaults, in
    declaration order, leaving out the `nested` ones (written as tables of their own)."""
    for spec in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, spec.name)
        if spec.name not in nested and value != _default(spec):
            yield spec.name, value


def _mix_table(mix: tuple[tuple[str, float], ...]) -> dict[str, float]:
    table = dict(mix)
    if len(table) != len(mix):
        raise ValueError(f"workload.mix names an operation kind twice: {mix!r}; a scenario "
                         "file holds the mix as a table, one weight per kind")
    return table


def dump(scenario: Scenario) -> str:
    """The scenario as a TOML scenario file; `load(dump(s), ...) == s`."""
    lines = [f"# Scenario {scenario.name}; run it with: harness run --scenario-file FILE",
             "# Format: docs/scenario-files.md", ""]
    lines += [f"{name} = {_value(value)}" for name, value in
              _changed(scenario, frozenset({"workload", "repair", "consumers", "faults"}))]
    workload = [f"{name} = {_value(value)}" for name, value in _changed(scenario.workload)
                if name != "mix"]
    if scenario.workload.mix != _default(_field(WorkloadSpec, "mix")):
        workload.append(f"mix = {_value(_mix_table(scenario.workload.mix))}")
    if workload:
        lines += ["", "[workload]", *workload]
    if scenario.repair is not None:
        lines += ["", "[repair]",
                  *(f"{name} = {_value(value)}" for name, value in _changed(scenario.repair))]
    if scenario.consumers != _default(_field(Scenario, "consumers")):
        for consumer in scenario.consumers:
            lines += ["", "[[consumers]]",
                      *(f"{name} = {_value(value)}" for name, value in _changed(consumer))]
    for step in scenario.faults:
        lines += ["", "[[faults]]",
                  *(f"{name} = {_value(value)}" for name, value in _changed(step))]
    return "\n".join(lines) + "\n"


def _field(cls: type, name: str) -> Field[Any]:
    return next(spec for spec in fields(cls) if spec.name == name)


# -- reading -----------------------------------------------------------------------------

def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__  # dates and times


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Reader:
    """Reads one TOML table into a dataclass's keyword arguments, naming `path` in errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, path: str, problem: str, fix: str) -> ScenarioFileError:
        return ScenarioFileError(self.source, path, problem, fix)

    def table(self, value: object, path: str, example: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a table, got {_toml_type(value)} {value!r}",
                             f"write it as a table, e.g. {example}")
        return value

    def kwargs(self, table: dict[str, Any], prefix: str, cls: type,
               kinds: Mapping[str, Callable[[object, str], object]]) -> dict[str, Any]:
        """The fields of `cls` given in `table`, each converted by its kind; an unknown key
        or a missing required field is an error naming it."""
        known = [spec.name for spec in fields(cls)]
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.error(f"{prefix}{key}", "unknown key",
                                 f"{hint}{'the table' if prefix else 'a scenario'} takes: "
                                 f"{', '.join(known)}")
        for spec in fields(cls):
            if spec.name not in table and _default(spec) is MISSING:
                raise self.error(f"{prefix}{spec.name}", "missing",
                                 f"add {spec.name} = ... (a required key; "
                                 "docs/scenario-files.md lists every key)")
        return {key: kinds[key](value, f"{prefix}{key}") for key, value in table.items()}

    # Kinds of value, each a check and conversion (value, path) -> field value.

    def number(self, value: object, path: str) -> object:
        if not _is_number(value):
            raise self.error(path, f"expected a number, got {_toml_type(value)} {value!r}",
                             f"write a number without quotes, e.g. {path.rsplit('.', 1)[-1]}"
                             " = 1.5")
        return value

    def whole(self, value: object, path: str) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path,
                             f"expected a whole number, got {_toml_type(value)} {value!r}",
                             f"write an integer, e.g. {path.rsplit('.', 1)[-1]} = 2")
        return value

    def boolean(self, value: object, path: str) -> object:
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {_toml_type(value)} "
                                   f"{value!r}", f"write {path.rsplit('.', 1)[-1]} = true")
        return value

    def text(self, value: object, path: str) -> object:
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, got {_toml_type(value)} {value!r}",
                             f'quote it: {path.rsplit(".", 1)[-1]} = "..."')
        return value

    def texts(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(path, f"expected an array of strings, got {_toml_type(value)} "
                                   f"{value!r}",
                             f'write e.g. {path.rsplit(".", 1)[-1]} = ["postgres"]')
        return tuple(value)

    def names(self, value: object, path: str) -> frozenset[str]:
        return frozenset(self.texts(value, path))

    def mix(self, value: object, path: str) -> tuple[tuple[str, object], ...]:
        example = "mix = { update = 0.5, stock = 0.5 }"
        table = self.table(value, path, example)
        return tuple((kind, self.number(weight, f"{path}.{kind}"))
                     for kind, weight in table.items())

    def params(self, value: object, path: str) -> dict[str, ParamRange]:
        table = self.table(value, path, "params = { latency = 300, jitter = [20, 80] }")
        return {name: self.param(given, f"{path}.{name}") for name, given in table.items()}

    def param(self, value: object, path: str) -> ParamRange:
        if _is_number(value):
            return ParamRange(value, value)  # type: ignore[arg-type]
        if isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value):
            return ParamRange(value[0], value[1])
        name = path.rsplit(".", 1)[-1]
        raise self.error(path, f"expected a number or [low, high], got {_toml_type(value)} "
                               f"{value!r}",
                         f"write {name} = 2 for a fixed value, or {name} = [1, 3] for one "
                         "drawn from that range by the seed")


def load(text: str, source: str) -> Scenario:
    """The scenario in TOML `text`; `source` (the file name) is named in every error."""
    reader = _Reader(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise reader.error("", f"is not valid TOML: {exc}",
                           "fix the syntax there (docs/scenario-files.md has an example)") \
            from exc
    kwargs = reader.kwargs(data, "", Scenario, {
        "name": reader.text, "description": reader.text,
        "workload": lambda v, p: _workload(reader, v, p),
        "faults": lambda v, p: tuple(_fault(reader, t, f"{p}[{i}]")
                                     for i, t in enumerate(_tables(reader, v, p))),
        "converge_timeout_s": reader.number, "settle_s": reader.number,
        "repair": lambda v, p: Repair(**reader.kwargs(
            reader.table(v, p, '[repair] with resync = "partial"'), f"{p}.", Repair,
            {"resync": reader.text})),
        "consumers": lambda v, p: tuple(_consumer(reader, t, f"{p}[{i}]")
                                        for i, t in enumerate(_tables(reader, v, p))),
        "min_write_share": reader.number, "requires": reader.names, "dbs": reader.texts,
    })
    try:
        return Scenario(**kwargs)
    except ConfigError as exc:
        # Scenario names its fields "<name>.faults[2].at_s"; in a file the key path alone.
        prefix = f"{kwargs['name']}."
        path = exc.field[len(prefix):] if exc.field.startswith(prefix) else exc.field
        raise reader.error(path, exc.problem, exc.fix) from exc


def _tables(reader: _Reader, value: object, path: str) -> list[dict[str, Any]]:
    name = path.rsplit(".", 1)[-1]
    if not isinstance(value, list):
        raise reader.error(path, f"expected an array of tables, got {_toml_type(value)}",
                           f"write one [[{name}]] section per entry")
    return [reader.table(item, f"{path}[{i}]", f"a [[{name}]] section")
            for i, item in enumerate(value)]


def _workload(reader: _Reader, value: object, path: str) -> WorkloadSpec:
    table = reader.table(value, path, "[workload] with rate_per_s = 200")
    kwargs = reader.kwargs(table, f"{path}.", WorkloadSpec, {
        "rate_per_s": reader.number, "duration_s": reader.number,
        "initial_products": reader.whole, "mix": reader.mix, "concurrency": reader.whole})
    try:
        return WorkloadSpec(**kwargs)
    except ConfigError as exc:  # it names its fields "workload.<field>" already
        raise reader.error(exc.field, exc.problem, exc.fix) from exc


def _consumer(reader: _Reader, table: dict[str, Any], path: str) -> ConsumerSpec:
    return ConsumerSpec(**reader.kwargs(table, f"{path}.", ConsumerSpec, {
        "name": reader.text, "join_at_s": reader.number, "initial_sync": reader.boolean,
        "instances": reader.whole, "grants": reader.texts}))


def _fault(reader: _Reader, table: dict[str, Any], path: str) -> FaultStep:
    return FaultStep(**reader.kwargs(table, f"{path}.", FaultStep, {
        "action": reader.text, "target": reader.text, "at_s": reader.number,
        "duration_s": reader.number, "jitter_s": reader.number, "params": reader.params,
        "stream": reader.text}))


def load_file(path: Path) -> Scenario:
    """The scenario in the file at `path`; a ScenarioFileError if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ScenarioFileError(str(path), "", "does not exist",
                                "give the path of a scenario file, e.g. one written by "
                                "`harness show NAME > FILE.toml`") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(str(path), "", f"cannot be read ({exc})",
                                "give a readable UTF-8 TOML file") from exc
    return load(text, str(path))
