"""The SDK's schema analysis, taught one thing it misses: a field with a Python default is optional.

pulumi 3.272's ``Analyzer`` marks only ``Optional``/``NotRequired`` annotations optional
(``pulumi/provider/experimental/analyzer.py``, ``analyze_type``), so every settings field with a default
would be a *required* input for TypeScript/Go/YAML/C# users, and a minimal input bag would be refused
(``Missing required input 'model.file'``). Our args and settings are dataclasses (plain or pydantic), whose
defaults are known: those inputs become optional and the component fills in the default, exactly as for
Python callers. ``ComponentProvider.__init__`` builds its own ``Analyzer``; :class:`CloudRunGpuProvider`
repeats that short constructor with this analyzer (same calls, same order).
"""

import dataclasses
import json
from typing import Any

from pulumi.provider.experimental.analyzer import Analyzer, PropertyDefinition
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.schema import generate_schema
from pulumi.provider.provider import Provider
from pulumi.resource import ComponentResource


def _defaulted(typ: Any) -> set[str]:
    """Python names of ``typ``'s fields that have a default (pydantic or plain dataclass)."""
    fields = getattr(typ, "__pydantic_fields__", None)
    if fields is not None:
        return {k for k, f in fields.items() if not f.is_required()}
    if dataclasses.is_dataclass(typ):
        return {
            f.name
            for f in dataclasses.fields(typ)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
    return set()


class DefaultsAwareAnalyzer(Analyzer):
    """``Analyzer`` that marks defaulted input fields optional."""

    def analyze_type(
        self, typ: type, *, is_component_output: bool
    ) -> tuple[dict[str, PropertyDefinition], dict[str, str]]:
        props, mapping = super().analyze_type(typ, is_component_output=is_component_output)
        if not is_component_output:
            defaulted = _defaulted(typ)
            for schema_name, py_name in mapping.items():
                if py_name in defaulted:
                    props[schema_name].optional = True
        return props, mapping


class CloudRunGpuProvider(ComponentProvider):
    """``ComponentProvider`` with :class:`DefaultsAwareAnalyzer` (its constructor, otherwise unchanged)."""

    def __init__(
        self,
        components: list[type[ComponentResource]],
        name: str,
        namespace: str | None = None,
        version: str = "0.0.0",
    ) -> None:
        self._name = name
        self.analyzer = DefaultsAwareAnalyzer(name)
        result = self.analyzer.analyze(components)
        self._components = {component.__name__: component for component in components}
        self._component_defs = result["component_definitions"]
        self._type_defs = result["type_definitions"]
        self._external_enum_types = result["external_enum_types"]
        self._dependencies = sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}")
        schema = generate_schema(name, version, namespace, self._component_defs, self._type_defs, self._dependencies)
        Provider.__init__(self, version, json.dumps(schema.to_json()))
