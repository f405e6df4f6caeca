"""The in-sandbox runner: executes cells and forwards their HTTP calls to the host.

Self-contained: it imports only the standard library (and RestrictedPython, lazily, in
`restricted` mode) and uses relative imports, so this directory can be copied alone
(e.g. into a container image as `runner/`) and started with `python -m runner`.
The wire protocol is documented in `channel`.
"""
