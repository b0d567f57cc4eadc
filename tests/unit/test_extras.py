"""Install hints name the command that works for how facecli was installed (pipx, uv, a checkout, a venv)."""

from __future__ import annotations

import sys

from facecli.extras import install_hint, requirements


def test_an_extra_is_read_from_the_installed_metadata():
    assert requirements("postgres") == ["psycopg[binary]<4,>=3.2"]
    assert requirements("no-such-extra") == []


def test_pipx_injects_into_facecli_s_own_environment():
    hint = install_hint("postgres", "/home/ann/.local/share/pipx/venvs/facecli")
    assert hint == "pipx inject facecli 'psycopg[binary]<4,>=3.2'"


def test_uv_tool_reinstalls_with_the_extra_s_packages():
    hint = install_hint("postgres", "/home/ann/.local/share/uv/tools/facecli")
    assert hint == "uv tool install facecli --reinstall --with 'psycopg[binary]<4,>=3.2'"


def test_a_venv_gets_its_own_interpreter_s_pip_never_whatever_pip_is_first_on_the_path():
    hint = install_hint("plot", "/home/ann/venvs/faces")
    assert hint == "/home/ann/venvs/faces/bin/python -m pip install 'facecli[plot]'"


def test_this_checkout_is_installed_editable_so_the_hint_says_so():
    hint = install_hint("tune")
    assert hint.startswith(f"{sys.executable} -m pip install -e ") and hint.endswith("[tune]'")
