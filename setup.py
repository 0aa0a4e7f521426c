"""Package discovery for scanbridge's folder-to-package mapping (see pyproject.toml).

The repo folders `bridge/`, `firmware/`, `tools/` and `hardware/` install as the
packages `scanbridge`, `scanbridge_fw`, `scanbridge_tools` and `scanbridge_hw`.
Every sub-folder with an `__init__.py` becomes a sub-package automatically.
"""
import os

from setuptools import setup

ROOTS = {"scanbridge": "bridge", "scanbridge_fw": "firmware",
         "scanbridge_tools": "tools", "scanbridge_hw": "hardware"}


def _packages():
    found = []
    for name, folder in ROOTS.items():
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            if "__init__.py" in filenames:
                rel = os.path.relpath(dirpath, folder)
                found.append(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return found


setup(
    packages=_packages(),
    package_dir=ROOTS,
    package_data={"": ["*.json", "*.html", "*.js", "*.css", "*.md", "*.rules", "*.png", "*.svg"]},
    include_package_data=True,
)
