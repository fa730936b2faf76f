"""The Label Studio fixtures (``ls_server``, ``ls_root``) live in tests/conftest.py, shared with
tests/faults so one session starts one server."""
