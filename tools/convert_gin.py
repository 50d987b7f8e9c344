r"""Rewrites a gin config of the flat-model era (T5Config.follower_prior = 64, ...) with today's
names (T5Config.followers = @FollowerConfig(), FollowerConfig.count = 64, ...).

  python tools/convert_gin.py runs/old/config.gin > runs/old/config_converted.gin

Reads the `Name.param = value` lines of a parsed config (a run's config.gin, or any gin file
without includes) and prints the same config in today's bindings. Parameter names did not
change, so an old run's checkpoints restore under the converted config.
"""

from __future__ import annotations

import re
import sys

# Old T5Config field -> (mechanism, its config's field); None: the mechanism's switch.
_FIELDS = {
    "item_inputs": ("ItemInputsConfig", "item_level"),
    "item_embed_buckets": ("ItemInputsConfig", "embed_buckets"),
    "item_embed_hashes": ("ItemInputsConfig", "embed_hashes"),
    "item_embed_dropout": ("ItemInputsConfig", "embed_dropout"),
    "recency_positions": ("ItemInputsConfig", "recency_positions"),
    "transition_buckets": ("TransitionConfig", "buckets"),
    "transition_hashes": ("TransitionConfig", "hashes"),
    "follower_prior": ("FollowerConfig", "count"),
    "follower_prior_buckets": ("FollowerConfig", "buckets"),
    "follower_prior_share_buckets": ("FollowerConfig", "share_buckets"),
    "follower_prior_sources": ("FollowerConfig", "sources"),
    "follower_prior_log_count": ("FollowerConfig", "log_count"),
    "follower_copy": ("FollowerConfig", "copy"),
    "follower_copy_features": ("FollowerConfig", "copy_features"),
}
# Which old values switch a mechanism on, and its T5Config field.
_SWITCHES = {"ItemInputsConfig": "item_inputs", "TransitionConfig": "transition",
             "FollowerConfig": "followers"}
_BINDING = re.compile(r"^([A-Za-z_][\w.]*)\s*=\s*(.+?)\s*$")


def parse(text: str) -> dict[str, str]:
  """`Name.param = value` and `MACRO = value` lines -> {name: value text}, in order (a value
  continued over several lines is joined)."""
  out: dict[str, str] = {}
  last = None
  for raw in text.splitlines():
    line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
    if not line.strip():
      continue
    m = _BINDING.match(line)
    if m and not raw.startswith((" ", "\t")):
      out[m.group(1)] = m.group(2)
      last = m.group(1)
    elif last:  # a continuation line of a multi-line value
      out[last] += " " + line.strip()
  return out


def convert(bindings: dict[str, str]) -> dict[str, str]:
  """Old bindings -> today's (see _FIELDS); others unchanged."""
  out: dict[str, str] = {}
  used: dict[str, bool] = {}
  for name, value in bindings.items():
    cls, _, field = name.rpartition(".")
    if cls == "T5Config" and field in _FIELDS:
      mechanism, new = _FIELDS[field]
      on = value not in ("0", "0.0", "False")
      if field in ("item_inputs", "follower_prior", "transition_buckets", "recency_positions"):
        used[mechanism] = used.get(mechanism, False) or on
      if field == "item_inputs":
        out[f"{mechanism}.{new}"] = value
      elif on or field != "follower_prior":
        out[f"{mechanism}.{new}"] = value
    elif name == "TrainerConfig.absolute_step_params":
      if "follower_" in value:
        out["FollowerConfig.absolute_steps"] = "True"
    else:
      out[name] = value
  if used.get("ItemInputsConfig") and "ItemInputsConfig.item_level" not in out:
    out["ItemInputsConfig.item_level"] = "False"  # recency alone, on token-level inputs
  for mechanism, field in _SWITCHES.items():
    if used.get(mechanism):
      out[f"T5Config.{field}"] = f"@{mechanism}()"
    else:
      for key in [k for k in out if k.startswith(mechanism + ".")]:
        del out[key]
  return out


def format_bindings(bindings: dict[str, str]) -> str:
  return "\n".join(f"{k} = {v}" for k, v in bindings.items()) + "\n"


if __name__ == "__main__":
  if len(sys.argv) != 2:
    sys.exit("usage: python tools/convert_gin.py OLD_CONFIG.gin")
  try:
    text = open(sys.argv[1]).read()
  except OSError as e:
    sys.exit(f"error: {sys.argv[1]}: {e.strerror}")
  if re.search(r"^\s*include\s", text, re.M):
    sys.exit(f"error: {sys.argv[1]} has include lines: convert a run's config.gin (the parsed "
             "config, every include resolved) instead")
  sys.stdout.write(format_bindings(convert(parse(text))))
