"""The llmfleet lab tool as a package; lab/llmfleet_lab.py is its command line (see its docstring)."""
