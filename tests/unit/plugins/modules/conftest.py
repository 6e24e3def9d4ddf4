import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module(main, args, capsys):
    """Run a module's main() with args; returns (exit code, result dict)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            main()
    return exc.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def module_runner(capsys):
    return lambda main, args: run_module(main, args, capsys)
