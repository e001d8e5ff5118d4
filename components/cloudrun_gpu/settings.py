"""One way to declare, document and validate a component's settings.

Every component owns one frozen *settings* type per concern (``NetworkSettings``,
``ServiceSettings`` …). The same class is a section of the stack file (``cloudrun-gpu:network``)
and a field of the component's ``…Args``, so a rule is written once and applies to YAML users,
Python importers and, through the component package schema, to other Pulumi languages.

Why pydantic dataclasses: they validate types and ranges on construction, keep attribute
docstrings (``use_attribute_docstrings``) that become the field's documentation and the
schema's description, and — unlike ``BaseModel`` — carry no extra annotations that Pulumi's
component-schema analyzer would trip over.

Errors always leave as :class:`~cloudrun_gpu.errors.ConfigErrors` naming the field *the user
wrote*: a boundary (stack reader, CLI, component constructor) passes a ``prefix``; pydantic's
own wording (Python type names, "set X to a valid value") never reaches a user.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import enum
import functools
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from typing_extensions import dataclass_transform

from cloudrun_gpu.errors import ConfigError, ConfigErrors

T = TypeVar("T")

SETTINGS_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True)


@dataclass_transform(frozen_default=True, field_specifiers=(pydantic.Field, FieldInfo))
def settings(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen, self-validating settings type.

    Constructing it directly (the Python API) runs type/range validation and then the class's
    ``problems()`` cross-field checks; either kind of failure raises ``ConfigErrors`` whose
    fields read ``ClassName.field``.
    """
    dc: Any = pydantic.dataclasses.dataclass(frozen=True, config=SETTINGS_CONFIG)(cls)
    init = dc.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ValidationError as exc:
            raise validation_errors(exc, f"{cls.__name__}.", dc) from None
        errs = problems_of(self, f"{cls.__name__}.")
        if errs:
            raise ConfigErrors(errs)

    dc.__init__ = __init__
    return dc  # type: ignore[no-any-return]


def problems_of(value: Any, prefix: str) -> list[ConfigError]:
    """Cross-field problems of a settings object, with fields under ``prefix`` (recursive through
    each class's own ``problems()``)."""
    check: Callable[[], list[ConfigError]] | None = getattr(value, "problems", None)
    own = check() if check is not None else []
    # The class's own word on a field wins (it knows why the value is needed); the generic rule fills the rest.
    empty = [e for e in empty_optional_strings(value) if e.field not in {x.field for x in own}]
    return [with_prefix(e, prefix) for e in [*empty, *own]]


def empty_optional_strings(value: Any) -> list[ConfigError]:
    """An optional text setting written as an empty (or blank) string: unset (None) already means "the default",
    so ``""`` would silently mean it too (issue 21: ``model.quantization: ""`` sized the default 4-bit model).
    Every settings type refuses it, naming the field; remove the key for the default."""
    fields: dict[str, Any] = getattr(type(value), "__pydantic_fields__", {})
    errors = []
    for name, info in fields.items():
        ann = info.annotation
        optional_text = str in typing.get_args(ann) and type(None) in typing.get_args(ann)
        got = getattr(value, name, None)
        if optional_text and isinstance(got, str) and not got.strip():
            errors.append(ConfigError(name, got, "is empty", f"remove {name} to use the default, or give a value"))
    return errors


def nested(value: Any, name: str) -> list[ConfigError]:
    """``problems()`` of a nested settings field, named ``name.…`` (for a parent's ``problems``)."""
    return problems_of(value, f"{name}.")


def with_prefix(err: ConfigError, prefix: str) -> ConfigError:
    return renamed(err, prefix + err.field)


def renamed(err: ConfigError, new: str) -> ConfigError:
    """``err`` under the field name ``new``; the fix's mentions of the field follow it."""
    return ConfigError(new, err.value, err.problem, rename_in(err.fix, err.field, new), err.allowed)


def rename_in(text: str, old: str, new: str) -> str:
    """Fixes mention the field they fix (``set engine.context_length ≥ …``); rename those mentions only.

    A dotted path is renamed wherever it stands as a whole token (not inside a longer name). A one-word field
    is renamed only where it follows ``set ``: as a bare word (``model``, ``region``) it is usually prose
    ("a smaller model"), not the field."""
    if not old or old == new:
        return text
    if "." in old:
        return re.sub(rf"(?<![\w.:-]){re.escape(old)}(?![\w-])", new, text)
    return text.replace(f"set {old} ", f"set {new} ")


def rename_fields(errors: Iterable[ConfigError], names: Mapping[str, str], prefix: str = "") -> ConfigErrors:
    """Rename library field paths to what a boundary's user wrote (``engine.context_length`` →
    ``--context`` for the CLI); unmapped fields get ``prefix``."""
    out = []
    for e in errors:
        new = names.get(e.field)
        if new is None:
            new = next((names[k] + e.field[len(k) :] for k in names if e.field.startswith(k + ".")), None)
        out.append(renamed(e, new if new is not None else prefix + e.field))
    return ConfigErrors(out)


def raise_if(errors: list[ConfigError]) -> None:
    if errors:
        raise ConfigErrors(errors)


def as_errors(exc: ConfigError | ConfigErrors) -> list[ConfigError]:
    return list(exc.errors) if isinstance(exc, ConfigErrors) else [exc]


def parse(cls: type[T], raw: Any, prefix: str, problems: list[ConfigError] | None = None) -> T:
    """Validate untrusted data (a stack file section, a provider input bag) into ``cls``;
    every problem comes back at once, named ``prefix`` + path.

    Type and range errors always raise (there is no object to go on with). Cross-field problems
    raise too, unless the caller passes a ``problems`` list to collect them in, so that rules across
    sections can still run and one run reports every mistake."""
    try:
        value = TypeAdapter(cls).validate_python(raw)
    except ValidationError as exc:
        raise validation_errors(exc, prefix, cls) from None
    errs = problems_of(value, prefix)
    if problems is not None:
        problems.extend(errs)
    elif errs:
        raise ConfigErrors(errs)
    return value


def args_settings(args: Any, prefix: str, fields: Mapping[str, type[Any]]) -> list[ConfigError]:
    """Each settings-typed argument of a component's ``…Args`` as its settings type, in place.

    Another Pulumi language (or a provider host) sends a settings argument as a plain mapping: it is parsed
    (errors named ``prefix`` + argument + key); an instance is kept; anything else (None, a number, a list) is
    refused naming the argument. The caller raises the returned errors *before* reading any argument, so a bad
    input is a ConfigError, never an AttributeError on a half-converted mapping (issue 21)."""
    errors: list[ConfigError] = []
    for name, cls in fields.items():
        value = getattr(args, name)
        if isinstance(value, cls):
            continue
        if isinstance(value, Mapping):
            try:
                object.__setattr__(args, name, parse(cls, dict(value), f"{prefix}{name}."))
            except ConfigErrors as exc:
                errors.extend(exc.errors)
            continue
        errors.append(
            ConfigError(
                prefix + name,
                value,
                f"is not a {cls.__name__} or a mapping of its settings",
                f"pass {cls.__name__}(...) or a mapping with some of: {', '.join(field_names(cls))}",
            )
        )
    return errors


def args_types(args: Any, prefix: str, skip: Iterable[str] = ()) -> list[ConfigError]:
    """Every other argument of a component's ``…Args`` against its annotation, named when it does not fit.

    Another Pulumi language sends JSON-shaped values (text, numbers, lists, mappings, null): a value of the wrong
    shape (a list for a bucket name, ``None`` for a label) was accepted and then broke the component while it
    registered (issue 21, the Args property of tests/test_args_plain.py). ``pulumi.Input[str]`` admits text, an
    awaitable or a Pulumi output (the annotation's own union); the arguments in ``skip`` have their own rule."""
    hints = _hints(type(args))
    errors: list[ConfigError] = []
    for f in dataclasses.fields(args):
        if f.name in skip or f.name not in hints:
            continue
        value, tp = getattr(args, f.name), hints[f.name]
        if not _fits(value, tp):
            errors.append(ConfigError(prefix + f.name, value, f"is not {_shape(tp)}", f"pass {f.name} as {_shape(tp)}"))
    return errors


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    # ``pulumi.Input[T]`` holds the forward reference ``"Output[T]"``, which only pulumi's own module resolves; an
    # Args class is only ever built where pulumi is imported.
    if cls not in _HINTS:
        output = sys.modules.get("pulumi.output")
        _HINTS[cls] = typing.get_type_hints(cls, localns=dict(vars(output)) if output is not None else None)
    return _HINTS[cls]


def _fits(value: Any, tp: Any) -> bool:
    """``value`` has the shape ``tp`` describes (the typing forms the library's Args use; any other: no claim)."""
    origin, params = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, t) for t in params)
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and (len(params) < 2 or _fits(v, params[1])) for k, v in value.items()
        )
    if origin in (list, collections.abc.Sequence):
        return isinstance(value, list) and all(not params or _fits(v, params[0]) for v in value)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(origin, type):  # Output[str], Awaitable[str]: the class, its parameter unknowable here
        return isinstance(value, origin)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _shape(tp: Any) -> str:
    """What ``tp`` admits, in words."""
    origin, params = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        kept = [t for t in params if t is not type(None) and not _deferred(t)]
        words = " or ".join(dict.fromkeys(_shape(t) for t in kept))
        deferred = len(kept) < len([t for t in params if t is not type(None)])
        words += " (or a Pulumi output of one)" if deferred else ""
        return words + (", or null" if type(None) in params else "")
    if origin in (dict, collections.abc.Mapping):
        return f"a mapping of names to {_shape(params[1]) if len(params) > 1 else 'values'}"
    if origin in (list, collections.abc.Sequence):
        return f"a list of {_shape(params[0]) if params else 'values'}"
    return {str: "text", bool: "true or false", int: "a whole number", float: "a number"}.get(
        tp, f"a {getattr(tp, '__name__', tp)}"
    )


def _deferred(tp: Any) -> bool:
    """An awaitable or a ``pulumi.Output``: a value not there yet (by name: this module does not import pulumi)."""
    origin = typing.get_origin(tp)
    return origin is collections.abc.Awaitable or getattr(origin, "__name__", "") == "Output"


def args_text(args: Any, prefix: str, *names: str) -> list[ConfigError]:
    """Required text arguments that are not a non-empty string (None, a number, ``""``), named."""
    return [
        ConfigError(prefix + n, getattr(args, n), "must be a non-empty string", f"set {n}")
        for n in names
        if not isinstance(getattr(args, n), str) or not getattr(args, n).strip()
    ]


def args_int(args: Any, prefix: str, name: str, low: int, high: int, why: str = "") -> list[ConfigError]:
    """An integer argument within ``low..high`` (a whole float, as JSON hands numbers over, becomes an int)."""
    value = getattr(args, name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
        object.__setattr__(args, name, value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return [ConfigError(prefix + name, value, f"must be a whole number in {low}..{high}{why}", f"set {name}")]
    return []


def field_names(cls: Any) -> list[str]:
    fields = getattr(cls, "__pydantic_fields__", None) or getattr(cls, "__dataclass_fields__", {})
    return list(fields)


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The closest known name to a misspelt one (``scalling`` → ``scaling``)."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return match[0] if match else None


def _owner(cls: Any, loc: tuple[int | str, ...]) -> Any:
    """The settings class that holds the field at ``loc`` (to list its known keys)."""
    for part in loc[:-1]:
        fields = getattr(cls, "__pydantic_fields__", None)
        if not fields or not isinstance(part, str) or part not in fields:
            return None
        ann = fields[part].annotation
        args = [a for a in getattr(ann, "__args__", ()) if a is not type(None)]
        cls = args[0] if args and not isinstance(ann, type) else ann
    return cls


def _allowed_of(ctx: dict[str, Any], err_type: str) -> str:
    bounds = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = [f"{sym} {ctx[k]}" for k, sym in bounds.items() if k in ctx]
    if "pattern" in ctx:
        parts.append(f"matching {ctx['pattern']}")
    if "expected" in ctx:
        parts.append(str(ctx["expected"]).replace("'", ""))
    if "min_length" in ctx:
        parts.append(f"at least {ctx['min_length']} item(s)/character(s)")
    if "max_length" in ctx:
        parts.append(f"at most {ctx['max_length']} item(s)/character(s)")
    return ", ".join(parts)


_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "dataclass_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "finite_number": "a finite number",
}


def validation_errors(exc: ValidationError, prefix: str, cls: Any) -> ConfigErrors:
    """pydantic's errors, reworded: the field the user wrote, their value, what is allowed, the fix."""
    out: list[ConfigError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        typ = err["type"]
        path = ".".join(str(p) for p in loc)
        field = prefix + path if path else prefix.rstrip(".:") or "config"
        ctx = err.get("ctx") or {}
        value = err.get("input")
        if typ in ("extra_forbidden", "unexpected_keyword_argument"):
            owner = _owner(cls, loc)
            known = field_names(owner) if owner is not None else []
            guess = suggest(str(loc[-1]), known) if loc else None
            fix = f"did you mean {prefix}{'.'.join(str(p) for p in (*loc[:-1], guess))}?" if guess else "remove it"
            out.append(ConfigError(field, value, "is not a known setting", fix, ", ".join(known) if known else ""))
            continue
        if typ == "unexpected_positional_argument":
            names = ", ".join(field_names(cls))
            out.append(
                ConfigError(field, value, "is a positional argument too many", f"pass settings by name: {names}")
            )
            continue
        if typ in ("missing", "missing_argument"):
            out.append(ConfigError(field, None, "is required", f"set {field}"))
            continue
        if typ == "enum":
            allowed = str(ctx.get("expected", "")).replace("'", "")
            guess = suggest(str(value), [a.strip() for a in allowed.replace(" or ", ",").split(",")])
            fix = f"did you mean {guess!r}?" if guess else f"set {field} to one of: {allowed}"
            out.append(ConfigError(field, value, "is not one of the allowed values", fix, allowed))
            continue
        allowed = _allowed_of(ctx, typ)
        want = _TYPE_WORDS.get(typ)
        if want is not None:
            problem = f"must be {want}"
            allowed = allowed or want
        elif typ.startswith(("greater", "less")):
            problem = "is out of range"
        elif typ.startswith("string_pattern"):
            problem = "has characters or a shape that is not allowed"
        elif typ.startswith("too_"):
            problem = "has the wrong length"
        else:
            problem = "is not valid"
        fix = f"set {field} to {allowed}" if allowed else f"check {field} against the docs"
        out.append(ConfigError(field, _plain(value), problem, fix, allowed))
    return ConfigErrors(out)


def _plain(value: Any) -> Any:
    """Values as the user wrote them (enum members and dataclasses shown by value)."""
    if isinstance(value, enum.Enum):
        return value.value
    return value
