from codetool_kernel.cli import run_cli
from sandbox.cli import app

run_cli(app, prog_name="python -m sandbox")
