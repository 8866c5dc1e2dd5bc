"""Shared test settings. Tests use tiny real models; one thread each keeps them quick on a busy 2-core box.

The app's fixtures (tiny checkpoints, the app in a subprocess) live in tests/app_fixtures.py.
"""
import torch
from app_fixtures import app_checkpoints, app_server, tiny_checkpoints  # noqa: F401  (fixtures for every test module)

torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (starts the app, trains, or drives a browser)")
    config.addinivalue_line("markers", "browser: drives headless Chromium through Playwright")
