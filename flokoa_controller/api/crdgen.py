"""Generate the CustomResourceDefinitions from the API types.

``python -m flokoa_controller.api.crdgen config/crd --chart-crds charts/flokoa-controller/crds``
(``make manifests``) writes one YAML file per CRD plus a ``kustomization.yaml`` into the first
directory, and the same CRD files (byte for byte, no kustomization) into the Helm chart's
``crds/``. The output is deterministic: the same types always give byte-identical files, so a
test can compare them with the committed ones.

The pydantic JSON schema is turned into a Kubernetes *structural* schema: ``$ref`` inlined,
``Optional`` unions collapsed to their non-null type, titles dropped, descriptions
normalised, ``metadata`` left to the API server, no defaults under ``status``. Anything the
API server would not accept (a leftover ``anyOf``, ``const``, a numeric
``exclusiveMinimum``...) makes generation fail instead of producing a CRD that a cluster
rejects.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from flokoa_controller.api.base import APIModel
from flokoa_controller.api.meta import CATEGORY, MODEL, MODEL_PROVIDER, APIResource
from flokoa_controller.api.model import Model
from flokoa_controller.api.modelprovider import ModelProvider

Schema = dict[str, Any]

ALLOWED_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "description",
        "default",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
    }
)
"""The schema keywords the generated CRDs may use (a subset of what a structural schema
allows); anything else is a generator bug."""

PRINTER_COLUMNS: dict[str, list[dict[str, Any]]] = {
    MODEL_PROVIDER.kind: [
        {"name": "Provider", "type": "string", "jsonPath": ".status.provider"},
        {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    MODEL.kind: [
        {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
        {"name": "Provider", "type": "string", "jsonPath": ".spec.providerRef.name"},
        {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
}
"""The columns of ``kubectl get``."""

RESOURCES: tuple[tuple[APIResource, type[APIModel]], ...] = (
    (MODEL_PROVIDER, ModelProvider),
    (MODEL, Model),
)
"""Every resource this package defines, with its root type."""


def _description(text: str) -> str:
    """Join the lines of each paragraph (docstrings are wrapped at 100 columns)."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _merge(target: Schema, field: Schema) -> Schema:
    """A referenced type's schema overlaid with the keywords written at the field."""
    merged = {**target, **field}
    own, inherited = field.get("description"), target.get("description")
    if own and inherited and own != inherited:
        merged["description"] = f"{own}\n\n{inherited}"
    return merged


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline ``$ref`` and collapse ``anyOf: [T, null]`` into ``T``.

    Keywords next to the reference or the union (the field's default) win over the
    referenced type's own; the field's description comes first, then the type's (the class
    docstring), so a field documented in one line still explains its type.
    """
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        node = _merge(_resolve(defs[ref.rsplit("/", 1)[-1]], defs), node)
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        members = [m for m in any_of if m != {"type": "null"}]
        if len(members) != 1 or len(members) == len(any_of):
            raise ValueError(f"only Optional[T] unions are supported, got anyOf {any_of}")
        node = _merge(_resolve(members[0], defs), node)
    if node.get("default", ...) is None:
        del node["default"]
    return node


def structural(node: Schema, defs: dict[str, Schema], *, in_status: bool = False) -> Schema:
    """Turn one pydantic JSON-schema node (and its children) into a structural schema node."""
    node = _resolve(node, defs)
    node.pop("title", None)
    if in_status:
        node.pop("default", None)
    if "description" in node:
        node["description"] = _description(node["description"])
    unknown = set(node) - ALLOWED_KEYWORDS
    if unknown:
        raise ValueError(f"schema keywords not allowed in a CRD: {sorted(unknown)} in {node}")
    if "type" not in node:
        raise ValueError(f"structural schemas need a type: {node}")
    if "properties" in node:
        node["properties"] = {
            name: structural(child, defs, in_status=in_status)
            for name, child in node["properties"].items()
        }
    if "items" in node:
        node["items"] = structural(node["items"], defs, in_status=in_status)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = structural(
            node["additionalProperties"], defs, in_status=in_status
        )
    return node


def _order(node: Schema) -> Schema:
    """Put the keywords in a fixed, readable order (description first, children last)."""
    first = ("description", "type", "format")
    last = ("properties", "additionalProperties", "items", "required")
    keys = [k for k in first if k in node]
    keys += sorted(k for k in node if k not in first and k not in last)
    keys += [k for k in last if k in node]
    ordered = {k: node[k] for k in keys}
    if "properties" in ordered:
        ordered["properties"] = {k: _order(v) for k, v in ordered["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(ordered.get(key), dict):
            ordered[key] = _order(ordered[key])
    return ordered


def openapi_schema(root: type[APIModel]) -> Schema:
    """The ``openAPIV3Schema`` of a resource whose root type is ``root``."""
    raw = root.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.pop("$defs", {})
    properties: dict[str, Schema] = dict(raw["properties"])
    schema: Schema = {
        "description": _description(raw.get("description", "")),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "The versioned schema of this representation of an object.",
                "type": "string",
            },
            "kind": {
                "description": "The REST resource this object represents.",
                "type": "string",
            },
            "metadata": {"type": "object"},
            "spec": structural(properties["spec"], defs),
            "status": structural(properties["status"], defs, in_status=True),
        },
        "required": ["spec"],
    }
    return _order(schema)


def crd(resource: APIResource, root: type[APIModel]) -> Schema:
    """The complete CustomResourceDefinition of ``resource``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.crd_name},
        "spec": {
            "group": resource.group,
            "names": {
                "categories": [CATEGORY],
                "kind": resource.kind,
                "listKind": resource.list_kind,
                "plural": resource.plural,
                "shortNames": list(resource.short_names),
                "singular": resource.singular,
            },
            "scope": "Namespaced" if resource.namespaced else "Cluster",
            "versions": [
                {
                    "name": resource.version,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": PRINTER_COLUMNS[resource.kind],
                    "schema": {"openAPIV3Schema": openapi_schema(root)},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    """Write multi-line strings as literal blocks, like other CRD generators."""
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


class _Dumper(yaml.SafeDumper):
    """A YAML dumper with readable multi-line strings."""


_Dumper.add_representer(str, _str_presenter)


def to_yaml(obj: Any) -> str:
    """Deterministic YAML: insertion order kept, block style, wide lines."""
    return "---\n" + yaml.dump(
        obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )


def file_name(resource: APIResource) -> str:
    """The file a CRD is written to, e.g. ``agent.flokoa.ai_modelproviders.yaml``."""
    return f"{resource.group}_{resource.plural}.yaml"


def render_crds() -> dict[str, str]:
    """One file per CRD (name to content): the Helm chart's ``crds/`` directory."""
    return {file_name(r): to_yaml(crd(r, root)) for r, root in RESOURCES}


def render() -> dict[str, str]:
    """Every generated file (name to content) for ``config/crd``."""
    files = render_crds()
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [file_name(r) for r, _ in RESOURCES],
    }
    files["kustomization.yaml"] = (
        "# Generated by `make manifests` (python -m flokoa_controller.api.crdgen): do not edit.\n"
        + to_yaml(kustomization)
    )
    return files


def main(argv: Sequence[str] | None = None) -> int:
    """Write the CRDs into the given directory (default ``config/crd``) and, with
    ``--chart-crds``, into a Helm chart's ``crds/`` directory."""
    parser = argparse.ArgumentParser(
        prog="python -m flokoa_controller.api.crdgen", description=__doc__.splitlines()[0]
    )
    parser.add_argument("directory", nargs="?", default="config/crd", type=Path)
    parser.add_argument(
        "--chart-crds",
        type=Path,
        default=None,
        help="also write the CRD files (without kustomization.yaml) into this directory",
    )
    args = parser.parse_args(argv)
    outputs: list[tuple[Path, dict[str, str]]] = [(args.directory, render())]
    if args.chart_crds is not None:
        outputs.append((args.chart_crds, render_crds()))
    for directory, files in outputs:
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (directory / name).write_text(content, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
