"""Permission presets.

The built-in presets (and the user's own in
$XDG_CONFIG_HOME/agentfense/presets) come from the agentfense binary,
``agentfense preset list|show --json`` — the same rules serve and the CLI
apply, never a second copy in Python.  ``register_preset`` adds presets
that live in this process only; the SDK sends their rules with the
sandbox.
"""

import json
import subprocess
from typing import Any, Dict, List, Optional, Union

from . import _endpoint
from .exceptions import InvalidConfigurationError, SandboxError
from .types import Permission, PermissionRule, RuleLike, rules_to_dicts

_custom: Dict[str, Dict[str, Any]] = {}


def _binary_json(*args: str) -> Any:
    binary = _endpoint.binary_or_raise("read the presets")
    try:
        p = subprocess.run([binary, "preset", args[0], "--json"] + list(args[1:]),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxError("cannot run '%s preset': %s" % (binary, e)) from None
    if p.returncode != 0:
        msg = p.stderr.decode("utf-8", "replace").strip().splitlines()
        msg = msg[0] if msg else "exit status %d" % p.returncode
        if args[0] == "show":
            raise InvalidConfigurationError("unknown preset '%s': %s" % (args[1], msg))
        raise SandboxError("'%s preset %s' failed: %s" % (binary, args[0], msg))
    return json.loads(p.stdout.decode("utf-8"))


def _builtin_names() -> List[str]:
    # Not cached: the user's own presets may change while we run.
    return [p["name"] for p in _binary_json("list")]


def list_presets() -> List[str]:
    """The names of every preset: the binary's and those registered here,
    sorted."""
    return sorted(set(_builtin_names()) | set(_custom))


def _rules(name: str) -> List[PermissionRule]:
    if not isinstance(name, str) or not name:
        raise InvalidConfigurationError("a preset name is a non-empty string, not %r" % (name,))
    if name in _custom:
        return [PermissionRule.from_dict(r) for r in _custom[name]["rules"]]
    return [PermissionRule.from_dict(r) for r in _binary_json("show", name).get("rules", [])]


def get_preset(name: str) -> List[PermissionRule]:
    """The rules of a preset, highest precedence first.  An unknown name
    raises InvalidConfigurationError."""
    return _rules(name)


def get_preset_dicts(name: str) -> List[Dict[str, Any]]:
    """The rules of a preset as plain dicts (pattern, permission, type,
    priority)."""
    return [r.to_dict() for r in _rules(name)]


def extend_preset(base: str, additions: Optional[List[RuleLike]] = None,
                  overrides: Optional[Union[List[RuleLike], Dict[str, Any]]] = None
                  ) -> List[PermissionRule]:
    """The rules of preset ``base``, with ``overrides`` replacing the base's
    rules of the same pattern (a list of rules, or a dict pattern →
    permission) and ``additions`` added at the end (so at equal priority
    and specificity they win).  Pass the result as ``permissions``."""
    rules = _rules(base)
    if overrides:
        if isinstance(overrides, dict):
            ov = [PermissionRule(pattern=p, permission=Permission.parse(v))
                  for p, v in overrides.items()]
        else:
            ov = [PermissionRule.from_dict(r) for r in overrides]
        by_pattern = {r.pattern: r for r in ov}
        rules = [by_pattern.pop(r.pattern, r) for r in rules] + list(by_pattern.values())
    return rules + [PermissionRule.from_dict(r) for r in additions or []]


def register_preset(name: str, rules: List[RuleLike], base: str = "view-only") -> None:
    """Register a preset in this process.  A sandbox created with it gets
    preset ``base`` (default view-only: paths the rules do not cover show
    their names only) plus ``rules``, which outrank the base's at equal
    priority.  It shadows a preset of the binary with the same name."""
    if not isinstance(name, str) or not name:
        raise InvalidConfigurationError("a preset name is a non-empty string, not %r" % (name,))
    try:
        dicts = rules_to_dicts(rules)
    except ValueError as e:
        raise InvalidConfigurationError(str(e)) from None
    if base in _custom:
        dicts = _custom[base]["rules"] + dicts
        base = _custom[base]["base"]
    _custom[name] = {"rules": dicts, "base": base}


def resolve(preset: Optional[str], permissions) -> "tuple":
    """What to send for a preset name and extra rules: a registered preset
    becomes its base plus its rules."""
    if preset is not None and preset in _custom:
        c = _custom[preset]
        return c["base"], c["rules"] + rules_to_dicts(permissions)
    return preset, permissions
