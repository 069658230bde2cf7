"""Build script for the one optional C extension and the docs' copy; all metadata is in
pyproject.toml.

``replayer.archive._fastrows`` speeds up reading archives (see its source). It is
optional: without a C compiler the install goes on and the reader uses its Python path.

The docs stay at the repository's top level (``docs/``); the build copies them into the
package as ``replayer/data/docs/`` so an installed replayer carries them
(``replayer.resources.docs_dir``). The sdist includes ``docs/`` (MANIFEST.in).
"""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

DOCS = Path(__file__).parent / "docs"


class BuildPyWithDocs(build_py):
    """build_py, plus ``docs/*.md`` copied to ``replayer/data/docs/`` in the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode or not DOCS.is_dir():  # an editable install reads docs/ itself
            return
        target = Path(self.build_lib) / "replayer" / "data" / "docs"
        target.mkdir(parents=True, exist_ok=True)
        for doc in sorted(DOCS.glob("*.md")):
            shutil.copyfile(doc, target / doc.name)


setup(
    cmdclass={"build_py": BuildPyWithDocs},
    ext_modules=[
        Extension(
            "replayer.archive._fastrows",
            ["replayer/archive/_fastrows.c"],
            optional=True,
        )
    ],
)
