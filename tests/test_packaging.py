"""What a wheel carries: every package, and sql/ (the demo's sample CRM and queries) as package data."""

from __future__ import annotations

import tomllib
from pathlib import Path

from uploader.sample_crm import sql_dir

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_the_wheel_lists_every_package_of_the_checkout():
    on_disk = {".".join(init.parent.relative_to(ROOT).parts)
               for top in ("uploader", "connectors") for init in (ROOT / top).rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == on_disk | {"uploader._sql"}


def test_every_file_of_sql_is_package_data_of_uploader_sql():
    assert SETUPTOOLS["package-dir"]["uploader._sql"] == "sql"
    packaged = {path for pattern in SETUPTOOLS["package-data"]["uploader._sql"] for path in (ROOT / "sql").glob(pattern)}
    files = {path for path in (ROOT / "sql").rglob("*") if path.is_file()}
    assert files and packaged == files


def test_the_sql_folder_is_the_checkouts_or_else_the_installed_copy(tmp_path):
    package = tmp_path / "site-packages" / "uploader"
    package.mkdir(parents=True)
    assert sql_dir(package) == tmp_path / "site-packages" / "sql"  # a checkout: sql/ beside the package
    (package / "_sql").mkdir()
    assert sql_dir(package) == package / "_sql"  # a wheel: inside it
    assert sql_dir(ROOT / "uploader") == ROOT / "sql"
