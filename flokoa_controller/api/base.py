"""The base class of every API type: camelCase JSON names, attribute docstrings, rules."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.json_schema import JsonSchemaValue

from flokoa_controller.api.rules import PresenceRule, Rule, add_rules


def _add_class_rules(json_schema: JsonSchemaValue, cls: type[Any]) -> None:
    """``json_schema_extra`` hook: emit the class's ``__rules__`` as CEL validations.

    Fields named by a presence rule leave the schema's ``required`` list: the rule, with its
    explanatory message, takes the place of the API server's bare "Required value".
    """
    rules: tuple[Rule[Any] | PresenceRule, ...] = getattr(cls, "__rules__", ())
    if not rules:
        return
    add_rules(json_schema, rules)
    by_rule = {name for rule in rules if isinstance(rule, PresenceRule) for name in rule.fields}
    required = [name for name in json_schema.get("required", []) if name not in by_rule]
    if required:
        json_schema["required"] = required
    else:
        json_schema.pop("required", None)


class APIModel(BaseModel):
    """Base of the resource types.

    - Attributes have Python (snake_case) names and camelCase JSON aliases; both are accepted
      on input, and ``to_json`` writes the aliases.
    - Each attribute's docstring becomes its CRD description.
    - Unknown fields are ignored, as kube-apiserver prunes them: a controller reading objects
      written against a newer CRD keeps working.
    - ``__rules__`` lists the object-level rules (CEL in the CRD, Python here).
    """

    model_config = ConfigDict(
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra=_add_class_rules,
    )

    __rules__: ClassVar[tuple[Rule[Any] | PresenceRule, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _check_presence_rules(cls, data: Any) -> Any:
        """Run the presence rules on the raw input, before pydantic's own "Field required"."""
        presence = [rule for rule in cls.__rules__ if isinstance(rule, PresenceRule)]
        if presence:
            names = {f.alias or name: name for name, f in cls.model_fields.items()}
            for rule in presence:
                rule.validate_input(data, names)
        return data

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        """Run the object-level rules on the validated object, in declaration order."""
        for rule in type(self).__rules__:
            if isinstance(rule, Rule):
                rule.validate(self)
        return self

    def to_json(self) -> dict[str, Any]:
        """The object as JSON-compatible data with camelCase names, omitting unset optionals."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data
