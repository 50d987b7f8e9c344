"""Errors the command lines report as one line (see `cli.run`)."""


class ConfigError(ValueError):
  """A setting that cannot work; the message names the gin binding or flag to change."""
