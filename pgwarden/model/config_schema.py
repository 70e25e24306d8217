"""The JSON Schema of ``pgwarden.toml``, generated from the config models for editors."""

from __future__ import annotations

from typing import Any

from pgwarden.model.config import Config

CONFIG_SCHEMA_RESOURCE = "schemas/config.json"
# The draft editors' TOML validators (Taplo, Even Better TOML) all read; nothing in
# the schema needs a later one.
_DRAFT = "http://json-schema.org/draft-07/schema#"


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of pgwarden.toml, from the models (the shipped file must equal it).

    Shaped for TOML: TOML has no null, so an optional key is simply its type; the
    generated per-key titles ("Fail On") give way to the descriptions.
    """
    generated = _for_toml(Config.model_json_schema(mode="validation"))
    return {
        "$schema": _DRAFT,
        # An identifier, not an address: nothing to fetch, no domain to lapse.
        "$id": "urn:pgwarden:schema:config",
        **generated,
        "title": "pgwarden.toml",
    }


def _for_toml(node: Any) -> Any:
    if isinstance(node, list):
        return [_for_toml(item) for item in node]
    if not isinstance(node, dict):
        return node
    shaped: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            shaped[key] = {
                name: _for_toml({k: v for k, v in prop.items() if k != "title"})
                for name, prop in value.items()
            }
        else:
            shaped[key] = _for_toml(value)
    options = shaped.pop("anyOf", None)
    if options is not None:
        kept = [option for option in options if option != {"type": "null"}]
        shaped = {**kept[0], **shaped} if len(kept) == 1 else {**shaped, "anyOf": kept}
    if "default" in shaped and shaped["default"] is None:
        del shaped["default"]
    return shaped
