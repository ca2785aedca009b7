"""Shared test configuration."""

pytest_plugins = ["pytester"]

# tests/data holds fixture files (some of them deliberately broken symgrad case files): data,
# never tests of this suite, whatever the symgrad pytest plugin would make of them.
collect_ignore_glob = ["data/*.yaml", "data/*.yml"]
