"""Stand-in for ansible-test's pip bootstrap script (get-pip-VERSION.py).

ansible-test downloads that script from ci-files.testing.ansible.com, a host this machine and
air-gapped sites cannot reach (ansible/ansible#77304). This stand-in does the same job with
what is reachable: pip from Python's own ensurepip, then upgraded from the configured package
index to the version ansible-test asks for. scripts/sanity puts it where ansible-test looks.
"""

import subprocess
import sys

# ansible-test passes pip options and the packages to install (e.g. pip==24.2); these two are
# get-pip.py options that pip itself does not know.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", *[a for a in sys.argv[1:] if a not in GET_PIP_ONLY]])
