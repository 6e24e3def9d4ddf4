"""The lab tool (lab/llmfleet_lab.py) loaded as a module, once per test."""

import importlib.util
import sys
from pathlib import Path

import pytest

LAB_PATH = Path(__file__).resolve().parents[3] / "lab" / "llmfleet_lab.py"


@pytest.fixture(name="lab_module")
def fixture_lab_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("llmfleet_lab", LAB_PATH)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "llmfleet_lab", module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module
