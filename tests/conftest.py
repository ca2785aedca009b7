"""Shared test configuration."""

pytest_plugins = ["pytester"]

# tests/data holds fixture files (some of them deliberately broken symgrad case files): data,
# never tests of this suite, whatever the symgrad pytest plugin would make of them.
collect_ignore_glob = ["data/*.yaml", "data/*.yml"]


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: takes more than about 5 s (deselect with -m 'not slow')")
